// Tolerances for whole computations (model blocks against PyTorch fixtures, two orders of the
// same forward pass, finite differences), built on the rounding primitives of test/bounds.ts
// (u, γ_n; Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §2–3). Every
// tolerance here is a worst-case bound, so it holds for any summation order and with or
// without FMA (the native addon's AVX-512, AVX2 and portable paths sum in different orders):
// a float32 dot product of length n satisfies |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| ≤ γ_n · Σ|aᵢ||bᵢ| (eq. 3.5).
import { kernelOf, registerKernels } from '../src/tensor/registry.js';
import { U32, gamma } from './bounds.js';
import type { Kernels } from '../src/tensor/kernels.js';

/** Bound on |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| for a length-n float32 dot product with Σ|aᵢ||bᵢ| = absDot. */
export function dotBound(absDot: number, n: number): number {
  return gamma(n) * absDot;
}

/** Σ|aᵢ||bᵢ| (float64): the magnitude a dot product's rounding is relative to. */
export function absDot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]) * Math.abs(b[i]);
  return s;
}

/**
 * First-order forward-error bound, relative to a tensor's scale, for a float32 computation
 * `stages` dependent steps deep, each summing at most n terms, against a reference computed
 * in float64 and rounded once to float32 (the fixtures): each stage adds at most
 * κ·γ_n (its Σ|a||b| is at most κ times the scale), and the reference's own rounding adds u.
 */
export function chainBound(stages: number, n: number, kappa: number): number {
  return stages * kappa * gamma(n) + U32;
}

/** Largest |x| (1 when empty or all zero, the floor tests use for "relative to the scale"). */
export function scaleOf(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/**
 * Runs fn while recording, for every matmul it makes (on either backend), the ratio
 * max(|op(A)|·|op(B)| + |bias|) / max(1, max|C|): the κ of `chainBound` for the products, computed
 * in float64 by the reference kernel on absolute values, so it does not depend on the CPU.
 * Returns fn's result and the largest ratio seen.
 */
export function withMatmulMagnitudes<R>(fn: () => R): { result: R; kappa: number } {
  const ref = kernelOf('ref', 'matmul')!;
  const native = kernelOf('native', 'matmul');
  let kappa = 0;
  const wrap = (inner: Kernels['matmul']): Kernels['matmul'] => (a, b, c, batch, m, k, n, tA, tB, sA, sB, beta, bias) => {
    inner(a, b, c, batch, m, k, n, tA, tB, sA, sB, beta, bias);
    // Σ|a||b| (+ |bias|: a Linear's bias is a term of the same sum)
    const mags = new Float32Array(batch * m * n);
    ref(Float32Array.from(a, Math.abs), Float32Array.from(b, Math.abs), mags, batch, m, k, n, tA, tB, sA, sB, 0,
      bias ? Float32Array.from(bias, Math.abs) : null);
    let maxC = 1, maxMag = 0;
    for (let i = 0; i < mags.length; i++) {
      maxC = Math.max(maxC, Math.abs(c[i]));
      maxMag = Math.max(maxMag, mags[i]);
    }
    kappa = Math.max(kappa, maxMag / maxC);
  };
  registerKernels('ref', { matmul: wrap(ref) });
  if (native) registerKernels('native', { matmul: wrap(native) });
  try {
    return { result: fn(), kappa };
  } finally {
    registerKernels('ref', { matmul: ref });
    if (native) registerKernels('native', { matmul: native });
  }
}

/**
 * Two float32 evaluations of the same math in different orders (other shapes or batch splits,
 * a KV cache against the full forward: the native kernels block them differently) are each
 * within chainBound of the exact value, so they differ by at most twice that.
 */
export function reorderBound(stages: number, n: number, kappa: number): number {
  return 2 * chainBound(stages, n, kappa);
}

/** Forward depth of an L-layer model: 17 float32 stages per layer at most (the per-layer count
 *  of test/models/blocks.test.ts), plus 4 for the final norm, the head and a log-softmax. */
export function forwardDepth(layers: number): number {
  return 17 * layers + 4;
}

/** κ for products whose magnitudes are not measured in the test: Σ|a||b| ≤ 4·max(1, max|result|)
 *  (withMatmulMagnitudes measures ≤ 3 on the PyTorch-fixture blocks). */
export const KAPPA_MATMUL = 4;

