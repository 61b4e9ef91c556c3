// Perplexity as llama.cpp's llama-perplexity computes it (tools/perplexity/perplexity.cpp,
// perplexity() without --ppl-stride), so a kdqat figure and a llama.cpp figure on the same
// model and text are comparable:
//   - the text is tokenized whole with the tokenizer's special tokens (a BOS in front when the
//     tokenizer adds one; a tokenizer that appends EOS is refused, as llama.cpp asserts);
//   - it needs at least 2·n_ctx tokens; it is cut into ⌊N / n_ctx⌋ non-overlapping chunks of
//     n_ctx tokens (the remainder is not scored), and the first token of every chunk is
//     replaced by BOS when the tokenizer adds one;
//   - in each chunk only the second half is scored: the predictions at positions
//     first = ⌊n_ctx/2⌋ … n_ctx − 2 of the tokens after them (n_ctx − 1 − first per chunk);
//   - the result is exp(mean NLL) over all scored tokens.
// kdqat's own convention (stream-perplexity.ts) scores every token after the first once.
import type { WeightFn } from '../nn/params.js';
import type { Model } from '../models/model.js';
import { perplexity, type PerplexityResult } from './perplexity.js';

export interface LlamaCppPerplexityResult extends PerplexityResult {
  /** Chunks scored. */
  windows: number;
  seq: number;
}

/** `tokens`: the whole text as llama.cpp tokenizes it (BOS already in front when `bos` is not
 *  null); `bos`: the id written over each chunk's first token, or null when the tokenizer
 *  adds no BOS. */
export function llamaCppPerplexity(
  model: Model, tokens: ArrayLike<number>, nCtx: number, bos: number | null,
  opts: { batchSize?: number; weight?: WeightFn; onBatch?: (done: number, total: number) => void } = {},
): LlamaCppPerplexityResult {
  if (!Number.isInteger(nCtx) || nCtx < 4) throw new RangeError(`the llama.cpp convention needs a context of at least 4 tokens, got ${nCtx}`);
  if (tokens.length < 2 * nCtx) {
    throw new RangeError(`the text tokenizes to only ${tokens.length} tokens; llama.cpp's perplexity needs at least 2·seq = ${2 * nCtx} ` +
      `(give more text or a smaller --seq-len)`);
  }
  const w = llamaCppWindows(tokens, nCtx, bos);
  const r = perplexity(model, w, {
    batchSize: opts.batchSize, weight: opts.weight, scoreFrom: w.scoreFrom, onBatch: (d) => opts.onBatch?.(d, w.count),
  });
  return { ...r, windows: w.count, seq: nCtx };
}

/** The chunks as perplexity() windows: (count, nCtx) row-major, inputs [0, nCtx − 1) and
 *  targets [1, nCtx) of each (the last position's prediction is never scored, so dropping it
 *  from the inputs changes nothing: attention is causal), BOS over each first token, and the
 *  first scored input position. */
export function llamaCppWindows(tokens: ArrayLike<number>, nCtx: number, bos: number | null): { data: Int32Array; count: number; width: number; scoreFrom: number } {
  const count = Math.floor(tokens.length / nCtx);
  const data = new Int32Array(count * nCtx);
  for (let c = 0; c < count; c++) {
    for (let j = 0; j < nCtx; j++) data[c * nCtx + j] = tokens[c * nCtx + j];
    if (bos !== null) data[c * nCtx] = bos;
  }
  return { data, count, width: nCtx, scoreFrom: Math.floor(nCtx / 2) };
}
