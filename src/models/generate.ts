// Autoregressive sampling from a causal LM. Each step re-runs the whole forward pass over the
// context (no KV cache): simple and exactly the model that is trained and evaluated, and cheap
// for the small models kdqat trains on a CPU. Contexts longer than max_position_embeddings keep
// their last max_position_embeddings tokens (a sliding window), as there is no position beyond.
import { intTensor, noGrad } from '../tensor/index.js';
import { Rng } from '../tensor/rng.js';
import type { WeightFn } from '../nn/params.js';
import { lmLogits, type Model } from './model.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default) = greedy: the most likely token (the lowest id on ties). */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 or undefined = all). */
  topK?: number;
  seed?: number;
  /** Generation stops after producing any of these (the token is included in the output). */
  eosIds?: number[];
  weight?: WeightFn;
  /** Called with each new token as it is produced. */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  /** The new tokens only (the prompt excluded), EOS included when it stopped there. */
  tokens: number[];
  stoppedAtEos: boolean;
}

export function generate(model: Model, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  if (model.arch !== 'llama') throw new Error('generation needs a causal LM (LLaMA-family model)');
  if (prompt.length === 0) throw new RangeError('generate: the prompt must have at least one token');
  const { maxNewTokens = 64, temperature = 0, topK = 0, seed = 0, eosIds = [] } = opts;
  if (!(temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
  const V = model.config.vocabSize, maxLen = model.config.maxPositionEmbeddings;
  const rng = new Rng(seed);
  const ctx = [...prompt];
  const tokens: number[] = [];
  let stoppedAtEos = false;
  noGrad(() => {
    while (tokens.length < maxNewTokens) {
      const window = ctx.length > maxLen ? ctx.slice(ctx.length - maxLen) : ctx;
      const T = window.length;
      const logits = lmLogits(model, intTensor(window, [1, T]), { weight: opts.weight }).f32; // (1, T, V)
      const last = logits.subarray((T - 1) * V, T * V);
      const next = temperature === 0 ? argmax(last) : sample(last, temperature, topK, rng);
      tokens.push(next);
      ctx.push(next);
      opts.onToken?.(next);
      if (eosIds.includes(next)) {
        stoppedAtEos = true;
        break;
      }
    }
  });
  return { tokens, stoppedAtEos };
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Softmax(logits / temperature) restricted to the top k, sampled by inverse CDF. */
function sample(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let ids = Array.from(logits.keys());
  if (topK > 0 && topK < ids.length) {
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    ids = ids.slice(0, topK);
  }
  let max = -Infinity;
  for (const i of ids) max = Math.max(max, logits[i]);
  const w = ids.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * total;
  for (let j = 0; j < ids.length; j++) {
    u -= w[j];
    if (u < 0) return ids[j];
  }
  return ids[ids.length - 1];
}
