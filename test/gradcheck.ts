// Central finite-difference gradient checks for ops (test helper).
import assert from 'node:assert/strict';
import { Tensor, backward, noGrad, Rng } from '../src/tensor/index.js';

/**
 * Checks autograd gradients of L = Σ f(inputs)·R (R random, fixed) against central
 * differences (L computed in float64 from float32 outputs). Only float32 inputs that
 * require a gradient are checked, at up to `maxPoints` random coordinates each.
 */
export function gradCheck(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; rtol?: number; atol?: number; maxPoints?: number; seed?: number } = {},
): void {
  const eps = opts.eps ?? 1e-2, rtol = opts.rtol ?? 2e-2, atol = opts.atol ?? 2e-3;
  const rng = new Rng(opts.seed ?? 7);
  for (const x of inputs) x.grad = null;
  const y0 = f(...inputs);
  const R = new Float32Array(y0.size);
  for (let i = 0; i < R.length; i++) R[i] = rng.normal();
  const loss = (y: Tensor): number => {
    let s = 0;
    for (let i = 0; i < y.size; i++) s += y.data[i] * R[i];
    return s;
  };
  backward(y0, new Tensor(R, y0.shape));
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad || x.dtype !== 'f32') return;
    assert.ok(x.grad, `${name}: input ${xi} got no gradient`);
    const g = x.grad!.f32;
    const pts = Math.min(x.size, opts.maxPoints ?? 24);
    for (let p = 0; p < pts; p++) {
      const i = x.size <= (opts.maxPoints ?? 24) ? p : rng.int(x.size);
      const old = x.f32[i];
      x.f32[i] = old + eps;
      const lp = noGrad(() => loss(f(...inputs)));
      x.f32[i] = old - eps;
      const lm = noGrad(() => loss(f(...inputs)));
      x.f32[i] = old;
      const fd = (lp - lm) / (2 * eps);
      const tol = atol + rtol * Math.max(Math.abs(fd), Math.abs(g[i]));
      if (!(Math.abs(fd - g[i]) <= tol)) {
        assert.fail(`${name}: input ${xi} [${x.shape}] index ${i}: autograd ${g[i]}, finite difference ${fd}`);
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
