// 'optim' kernels: the ref against a scalar float64 re-implementation of PyTorch's AdamW/SGD
// over several steps, the native kernels against the ref and (bit for bit) against a float32
// emulation of their operation order, sumSquares and error paths
// (scripts/test.mjs reruns this file under every KDQAT_ISA level the CPU supports).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { optimKernels } from '../../src/backend/ref/optim.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { expectClose, randomF32 } from '../util.js';

type Addon = Kernels & { isa(): string; getThreads(): number; setThreads(n: number): void };
const N = createRequire(import.meta.url)('../../build/Release/kdqat.node') as Addon;
const R = optimKernels as Kernels;
const rng = new Rng(5);
const fr = Math.fround;

interface Adam { lr: number; b1: number; b2: number; eps: number; wd: number }
const hp: Adam = { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 };

/** torch.optim.AdamW (single-tensor path) in float64, one element at a time. */
function torchAdamW(p: Float64Array, g: Float32Array, m: Float64Array, v: Float64Array, t: number,
  h: Adam): void {
  const bc1 = 1 - h.b1 ** t, bc2 = 1 - h.b2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.wd; // param.mul_(1 - lr * weight_decay)
    m[i] += (1 - h.b1) * (g[i] - m[i]); // exp_avg.lerp_(grad, 1 - beta1)
    v[i] = v[i] * h.b2 + (1 - h.b2) * g[i] * g[i]; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
    p[i] -= (h.lr / bc1) * (m[i] / denom); // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

/** torch.optim.SGD (dampening 0, not Nesterov) in float64; buf null = no momentum. */
function torchSgd(p: Float64Array, g: Float32Array, buf: Float64Array | null, lr: number,
  momentum: number, wd: number): void {
  for (let i = 0; i < p.length; i++) {
    let d = wd !== 0 ? g[i] + wd * p[i] : g[i];
    if (buf) d = buf[i] = momentum * buf[i] + d; // buf starts at 0: step 1 gives buf = d
    p[i] -= lr * d;
  }
}

/** The native AdamW's exact float32 operation order (no FMA), for bitwise comparison. */
function f32AdamW(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number,
  h: Adam): void {
  const bc1 = 1 - h.b1 ** t, bc2 = 1 - h.b2 ** t;
  const dec = fr(1 - h.lr * h.wd), b1 = fr(h.b1), c1 = fr(1 - h.b1), b2 = fr(h.b2);
  const c2 = fr(1 - h.b2), sb = fr(Math.sqrt(bc2)), eps = fr(h.eps), st = fr(h.lr / bc1);
  for (let i = 0; i < p.length; i++) {
    const pv = fr(p[i] * dec);
    m[i] = fr(fr(b1 * m[i]) + fr(c1 * g[i]));
    v[i] = fr(fr(b2 * v[i]) + fr(fr(c2 * g[i]) * g[i]));
    const den = fr(fr(fr(Math.sqrt(v[i])) / sb) + eps);
    p[i] = fr(pv - fr(st * fr(m[i] / den)));
  }
}

function grads(n: number): Float32Array {
  const g = randomF32(n, rng);
  for (let i = 0; i < n; i += 5) g[i] = 0; // zero gradients: m = v = 0 at step 1
  return g;
}

test('ref and native AdamW follow PyTorch over 6 steps', () => {
  const n = 1001, p0 = randomF32(n, rng);
  const p64 = Float64Array.from(p0), m64 = new Float64Array(n), v64 = new Float64Array(n);
  const k = [R, N].map(() => ({ p: p0.slice(), m: new Float32Array(n), v: new Float32Array(n) }));
  for (let t = 1; t <= 6; t++) {
    const g = grads(n);
    torchAdamW(p64, g, m64, v64, t, hp);
    [R, N].forEach((kern, j) => kern.adamw(k[j].p, g, k[j].m, k[j].v, hp.lr, hp.b1, hp.b2,
      hp.eps, hp.wd, 1 - hp.b1 ** t, 1 - hp.b2 ** t));
    for (const s of k) {
      expectClose(s.p, p64, 2e-6, 1e-7, `p at step ${t}`);
      expectClose(s.m, m64, 1e-5, 1e-7, `m at step ${t}`); // m ~ 0.1: atol ~ its rounding
      expectClose(s.v, v64, 1e-5, 1e-10, `v at step ${t}`);
    }
  }
});

test('ref and native SGD follow PyTorch over 5 steps (momentum, weight decay on/off)', () => {
  const n = 257;
  for (const [momentum, wd] of [[0, 0], [0, 0.01], [0.9, 0], [0.9, 0.05]]) {
    const p0 = randomF32(n, rng), p64 = Float64Array.from(p0);
    const b64 = momentum ? new Float64Array(n) : null;
    const k = [R, N].map(() => ({ p: p0.slice(), b: momentum ? new Float32Array(n) : null }));
    for (let t = 1; t <= 5; t++) {
      const g = grads(n);
      torchSgd(p64, g, b64, 0.05, momentum, wd);
      [R, N].forEach((kern, j) => kern.sgd(k[j].p, g, k[j].b, 0.05, momentum, wd));
      for (const s of k) {
        expectClose(s.p, p64, 2e-6, 1e-7, `p (momentum ${momentum}, wd ${wd}) step ${t}`);
        if (s.b && b64) expectClose(s.b, b64, 1e-5, 1e-7, `buf step ${t}`);
      }
    }
  }
});

test('native AdamW equals its float32 emulation bit for bit; SGD too; odd sizes', () => {
  for (const n of [0, 1, 3, 7, 17, 33, 65, 1000, 100003]) {
    const p = randomF32(n, rng), m = randomF32(n, rng, 0.1), v = randomF32(n, rng, 0.01).map(Math.abs);
    const g = grads(n);
    const a = { p: p.slice(), m: m.slice(), v: v.slice() }, b = { p: p.slice(), m: m.slice(), v: v.slice() };
    N.adamw(a.p, g, a.m, a.v, hp.lr, hp.b1, hp.b2, hp.eps, hp.wd, 1 - hp.b1 ** 3, 1 - hp.b2 ** 3);
    f32AdamW(b.p, g, b.m, b.v, 3, hp);
    assert.deepEqual(a, b, `adamw n=${n}`);
    for (const [withBuf, wd] of [[false, 0], [false, 0.1], [true, 0], [true, 0.1]] as const) {
      const pn = p.slice(), pr = p.slice(), bn = withBuf ? m.slice() : null, br = withBuf ? m.slice() : null;
      N.sgd(pn, g, bn, 0.05, 0.9, wd);
      R.sgd(pr, g, br, 0.05, 0.9, wd);
      expectClose(pn, pr, 1e-6, 1e-7, `sgd n=${n} buf=${withBuf} wd=${wd}`);
      if (bn && br) expectClose(bn, br, 1e-6, 1e-7, 'sgd buf');
      // Float32 emulation of the native order: g' = g + wd·p; buf = mom·buf + g'; p −= lr·buf.
      for (let i = 0; i < n; i++) {
        let d = wd !== 0 ? fr(g[i] + fr(fr(wd) * p[i])) : g[i];
        if (withBuf) d = fr(fr(fr(0.9) * m[i]) + d);
        assert.equal(pn[i], fr(p[i] - fr(fr(0.05) * d)), `sgd bitwise n=${n} i=${i}`);
      }
    }
  }
});

test('sumSquares: exact on integers, matches ref, independent of the thread count', () => {
  const x = Float32Array.from({ length: 123457 }, (_, i) => (i % 2001) - 1000);
  assert.equal(N.sumSquares(x), R.sumSquares(x));
  assert.equal(N.sumSquares(new Float32Array(0)), 0);
  for (const n of [1, 3, 7, 17, 33, 65, 1000]) {
    const y = randomF32(n, rng);
    assert.ok(Math.abs(N.sumSquares(y) - R.sumSquares(y)) <= 1e-13 * R.sumSquares(y));
  }
  const big = randomF32(500001, rng), saved = N.getThreads();
  const pause = (): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  try {
    N.setThreads(1);
    pause(); // native/pool.cc start-up race: let new workers start before the next job
    const one = N.sumSquares(big);
    N.setThreads(2);
    pause();
    assert.equal(N.sumSquares(big), one);
  } finally {
    N.setThreads(saved);
    pause();
  }
});

test('bad lengths and bias corrections throw (both backends); wrong types are TypeErrors', () => {
  const p = new Float32Array(8), s = new Float32Array(7);
  for (const k of [R, N]) {
    assert.throws(() => k.adamw(p, s, p.slice(), p.slice(), 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001), RangeError);
    assert.throws(() => k.adamw(p, p, p.slice(), s, 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001), RangeError);
    assert.throws(() => k.adamw(p, p, p.slice(), p.slice(), 1e-3, 0.9, 0.999, 1e-8, 0, 0, 0.001), RangeError);
    assert.throws(() => k.sgd(p, s, null, 0.1, 0, 0), RangeError);
    assert.throws(() => k.sgd(p, p, s, 0.1, 0.9, 0), RangeError);
  }
  const anyN = N as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => anyN.sumSquares(new Float64Array(3)), TypeError);
  assert.throws(() => anyN.sgd(p, [1, 2], null, 0.1, 0, 0), TypeError);
  assert.throws(() => anyN.adamw(p, p, p, p, 1e-3), TypeError);
});
