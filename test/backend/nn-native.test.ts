// Native 'nn' kernels against the reference kernels (test/backend/nn.test.ts checks those) on
// random inputs of odd sizes, plus the vector exp's accuracy, thread-count independence, error
// paths. scripts/test.mjs reruns this file under every KDQAT_ISA level the CPU supports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { nnKernels } from '../../src/backend/ref/nn.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { expectClose, randomF32, randomInts } from '../util.js';

type Addon = Kernels & { isa(): string; getThreads(): number; setThreads(n: number): void };
const N = createRequire(import.meta.url)('../../build/Release/kdqat.node') as Addon;
const R = nnKernels as Kernels;
type F = Float32Array;
type Bufs = Record<string, F | Int32Array | null>;

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** Elementwise |got − want| ≤ tol·|want| + tol·max(max|want|, scale); scale is the size of
 *  the terms that cancel in a result (a result near 0 can only be as exact as those). */
function near(got: F, want: F, tol: number, what: string, scale = 0): void {
  expectClose(got, want, tol, tol * Math.max(maxAbs(want), scale, 1e-30), what);
}

/** Runs call on copies of the inputs with the native and the ref kernels; compares outs. */
function compare(what: string, inputs: Bufs, outs: string[], call: (k: Kernels, b: Bufs) => void,
  tol = 1e-5, scale = 0): void {
  const copy = (): Bufs => Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v && v.slice()]));
  const a = copy(), b = copy();
  call(N, a);
  call(R, b);
  for (const o of outs) near(a[o] as F, b[o] as F, tol, `${what}: ${o}`, scale);
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

test('softmax family: native matches ref', () => {
  for (const [rows, n] of shapes) {
    const x = randomF32(rows * n, rng, 4), gy = randomF32(rows * n, rng);
    compare(`softmax ${rows}x${n}`, { x, out: nanF(rows * n) }, ['out'],
      (k, b) => k.softmax(f(b, 'x'), f(b, 'out'), rows, n));
    compare(`logSoftmax ${rows}x${n}`, { x, out: nanF(rows * n) }, ['out'],
      (k, b) => k.logSoftmax(f(b, 'x'), f(b, 'out'), rows, n));
    const y = new Float32Array(rows * n), l = new Float32Array(rows * n);
    R.softmax(x, y, rows, n);
    R.logSoftmax(x, l, rows, n);
    compare(`softmaxBackward ${rows}x${n}`, { y, gy, gx: nanF(rows * n) }, ['gx'],
      (k, b) => k.softmaxBackward(f(b, 'y'), f(b, 'gy'), f(b, 'gx'), rows, n));
    compare(`logSoftmaxBackward ${rows}x${n}`, { y: l, gy, gx: nanF(rows * n) }, ['gx'],
      (k, b) => k.logSoftmaxBackward(f(b, 'y'), f(b, 'gy'), f(b, 'gx'), rows, n));
  }
  // Stability far from 0, NaN propagation, and in place (out === x).
  const x = Float32Array.from([1e4, 1e4 + 1, -1e4, 3, NaN, 0]), a = new Float32Array(6);
  const b = new Float32Array(6);
  N.softmax(x, a, 2, 3);
  R.softmax(x, b, 2, 3);
  near(a, b, 1e-6, 'softmax extreme');
  assert.ok(a.subarray(3).every(Number.isNaN));
  const y = randomF32(4 * 33, rng), z = new Float32Array(y.length);
  N.softmax(y, z, 4, 33);
  N.softmax(y, y, 4, 33);
  assert.deepEqual(y, z);
});

test('layerNorm / rmsNorm forward and backward: native matches ref', () => {
  for (const [rows, n] of shapes) {
    const x = randomF32(rows * n, rng, 3), gy = randomF32(rows * n, rng);
    const w = randomF32(n, rng), bias = randomF32(n, rng);
    for (const [hw, hb] of [[true, true], [true, false], [false, true], [false, false]]) {
      const tag = `layerNorm ${rows}x${n} w=${hw} b=${hb}`;
      compare(tag, { x, w: hw ? w : null, b: hb ? bias : null, out: nanF(rows * n),
        mean: nanF(rows), rstd: nanF(rows) }, ['out', 'mean', 'rstd'], (k, b) =>
        k.layerNorm(f(b, 'x'), b.w as F | null, b.b as F | null, f(b, 'out'), f(b, 'mean'),
          f(b, 'rstd'), rows, n, 1e-5));
      const mean = new Float32Array(rows), rstd = new Float32Array(rows);
      R.layerNorm(x, hw ? w : null, hb ? bias : null, new Float32Array(rows * n), mean, rstd, rows, n, 1e-5);
      compare(`${tag} backward`, { x, w: hw ? w : null, mean, rstd, gy, gx: nanF(rows * n),
        gw: hw ? randomF32(n, rng) : null, gb: hb ? randomF32(n, rng) : null },
      ['gx', ...(hw ? ['gw'] : []), ...(hb ? ['gb'] : [])], (k, b) =>
        k.layerNormBackward(f(b, 'x'), b.w as F | null, f(b, 'mean'), f(b, 'rstd'), f(b, 'gy'),
          f(b, 'gx'), b.gw as F | null, b.gb as F | null, rows, n), 3e-5,
      maxAbs(rstd) * maxAbs(gy) * (hw ? maxAbs(w) : 1));
    }
    compare(`rmsNorm ${rows}x${n}`, { x, w, out: nanF(rows * n), rstd: nanF(rows) },
      ['out', 'rstd'], (k, b) => k.rmsNorm(f(b, 'x'), f(b, 'w'), f(b, 'out'), f(b, 'rstd'), rows, n, 1e-6));
    const rstd = new Float32Array(rows);
    R.rmsNorm(x, w, new Float32Array(rows * n), rstd, rows, n, 1e-6);
    compare(`rmsNorm ${rows}x${n} backward`, { x, w, rstd, gy, gx: nanF(rows * n),
      gw: randomF32(n, rng) }, ['gx', 'gw'], (k, b) => k.rmsNormBackward(f(b, 'x'), f(b, 'w'),
      f(b, 'rstd'), f(b, 'gy'), f(b, 'gx'), f(b, 'gw'), rows, n), 3e-5,
    maxAbs(rstd) * maxAbs(gy) * maxAbs(w));
  }
});

test('rope: native matches ref (both directions, in place too)', () => {
  for (const [B, T, H, D] of [[1, 1, 1, 2], [2, 3, 2, 6], [1, 5, 3, 14], [2, 4, 2, 34], [1, 7, 2, 130],
    [2, 64, 4, 64]]) {
    const cos = randomF32(T * D, rng), sin = randomF32(T * D, rng), x = randomF32(B * T * H * D, rng);
    for (const inverse of [false, true]) {
      compare(`rope ${B},${T},${H},${D} inverse=${inverse}`, { x, out: nanF(x.length), cos, sin },
        ['out'], (k, b) => k.rope(f(b, 'x'), f(b, 'out'), f(b, 'cos'), f(b, 'sin'), B, T, H, D, inverse), 1e-6);
    }
    const a = new Float32Array(x.length), y = x.slice();
    N.rope(x, a, cos, sin, B, T, H, D, false);
    N.rope(y, y, cos, sin, B, T, H, D, false);
    assert.deepEqual(y, a);
  }
});

test('crossEntropy forward and backward: native matches ref (with ignored rows)', () => {
  for (const [rows, V] of shapes) {
    for (const ignore of [-100, 0]) {
      const z = randomF32(rows * V, rng, 3), tg = randomInts(rows, rng, V);
      if (rows > 1) tg[1] = ignore;
      compare(`crossEntropy ${rows}x${V} ignore=${ignore}`, { z, tg, loss: nanF(rows), lse: nanF(rows) },
        ['loss', 'lse'], (k, b) => k.crossEntropy(f(b, 'z'), b.tg as Int32Array, f(b, 'loss'),
          f(b, 'lse'), rows, V, ignore));
      const lse = new Float32Array(rows);
      R.crossEntropy(z, tg, new Float32Array(rows), lse, rows, V, ignore);
      compare(`crossEntropyBackward ${rows}x${V} ignore=${ignore}`, { z, tg, lse,
        gl: randomF32(rows, rng), gz: nanF(rows * V) }, ['gz'], (k, b) => k.crossEntropyBackward(
        f(b, 'z'), b.tg as Int32Array, f(b, 'lse'), f(b, 'gl'), f(b, 'gz'), rows, V, ignore));
    }
  }
});

test('klDiv forward and backward: native matches ref', () => {
  for (const [rows, V] of shapes) {
    for (const tau of [1, 2]) {
      const t = randomF32(rows * V, rng, 3), s = randomF32(rows * V, rng, 3);
      for (let i = 0; i < s.length; i++) s[i] += 50; // a common offset must not cost accuracy
      compare(`klDiv ${rows}x${V} tau=${tau}`, { t, s, loss: nanF(rows) }, ['loss'],
        (k, b) => k.klDiv(f(b, 't'), f(b, 's'), f(b, 'loss'), rows, V, tau), 2e-5);
      for (const withT of [true, false]) {
        compare(`klDivBackward ${rows}x${V} tau=${tau} gt=${withT}`, { t, s, gl: randomF32(rows, rng),
          gs: nanF(rows * V), gt: withT ? nanF(rows * V) : null }, withT ? ['gs', 'gt'] : ['gs'],
        (k, b) => k.klDivBackward(f(b, 't'), f(b, 's'), f(b, 'gl'), f(b, 'gs'), b.gt as F | null,
          rows, V, tau), 3e-5);
      }
    }
  }
});

test('sumSquaredDiff: native matches ref, exact on integers', () => {
  for (const n of [0, 1, 3, 7, 17, 33, 65, 1000, 100003]) {
    const a = randomF32(n, rng), b = randomF32(n, rng);
    const got = N.sumSquaredDiff(a, b), want = R.sumSquaredDiff(a, b);
    assert.ok(Math.abs(got - want) <= 1e-12 * want, `n=${n}: ${got} vs ${want}`);
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

/** setThreads, then a pause: native/pool.cc has a start-up race (a new worker reads the job
 *  generation only once it runs, so a job posted before that is never picked up and the call
 *  hangs); letting the workers start first avoids it until pool.cc is fixed. */
function setThreadsSafely(addon: Addon, n: number): void {
  addon.setThreads(n);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
}

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
    setThreadsSafely(N, 1);
    const one = runAll();
    for (const t of [2, 3]) {
      setThreadsSafely(N, t);
      runAll().forEach((v, i) => assert.deepEqual(v, one[i], `threads=${t}, output ${i}`));
    }
  } finally {
    setThreadsSafely(N, saved);
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
