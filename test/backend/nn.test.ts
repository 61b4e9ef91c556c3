// Reference kernels of the 'nn' family checked against independent float64 computations:
// naive formulas for the forward kernels and central finite differences for the backward ones.
// The ref kernels only index their arguments, so they also run on Float64Arrays; the finite
// differences use that to differentiate the ref forward itself in double precision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nnKernels } from '../../src/backend/ref/nn.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { expectClose, randomF32 } from '../util.js';

const R = nnKernels as Kernels;
const F = (a: Float64Array): Float32Array => a as unknown as Float32Array; // run ref in double

function randomF64(n: number, rng: Rng, scale = 1): Float64Array {
  return Float64Array.from(randomF32(n, rng, scale));
}
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Central differences of f at x (x is restored). */
function fd(f: () => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}
const gradClose = (got: ArrayLike<number>, want: ArrayLike<number>, what: string): void =>
  expectClose(got, want, 1e-6, 1e-8, what);

/** HF rotary tables (T, D): θ_{t,i} = t·base^(−2i/D), the two halves duplicated. */
function ropeTables(T: number, D: number, base = 10000): [Float32Array, Float32Array] {
  const cos = new Float32Array(T * D), sin = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D / 2; i++) {
      const a = t * base ** (-2 * i / D);
      cos[t * D + i] = cos[t * D + i + D / 2] = Math.cos(a);
      sin[t * D + i] = sin[t * D + i + D / 2] = Math.sin(a);
    }
  }
  return [cos, sin];
}

const rng = new Rng(7);
const rows = 3, n = 7;

test('ref softmax / logSoftmax match the naive formulas and are shift-stable', () => {
  const x = randomF32(rows * n, rng, 3), y = new Float32Array(rows * n), l = new Float32Array(rows * n);
  R.softmax(x, y, rows, n);
  R.logSoftmax(x, l, rows, n);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[r * n + j]);
    for (let j = 0; j < n; j++) {
      assert.ok(Math.abs(y[r * n + j] - Math.exp(x[r * n + j]) / s) < 1e-7 * 2);
      assert.ok(Math.abs(l[r * n + j] - (x[r * n + j] - Math.log(s))) < 1e-6);
    }
  }
  // Logits of 1e4 would overflow exp without the max subtraction.
  const big = Float32Array.from([10000, 10001, 10002]), small = Float32Array.from([0, 1, 2]);
  const a = new Float32Array(3), b = new Float32Array(3);
  R.softmax(big, a, 1, 3);
  R.softmax(small, b, 1, 3);
  expectClose(a, b, 1e-6, 0, 'shifted softmax');
  R.logSoftmax(big, a, 1, 3);
  R.logSoftmax(small, b, 1, 3);
  expectClose(a, b, 1e-6, 1e-6, 'shifted logSoftmax');
});

test('ref softmaxBackward / logSoftmaxBackward match finite differences', () => {
  const x = randomF64(rows * n, rng, 2), gy = randomF64(rows * n, rng);
  for (const [fwd, bwd] of [['softmax', 'softmaxBackward'], ['logSoftmax', 'logSoftmaxBackward']] as const) {
    const y = new Float64Array(rows * n), gx = new Float64Array(rows * n);
    const loss = (): number => (R[fwd](F(x), F(y), rows, n), dot(y, gy));
    loss();
    R[bwd](F(y), F(gy), F(gx), rows, n);
    gradClose(gx, fd(loss, x), bwd);
  }
});

test('ref layerNorm matches E[x²]−μ² statistics; backward matches finite differences', () => {
  const x = randomF32(rows * n, rng, 2), w = randomF32(n, rng), b = randomF32(n, rng);
  const out = new Float32Array(rows * n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  R.layerNorm(x, w, b, out, mean, rstd, rows, n, 1e-5);
  for (let r = 0; r < rows; r++) {
    const xs = Array.from(x.subarray(r * n, r * n + n));
    const mu = xs.reduce((s, v) => s + v, 0) / n;
    const v = xs.reduce((s, u) => s + u * u, 0) / n - mu * mu;
    const rs = 1 / Math.sqrt(v + 1e-5);
    assert.ok(Math.abs(mean[r] - mu) < 1e-6 && Math.abs(rstd[r] - rs) < 1e-6 * rs);
    for (let j = 0; j < n; j++) {
      assert.ok(Math.abs(out[r * n + j] - ((xs[j] - mu) * rs * w[j] + b[j])) < 1e-5);
    }
  }
  for (const affine of [true, false]) {
    const xd = randomF64(rows * n, rng, 2), gy = randomF64(rows * n, rng);
    const wd = affine ? randomF64(n, rng) : null, bd = affine ? randomF64(n, rng) : null;
    const o = new Float64Array(rows * n), md = new Float64Array(rows), rd = new Float64Array(rows);
    const loss = (): number => {
      R.layerNorm(F(xd), wd && F(wd), bd && F(bd), F(o), F(md), F(rd), rows, n, 1e-5);
      return dot(o, gy);
    };
    loss();
    const gx = new Float64Array(rows * n);
    const gw = affine ? Float64Array.from([1, 2, 3, 4, 5, 6, 7]) : null; // += onto these
    const gb = affine ? new Float64Array(n).fill(-1) : null;
    R.layerNormBackward(F(xd), wd && F(wd), F(md), F(rd), F(gy), F(gx), gw && F(gw), gb && F(gb), rows, n);
    gradClose(gx, fd(loss, xd), 'layerNorm gx');
    if (wd && bd && gw && gb) {
      gradClose(gw.map((v, j) => v - (j + 1)), fd(loss, wd), 'layerNorm gw');
      gradClose(gb.map((v) => v + 1), fd(loss, bd), 'layerNorm gb');
    }
  }
});

test('ref rmsNorm matches its formula; backward matches finite differences', () => {
  const x = randomF32(rows * n, rng, 2), w = randomF32(n, rng);
  const out = new Float32Array(rows * n), rstd = new Float32Array(rows);
  R.rmsNorm(x, w, out, rstd, rows, n, 1e-6);
  for (let r = 0; r < rows; r++) {
    const ms = Array.from(x.subarray(r * n, r * n + n)).reduce((s, v) => s + v * v, 0) / n;
    for (let j = 0; j < n; j++) {
      const want = x[r * n + j] / Math.sqrt(ms + 1e-6) * w[j];
      assert.ok(Math.abs(out[r * n + j] - want) < 1e-6 * (1 + Math.abs(want)));
    }
  }
  const xd = randomF64(rows * n, rng, 2), wd = randomF64(n, rng), gy = randomF64(rows * n, rng);
  const o = new Float64Array(rows * n), rd = new Float64Array(rows);
  const loss = (): number => (R.rmsNorm(F(xd), F(wd), F(o), F(rd), rows, n, 1e-6), dot(o, gy));
  loss();
  const gx = new Float64Array(rows * n), gw = new Float64Array(n).fill(0.5);
  R.rmsNormBackward(F(xd), F(wd), F(rd), F(gy), F(gx), F(gw), rows, n);
  gradClose(gx, fd(loss, xd), 'rmsNorm gx');
  gradClose(gw.map((v) => v - 0.5), fd(loss, wd), 'rmsNorm gw');
});

test('ref rope matches x·cos + rotate_half(x)·sin; inverse is its exact backward', () => {
  const B = 2, T = 3, H = 2, D = 6;
  const [cos, sin] = ropeTables(T, D);
  const x = randomF32(B * T * H * D, rng), out = new Float32Array(x.length);
  R.rope(x, out, cos, sin, B, T, H, D, false);
  for (let row = 0; row < B * T * H; row++) {
    const t = Math.floor(row / H) % T, xr = Array.from(x.subarray(row * D, row * D + D));
    const rh = [...xr.slice(D / 2).map((v) => -v), ...xr.slice(0, D / 2)]; // rotate_half
    for (let i = 0; i < D; i++) {
      const want = xr[i] * cos[t * D + i] + rh[i] * sin[t * D + i];
      assert.ok(Math.abs(out[row * D + i] - want) < 1e-6);
    }
  }
  // Inverse undoes the rotation (cos² + sin² = 1) and is the gradient of the forward.
  const back = new Float32Array(x.length);
  R.rope(out, back, cos, sin, B, T, H, D, true);
  expectClose(back, x, 1e-5, 1e-6, 'rope inverse');
  const xd = randomF64(x.length, rng), gy = randomF64(x.length, rng), o = new Float64Array(x.length);
  const c64 = Float64Array.from(cos), s64 = Float64Array.from(sin);
  const loss = (): number => (R.rope(F(xd), F(o), F(c64), F(s64), B, T, H, D, false), dot(o, gy));
  const gx = new Float64Array(x.length);
  R.rope(F(gy), F(gx), F(c64), F(s64), B, T, H, D, true);
  gradClose(gx, fd(loss, xd), 'rope backward');
});

test('ref crossEntropy matches −log softmax[target]; backward matches finite differences', () => {
  const V = 9, rs = 5, ignore = -100;
  const z = randomF32(rs * V, rng, 3), tg = Int32Array.from([3, ignore, 0, 8, 5]);
  const loss = new Float32Array(rs), lse = new Float32Array(rs);
  R.crossEntropy(z, tg, loss, lse, rs, V, ignore);
  for (let r = 0; r < rs; r++) {
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(z[r * V + j]);
    assert.ok(Math.abs(lse[r] - Math.log(s)) < 1e-6);
    const want = tg[r] === ignore ? 0 : -Math.log(Math.exp(z[r * V + tg[r]]) / s);
    assert.ok(Math.abs(loss[r] - want) < 1e-6, `row ${r}: ${loss[r]} vs ${want}`);
  }
  const zd = randomF64(rs * V, rng, 3), gl = randomF64(rs, rng);
  const l = new Float64Array(rs), ld = new Float64Array(rs);
  const f = (): number => (R.crossEntropy(F(zd), tg, F(l), F(ld), rs, V, ignore), dot(l, gl));
  f();
  const gz = new Float64Array(rs * V).fill(NaN);
  R.crossEntropyBackward(F(zd), tg, F(ld), F(gl), F(gz), rs, V, ignore);
  gradClose(gz, fd(f, zd), 'crossEntropy gradient');
  assert.throws(() => R.crossEntropy(z, Int32Array.from([3, 1, 9, 0, 0]), loss, lse, rs, V, ignore),
    (e: Error) => e instanceof RangeError && /target 9 at row 2/.test(e.message));
});

test('ref klDiv matches Σ p·log(p/q); backward matches finite differences in s and t', () => {
  const V = 11, rs = 3;
  for (const tau of [1, 2.5]) {
    const t = randomF32(rs * V, rng, 2), s = randomF32(rs * V, rng, 2), loss = new Float32Array(rs);
    R.klDiv(t, s, loss, rs, V, tau);
    for (let r = 0; r < rs; r++) {
      const p = Array.from(t.subarray(r * V, r * V + V), (v) => Math.exp(v / tau));
      const q = Array.from(s.subarray(r * V, r * V + V), (v) => Math.exp(v / tau));
      const zp = p.reduce((a, b) => a + b), zq = q.reduce((a, b) => a + b);
      let kl = 0;
      for (let j = 0; j < V; j++) kl += (p[j] / zp) * Math.log((p[j] / zp) / (q[j] / zq));
      assert.ok(Math.abs(loss[r] - kl) < 1e-6 * (1 + kl), `tau ${tau} row ${r}`);
    }
    const td = randomF64(rs * V, rng, 2), sd = randomF64(rs * V, rng, 2), gl = randomF64(rs, rng);
    const l = new Float64Array(rs);
    const f = (): number => (R.klDiv(F(td), F(sd), F(l), rs, V, tau), dot(l, gl));
    const gs = new Float64Array(rs * V), gt = new Float64Array(rs * V);
    R.klDivBackward(F(td), F(sd), F(gl), F(gs), F(gt), rs, V, tau);
    gradClose(gs, fd(f, sd), `klDiv gs (tau ${tau})`);
    gradClose(gt, fd(f, td), `klDiv gt (tau ${tau})`);
  }
  // Identical distributions: KL = 0 and no gradient.
  const x = randomF32(2 * 5, rng), loss = new Float32Array(2);
  R.klDiv(x, x, loss, 2, 5, 1);
  assert.ok(Math.abs(loss[0]) < 1e-7 && Math.abs(loss[1]) < 1e-7);
});

test('ref sumSquaredDiff is exact on integers', () => {
  const a = Float32Array.from({ length: 1001 }, (_, i) => (i % 17) - 8);
  const b = Float32Array.from({ length: 1001 }, (_, i) => (i % 5) * 3);
  let want = 0;
  for (let i = 0; i < a.length; i++) want += (a[i] - b[i]) ** 2;
  assert.equal(R.sumSquaredDiff(a, b), want);
  assert.equal(R.sumSquaredDiff(new Float32Array(0), new Float32Array(0)), 0);
  assert.throws(() => R.sumSquaredDiff(a, b.subarray(1)), RangeError);
});

test('ref countNotEqual counts differing entries, NaN as different, -0 equal to 0', () => {
  const a = Float32Array.from([0, 1, 2, 3, NaN, -0, 5]);
  const b = Float32Array.from([0, 1.5, 2, 4, NaN, 0, 5]);
  assert.equal(R.countNotEqual(a, b), 3);
  assert.equal(R.countNotEqual(a, a), 1); // NaN ≠ NaN
  assert.equal(R.countNotEqual(new Float32Array(0), new Float32Array(0)), 0);
  assert.throws(() => R.countNotEqual(a, b.subarray(1)), RangeError);
});
