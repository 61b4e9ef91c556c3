// Multiple-choice accuracy by log-likelihood, as lm-evaluation-harness scores it: for each
// choice, the summed log-probability of the continuation " " + choice given the context;
// `acc` picks the largest sum, `acc_norm` the largest sum per character of the choice (the
// harness divides by len(choice), without the delimiter: task.py process_results).
// Ties go to the first choice, as numpy's argmax. Items with a `continuation` are scored the
// other way round (partial scoring): the continuation after each choice.
import { intTensor, noGrad } from '../tensor/index.js';
import type { WeightFn } from '../nn/params.js';
import type { MultipleChoiceRecord } from '../data/types.js';
import { archOf, lmLogits, type Model } from '../models/model.js';

export interface McResult {
  acc: number;
  accNorm: number;
  n: number;
  /** Per item: index chosen by acc and by acc_norm. */
  predictions: { acc: number; accNorm: number }[];
  /** Per item, per choice: summed log-probability of the continuation (nats). */
  scores: number[][];
  /** Choices longer than the model's positions, scored on their last tokens only. */
  truncatedChoices: number;
}

export interface McOptions {
  batchSize?: number;
  weight?: WeightFn;
  /** Prepended to every context (the harness adds none by default). */
  bosId?: number | null;
  /** Used as the whole context when a context encodes to no tokens, so the first continuation
   *  token has something to be predicted from (the harness uses the EOT token). */
  prefixId?: number | null;
  delimiter?: string;
  onBatch?: (done: number, total: number) => void;
}

interface Request {
  item: number;
  choice: number;
  ids: number[]; // context + continuation tokens
  contStart: number; // index of the first continuation token in ids
}

/** `tokenizer.encode` must not add special tokens (BOS/EOS around every piece would be scored). */
export function scoreMultipleChoice(
  model: Model, tokenizer: { encode(text: string): number[] }, records: MultipleChoiceRecord[], opts: McOptions = {},
): McResult {
  if (archOf(model).kind !== 'decoder') throw new Error('multiple-choice scoring needs a causal LM (LLaMA-family model)');
  const maxLen = model.config.maxPositionEmbeddings;
  const delim = opts.delimiter ?? ' ';
  const reqs: Request[] = [];
  let truncated = 0;
  const bos = opts.bosId != null ? [opts.bosId] : [];
  // The harness's _encode_pair: the context's trailing whitespace moves to the continuation,
  // the pair is encoded whole and the continuation is what follows the context's own tokens,
  // so a tokenizer that marks the start of a text (SentencePiece's "▁") or merges across the
  // boundary scores the tokens the model would see. An empty context is the prefix token.
  const encodePair = (ctxText: string, contText: string, item: number): { ctx: number[]; cont: number[] } => {
    const kept = ctxText.trimEnd();
    const cont = ctxText.slice(kept.length) + contText;
    if (kept === '') {
      if (bos.length) return { ctx: bos, cont: tokenizer.encode(cont) };
      if (opts.prefixId == null) throw new Error(`item ${item}: the context is empty and no prefix token (BOS/EOS) is known to predict the first choice token from`);
      return { ctx: [opts.prefixId], cont: tokenizer.encode(cont) };
    }
    const ctx = tokenizer.encode(kept);
    return { ctx: [...bos, ...ctx], cont: tokenizer.encode(kept + cont).slice(ctx.length) };
  };
  records.forEach((r, item) => {
    // Partial scoring (r.continuation): each choice is a context and the continuation is scored
    // after it, as the harness's multiple_inputs tasks (Winogrande) do.
    const partial = r.continuation !== undefined;
    r.choices.forEach((c, choice) => {
      const { ctx, cont } = partial ? encodePair(c, delim + r.continuation, item) : encodePair(r.context, delim + c, item);
      if (cont.length === 0) throw new Error(`item ${item}: ${partial ? 'the continuation' : `choice ${choice}`} encodes to no tokens after the context`);
      // Keep the continuation whole; cut the context from the left to fit (+1: the last
      // input position predicts the final token, so maxLen + 1 tokens fit in maxLen inputs).
      // A continuation that alone exceeds that is cut from the left too, as the harness cuts
      // (context + continuation)[-(max_length + 1):]; its first kept token is then context.
      if (cont.length > maxLen) {
        truncated++;
        reqs.push({ item, choice, ids: cont.slice(cont.length - maxLen - 1), contStart: 1 });
        return;
      }
      const room = maxLen + 1 - cont.length;
      const keep = ctx.length > room ? ctx.slice(ctx.length - room) : ctx;
      reqs.push({ item, choice, ids: [...keep, ...cont], contStart: keep.length });
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
      const logits = lmLogits(model, intTensor(ids, [batch.length, T]), { weight: opts.weight }).f32; // (B, T, V)
      batch.forEach((r, b) => {
        let sum = 0;
        // Log-softmax only at the continuation positions (a full (B, T, V) copy would double
        // the memory of the logits); float64 log-sum-exp.
        for (let p = r.contStart; p < r.ids.length; p++) sum += logProb(logits, (b * T + p - 1) * V, V, r.ids[p]);
        scores[order[s + b]] = sum;
      });
      opts.onBatch?.(Math.min(s + bs, order.length), order.length);
    }
  });
  const predictions = records.map(() => ({ acc: -1, accNorm: -1 }));
  const perItem: number[][] = records.map((r) => new Array<number>(r.choices.length));
  const best = records.map(() => ({ s: -Infinity, n: -Infinity }));
  reqs.forEach((r, i) => {
    perItem[r.item][r.choice] = scores[i];
    // The harness divides by len(choice): Python counts code points, not UTF-16 units. (For
    // partial scoring the choices are the contexts, as there.)
    const norm = scores[i] / [...records[r.item].choices[r.choice]].length;
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
  return { acc: n ? acc / n : NaN, accNorm: n ? accNorm / n : NaN, n, predictions, scores: perItem, truncatedChoices: truncated };
}

/** log softmax(row)[target] for the row of V logits at `off`. */
function logProb(logits: Float32Array, off: number, V: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > max) max = logits[off + v];
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[off + v] - max);
  return logits[off + target] - max - Math.log(sum);
}
