// Perplexity of a causal LM over one token stream (a text file, or a corpus split with an EOS
// after each document), in non-overlapping windows:
//   window w holds stream[w·T … w·T + T] (T + 1 tokens): inputs are its first T, targets its
//   last T. Adjacent windows share one boundary token, so every token after the first is
//   predicted exactly once, from the tokens before it in its window (0 … T-1 of them).
//   The remainder that fills no whole window is scored as one shorter final window rather
//   than dropped (packSequences drops it; on a small file that can be most of the text).
// The first token of the stream is context only (nothing is prepended). The result is
// exp(mean NLL) over all predicted tokens, identical to running perplexity() on the full
// windows and on the tail and combining the two by token count.
import type { WeightFn } from '../nn/params.js';
import type { Model } from '../models/model.js';
import { perplexity, type PerplexityResult } from './perplexity.js';

export interface StreamWindows {
  /** Whole windows, row-major (count, T + 1). */
  full: { data: Int32Array; count: number; width: number };
  /** The shorter final window (width < T + 1), or null when the stream divides evenly. */
  tail: { data: Int32Array; count: 1; width: number } | null;
  /** Tokens predicted: stream length - 1. */
  predicted: number;
}

/** Cuts a stream of ≥ 2 tokens into windows of T inputs (see the top of the file). */
export function streamWindows(stream: ArrayLike<number>, T: number): StreamWindows {
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`window length must be a positive integer, got ${T}`);
  const N = stream.length;
  if (N < 2) throw new RangeError(`${N} token(s): perplexity needs at least 2 tokens (one to predict from, one to predict)`);
  const ids = Int32Array.from(stream);
  const count = Math.floor((N - 1) / T);
  const width = T + 1;
  const data = new Int32Array(count * width);
  for (let w = 0; w < count; w++) data.set(ids.subarray(w * T, w * T + width), w * width);
  const rest = N - 1 - count * T; // tokens still to predict after the whole windows
  const tail = rest > 0 ? { data: ids.slice(count * T), count: 1 as const, width: rest + 1 } : null;
  return { full: { data, count, width }, tail, predicted: N - 1 };
}

export interface StreamPerplexityResult extends PerplexityResult {
  /** Windows scored (the tail included). */
  windows: number;
  seq: number;
}

export function streamPerplexity(
  model: Model, stream: ArrayLike<number>, seq: number,
  opts: { batchSize?: number; weight?: WeightFn; onBatch?: (done: number, total: number) => void } = {},
): StreamPerplexityResult {
  const w = streamWindows(stream, seq);
  const total = w.full.count + (w.tail ? 1 : 0);
  let nllSum = 0, tokens = 0;
  if (w.full.count > 0) {
    const r = perplexity(model, w.full, { batchSize: opts.batchSize, weight: opts.weight, onBatch: (d) => opts.onBatch?.(d, total) });
    nllSum += r.nll * r.tokens;
    tokens += r.tokens;
  }
  if (w.tail) {
    const r = perplexity(model, w.tail, { batchSize: 1, weight: opts.weight });
    nllSum += r.nll * r.tokens;
    tokens += r.tokens;
    opts.onBatch?.(total, total);
  }
  const nll = nllSum / tokens;
  return { nll, ppl: Math.exp(nll), tokens, windows: total, seq };
}
