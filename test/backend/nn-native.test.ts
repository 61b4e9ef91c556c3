// Native 'nn' kernels against the reference kernels (test/backend/nn.test.ts checks those) on
// random inputs of odd sizes, each output within the rounding-error bound derived in
// nn-bounds.ts (checked to catch a softmax missing one term), plus the vector exp's accuracy, thread-count independence, error
// paths. scripts/test.mjs reruns this file under every KDQAT_ISA level the CPU supports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { nnKernels } from '../../src/backend/ref/nn.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomF32, randomInts } from '../util.js';
import { U64, boundRatio, expectWithin, gamma } from '../bounds.js';
import {
  crossEntropyBackwardBound, crossEntropyBound, klDivBackwardBound, klDivBound, layerNormBackwardBound,
  layerNormBound, logSoftmaxBackwardBound, logSoftmaxBound, rmsNormBackwardBound, rmsNormBound, ropeBound,
  softmaxBackwardBound, softmaxBound,
} from './nn-bounds.js';

type Addon = Kernels & { isa(): string; getThreads(): number; setThreads(n: number): void };
const N = createRequire(import.meta.url)('../../build/Release/kdqat.node') as Addon;
const R = nnKernels as Kernels;
type F = Float32Array;
type Bufs = Record<string, F | Int32Array | null>;

/** Runs call on copies of the inputs with the native and the ref kernels: [native, ref]. */
function both(inputs: Bufs, call: (k: Kernels, b: Bufs) => void): [Bufs, Bufs] {
  const copy = (): Bufs => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v && v.slice()]));
  const a = copy(), b = copy();
  call(N, a);
  call(R, b);
  return [a, b];
}

const rng = new Rng(11);
const shapes: [number, number][] = [
  [1, 1], [3, 3], [2, 7], [4, 8], [5, 17], [3, 33], [2, 64], [4, 65], [3, 1000], [16, 4096],
];
const nanF = (n: number): F => new Float32Array(n).fill(NaN); // outputs must be overwritten
const f = (b: Bufs, k: string): F => b[k] as F;

test('vector exp (seen through logSoftmaxBackward) has relative error < 1.5e-7', () => {
  // gy = one-hot at column 0 (Σ gy = 1), so gx_j = −exp(y_j) exactly for j > 0.
  const n = 40001, y = new Float32Array(n), gy = new Float32Array(n), gx = new Float32Array(n);
  y[0] = -Infinity;
  gy[0] = 1;
  for (let j = 1; j < n; j++) y[j] = -87.3 + (175.6 * (j - 1)) / (n - 2); // [−87.3, 88.3]
  N.logSoftmaxBackward(y, gy, gx, 1, n);
  let worst = 0;
  for (let j = 1; j < n; j++) worst = Math.max(worst, Math.abs(-gx[j] / Math.exp(y[j]) - 1));
  assert.ok(worst < 1.5e-7, `max relative error ${worst}`);
  assert.equal(gx[0], 1);
  const edge = Float32Array.from([-Infinity, -200, -88, NaN, 89, Infinity, 0]);
  const g2 = new Float32Array(edge.length);
  N.logSoftmaxBackward(edge, Float32Array.from([1, 0, 0, 0, 0, 0, 0]), g2, 1, edge.length);
  assert.ok(g2[1] === 0 && Math.abs(g2[2]) < 1.2e-38, 'underflow to 0');
  assert.ok(Number.isNaN(g2[3]), 'NaN propagates');
  assert.ok(g2[4] === -Infinity && g2[5] === -Infinity, 'overflow to inf');
  assert.equal(g2[6], -1);
});

test('softmax family: native matches ref within the bounds of nn-bounds.ts', () => {
  for (const [rows, n] of shapes) {
    const x = randomF32(rows * n, rng, 4), gy = randomF32(rows * n, rng);
    let [a, b] = both({ x, out: nanF(rows * n) }, (k, z) => k.softmax(f(z, 'x'), f(z, 'out'), rows, n));
    expectWithin(f(a, 'out'), f(b, 'out'), softmaxBound(x, f(b, 'out'), rows, n), `softmax ${rows}x${n}`);
    [a, b] = both({ x, out: nanF(rows * n) }, (k, z) => k.logSoftmax(f(z, 'x'), f(z, 'out'), rows, n));
    expectWithin(f(a, 'out'), f(b, 'out'), logSoftmaxBound(x, f(b, 'out'), rows, n), `logSoftmax ${rows}x${n}`);
    const y = new Float32Array(rows * n), l = new Float32Array(rows * n);
    R.softmax(x, y, rows, n);
    R.logSoftmax(x, l, rows, n);
    [a, b] = both({ y, gy, gx: nanF(rows * n) }, (k, z) => k.softmaxBackward(f(z, 'y'), f(z, 'gy'), f(z, 'gx'), rows, n));
    expectWithin(f(a, 'gx'), f(b, 'gx'), softmaxBackwardBound(y, gy, f(b, 'gx'), rows, n),
      `softmaxBackward ${rows}x${n}`);
    [a, b] = both({ y: l, gy, gx: nanF(rows * n) }, (k, z) => k.logSoftmaxBackward(f(z, 'y'), f(z, 'gy'), f(z, 'gx'), rows, n));
    expectWithin(f(a, 'gx'), f(b, 'gx'), logSoftmaxBackwardBound(l, gy, f(b, 'gx'), rows, n),
      `logSoftmaxBackward ${rows}x${n}`);
  }
  // Stability far from 0, NaN propagation, and in place (out === x).
  const x = Float32Array.from([1e4, 1e4 + 1, -1e4, 3, NaN, 0]), a = new Float32Array(6);
  const b = new Float32Array(6);
  N.softmax(x, a, 2, 3);
  R.softmax(x, b, 2, 3);
  expectWithin(a.subarray(0, 3), b.subarray(0, 3), softmaxBound(x, b, 1, 3), 'softmax extreme');
  assert.ok(a.subarray(3).every(Number.isNaN));
  const y = randomF32(4 * 33, rng), z = new Float32Array(y.length);
  N.softmax(y, z, 4, 33);
  N.softmax(y, y, 4, 33);
  assert.deepEqual(y, z);
});

test('nn bounds have teeth: softmax with one large exp term left out of the sum exceeds them', () => {
  const [rows, n] = [3, 1000], x = randomF32(rows * n, rng, 4), want = new Float32Array(rows * n);
  R.softmax(x, want, rows, n);
  const bound = softmaxBound(x, want, rows, n);
  // Leaving out the row's 10th largest term e: y_j·s/(s − e) for every j of the row. (The
  // bound is a worst case, ~γ_n relative: terms far smaller than that are below any bound.)
  for (let r = 0; r < rows; r++) {
    const row = want.subarray(r * n, (r + 1) * n);
    const dropped = row.slice().sort().reverse()[9];
    const wrong = row.map((v) => v / (1 - dropped));
    assert.ok(boundRatio(wrong, row, bound.subarray(r * n, (r + 1) * n)) > 1,
      `dropping e = ${dropped} of row ${r} stays within the softmax bound`);
  }
});

test('layerNorm / rmsNorm forward and backward: native matches ref within the nn-bounds.ts bounds', () => {
  for (const [rows, n] of shapes) {
    const x = randomF32(rows * n, rng, 3), gy = randomF32(rows * n, rng);
    const w = randomF32(n, rng), bias = randomF32(n, rng);
    for (const [hw, hb] of [[true, true], [true, false], [false, true], [false, false]]) {
      const tag = `layerNorm ${rows}x${n} w=${hw} b=${hb}`;
      const wv = hw ? w : null;
      const [a, b] = both({ x, w: wv, b: hb ? bias : null, out: nanF(rows * n), mean: nanF(rows),
        rstd: nanF(rows) }, (k, z) => k.layerNorm(f(z, 'x'), z.w as F | null, z.b as F | null,
        f(z, 'out'), f(z, 'mean'), f(z, 'rstd'), rows, n, 1e-5));
      const want = { out: f(b, 'out'), mean: f(b, 'mean'), rstd: f(b, 'rstd') };
      const bd = layerNormBound(x, wv, 1e-5, want, rows, n);
      for (const o of ['out', 'mean', 'rstd'] as const) expectWithin(f(a, o), want[o], bd[o], `${tag}: ${o}`);
      const mean = want.mean, rstd = want.rstd;
      const gw0 = hw ? randomF32(n, rng) : null, gb0 = hb ? randomF32(n, rng) : null;
      const [c, d] = both({ x, w: wv, mean, rstd, gy, gx: nanF(rows * n), gw: gw0, gb: gb0 }, (k, z) =>
        k.layerNormBackward(f(z, 'x'), z.w as F | null, f(z, 'mean'), f(z, 'rstd'), f(z, 'gy'),
          f(z, 'gx'), z.gw as F | null, z.gb as F | null, rows, n));
      const bb = layerNormBackwardBound(x, wv, mean, rstd, gy, gw0, gb0,
        { gx: f(d, 'gx'), gw: d.gw as F | null, gb: d.gb as F | null }, rows, n);
      expectWithin(f(c, 'gx'), f(d, 'gx'), bb.gx, `${tag} backward: gx`);
      if (hw) expectWithin(f(c, 'gw'), f(d, 'gw'), bb.gw!, `${tag} backward: gw`);
      if (hb) expectWithin(f(c, 'gb'), f(d, 'gb'), bb.gb!, `${tag} backward: gb`);
    }
    const [a, b] = both({ x, w, out: nanF(rows * n), rstd: nanF(rows) },
      (k, z) => k.rmsNorm(f(z, 'x'), f(z, 'w'), f(z, 'out'), f(z, 'rstd'), rows, n, 1e-6));
    const want = { out: f(b, 'out'), rstd: f(b, 'rstd') };
    const bd = rmsNormBound(x, w, 1e-6, want, rows, n);
    for (const o of ['out', 'rstd'] as const) expectWithin(f(a, o), want[o], bd[o], `rmsNorm ${rows}x${n}: ${o}`);
    const gw0 = randomF32(n, rng);
    const [c, d] = both({ x, w, rstd: want.rstd, gy, gx: nanF(rows * n), gw: gw0 }, (k, z) =>
      k.rmsNormBackward(f(z, 'x'), f(z, 'w'), f(z, 'rstd'), f(z, 'gy'), f(z, 'gx'), f(z, 'gw'), rows, n));
    const bb = rmsNormBackwardBound(x, w, want.rstd, gy, gw0, { gx: f(d, 'gx'), gw: f(d, 'gw') }, rows, n);
    expectWithin(f(c, 'gx'), f(d, 'gx'), bb.gx, `rmsNorm ${rows}x${n} backward: gx`);
    expectWithin(f(c, 'gw'), f(d, 'gw'), bb.gw, `rmsNorm ${rows}x${n} backward: gw`);
  }
});

test('rope: native matches ref within the two-term dot bound (both directions, in place too)', () => {
  for (const [B, T, H, D] of [[1, 1, 1, 2], [2, 3, 2, 6], [1, 5, 3, 14], [2, 4, 2, 34], [1, 7, 2, 130],
    [2, 64, 4, 64]]) {
    const cos = randomF32(T * D, rng), sin = randomF32(T * D, rng), x = randomF32(B * T * H * D, rng);
    for (const inverse of [false, true]) {
      const [a, b] = both({ x, out: nanF(x.length), cos, sin },
        (k, z) => k.rope(f(z, 'x'), f(z, 'out'), f(z, 'cos'), f(z, 'sin'), B, T, H, D, inverse));
      expectWithin(f(a, 'out'), f(b, 'out'), ropeBound(x, cos, sin, f(b, 'out'), B, T, H, D),
        `rope ${B},${T},${H},${D} inverse=${inverse}`);
    }
    const a = new Float32Array(x.length), y = x.slice();
    N.rope(x, a, cos, sin, B, T, H, D, false);
    N.rope(y, y, cos, sin, B, T, H, D, false);
    assert.deepEqual(y, a);
  }
});

test('crossEntropy forward and backward: native matches ref within the bounds (with ignored rows)', () => {
  for (const [rows, V] of shapes) {
    for (const ignore of [-100, 0]) {
      const z = randomF32(rows * V, rng, 3), tg = randomInts(rows, rng, V);
      if (rows > 1) tg[1] = ignore;
      const tag = `crossEntropy ${rows}x${V} ignore=${ignore}`;
      const [a, b] = both({ z, tg, loss: nanF(rows), lse: nanF(rows) }, (k, x) => k.crossEntropy(
        f(x, 'z'), x.tg as Int32Array, f(x, 'loss'), f(x, 'lse'), rows, V, ignore));
      const want = { loss: f(b, 'loss'), lse: f(b, 'lse') };
      const bd = crossEntropyBound(z, tg, ignore, want, rows, V);
      for (const o of ['loss', 'lse'] as const) expectWithin(f(a, o), want[o], bd[o], `${tag}: ${o}`);
      const lse = want.lse, gl = randomF32(rows, rng);
      const [c, d] = both({ z, tg, lse, gl, gz: nanF(rows * V) }, (k, x) => k.crossEntropyBackward(
        f(x, 'z'), x.tg as Int32Array, f(x, 'lse'), f(x, 'gl'), f(x, 'gz'), rows, V, ignore));
      expectWithin(f(c, 'gz'), f(d, 'gz'), crossEntropyBackwardBound(z, tg, lse, gl, ignore, f(d, 'gz'), rows, V),
        `${tag} backward`);
    }
  }
});

test('klDiv forward and backward: native matches ref within the bounds', () => {
  for (const [rows, V] of shapes) {
    for (const tau of [1, 2, 3]) {
      const t = randomF32(rows * V, rng, 3), s = randomF32(rows * V, rng, 3);
      for (let i = 0; i < s.length; i++) s[i] += 50; // a common offset must not cost accuracy
      const [a, b] = both({ t, s, loss: nanF(rows) }, (k, x) => k.klDiv(f(x, 't'), f(x, 's'), f(x, 'loss'), rows, V, tau));
      expectWithin(f(a, 'loss'), f(b, 'loss'), klDivBound(t, s, f(b, 'loss'), rows, V, tau), `klDiv ${rows}x${V} tau=${tau}`);
      for (const withT of [true, false]) {
        const gl = randomF32(rows, rng);
        const [c, d] = both({ t, s, gl, gs: nanF(rows * V), gt: withT ? nanF(rows * V) : null }, (k, x) =>
          k.klDivBackward(f(x, 't'), f(x, 's'), f(x, 'gl'), f(x, 'gs'), x.gt as F | null, rows, V, tau));
        const bd = klDivBackwardBound(t, s, gl, { gs: f(d, 'gs'), gt: d.gt as F | null }, rows, V, tau);
        const tag = `klDivBackward ${rows}x${V} tau=${tau} gt=${withT}`;
        expectWithin(f(c, 'gs'), f(d, 'gs'), bd.gs, `${tag}: gs`);
        if (withT) expectWithin(f(c, 'gt'), f(d, 'gt'), bd.gt!, `${tag}: gt`);
      }
    }
  }
});

test('sumSquaredDiff: native matches ref, exact on integers', () => {
  for (const n of [0, 1, 3, 7, 17, 33, 65, 1000, 100003]) {
    const a = randomF32(n, rng), b = randomF32(n, rng);
    const got = N.sumSquaredDiff(a, b), want = R.sumSquaredDiff(a, b);
    // float64 sums of (a − b)² (difference and square rounded in float64, 2·2⁻⁵³ per term) in
    // two different orders (native: two chains, 16384-element chunks summed in order).
    assert.ok(Math.abs(got - want) <= 2 * gamma(n + 22, U64) * want, `n=${n}: ${got} vs ${want}`);
  }
  const a = Float32Array.from({ length: 70001 }, (_, i) => (i % 1001) - 500);
  const b = Float32Array.from({ length: 70001 }, (_, i) => (i % 7) * 0.5);
  assert.equal(N.sumSquaredDiff(a, b), R.sumSquaredDiff(a, b));
});

test('countNotEqual: native equals ref (chunk edges, NaN, signed zero)', () => {
  for (const n of [0, 1, 7, 65535, 65536, 65537, 200003]) {
    const a = randomF32(n, rng);
    const b = a.slice();
    for (let i = 0; i < n; i += 1 + rng.int(9)) b[i] += 1;
    if (n > 3) { a[1] = NaN; b[1] = NaN; a[2] = -0; b[2] = 0; }
    assert.equal(N.countNotEqual(a, b), R.countNotEqual(a, b), `n=${n}`);
  }
});

test('results do not depend on the thread count', () => {
  const saved = N.getThreads();
  const rows = 300, n = 257, x = randomF32(rows * n, rng), gy = randomF32(rows * n, rng);
  const w = randomF32(n, rng), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  N.layerNorm(x, w, null, new Float32Array(rows * n), mean, rstd, rows, n, 1e-5);
  const big = randomF32(300001, rng), big2 = randomF32(300001, rng);
  const runAll = (): F[] => {
    const gx = new Float32Array(rows * n), gw = new Float32Array(n), gb = new Float32Array(n);
    N.layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, n);
    const gx2 = new Float32Array(rows * n), gw2 = new Float32Array(n);
    N.rmsNormBackward(x, w, rstd, gy, gx2, gw2, rows, n);
    const loss = new Float32Array(rows);
    N.klDiv(x, gy, loss, rows, n, 1);
    return [gx, gw, gb, gx2, gw2, loss, Float32Array.of(N.sumSquaredDiff(big, big2))];
  };
  try {
    N.setThreads(1);
    const one = runAll();
    for (const t of [2, 3]) {
      N.setThreads(t);
      runAll().forEach((v, i) => assert.deepEqual(v, one[i], `threads=${t}, output ${i}`));
    }
  } finally {
    N.setThreads(saved);
  }
});

test('bad sizes, targets and arguments throw (both backends) and write nothing', () => {
  const x = new Float32Array(12), o = new Float32Array(12), r4 = new Float32Array(4);
  for (const k of [N, R]) {
    assert.throws(() => k.softmax(x, o.subarray(1), 4, 3), RangeError);
    assert.throws(() => k.softmax(x, o, 4.5, 3), RangeError);
    assert.throws(() => k.logSoftmaxBackward(x, x, o, 3, 3), RangeError);
    assert.throws(() => k.layerNorm(x, new Float32Array(4), null, o, r4, r4, 4, 3, 1e-5), RangeError);
    assert.throws(() => k.layerNormBackward(x, null, r4, r4, x, o, null, new Float32Array(2), 4, 3), RangeError);
    assert.throws(() => k.rmsNorm(x, new Float32Array(3), o, new Float32Array(3), 4, 3, 1e-5), RangeError);
    assert.throws(() => k.rope(x, o, x, x, 1, 2, 2, 3, false), /D must be even/);
    assert.throws(() => k.rope(x, o, x.subarray(0, 5), x, 1, 2, 1, 6, false), RangeError);
    const loss = new Float32Array(4).fill(7);
    for (const bad of [3, -1]) {
      assert.throws(() => k.crossEntropy(x, Int32Array.from([0, bad, 1, 2]), loss, r4, 4, 3, -100),
        (e: Error) => e instanceof RangeError && e.message.includes(`target ${bad} at row 1`));
      assert.throws(() => k.crossEntropyBackward(x, Int32Array.from([0, 1, 2, bad]), r4, r4, o, 4, 3, -100),
        (e: Error) => e instanceof RangeError && e.message.includes(`target ${bad} at row 3`));
    }
    assert.deepEqual(loss, new Float32Array(4).fill(7));
    assert.throws(() => k.crossEntropy(x, new Int32Array(3), loss, r4, 4, 3, -100), RangeError);
    for (const tau of [0, -1, NaN]) assert.throws(() => k.klDiv(x, x, r4, 4, 3, tau), RangeError);
    assert.throws(() => k.klDivBackward(x, x, r4, o, new Float32Array(5), 4, 3, 1), RangeError);
    assert.throws(() => k.sumSquaredDiff(x, r4), RangeError);
    assert.throws(() => k.countNotEqual(x, r4), RangeError);
  }
  // Native-only: wrong buffer types and missing arguments are TypeErrors, not crashes.
  const anyN = N as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => anyN.softmax(new Float64Array(12), o, 4, 3), TypeError);
  assert.throws(() => anyN.crossEntropy(x, new Float32Array(4), r4, r4, 4, 3, -100), TypeError);
  assert.throws(() => anyN.rmsNorm(x, null, o, r4, 4, 3, 1e-5), TypeError);
  assert.throws(() => anyN.softmax(x, o, 4), TypeError);
});
