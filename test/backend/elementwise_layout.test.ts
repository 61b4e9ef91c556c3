// Elementwise family, part 2: reduce, reduceMaxBackward, stridedCopy, gather, scatterAdd —
// native vs reference, the reference vs naive computations, thread-count invariance, error
// paths (scripts/test.mjs reruns it under every KDQAT_ISA level the CPU supports).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReduceOp } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomF32, randomInts } from '../util.js';
import {
  dot, expectBits, expectBothThrow, expectRel, f32, i32, native, ref,
  startPool, unravel, withThreads,
} from './elementwise_helpers.js';
import { U32, U64, expectWithin, gamma } from '../bounds.js';

await startPool();

// ---- reduce ------------------------------------------------------------------------------------

/** Naive reductions: the sum adds in reverse order (a different f64 rounding path), the max
 *  uses Math.max (NaN-propagating). */
function naiveReduce(op: number, x: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inner; c++) {
      let acc = op === ReduceOp.sum ? 0 : -Infinity;
      for (let j = n - 1; j >= 0; j--) {
        const v = x[(o * n + j) * inner + c];
        acc = op === ReduceOp.sum ? acc + v : Math.max(acc, v);
      }
      out[o * inner + c] = acc;
    }
  }
  return out;
}

function runReduce(k: typeof ref, op: number, x: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(outer * inner).fill(NaN);
  k.reduce(op as 0 | 1, x, out, outer, n, inner);
  return out;
}

const SHAPES3: [number, number, number][] = [];
for (const outer of [1, 3, 7]) {
  for (const n of [1, 3, 17, 65, 1000]) for (const inner of [1, 3, 33, 65]) SHAPES3.push([outer, n, inner]);
}
const LARGE3: [number, number, number][] = [[1, 300001, 1], [2, 100000, 1], [5000, 33, 1],
  [1, 4096, 768], [3, 2000, 300], [64, 50, 40]];

test('reduce sum/max: native matches the reference, the reference matches naive loops', () => {
  const rng = new Rng(11);
  for (const [outer, n, inner] of [...SHAPES3, ...LARGE3]) {
    const x = randomF32(outer * n * inner, rng);
    const what = `(${outer},${n},${inner})`;
    // Sums: both accumulate the n floats in f64 (any order: γ^{f64}_n·Σ|x| each) and round once
    // to f32 (u·|s| each): |Δ| ≤ 2u·|s| + 2γ^{f64}_n·Σ|x| (Σ|x| by the same reduce of |x|, ×(1+u)).
    const s = runReduce(ref, ReduceOp.sum, x, outer, n, inner);
    const sa = runReduce(ref, ReduceOp.sum, x.map(Math.abs), outer, n, inner);
    const bound = Float64Array.from(s, (v, i) => 2 * U32 * Math.abs(v) + 2 * gamma(n, U64) * sa[i] * (1 + U32));
    expectWithin(runReduce(native, ReduceOp.sum, x, outer, n, inner), s, bound, `sum ${what}`);
    expectRel(s, naiveReduce(ReduceOp.sum, x, outer, n, inner), 1.2e-7, `ref sum ${what}`, 1e-13 * n);
    const m = runReduce(ref, ReduceOp.max, x, outer, n, inner);
    expectRel(runReduce(native, ReduceOp.max, x, outer, n, inner), m, 0, `max ${what}`);
    expectRel(m, naiveReduce(ReduceOp.max, x, outer, n, inner), 0, `ref max ${what}`);
  }
});

// The native row reductions' stated order (native/elementwise_loops.inc), the same on every
// ISA: a row is summed in blocks of 16384, each block as 16 f64 partials (element i into
// partial i mod 16) folded by halving (k += k + w, w = 8, 4, 2, 1), the blocks added in order,
// rounded once; the max keeps 32 running maxima (element i into lane i mod 32, replaced when
// v > m) combined lane 0..31 the same way, NaN if any element is NaN. Emulated here in float64,
// so the native result must match bit for bit on whichever ISA this run has.
function orderedRowSum(x: Float32Array): number {
  let s = 0;
  for (let b = 0; b < x.length; b += 16384) {
    const acc = new Float64Array(16);
    const e = Math.min(x.length, b + 16384);
    for (let i = b; i < e; i++) acc[(i - b) % 16] += x[i];
    for (let w = 8; w >= 1; w /= 2) for (let k = 0; k < w; k++) acc[k] += acc[k + w];
    s += acc[0];
  }
  return s;
}
function orderedRowMax(x: Float32Array): number {
  const m = new Float32Array(32).fill(-Infinity);
  let nan = false;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > m[i % 32]) m[i % 32] = v;
    nan ||= v !== v;
  }
  let best = m[0];
  for (let k = 1; k < 32; k++) best = m[k] > best ? m[k] : best;
  return nan ? NaN : best;
}

test('reduce over rows: bitwise the stated order on every ISA (sums of 16 f64 partials, 32-lane max, zero signs)', () => {
  const rng = new Rng(17);
  for (const n of [1, 3, 15, 16, 17, 31, 32, 33, 47, 100, 1000, 16384 + 37, 40000]) {
    const rows = 3;
    const x = randomF32(rows * n, rng);
    // Signed zeros and exact cancellations make the order visible in the bits; row 2 is all ±0.
    for (let i = 0; i < n; i += 5) x[i] = i % 2 ? -0 : 0;
    for (let i = 2 * n; i < 3 * n; i++) x[i] = (i * 7) % 3 === 0 ? 0 : -0;
    // Row 1: ±1e30 in partials 3 and 11 absorb the small terms added after them and cancel
    // only in the fold's first step, so the result depends on the partial assignment.
    if (n > 11) { x[n + 3] = 1e30; x[n + 11] = -1e30; }
    const sum = runReduce(native, ReduceOp.sum, x, rows, n, 1), max = runReduce(native, ReduceOp.max, x, rows, n, 1);
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * n, (r + 1) * n);
      expectBits(sum.subarray(r, r + 1), f32([orderedRowSum(row)]), `sum n ${n} row ${r}`);
      expectBits(max.subarray(r, r + 1), f32([orderedRowMax(row)]), `max n ${n} row ${r}`);
    }
  }
  const withNan = randomF32(100, rng);
  withNan[77] = NaN;
  assert.ok(Number.isNaN(runReduce(native, ReduceOp.max, withNan, 1, 100, 1)[0]));
});

test('reduce: NaN propagates, -Inf rows, empty axis', () => {
  const x = f32([1, NaN, 3, -Infinity, -Infinity, -Infinity, 2, 5, NaN, 0, -1, 7]);
  for (const k of [ref, native]) {
    // (3 rows of 4) and (1, 4, 3) column layout
    expectRel(runReduce(k, ReduceOp.max, x, 3, 4, 1), f32([NaN, 5, NaN]), 0, 'row max with NaN');
    expectRel(runReduce(k, ReduceOp.max, x, 1, 4, 3), f32([2, NaN, NaN]), 0, 'column max with NaN');
    expectRel(runReduce(k, ReduceOp.max, f32([-Infinity, -Infinity]), 1, 2, 1), f32([-Infinity]), 0, '-Inf');
    assert.ok(Number.isNaN(runReduce(k, ReduceOp.sum, x, 1, 12, 1)[0]));
    expectBits(runReduce(k, ReduceOp.sum, new Float32Array(0), 2, 0, 3), new Float32Array(6), 'sum over n = 0');
  }
  expectBothThrow((k) => k.reduce(ReduceOp.max, new Float32Array(0), new Float32Array(2), 2, 0, 1), /empty axis/);
});

test('reduce: results do not depend on the thread count', async () => {
  const rng = new Rng(12);
  for (const [outer, n, inner] of LARGE3) {
    const x = randomF32(outer * n * inner, rng);
    const [one, two] = await withThreads(() => runReduce(native, ReduceOp.sum, x, outer, n, inner));
    expectBits(two, one, `sum (${outer},${n},${inner})`);
  }
});

// ---- reduceMaxBackward ------------------------------------------------------------------------

test('reduceMaxBackward: gradient to the first index attaining the max (or the first NaN)', async () => {
  const rng = new Rng(13);
  for (const [outer, n, inner] of [...SHAPES3, [1, 3000, 700], [5000, 20, 1]] as [number, number, number][]) {
    // Rounded values make ties common.
    const x = randomF32(outer * n * inner, rng).map((v) => Math.round(v * 2));
    if (x.length > 10) x[rng.int(x.length)] = NaN;
    const gy = randomF32(outer * inner, rng);
    const want = new Float32Array(x.length);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < inner; c++) {
        const col = Array.from({ length: n }, (_, j) => x[(o * n + j) * inner + c]);
        const nan = col.findIndex(Number.isNaN);
        const j = nan >= 0 ? nan : col.indexOf(Math.max(...col));
        want[(o * n + j) * inner + c] = gy[o * inner + c];
      }
    }
    const what = `(${outer},${n},${inner})`;
    const run = (k: typeof ref) => {
      const gx = new Float32Array(x.length).fill(7); // must be overwritten
      k.reduceMaxBackward(x, gy, gx, outer, n, inner);
      return gx;
    };
    expectBits(run(ref), want, `ref ${what}`);
    if (x.length < 100000) {
      expectBits(run(native), want, `native ${what}`);
      continue;
    }
    const [one, two] = await withThreads(() => run(native));
    expectBits(one, want, `native 1 thread ${what}`);
    expectBits(two, want, `native 2 threads ${what}`);
  }
});

// ---- stridedCopy -------------------------------------------------------------------------------

interface View { strides: number[]; offset: number; length: number }

/** A random view of `shape` into a larger buffer: padded (sliced) dims, permuted storage order,
 *  some dims reversed (negative strides), and optionally broadcast dims (stride 0). */
function randomView(shape: number[], rng: Rng, bcast: boolean): View {
  const r = shape.length;
  const stored = shape.map((d) => (bcast && rng.uniform() < 0.4 ? 1 : d + rng.int(3)));
  const order = rng.shuffle([...Array(r).keys()]);
  const st = new Array<number>(r);
  let acc = 1;
  for (let k = r - 1; k >= 0; k--) {
    st[order[k]] = acc;
    acc *= stored[order[k]];
  }
  let offset = 0;
  const strides = shape.map((d, i) => {
    if (stored[i] === 1 && d > 1) return 0;
    offset += rng.int(stored[i] - d + 1) * st[i]; // slice start
    if (rng.uniform() < 0.3) {
      offset += (d - 1) * st[i];
      return -st[i];
    }
    return st[i];
  });
  return { strides, offset, length: acc + rng.int(3) };
}

function naiveCopy(src: Float32Array, s: View, dst: Float32Array, d: View, shape: number[], acc: boolean): void {
  const total = shape.reduce((p, v) => p * v, 1);
  for (let k = 0; k < total; k++) {
    const idx = unravel(k, shape);
    const i = dot(idx, d.strides, d.offset), v = src[dot(idx, s.strides, s.offset)];
    dst[i] = acc ? dst[i] + v : v;
  }
}

function checkCopy(shape: number[], s: View, d: View, acc: boolean, rng: Rng, what: string): void {
  const src = randomF32(s.length, rng), dst0 = randomF32(d.length, rng);
  const want = dst0.slice();
  naiveCopy(src, s, want, d, shape, acc);
  for (const [name, k] of [['ref', ref], ['native', native]] as const) {
    const dst = dst0.slice();
    k.stridedCopy(src, s.offset, i32(s.strides), dst, d.offset, i32(d.strides), i32(shape), acc);
    expectBits(dst, want, `${what} ${name}`);
  }
}

test('stridedCopy: random ranks 1..5, slices, permutations, negative strides, broadcast accumulation', () => {
  const rng = new Rng(14);
  const dims = [1, 2, 3, 5, 7, 17];
  for (let t = 0; t < 400; t++) {
    const shape = Array.from({ length: 1 + (t % 5) }, () => dims[rng.int(dims.length)]);
    const acc = t % 2 === 1;
    const s = randomView(shape, rng, false), d = randomView(shape, rng, acc && rng.uniform() < 0.7);
    checkCopy(shape, s, d, acc, rng, `[${shape}] src [${s.strides}] dst [${d.strides}] acc=${acc}`);
  }
});

const LAYOUT_CASES: [string, number[], View, View, boolean][] = [
  ['BTHD→BHTD', [2, 6, 50, 64], { strides: [50 * 384, 64, 384, 1], offset: 0, length: 2 * 50 * 384 },
    { strides: [6 * 50 * 64, 50 * 64, 64, 1], offset: 0, length: 2 * 6 * 50 * 64 }, false],
  ['transpose 300x257', [257, 300], { strides: [1, 257], offset: 0, length: 300 * 257 },
    { strides: [300, 1], offset: 0, length: 300 * 257 }, false],
  ['scatter-transpose += 300x257', [300, 257], { strides: [257, 1], offset: 0, length: 300 * 257 },
    { strides: [1, 300], offset: 0, length: 300 * 257 }, true],
  ['transpose += 131x515', [515, 131], { strides: [1, 515], offset: 0, length: 131 * 515 },
    { strides: [131, 1], offset: 0, length: 131 * 515 }, true],
  ['bias grad (500,300)→(300)', [500, 300], { strides: [300, 1], offset: 0, length: 150000 },
    { strides: [0, 1], offset: 0, length: 300 }, true],
  ['column sum (300,500)→(300)', [300, 500], { strides: [500, 1], offset: 0, length: 150000 },
    { strides: [1, 0], offset: 0, length: 300 }, true],
  ['sum all (400,300)', [400, 300], { strides: [300, 1], offset: 0, length: 120000 },
    { strides: [0, 0], offset: 0, length: 1 }, true],
  ['broadcast write (70000,2)', [70000, 2], { strides: [2, 1], offset: 0, length: 140000 },
    { strides: [0, 1], offset: 1, length: 3 }, false],
];

test('stridedCopy: large layouts bitwise equal to naive, with 1 and 2 threads', async () => {
  const rng = new Rng(15);
  for (const [what, shape, s, d, acc] of LAYOUT_CASES) {
    await withThreads(() => checkCopy(shape, s, d, acc, rng, what));
  }
});

// ---- gather / scatterAdd ----------------------------------------------------------------------

test('gather and scatterAdd: repeated indices, odd sizes, thread-count invariance', async () => {
  const rng = new Rng(16);
  const cases: [number, number, number, number][] = [[1, 5, 1, 7], [1, 50, 768, 300], [3, 7, 3, 17],
    [2, 17, 33, 65], [7, 3, 65, 1], [1, 1, 5, 9], [4, 9, 0, 3], [1, 40, 768, 3000], [300, 5, 8, 11]];
  for (const [outer, n, inner, m] of cases) {
    const what = `(${outer},${n},${inner}) m=${m}`;
    const x = randomF32(outer * n * inner, rng), idx = randomInts(m, rng, n);
    const gy = randomF32(outer * m * inner, rng), gx0 = randomF32(outer * n * inner, rng);
    const wantOut = new Float32Array(outer * m * inner), wantGx = gx0.slice();
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        for (let c = 0; c < inner; c++) {
          wantOut[(o * m + j) * inner + c] = x[(o * n + idx[j]) * inner + c];
          wantGx[(o * n + idx[j]) * inner + c] += gy[(o * m + j) * inner + c];
        }
      }
    }
    const run = (k: typeof ref): [Float32Array, Float32Array] => {
      const out = new Float32Array(outer * m * inner).fill(NaN), gx = gx0.slice();
      k.gather(x, idx, out, outer, n, inner);
      k.scatterAdd(gy, idx, gx, outer, n, inner);
      return [out, gx];
    };
    const r = run(ref);
    expectBits(r[0], wantOut, `ref gather ${what}`);
    expectBits(r[1], wantGx, `ref scatterAdd ${what}`);
    const [n1, n2] = await withThreads(() => run(native));
    for (const [t, res] of [[1, n1], [2, n2]] as const) {
      expectBits(res[0], wantOut, `native gather ${what} threads ${t}`);
      expectBits(res[1], wantGx, `native scatterAdd ${what} threads ${t}`);
    }
  }
});

// ---- error paths -------------------------------------------------------------------------------

test('bad arguments throw on both backends', () => {
  const x = new Float32Array(12), out = new Float32Array(3);
  expectBothThrow((k) => k.reduce(ReduceOp.sum, x, out, 2, 3, 2), /out has length 3, expected 4/);
  expectBothThrow((k) => k.reduce(ReduceOp.sum, x, new Float32Array(4), 2, 3, 3), /x has length 12, expected 18/);
  expectBothThrow((k) => k.reduce(2 as 0, x, out, 1, 4, 3), /unknown op/);
  expectBothThrow((k) => k.reduce(ReduceOp.sum, x, out, 1.5, 8, 1), /outer must be a non-negative integer/);
  expectBothThrow((k) => k.reduceMaxBackward(x, out, x, 1, 6, 2), /gy has length 3, expected 2/);
  const s12 = i32([4, 1]), shape = i32([3, 4]);
  expectBothThrow((k) => k.stridedCopy(x, 1, s12, x.slice(), 0, s12, shape, false), /src offsets \[1, 12\]/);
  expectBothThrow((k) => k.stridedCopy(x, 0, s12, new Float32Array(11), 0, s12, shape, true), /dst offsets/);
  expectBothThrow((k) => k.stridedCopy(x, 0, i32([4]), x.slice(), 0, s12, shape, false), /rank/);
  expectBothThrow((k) => k.stridedCopy(x, 0, i32([-4, 1]), x.slice(), 0, s12, shape, false), /src offsets \[-8/);
  expectBothThrow((k) => k.stridedCopy(x, 0, s12, x.slice(), 0, s12, i32([3, -4]), false), /negative dimension/);
  const idxBad = i32([0, 4, 6]);
  expectBothThrow((k) => k.gather(x, idxBad, new Float32Array(6), 1, 6, 2), /index 6 at position 2 is out of range \[0, 6\)/);
  expectBothThrow((k) => k.scatterAdd(new Float32Array(2), i32([-1]), x, 1, 6, 2), /index -1 at position 0 is out of range \[0, 6\)/);
  expectBothThrow((k) => k.gather(x, i32([0, 1]), new Float32Array(5), 1, 6, 2), /out has length 5, expected 4/);
  expectBothThrow((k) => k.scatterAdd(new Float32Array(5), i32([0, 1]), x, 1, 6, 2), /gy has length 5, expected 4/);
  assert.throws(() => native.gather(x, f32([0]) as never, out, 1, 6, 2), TypeError);
});
