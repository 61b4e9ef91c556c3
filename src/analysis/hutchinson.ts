// Hutchinson's estimator of the trace of a Hessian block (Hutchinson 1989; per layer as in
// HAWQ-V2, Dong et al. 2020 and PyHessian, Yao et al. 2020), with Hessian-vector products from
// central finite differences of gradients — no second-order autograd needed:
//
//   tr(H_mm) = E_v[v_mᵀ H_mm v_m],   v Rademacher (±1 with equal probability, independent)
//   (H v)_m ≈ (∇_m L(w + δ) − ∇_m L(w − δ)) / 2,  δ_m = ε_m v_m, so
//   v_mᵀ (H D v)_m / ε_m with D = diag(ε) is one sample for block m.
//
// All blocks are perturbed at once (one pair of gradient evaluations per vector serves every
// block): the cross terms v_mᵀ H_mm' ε_m' v_m' / ε_m (m' ≠ m) have mean zero because v_m and
// v_m' are independent, so each block's mean stays unbiased; they add variance
// Σ_{i∈m, j∉m} H_ij² ε_j²/ε_m² to the 2 Σ_{i≠j∈m} H_ij² of the block alone.
//
// Step size ε_m = 2⁻⁸ · rms(w_m), i.e. about u^(1/3) of the block's scale for float32
// (u = 2⁻²⁴). The central difference has truncation error ε²/6 · ∂⁴_t L(w + t v) (O(ε²)) and,
// with gradients carrying relative rounding error ~u, a rounding error ~u·Σ|g_i|/ε (O(u/ε));
// ε ∝ u^(1/3) balances the two (both O(u^(2/3)) relative to the curvature, under the
// assumption that L varies on the scale of the weights). The caller computes the gradients in
// float32 (never bf16, whose u = 2⁻⁸ would leave no accurate digit).
//
// The dot products are float64 loops over the block (v_i = ±1): the estimator runs a few times
// on a model, not per training step.
import { hash32 } from '../tensor/rng.js';

/** One block of the parameters: its name, element count and the scale ε is relative to. */
export interface HutchBlock {
  name: string;
  size: number;
  /** rms of the block's values (ε_m = EPS_REL · scale; 0 or non-finite falls back to 1). */
  scale: number;
}

/** ε relative to the block's rms: 2⁻⁸ ≈ u^(1/3) for float32 (see the top). */
export const EPS_REL = 2 ** -8;

export interface HutchResult {
  /** Estimated tr(H_mm): the mean of the samples. */
  trace: number;
  /** Standard error of that mean (sample standard deviation / √K; null for K = 1). */
  se: number | null;
  /** The K samples v_mᵀ(H v)_m, in vector order. */
  samples: number[];
  eps: number;
}

/** The Rademacher vector of block `index` for probe vector `k` under `seed` (±1 as float32). */
export function rademacher(seed: number, k: number, index: number, size: number): Float32Array {
  const s = hash32(hash32(seed, k), index);
  const v = new Float32Array(size);
  for (let i = 0; i < size; i += 32) {
    const bits = hash32(s, i >>> 5);
    for (let j = 0; j < 32 && i + j < size; j++) v[i + j] = (bits >>> j) & 1 ? 1 : -1;
  }
  return v;
}

/**
 * Hutchinson trace estimates per block. `gradAt(delta)` returns the gradient of the loss, per
 * block name, at the parameters shifted by `delta` (a missing block: zero gradient). 2K calls.
 */
export function hutchinson(
  blocks: readonly HutchBlock[], gradAt: (delta: ReadonlyMap<string, Float32Array>) => ReadonlyMap<string, Float32Array>,
  o: { vectors: number; seed: number; epsRel?: number },
): Map<string, HutchResult> {
  if (!Number.isInteger(o.vectors) || o.vectors < 1) throw new RangeError(`hutchinson: vectors must be a positive integer, got ${o.vectors}`);
  const rel = o.epsRel ?? EPS_REL;
  const eps = blocks.map((b) => rel * (b.scale > 0 && Number.isFinite(b.scale) ? b.scale : 1));
  const samples = blocks.map(() => [] as number[]);
  for (let k = 0; k < o.vectors; k++) {
    const vs = blocks.map((b, m) => rademacher(o.seed, k, m, b.size));
    const shifted = (sign: 1 | -1): ReadonlyMap<string, Float32Array> => new Map(blocks.map((b, m) => {
      const d = new Float32Array(b.size);
      const e = sign * eps[m];
      for (let i = 0; i < b.size; i++) d[i] = e * vs[m][i];
      return [b.name, d];
    }));
    const gp = gradAt(shifted(1)), gm = gradAt(shifted(-1));
    blocks.forEach((b, m) => {
      const a = gp.get(b.name), c = gm.get(b.name), v = vs[m];
      let dot = 0;
      if (a && c) for (let i = 0; i < b.size; i++) dot += v[i] * (a[i] - c[i]);
      else if (a) for (let i = 0; i < b.size; i++) dot += v[i] * a[i];
      else if (c) for (let i = 0; i < b.size; i++) dot -= v[i] * c[i];
      samples[m].push(dot / (2 * eps[m]));
    });
  }
  return new Map(blocks.map((b, m) => {
    const xs = samples[m], K = xs.length;
    const mean = xs.reduce((s, x) => s + x, 0) / K;
    const se = K > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (K - 1) / K) : null;
    return [b.name, { trace: mean, se, samples: xs, eps: eps[m] }];
  }));
}
