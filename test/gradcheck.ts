// Central finite-difference gradient checks for ops (test helper), with a tolerance derived
// from the error of a central difference rather than a fixed figure.
import assert from 'node:assert/strict';
import { Tensor, backward, noGrad, Rng } from '../src/tensor/index.js';
import { getBackend, setBackend } from '../src/tensor/registry.js';
import { U32, gamma } from './bounds.js';

export interface GradCheckOptions {
  /** Step h (default 1e-2; see below for the balance it strikes). */
  eps?: number;
  /** Longest reduction in the op's forward or backward (default: the largest input's size, a
   *  safe upper bound); sets the backend's gradient rounding bound γ_n. */
  n?: number;
  /** Float32 roundings on the reference forward's longest path (default 4: each reference
   *  kernel computes in float64 and rounds once; the composites below chain at most 4). */
  roundings?: number;
  maxPoints?: number;
  seed?: number;
}

// Magnitude of the backend's gradient entries relative to their largest one, for γ_n·κ·max|ĝ|
// (the same κ the model-block tests measure on their products: ≤ 3 there; 4 stated here).
const KAPPA = 4;

/**
 * Checks autograd gradients of L = Σ f(inputs)·R (R random, fixed) against central
 * differences. Only float32 inputs that require a gradient are checked, at up to `maxPoints`
 * random coordinates each.
 *
 * The differences evaluate f on the reference backend (float64 inside each kernel, one
 * rounding per kernel output), so their rounding is known whatever the CPU; the gradient under
 * test comes from the active backend. With D(h) = (L(x+h) − L(x−h)) / (x+h − x−h) (the steps as
 * rounded to float32) and ε a bound on |L̂ − L| at one point:
 *   D(h) − g = c·h² + O(h⁴) + r,   |r| ≤ ε/h            (truncation h²·|f'''|/6, rounding ε/h)
 *   D(2h) − D(h) = 3c·h² + O(h⁴) + (r₂ − r),  |r₂| ≤ ε/(2h)
 * so |D(h) − g| ≤ |D(2h) − D(h)|/3 + (4|r| + |r₂|)/3 + O(h⁴); the check allows
 * |D(2h) − D(h)| + 2(|r| + |r₂|) (3× the Richardson estimate of the truncation, the slack
 * covering O(h⁴)). ε = k·u·max|ŷ|·Σ|Rᵢ| over the outputs the
 * perturbation changes (the others are bit-identical in both evaluations and cancel), plus the
 * float64 sum's own γ. Balancing h²|f'''|/6 against ε/h gives h ≈ (3ε/|f'''|)^{1/3}: with
 * ε ≈ 1e-6 and |f'''| ≈ 1 that is ≈ 1.4e-2, hence the default 1e-2; ops whose |f'''| is large
 * on the test inputs (log, rsqrt near 0.5, norms) pass a smaller h. The backend's own gradient
 * rounding adds γ_n·κ·max|ĝ|.
 */
export function gradCheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): void {
  const h = opts.eps ?? 1e-2, k = opts.roundings ?? 4;
  const n = opts.n ?? Math.max(...inputs.map((x) => x.size));
  const maxPoints = opts.maxPoints ?? 24;
  const rng = new Rng(opts.seed ?? 7);
  for (const x of inputs) x.grad = null;
  const y0 = f(...inputs);
  const R = new Float32Array(y0.size);
  for (let i = 0; i < R.length; i++) R[i] = rng.normal();
  backward(y0, new Tensor(R, y0.shape));
  const onRef = (): Float32Array => {
    const be = getBackend();
    setBackend('ref');
    try {
      return noGrad(() => f(...inputs)).f32.slice();
    } finally {
      setBackend(be);
    }
  };
  // One central difference at step s: the quotient and its rounding bound ε/s.
  const central = (x: Tensor, i: number, s: number): { d: number; round: number } => {
    const old = x.f32[i];
    x.f32[i] = old + s;
    const xp = x.f32[i], yp = onRef();
    x.f32[i] = old - s;
    const xm = x.f32[i], ym = onRef();
    x.f32[i] = old;
    let lp = 0, lm = 0, absL = 0, changedR = 0, ymax = 0;
    for (let j = 0; j < R.length; j++) {
      lp += yp[j] * R[j];
      lm += ym[j] * R[j];
      absL += Math.abs(yp[j] * R[j]) + Math.abs(ym[j] * R[j]);
      if (!Object.is(yp[j], ym[j])) changedR += Math.abs(R[j]);
      ymax = Math.max(ymax, Math.abs(yp[j]), Math.abs(ym[j]));
    }
    const eps = 2 * k * U32 * ymax * changedR + 2 ** -53 * R.length * absL;
    return { d: (lp - lm) / (xp - xm), round: eps / (xp - xm) };
  };
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad || x.dtype !== 'f32') return;
    assert.ok(x.grad, `${name}: input ${xi} got no gradient`);
    const g = x.grad!.f32;
    let gmax = 0;
    for (const v of g) gmax = Math.max(gmax, Math.abs(v));
    const pts = Math.min(x.size, maxPoints);
    for (let p = 0; p < pts; p++) {
      const i = x.size <= maxPoints ? p : rng.int(x.size);
      const d1 = central(x, i, h), d2 = central(x, i, 2 * h);
      const tol = Math.abs(d2.d - d1.d) + 2 * (d1.round + d2.round) + gamma(n) * KAPPA * gmax;
      if (!(Math.abs(d1.d - g[i]) <= tol)) {
        assert.fail(`${name}: input ${xi} [${x.shape}] index ${i}: autograd ${g[i]}, finite difference ${d1.d} ` +
          `(bound ${tol.toExponential(2)}: Richardson ${Math.abs(d2.d - d1.d).toExponential(2)}, rounding ${(d1.round + d2.round).toExponential(2)})`);
      }
    }
  });
}

export function param(shape: number[], rng: Rng, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * scale;
  return new Tensor(d, shape, true);
}
