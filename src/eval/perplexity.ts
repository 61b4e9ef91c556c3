// Perplexity of a causal LM over packed windows (N, T+1): exp(mean next-token NLL).
import { intTensor, noGrad, crossEntropy, reshape } from '../tensor/index.js';
import type { WeightFn } from '../nn/params.js';
import { archOf, lmLogits, type Model } from '../models/model.js';

const IGNORE = -100;

export interface PerplexityResult {
  nll: number; // mean negative log-likelihood per token (nats)
  ppl: number;
  tokens: number;
}

/** windows: row-major (count, width) with width = T + 1 (inputs [0, T), targets [1, T]).
 *  scoreFrom: only the predictions at input positions ≥ scoreFrom count (llama.cpp scores the
 *  second half of each window); default 0, all of them. */
export function perplexity(
  model: Model, windows: { data: Int32Array; count: number; width: number },
  opts: { batchSize?: number; weight?: WeightFn; scoreFrom?: number; onBatch?: (done: number) => void } = {},
): PerplexityResult {
  if (archOf(model).kind !== 'decoder') throw new Error('perplexity needs a causal LM (LLaMA-family model)');
  const T = windows.width - 1, bs = opts.batchSize ?? 8, from = opts.scoreFrom ?? 0;
  if (!Number.isInteger(from) || from < 0 || from >= T) throw new RangeError(`scoreFrom ${from} is outside the window's ${T} positions`);
  let total = 0, tokens = 0;
  noGrad(() => {
    for (let start = 0; start < windows.count; start += bs) {
      const B = Math.min(bs, windows.count - start);
      const ids = new Int32Array(B * T), tgt = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        const row = windows.data.subarray((start + b) * windows.width, (start + b + 1) * windows.width);
        ids.set(row.subarray(0, T), b * T);
        tgt.set(row.subarray(1), b * T);
        tgt.fill(IGNORE, b * T, b * T + from);
      }
      const logits = lmLogits(model, intTensor(ids, [B, T]), { weight: opts.weight });
      const loss = crossEntropy(reshape(logits, [B * T, model.config.vocabSize]), intTensor(tgt, [B * T]), IGNORE);
      total += loss.item() * B * (T - from);
      tokens += B * (T - from);
      opts.onBatch?.(start + B);
    }
  });
  const nll = tokens ? total / tokens : NaN;
  return { nll, ppl: Math.exp(nll), tokens };
}
