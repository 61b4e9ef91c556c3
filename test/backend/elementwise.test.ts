// Elementwise family, part 1: binary, unary, unaryBackward, affine, axpy, dropout,
// countNonFinite — native vs reference, the reference vs independent computations, error paths,
// (scripts/test.mjs reruns it under every KDQAT_ISA level the CPU supports). Layout kernels and reductions are in
// elementwise_layout.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinOp, UnOp, type BinOpCode, type UnOpCode } from '../../src/tensor/kernels.js';
import { Rng, hash32 } from '../../src/tensor/rng.js';
import { erfc, unaryF64, unaryGradF64 } from '../../src/backend/ref/elementwise.js';
import { randomF32 } from '../util.js';
import {
  contiguous, dot, expectBits, expectBothThrow, expectRel, f32, i32, native,
  ref, startPool, unravel, withThreads,
} from './elementwise_helpers.js';
import { SECOND_ORDER, U32, expectWithin } from '../bounds.js';

await startPool();
const SIZES = [1, 3, 7, 8, 17, 33, 65, 1000, 70001];

// ---- binary ------------------------------------------------------------------------------------

const binF: Record<number, (a: number, b: number) => number> = {
  [BinOp.add]: (a, b) => a + b, [BinOp.sub]: (a, b) => a - b,
  [BinOp.mul]: (a, b) => a * b, [BinOp.div]: (a, b) => a / b,
};

/** Runs binary on both backends and checks them bitwise against a naive per-element formula. */
function checkBinary(op: BinOpCode, shape: number[], aStr: number[], bStr: number[], a: Float32Array,
  b: Float32Array, what: string): void {
  const total = shape.reduce((p, d) => p * d, 1);
  const want = new Float32Array(total);
  for (let k = 0; k < total; k++) {
    const idx = unravel(k, shape);
    want[k] = binF[op](a[dot(idx, aStr)], b[dot(idx, bStr)]);
  }
  for (const [name, k] of [['ref', ref], ['native', native]] as const) {
    const out = new Float32Array(total).fill(NaN);
    k.binary(op, a, b, out, i32(shape), i32(aStr), i32(bStr));
    expectBits(out, want, `${what} ${name}`);
  }
}

/** Strides of an operand viewed with `shape`: optionally broadcast in some dims (stride 0) and
 *  stored in a permuted dim order. Returns the strides and the storage length. */
function layout(shape: number[], rng: Rng, bcast: boolean, permute: boolean): [number[], number] {
  const r = shape.length;
  const stored = shape.map((d) => (bcast && rng.uniform() < 0.4 ? 1 : d));
  const order = [...Array(r).keys()];
  if (permute) rng.shuffle(order);
  const strides = new Array<number>(r).fill(0);
  let acc = 1;
  for (let k = r - 1; k >= 0; k--) {
    const d = order[k];
    strides[d] = stored[d] === 1 && shape[d] > 1 ? 0 : acc;
    acc *= stored[d];
  }
  return [strides, acc];
}

test('binary: contiguous, scalar, bias-row and column broadcasts, every op and odd sizes', () => {
  const rng = new Rng(1);
  for (const op of Object.values(BinOp)) {
    for (const n of SIZES) {
      const a = randomF32(n, rng), b = randomF32(n, rng);
      b[0] = 0; // division by zero gives ±Inf/NaN on both
      checkBinary(op, [n], [1], [1], a, b, `op ${op} same n=${n}`);
      checkBinary(op, [n], [1], [0], a, b, `op ${op} b scalar n=${n}`);
      checkBinary(op, [n], [0], [1], a, b, `op ${op} a scalar n=${n}`);
    }
    for (const [rows, C] of [[1, 7], [3, 33], [17, 65], [300, 700], [5000, 3]]) {
      const a = randomF32(rows * C, rng), row = randomF32(C, rng), col = randomF32(rows, rng);
      checkBinary(op, [rows, C], [C, 1], [0, 1], a, row, `op ${op} bias ${rows}x${C}`);
      checkBinary(op, [rows, C], [C, 1], [1, 0], a, col, `op ${op} column ${rows}x${C}`);
      checkBinary(op, [2, rows, C], [rows * C, C, 1], [0, 0, 1],
        randomF32(2 * rows * C, rng), row, `op ${op} bias rank 3 ${rows}x${C}`);
    }
  }
});

test('binary: random ranks 1..5 with broadcast and permuted strides', () => {
  const rng = new Rng(2);
  const dims = [1, 2, 3, 5, 7, 17];
  for (let t = 0; t < 300; t++) {
    const r = 1 + (t % 5);
    const shape = Array.from({ length: r }, () => dims[rng.int(dims.length)]);
    const [aStr, aLen] = layout(shape, rng, rng.uniform() < 0.5, rng.uniform() < 0.5);
    const [bStr, bLen] = layout(shape, rng, rng.uniform() < 0.7, rng.uniform() < 0.5);
    const op = rng.int(4) as BinOpCode;
    checkBinary(op, shape, aStr, bStr, randomF32(aLen, rng), randomF32(bLen, rng),
      `op ${op} shape [${shape}] a [${aStr}] b [${bStr}]`);
  }
  // Large general (non-coalescible) cases, split across threads.
  const shape = [40, 30, 70];
  const [aStr, aLen] = layout(shape, rng, false, true);
  const [bStr, bLen] = layout(shape, rng, true, true);
  checkBinary(BinOp.mul, shape, aStr, bStr, randomF32(aLen, rng), randomF32(bLen, rng), 'large');
});

// ---- unary -------------------------------------------------------------------------------------

const POSITIVE_DOMAIN: number[] = [UnOp.log, UnOp.sqrt, UnOp.rsqrt];
const SPECIALS = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-40, 1.5e-45, 88.7, -87.5, 100,
  -100, 1e30, -1e30, 3.4e38, -3.4e38, 1, -1, 0.5, 1e-8, -1e-8];

function unaryInputs(op: number, n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = POSITIVE_DOMAIN.includes(op) ? Math.exp(rng.normal() * 6) : rng.normal() * 4;
  }
  return x;
}

// Stated accuracy of the native unary kernels: the vector paths' (AVX2, AVX-512: the same
// operations lane for lane, native/elementwise_unary_simd.inc) exp/expm1/log and erfc-based Φ
// are within UNARY_REL = 5e-7 relative of the exact function;
// its last multiply adds u; the portable path evaluates the reference formulas in double and
// rounds once (u). ref rounds its double result once (u). Forward: |Δ| ≤ (UNARY_REL + 2u)·|f|
// (first order; 1 % slack). Backward gx = gy·f'(x): f' is a sum of at most two terms whose
// magnitudes exceed |f'| by at most 0.6 (gelu: |x·φ(x)| ≤ 0.25, geluTanh's second term ≤ 0.6,
// silu: |x·σ(1−σ)| ≤ 0.28), each carrying UNARY_REL, then ≤ 3 roundings to gx:
// |Δgx| ≤ (UNARY_REL + 3u)·(|gx| + 1.2·|gy|). Results below FLT_MIN (subnormal, where relative
// error is not defined) get an absolute FLT_MIN.
const UNARY_REL = 5e-7, FLT_MIN = 2 ** -126;
const fwdBound = (want: ArrayLike<number>): Float64Array =>
  Float64Array.from(want, (w) => SECOND_ORDER * (UNARY_REL + 2 * U32) * Math.abs(w) + FLT_MIN);
const bwdBound = (want: ArrayLike<number>, gy: ArrayLike<number>): Float64Array =>
  Float64Array.from(want, (w, i) => SECOND_ORDER * (UNARY_REL + 3 * U32) * (Math.abs(w) + 1.2 * Math.abs(gy[i])) + FLT_MIN);

test('unary: native matches the f64 reference for every op (random, odd sizes, specials)', () => {
  const rng = new Rng(3);
  for (const [name, op] of Object.entries(UnOp)) {
    for (const n of SIZES) {
      const x = unaryInputs(op, n, rng);
      if (n === 1000) x.set(SPECIALS);
      const a = new Float32Array(n), b = new Float32Array(n);
      native.unary(op, x, a);
      ref.unary(op, x, b);
      expectWithin(a, b, fwdBound(b), `${name} n=${n}`);
    }
  }
});

test('unary: wide input ranges stay accurate', () => {
  const N = 20000;
  const span = (lo: number, hi: number) => Float32Array.from({ length: N }, (_, i) => lo + ((hi - lo) * i) / (N - 1));
  const cases: [UnOpCode, Float32Array][] = [
    [UnOp.exp, span(-104, 89)],
    [UnOp.log, span(-100, 100).map(Math.exp)],
    [UnOp.rsqrt, span(-80, 80).map(Math.exp)],
    ...([UnOp.tanh, UnOp.gelu, UnOp.geluTanh, UnOp.silu, UnOp.sigmoid] as UnOpCode[]).map(
      (op): [UnOpCode, Float32Array] => [op, span(-40, 40)]),
  ];
  for (const [op, x] of cases) {
    const a = new Float32Array(N), b = new Float32Array(N);
    native.unary(op, x, a);
    ref.unary(op, x, b);
    expectWithin(a, b, fwdBound(b), `op ${op} wide`);
  }
});

test('unaryBackward: native matches the reference for every op', () => {
  const rng = new Rng(4);
  for (const [name, op] of Object.entries(UnOp)) {
    for (const n of SIZES) {
      const x = unaryInputs(op, n, rng), y = new Float32Array(n), gy = randomF32(n, rng);
      ref.unary(op, x, y);
      const a = new Float32Array(n), b = new Float32Array(n);
      native.unaryBackward(op, x, y, gy, a);
      ref.unaryBackward(op, x, y, gy, b);
      expectWithin(a, b, bwdBound(b, gy), `${name}' n=${n}`);
    }
  }
});

test('gatedUnary and its backward: bit for bit unary then mul, and mul\'s backward then unaryBackward, on each backend (every op, 1 and 2 threads)', async () => {
  const rng = new Rng(5);
  for (const [name, op] of Object.entries(UnOp)) {
    for (const n of SIZES) {
      const g = unaryInputs(op, n, rng), u = randomF32(n, rng), gy = randomF32(n, rng);
      if (n === 1000) g.set(SPECIALS);
      const shape = i32([n]), s1 = i32([1]);
      for (const [kname, k] of [['ref', ref], ['native', native]] as const) {
        const y = new Float32Array(n), want = new Float32Array(n), t = new Float32Array(n);
        const wantGu = new Float32Array(n), wantGg = new Float32Array(n);
        k.unary(op, g, y);
        k.binary(BinOp.mul, y, u, want, shape, s1, s1);
        k.binary(BinOp.mul, gy, u, t, shape, s1, s1);
        k.binary(BinOp.mul, gy, y, wantGu, shape, s1, s1);
        k.unaryBackward(op, g, y, t, wantGg);
        const run = () => {
          const out = new Float32Array(n).fill(NaN), gg = new Float32Array(n).fill(NaN), gu = new Float32Array(n).fill(NaN);
          k.gatedUnary(op, g, u, out);
          k.gatedUnaryBackward(op, g, u, gy, gg, gu);
          return { out, gg, gu };
        };
        const runs = kname === 'native' ? await withThreads(run) : [run()];
        for (const r of runs) {
          expectBits(r.out, want, `${kname} ${name} n=${n} out`);
          expectBits(r.gg, wantGg, `${kname} ${name} n=${n} gg`);
          expectBits(r.gu, wantGu, `${kname} ${name} n=${n} gu`);
        }
      }
    }
  }
  const z = (n: number) => new Float32Array(n);
  expectBothThrow((k) => k.gatedUnary(UnOp.silu, z(4), z(3), z(4)), /gatedUnary.*u/);
  expectBothThrow((k) => k.gatedUnaryBackward(UnOp.silu, z(4), z(4), z(4), z(4), z(5)), /gatedUnaryBackward.*gu/);
  expectBothThrow((k) => k.gatedUnary(99 as UnOpCode, z(4), z(4), z(4)), /op/);
});

test('reference scalar functions: known values and independent formulas', () => {
  const known: [number, number][] = [[0, 1], [0.5, 0.47950012218695346], [1, 0.15729920705028513],
    [2, 0.0046777349810472658], [3, 2.2090496998585441e-5], [5, 1.5374597944280349e-12],
    [10, 2.0884875837625448e-45], [-1, 1.8427007929497149], [-3, 1.9999779095030014]];
  for (const [z, v] of known) expectRel([erfc(z)], [v], 1e-13, `erfc(${z})`);
  // erfc(z) = (2/√π)∫_z^∞ e^{-t²} dt by composite Simpson on [z, z+7].
  for (const z of [0.1, 0.7, 1.3, 1.99, 2.01, 2.6, 4]) {
    const m = 20000, h = 7 / m;
    let s = 0;
    for (let i = 0; i <= m; i++) {
      const w = i === 0 || i === m ? 1 : i % 2 ? 4 : 2;
      s += w * Math.exp(-((z + i * h) ** 2));
    }
    expectRel([erfc(z)], [((s * h) / 3) * (2 / Math.sqrt(Math.PI))], 1e-10, `erfc(${z}) vs Simpson`);
  }
  expectRel([unaryF64(UnOp.gelu, 1), unaryF64(UnOp.gelu, -1)],
    [0.84134474606854295, -0.15865525393145705], 1e-14, 'gelu(±1)');
  for (let x = -6; x <= 6; x += 0.37) {
    const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
    expectRel([unaryF64(UnOp.geluTanh, x)], [0.5 * x * (1 + Math.tanh(u))], 1e-10, `geluTanh(${x})`, 1e-15);
    expectRel([unaryF64(UnOp.silu, x)], [x / (1 + Math.exp(-x))], 1e-14, `silu(${x})`);
    expectRel([unaryF64(UnOp.sigmoid, x)], [1 / (1 + Math.exp(-x))], 1e-14, `sigmoid(${x})`);
  }
  assert.ok(Number.isNaN(unaryF64(UnOp.relu, NaN)) && Object.is(unaryF64(UnOp.relu, -0), 0));
});

test('reference derivatives agree with f64 central differences', () => {
  const general = [-3, -1.7, -0.6, -0.1, 0.05, 0.3, 0.9, 1.5, 2.8];
  const positive = [0.05, 0.3, 0.9, 1.5, 2.8, 10];
  for (const [name, op] of Object.entries(UnOp)) {
    for (const x of POSITIVE_DOMAIN.includes(op) ? positive : general) {
      const h = 1e-6 * Math.max(1, Math.abs(x));
      const fd = (unaryF64(op, x + h) - unaryF64(op, x - h)) / (2 * h);
      const exact = unaryGradF64(op, x, unaryF64(op, x));
      expectRel([exact], [fd], 1e-7, `${name}'(${x})`, 1e-8);
    }
  }
});

// ---- affine, axpy ------------------------------------------------------------------------------

test('affine and axpy: bitwise equal, float32 arithmetic on rounded alpha/beta', () => {
  const rng = new Rng(5);
  for (const n of [0, ...SIZES]) {
    const x = randomF32(n, rng), y0 = randomF32(n, rng);
    const alpha = 1 / 3, beta = 0.1;
    const [fa, fb] = [Math.fround(alpha), Math.fround(beta)];
    const want = x.map((v) => Math.fround(fa * v) + fb);
    const wantY = y0.map((v, i) => v + Math.fround(fa * x[i]));
    for (const k of [ref, native]) {
      const out = new Float32Array(n);
      k.affine(x, out, alpha, beta);
      expectBits(out, want, `affine n=${n}`);
      const y = y0.slice();
      k.axpy(alpha, x, y);
      expectBits(y, wantY, `axpy n=${n}`);
    }
  }
});

// ---- dropout -----------------------------------------------------------------------------------

/** hash32 recomputed with BigInt (an independent check of the 32-bit arithmetic). */
function hashBig(seed: number, i: number): number {
  const M = 0xffffffffn;
  let h = ((BigInt.asUintN(32, BigInt(seed | 0)) * 0x9e3779b9n) + BigInt(i)) & M;
  h ^= h >> 16n; h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n; h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return Number(h);
}

test('dropout: masks bitwise equal across backends and thread counts; the hash is murmur fmix32', async () => {
  for (let i = 0; i < 200; i++) assert.equal(hash32(-7, i), hashBig(-7, i));
  const rng = new Rng(6);
  for (const p of [0, 0.1, 0.5, 0.9, 1 - 2 ** -40]) {
    for (const seed of [0, 1, -7, 123456789, 3e9]) {
      for (const n of [1, 3, 7, 1000, 100003]) {
        const x = randomF32(n, rng);
        const outs = [ref, native].map((k) => {
          const out = new Float32Array(n), mask = new Float32Array(n);
          k.dropout(x, out, mask, p, seed);
          return [out, mask];
        });
        expectBits(outs[1][1], outs[0][1], `mask p=${p} seed=${seed} n=${n}`);
        expectBits(outs[1][0], outs[0][0], `out p=${p} seed=${seed} n=${n}`);
        const scale = Math.fround(1 / (1 - p));
        for (let i = 0; i < Math.min(n, 100); i++) {
          assert.equal(outs[0][1][i], hashBig(seed, i) / 2 ** 32 < p ? 0 : scale);
        }
        if (p === 0) expectBits(outs[0][0], x, 'p = 0 keeps x');
        if (p === 1 - 2 ** -40) assert.ok(outs[1][1].every((m) => m === 0), 'p → 1 drops all');
      }
    }
  }
  const x = randomF32(300001, rng);
  const [one, two] = await withThreads(() => {
    const out = new Float32Array(x.length), mask = new Float32Array(x.length);
    native.dropout(x, out, mask, 0.3, 99);
    return mask;
  });
  expectBits(two, one, 'mask with 2 threads vs 1');
});

test('dropout: empirical drop rate ≈ p', () => {
  const n = 1_000_000, x = new Float32Array(n).fill(1);
  for (const p of [0.1, 0.3, 0.75]) {
    const out = new Float32Array(n), mask = new Float32Array(n);
    native.dropout(x, out, mask, p, 2024);
    const dropped = mask.reduce((c, m) => c + (m === 0 ? 1 : 0), 0) / n;
    assert.ok(Math.abs(dropped - p) < 5 * Math.sqrt((p * (1 - p)) / n), `p=${p}: rate ${dropped}`);
  }
});

// ---- countNonFinite ----------------------------------------------------------------------------

test('countNonFinite counts NaN and ±Inf only', () => {
  const rng = new Rng(7);
  for (const n of [0, 1, 7, 33, 1000, 300001]) {
    const x = randomF32(n, rng);
    let want = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      if (u < 0.01) { x[i] = [NaN, Infinity, -Infinity][rng.int(3)]; want++; }
      else if (u < 0.02) x[i] = [3.4e38, -3.4e38, 1e-45, -0][rng.int(4)];
    }
    if (n > 0 && Number.isFinite(x[n - 1])) { x[n - 1] = NaN; want++; }
    assert.equal(native.countNonFinite(x), want, `native n=${n}`);
    assert.equal(ref.countNonFinite(x), want, `ref n=${n}`);
  }
});

// ---- error paths -------------------------------------------------------------------------------

test('bad arguments throw on both backends', () => {
  const a = new Float32Array(6), b = new Float32Array(3);
  const shape = i32([2, 3]);
  expectBothThrow((k) => k.binary(BinOp.add, a, b, new Float32Array(5), shape, i32(contiguous([2, 3])), i32([0, 1])), /out has length 5/);
  expectBothThrow((k) => k.binary(BinOp.add, a, b, a, shape, i32([3, 1]), i32([1])), /rank/);
  expectBothThrow((k) => k.binary(BinOp.add, a, b, a, shape, i32([3, 1]), i32([3, 1])), /b offsets/);
  expectBothThrow((k) => k.binary(7 as BinOpCode, a, b, a, shape, i32([3, 1]), i32([0, 1])), /unknown op/);
  expectBothThrow((k) => k.unary(UnOp.exp, a, b), /length/);
  expectBothThrow((k) => k.unary(99 as UnOpCode, a, a), /unknown op/);
  expectBothThrow((k) => k.unaryBackward(UnOp.tanh, a, a, b, a), /gy has length 3/);
  expectBothThrow((k) => k.affine(a, b, 1, 0), /length/);
  expectBothThrow((k) => k.axpy(1, a, b), /length/);
  for (const p of [1, -0.1, NaN, 2]) {
    expectBothThrow((k) => k.dropout(a, a.slice(), a.slice(), p, 1), /p must be in \[0, 1\)/);
  }
  expectBothThrow((k) => k.dropout(a, a.slice(), b, 0.5, 1), /mask has length 3/);
  // Native type checks: a Float64Array or a plain array is a TypeError, not a crash.
  assert.throws(() => native.unary(UnOp.exp, new Float64Array(3) as never, new Float32Array(3)), TypeError);
  assert.throws(() => native.binary(0, a, a, a, [2, 3] as never, i32([3, 1]), i32([3, 1])), TypeError);
  assert.throws(() => native.affine(a, a, 'x' as never, 0), TypeError);
  expectBits(f32([1]), f32([1]), 'sanity');
});
