// Running a GGUF file in llama.cpp (node-llama-cpp's prebuilt CPU build) for the tests, and the
// agreement measures between its output and kdqat's logits.
import assert from 'node:assert/strict';
import type { ControlledEvaluateInputItem, Llama, Token } from 'node-llama-cpp';
import { argmax, logSoftmax } from './gguf-fixtures.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { gamma } from '../bounds.js';

export interface CppRun {
  /** log-probabilities after each prompt token and each generated token but the last: (T, V). */
  logp: Float64Array[];
  /** Greedy continuation (argmax of llama.cpp's probabilities). */
  tokens: number[];
}

/** llama.cpp: log p after every position of prompt + greedy continuation of `gen` tokens.
 *  F32 KV cache, no flash attention, one thread: node-llama-cpp's default (maxThreads 4 here)
 *  oversubscribes a 2-core machine, and ggml's spinning workers then take ~1 s per token
 *  instead of ~1 ms. */
export async function runLlamaCpp(llama: Llama, file: string, prompt: readonly number[], gen: number, vocab: number): Promise<CppRun> {
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({
    threads: 1, contextSize: 256, batchSize: 256, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  try {
    const seq = ctx.getSequence();
    const logp: Float64Array[] = [];
    const toLogp = (m: Map<number, number> | undefined): Float64Array => {
      assert.ok(m && m.size === vocab, `llama.cpp returned ${m?.size} probabilities, expected ${vocab}`);
      const out = new Float64Array(vocab);
      for (const [t, p] of m) out[t] = Math.log(p);
      return out;
    };
    const item = (t: number): ControlledEvaluateInputItem => [t as Token, { generateNext: { probabilities: true } }];
    let res = await seq.controlledEvaluate(prompt.map(item));
    for (let i = 0; i < prompt.length; i++) logp.push(toLogp(res[i]?.next.probabilities));
    const tokens: number[] = [];
    for (let g = 0; g < gen; g++) {
      const next = argmax(logp[logp.length - 1]);
      tokens.push(next);
      if (g === gen - 1) break;
      res = await seq.controlledEvaluate([item(next)]);
      logp.push(toLogp(res[0]?.next.probabilities));
    }
    return { logp, tokens };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

export interface Agreement {
  /** max over positions of max_i |log p_ours − log p_cpp| / (max z − min z) of our logits z. */
  worst: number;
  /** the position of `worst`. */
  worstAt: number;
  /** mean over positions of the same per-position ratio. */
  mean: number;
  /** fraction of positions where our argmax equals llama.cpp's (same inputs at every position). */
  argmax: number;
}

/** Compares our logits (one row per position, same token sequence as `cpp`) with llama.cpp's.
 *  log p = logit − logsumexp, so this compares logits up to the per-position constant. */
export function agreement(ours: ArrayLike<number>[], cpp: CppRun): Agreement {
  assert.equal(ours.length, cpp.logp.length, 'positions');
  let worst = 0, worstAt = -1, sum = 0, same = 0;
  for (let t = 0; t < ours.length; t++) {
    const z = ours[t];
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < z.length; i++) { lo = Math.min(lo, z[i]); hi = Math.max(hi, z[i]); }
    const mine = logSoftmax(z);
    let d = 0;
    for (let i = 0; i < z.length; i++) d = Math.max(d, Math.abs(mine[i] - cpp.logp[t][i]));
    const r = d / (hi - lo);
    if (r > worst) worstAt = t;
    worst = Math.max(worst, r); // NaN stays NaN (fails every bar)
    sum += r;
    if (argmax(z) === argmax(cpp.logp[t])) same++;
  }
  return { worst, worstAt, mean: sum / ours.length, argmax: same / ours.length };
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The float32 allowance for a whole LLaMA forward, in agreement()'s measure (× logit range).
 *  Bound: each reduction of length K in float32 (a matmul row, an attention score or weighted
 *  sum, a norm's sum of squares) is within γ_K = K·u/(1 − K·u), u = 2⁻²⁴, of its exact value
 *  relative to Σ|terms|; the longest chain from the embedding to a logit passes R = 7L + 2 of
 *  them (q/k/v, scores, context, o_proj, gate/up, down per layer; final norm and head). Taking
 *  the logit range as the scale of every chain's Σ|terms| and no gain along it (the norms
 *  rescale each layer's input to unit RMS), both sides' rounding sums to 2·R·γ_Kmax of the
 *  range, Kmax the longest reduction (hidden, intermediate or context length); log-softmax
 *  doubles it (the logsumexp moves with the largest logit error). `inputRounding` adds the
 *  relative rounding of every matmul input (F16 weights: llama.cpp converts the activations
 *  to fp16, 2⁻¹¹) to each reduction's γ_K. */
export function f32Tolerance(cfg: LlamaConfig, opts: { context?: number; inputRounding?: number } = {}): number {
  // Qwen3's per-head q/k norms add one reduction (a norm's sum of squares) to each layer's chain.
  const K = Math.max(cfg.hiddenSize, cfg.intermediateSize, opts.context ?? 256), R = (cfg.qkNorm ? 8 : 7) * cfg.numHiddenLayers + 2;
  return 2 * 2 * R * (gamma(K) + (opts.inputRounding ?? 0));
}

/** Positions where our argmax differs from llama.cpp's, and how many of them are real: our
 *  top-two margin (in units of our logit range) exceeds 2·tol, so no pair of logit errors
 *  within tol could swap them. */
export function argmaxFlipsWithin(ours: ArrayLike<number>[], cpp: CppRun, tol: number): { flips: number; outside: number } {
  let flips = 0, outside = 0;
  ours.forEach((z, t) => {
    const a = argmax(z), b = argmax(cpp.logp[t]);
    if (a === b) return;
    flips++;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < z.length; i++) { lo = Math.min(lo, z[i]); hi = Math.max(hi, z[i]); }
    if ((z[a] - z[b]) / (hi - lo) > 2 * tol) outside++;
  });
  return { flips, outside };
}
