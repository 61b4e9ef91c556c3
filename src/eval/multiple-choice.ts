// Multiple-choice accuracy by log-likelihood, as lm-evaluation-harness scores it: for each
// choice, the summed log-probability of the continuation " " + choice given the context;
// `acc` picks the largest sum, `acc_norm` the largest sum per character of the continuation.
import { intTensor, noGrad, logSoftmax } from '../tensor/index.js';
import type { WeightFn } from '../nn/params.js';
import type { MultipleChoiceRecord } from '../data/types.js';
import { lmLogits, type Model } from '../models/model.js';

export interface McResult {
  acc: number;
  accNorm: number;
  n: number;
  /** Per item: index chosen by acc and by acc_norm. */
  predictions: { acc: number; accNorm: number }[];
}

interface Request {
  item: number;
  choice: number;
  ids: number[]; // context + continuation tokens
  contStart: number; // index of the first continuation token in ids
  chars: number;
}

export function scoreMultipleChoice(
  model: Model, tokenizer: { encode(text: string): number[] }, records: MultipleChoiceRecord[],
  opts: { batchSize?: number; weight?: WeightFn; bosId?: number | null; delimiter?: string; onBatch?: (done: number, total: number) => void } = {},
): McResult {
  if (model.arch !== 'llama') throw new Error('multiple-choice scoring needs a causal LM (LLaMA-family model)');
  const maxLen = model.config.maxPositionEmbeddings;
  const delim = opts.delimiter ?? ' ';
  const reqs: Request[] = [];
  records.forEach((r, item) => {
    const ctx = [...(opts.bosId != null ? [opts.bosId] : []), ...tokenizer.encode(r.context)];
    r.choices.forEach((c, choice) => {
      const cont = tokenizer.encode(delim + c);
      if (cont.length === 0) throw new Error(`item ${item}: choice ${choice} encodes to no tokens`);
      // Keep the continuation whole; cut the context from the left to fit (+1: the last
      // input position predicts the final token).
      const room = Math.max(1, maxLen + 1 - cont.length);
      const keep = ctx.length > room ? ctx.slice(ctx.length - room) : ctx;
      const ids = [...keep, ...cont].slice(-(maxLen + 1));
      reqs.push({ item, choice, ids, contStart: ids.length - cont.length, chars: (delim + c).length });
    });
  });
  // Longest first so batches pad little.
  const order = reqs.map((_, i) => i).sort((a, b) => reqs[b].ids.length - reqs[a].ids.length);
  const scores = new Float64Array(reqs.length);
  const bs = opts.batchSize ?? 16;
  const V = model.config.vocabSize;
  noGrad(() => {
    for (let s = 0; s < order.length; s += bs) {
      const batch = order.slice(s, s + bs).map((i) => reqs[i]);
      const T = Math.max(...batch.map((r) => r.ids.length - 1));
      const ids = new Int32Array(batch.length * T); // right padding: causal attention ignores it
      batch.forEach((r, b) => ids.set(r.ids.slice(0, -1), b * T));
      const logp = logSoftmax(lmLogits(model, intTensor(ids, [batch.length, T]), { weight: opts.weight })).f32;
      batch.forEach((r, b) => {
        let sum = 0;
        for (let p = r.contStart; p < r.ids.length; p++) sum += logp[(b * T + p - 1) * V + r.ids[p]];
        scores[order[s + b]] = sum;
      });
      opts.onBatch?.(Math.min(s + bs, order.length), order.length);
    }
  });
  const predictions = records.map(() => ({ acc: -1, accNorm: -1 }));
  const best = records.map(() => ({ s: -Infinity, n: -Infinity }));
  reqs.forEach((r, i) => {
    const norm = scores[i] / r.chars;
    if (scores[i] > best[r.item].s) {
      best[r.item].s = scores[i];
      predictions[r.item].acc = r.choice;
    }
    if (norm > best[r.item].n) {
      best[r.item].n = norm;
      predictions[r.item].accNorm = r.choice;
    }
  });
  let acc = 0, accNorm = 0;
  records.forEach((r, i) => {
    if (predictions[i].acc === r.label) acc++;
    if (predictions[i].accNorm === r.label) accNorm++;
  });
  const n = records.length;
  return { acc: n ? acc / n : NaN, accNorm: n ? accNorm / n : NaN, n, predictions };
}
