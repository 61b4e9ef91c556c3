// Error bounds for comparing native kernels with the TypeScript reference. Every tolerance in
// the kernel tests is derived here (or beside its assertion) from a rounding-error bound, not
// from what one machine happened to produce, so it holds for every SIMD path and summation order.
//
// Notation (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §2.2, §3.1):
// u is the unit roundoff, γ_n = n·u / (1 − n·u). A sum of terms evaluated in floating point in
// any order (any summation tree, with or without FMA) whose longest path from a term to the
// result has h roundings differs from the exact sum by at most γ_h·Σ|terms| (Higham Lemma 3.1
// applied per term, as in the proof of (3.5)). A value computed in float64 and rounded once to
// float32 is within u32·|x| plus the float64 error of the exact value.
import assert from 'node:assert/strict';
import { gemmKernels } from '../src/backend/ref/gemm.js';

export const U32 = 2 ** -24;  // float32 unit roundoff
export const U64 = 2 ** -53;  // float64 unit roundoff

/** γ_n = n·u/(1 − n·u) (Higham (3.8)); throws when n·u ≥ 1 (no bound). */
export function gamma(n: number, u = U32): number {
  assert.ok(n * u < 1, `γ_${n} undefined for u = ${u}`);
  return (n * u) / (1 - n * u);
}

/** Asserts |got_i − want_i| ≤ bound_i for every i (NaN only against NaN, equal infinities
 *  pass), naming the first offender with its error in units of the bound. */
export function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>,
  bound: ArrayLike<number> | number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const x = got[i], y = want[i], b = typeof bound === 'number' ? bound : bound[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= b)) {
      assert.fail(`${what}: index ${i}: got ${x}, expected ${y}, |Δ| = ${Math.abs(x - y)} > bound ${b}`);
    }
  }
}

/** max_i |got_i − want_i| / bound_i: > 1 means the bound catches the difference (used to check
 *  that a bound has teeth against a deliberately wrong result). */
export function boundRatio(got: ArrayLike<number>, want: ArrayLike<number>,
  bound: ArrayLike<number>): number {
  let r = 0;
  for (let i = 0; i < got.length; i++) r = Math.max(r, Math.abs(got[i] - want[i]) / bound[i]);
  return r;
}

/** Arguments of Kernels.matmul after the three arrays. */
export interface GemmShape {
  batch: number; m: number; k: number; n: number; ta: boolean; tb: boolean;
  strideA: number; strideB: number; beta: number;
}

/** Per element of C' = op(A)·op(B) + β·C, the bound on |native − ref|:
 *
 *    (γ_{2k} + 2·u32 + γ^{f64}_{k+2}) · (Σ_p |op(A)_ip|·|op(B)_pj| + |β|·|C_ij|)
 *
 *  native (any path) sums the k products in float32: within a K slice one multiply-add chain
 *  (one rounding per step, fused or not: the first product is rounded once, the first add to
 *  zero is exact), then C' = β·C + slice (one rounding) and one add per further slice. The
 *  longest path has k + S roundings with S ≤ k slices, so γ_{2k} holds for any blocking (KC
 *  may be retuned). ref sums in float64 (γ^{f64}_{k+2}, with the β·C product and add) and
 *  rounds once to float32 (u32·|ref| ≤ u32·Σ|·|). The Σ|·| term is itself computed by the
 *  reference matmul on |A|, |B|, |C| (the same strides and transposes) and rounded to float32,
 *  hence the extra u32. Inputs are assumed free of overflow and of products in the float32
 *  subnormal range (random normal data): then the bound is exact, not statistical. */
export function gemmBound(cs: GemmShape, a: Float32Array, b: Float32Array, c: Float32Array): Float64Array {
  const f = gamma(2 * cs.k) + 2 * U32 + gamma(cs.k + 2, U64);
  return gemmAbsSum(cs, a, b, c).map((t) => f * t);
}

/** Σ_p |op(A)_ip|·|op(B)_pj| + |β|·|C_ij| per element of C, rounded up to cover its own float32
 *  rounding: the condition of the product, the scale every GEMM error bound multiplies. */
export function gemmAbsSum(cs: GemmShape, a: Float32Array, b: Float32Array, c: Float32Array): Float64Array {
  const abs = (x: Float32Array): Float32Array => x.map(Math.abs);
  const t = cs.beta === 0 ? new Float32Array(cs.batch * cs.m * cs.n) : abs(c);
  gemmKernels.matmul!(abs(a), abs(b), t, cs.batch, cs.m, cs.k, cs.n, cs.ta, cs.tb, cs.strideA,
    cs.strideB, Math.abs(cs.beta));
  return Float64Array.from(t.subarray(0, cs.batch * cs.m * cs.n), (v) => v * (1 + 2 * U32));
}

/** Max relative error of the vector e^x the fused kernels use (native/simd.h, Cephes expf
 *  scheme; test/backend/nn-native.test.ts asserts < 1.5e-7 on a dense grid of [−87.3, 88.3]);
 *  the portable path calls libm expf, within 1 ulp ≤ 2·u32 = 1.19e-7. */
export const EXP_REL = 1.5e-7;

/** Relative error bound of a float32 sum of n terms as the row kernels form it (native nn_rows.inc
 *  each4: 4 independent chains of ≤ n/(4W) adds, then 3 adds and a W-lane horizontal sum, W ≤ 16):
 *  every path has ≤ n + 5 roundings, so |Δ| ≤ γ_{n+5}·Σ|terms| (fused multiply-adds included). */
export function sumErr(n: number): number {
  return gamma(n + 5);
}

/** Slack for the second-order terms the first-order bounds below drop (products of two
 *  relative errors, each < 1e-4 in every test): 1 %. */
export const SECOND_ORDER = 1.01;
