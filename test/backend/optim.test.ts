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
import { randomF32 } from '../util.js';
import { SECOND_ORDER, U32, U32 as u, U64, expectWithin, gamma } from '../bounds.js';

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

// Bounds on |kernel − PyTorch in float64| along a trajectory, carried from step to step
// (first-order forward error analysis of the native float32 operation order above, whose
// emulation f32AdamW pins it bit for bit; the reference computes in float64 and rounds each
// stored value once, fewer roundings than that). Constants rounded to float carry u each.
interface AdamErr { p: Float64Array; m: Float64Array; v: Float64Array }

/** One AdamW step of the bound: Δm' = b1Δm + 2u(|b1·m| + |c1·g|) + u|m'|; Δv' = b2Δv +
 *  2u|b2·v| + 3u|c2·g²| + u|v'|; den = √v'/sb + eps: Δden = Δ√/sb + 3u√v'/sb + u·eps + u·den with
 *  Δ√ ≤ min(√Δv', Δv'/√v'); upd = st·m'/den: Δupd = st(Δm'/den + |m'|Δden/den²) + 3u|upd|;
 *  Δp' = dec·Δp + 2u|dec·p| + Δupd + u|p'|. Before the step: p, m, v (PyTorch, float64). */
function adamErrStep(e: AdamErr, p: Float64Array, m: Float64Array, v: Float64Array, g: Float32Array,
  t: number, h: Adam): void {
  const bc1 = 1 - h.b1 ** t, bc2 = 1 - h.b2 ** t, sb = Math.sqrt(bc2), st = h.lr / bc1;
  const dec = 1 - h.lr * h.wd, c1 = 1 - h.b1, c2 = 1 - h.b2;
  for (let i = 0; i < p.length; i++) {
    const m1 = h.b1 * m[i] + c1 * g[i], v1 = h.b2 * v[i] + c2 * g[i] * g[i];
    const dm = h.b1 * e.m[i] + 2 * u * (Math.abs(h.b1 * m[i]) + Math.abs(c1 * g[i])) + u * Math.abs(m1);
    const dv = h.b2 * e.v[i] + 2 * u * h.b2 * v[i] + 3 * u * c2 * g[i] * g[i] + u * v1;
    const sq = Math.sqrt(v1), den = sq / sb + h.eps;
    const dsq = Math.min(Math.sqrt(dv), sq > 0 ? dv / sq : Infinity);
    const dden = dsq / sb + 3 * u * sq / sb + u * h.eps + u * den;
    const upd = st * m1 / den;
    const dupd = st * (dm / den + Math.abs(m1) * dden / den ** 2) + 3 * u * Math.abs(upd);
    const p1 = p[i] * dec - upd;
    e.p[i] = SECOND_ORDER * (dec * e.p[i] + 2 * u * Math.abs(dec * p[i]) + dupd + u * Math.abs(p1));
    e.m[i] = SECOND_ORDER * dm;
    e.v[i] = SECOND_ORDER * dv;
  }
}

/** One SGD step of the bound (native order: d = g + fl(wd·p), b' = fl(mom·b) + d,
 *  p' = p − fl(lr·b')): Δd = wd·Δp + 2u|wd·p| + u|d| (0 when wd = 0); Δb' = mom·Δb + 2u|mom·b| +
 *  Δd + u|b'|; Δp' = Δp + lr·Δb' + 2u|lr·b'| + u|p'|. Before the step: p, b (PyTorch). */
function sgdErrStep(ep: Float64Array, eb: Float64Array | null, p: Float64Array, b: Float64Array | null,
  g: Float32Array, lr: number, mom: number, wd: number): void {
  for (let i = 0; i < p.length; i++) {
    const d = g[i] + wd * p[i];
    const dd = wd !== 0 ? wd * ep[i] + 2 * u * Math.abs(wd * p[i]) + u * Math.abs(d) : 0;
    let b1 = d, db = dd;
    if (b && eb) {
      b1 = mom * b[i] + d;
      db = mom * eb[i] + 2 * u * Math.abs(mom * b[i]) + dd + u * Math.abs(b1);
      eb[i] = SECOND_ORDER * db;
    }
    const p1 = p[i] - lr * b1;
    ep[i] = SECOND_ORDER * (ep[i] + lr * db + 2 * u * Math.abs(lr * b1) + u * Math.abs(p1));
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
  const err: AdamErr = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let t = 1; t <= 6; t++) {
    const g = grads(n);
    adamErrStep(err, p64, m64, v64, g, t, hp);
    torchAdamW(p64, g, m64, v64, t, hp);
    [R, N].forEach((kern, j) => kern.adamw(k[j].p, g, k[j].m, k[j].v, hp.lr, hp.b1, hp.b2,
      hp.eps, hp.wd, 1 - hp.b1 ** t, 1 - hp.b2 ** t));
    for (const s of k) {
      expectWithin(s.p, p64, err.p, `p at step ${t}`);
      expectWithin(s.m, m64, err.m, `m at step ${t}`);
      expectWithin(s.v, v64, err.v, `v at step ${t}`);
    }
  }
});

test('ref and native SGD follow PyTorch over 5 steps (momentum, weight decay on/off)', () => {
  const n = 257;
  for (const [momentum, wd] of [[0, 0], [0, 0.01], [0.9, 0], [0.9, 0.05]]) {
    const p0 = randomF32(n, rng), p64 = Float64Array.from(p0);
    const b64 = momentum ? new Float64Array(n) : null;
    const ep = new Float64Array(n), eb = momentum ? new Float64Array(n) : null;
    const k = [R, N].map(() => ({ p: p0.slice(), b: momentum ? new Float32Array(n) : null }));
    for (let t = 1; t <= 5; t++) {
      const g = grads(n);
      sgdErrStep(ep, eb, p64, b64, g, 0.05, momentum, wd);
      torchSgd(p64, g, b64, 0.05, momentum, wd);
      [R, N].forEach((kern, j) => kern.sgd(k[j].p, g, k[j].b, 0.05, momentum, wd));
      for (const s of k) {
        expectWithin(s.p, p64, ep, `p (momentum ${momentum}, wd ${wd}) step ${t}`);
        if (s.b && b64) expectWithin(s.b, b64, eb!, `buf step ${t}`);
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
      // One step from the same float32 state: the sgdErrStep bound from Δp = Δb = 0 (ref rounds
      // its float64 result once, within that bound's u|p'| and u|b'| terms).
      const ep = new Float64Array(n), eb = withBuf ? new Float64Array(n) : null;
      sgdErrStep(ep, eb, Float64Array.from(p), br && Float64Array.from(m), g, 0.05, 0.9, wd);
      expectWithin(pn, pr, ep.map((e, i) => e + U32 * Math.abs(pr[i])), `sgd n=${n} buf=${withBuf} wd=${wd}`);
      if (bn && br) expectWithin(bn, br, eb!.map((e, i) => e + U32 * Math.abs(br[i])), 'sgd buf');
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
    // Both sum exact float64 squares of floats in float64, in different orders (native: two
    // chains, chunks of 16384 summed in order): each within γ^{f64}_{n+20}·Σx².
    assert.ok(Math.abs(N.sumSquares(y) - R.sumSquares(y)) <= 2 * gamma(n + 20, U64) * R.sumSquares(y));
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
