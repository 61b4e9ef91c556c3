// GEMM family: the reference matmul against an independent float64 product, the native matmul
// against the reference (every trans combination, odd and block-straddling sizes for every
// path's blocking, batches with broadcast strides, beta 0/1/−0.5), thread-count independence
// and error paths. Native vs ref is held to the rounding-error bound of test/bounds.ts
// (gemmBound), which is checked to catch a dropped k-term. scripts/test.mjs reruns this file
// under every KDQAT_ISA level the CPU supports (portable, AVX2+FMA, AVX-512).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels } from '../../src/backend/ref/gemm.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { randomF32 } from '../util.js';
import { checkBias } from './gemm-bias.js';
import { expectWithin, gemmAbsSum, gemmBound, boundRatio, gamma, U32, U64 } from '../bounds.js';

type Matmul = Kernels['matmul'];
const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as {
  matmul: Matmul; setThreads(n: number): void; getThreads(): number; isa(): string;
};
const ref = gemmKernels.matmul!;
const native = addon.matmul;

interface Case {
  batch: number; m: number; k: number; n: number; ta: boolean; tb: boolean;
  strideA: number; strideB: number; beta: number;
}

/** Random operands for a case; C starts as NaN garbage for beta 0, random values otherwise. */
function operands(cs: Case, rng: Rng): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const { batch, m, k, n, strideA, strideB } = cs;
  const a = randomF32(Math.max(0, (batch - 1) * strideA + m * k), rng);
  const b = randomF32(Math.max(0, (batch - 1) * strideB + k * n), rng);
  const c = cs.beta === 0 ? new Float32Array(batch * m * n).fill(NaN)
    : randomF32(batch * m * n, rng);
  return { a, b, c };
}

function run(f: Matmul, cs: Case, a: Float32Array, b: Float32Array | Uint16Array, c0: Float32Array): Float32Array {
  const c = c0.slice();
  f(a, b, c, cs.batch, cs.m, cs.k, cs.n, cs.ta, cs.tb, cs.strideA, cs.strideB, cs.beta);
  return c;
}

// native vs ref within gemmBound (test/bounds.ts): the float32 summation error of any order.
function compare(cs: Case, rng: Rng): Float32Array {
  const { a, b, c } = operands(cs, rng);
  const want = run(ref, cs, a, b, c);
  const got = run(native, cs, a, b, c);
  expectWithin(got, want, gemmBound(cs, a, b, c), `matmul ${JSON.stringify(cs)}`);
  return got;
}

const dense = (batch: number, m: number, k: number, n: number, ta = false, tb = false,
  beta = 0): Case => ({ batch, m, k, n, ta, tb, strideA: m * k, strideB: k * n, beta });

const combos = [[false, false], [false, true], [true, false], [true, true]] as const;

test('ref matmul equals an independent float64 product', () => {
  const rng = new Rng(1);
  for (const [ta, tb] of combos) {
    for (const [batch, m, k, n, sa, sb, beta] of [
      [1, 5, 7, 3, -1, -1, 0], [3, 4, 6, 5, -1, 0, 1], [2, 3, 2, 4, 0, -1, 1], [1, 1, 9, 1, -1, -1, 0],
    ]) {
      const cs: Case = { batch, m, k, n, ta, tb, beta, strideA: sa < 0 ? m * k : sa,
        strideB: sb < 0 ? k * n : sb };
      const { a, b, c } = operands(cs, rng);
      const got = run(ref, cs, a, b, c);
      // Build op(A) and op(B) explicitly (transposing through their stored shapes) and
      // multiply in float64.
      const want = new Float64Array(batch * m * n);
      for (let t = 0; t < batch; t++) {
        const A = Array.from({ length: m }, (_, i) => Array.from({ length: k }, (_, p) =>
          ta ? a[t * cs.strideA + p * m + i] : a[t * cs.strideA + i * k + p]));
        const B = Array.from({ length: k }, (_, p) => Array.from({ length: n }, (_, j) =>
          tb ? b[t * cs.strideB + j * k + p] : b[t * cs.strideB + p * n + j]));
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = beta === 0 ? 0 : beta * c[(t * m + i) * n + j];
            for (let p = 0; p < k; p++) s += A[i][p] * B[p][j];
            want[(t * m + i) * n + j] = s;
          }
        }
      }
      // ref rounds its float64 sum x once: |ref − x| ≤ u32·|x|; x and want are float64 sums of
      // the same terms in different orders: |x − want| ≤ 2·γ^{f64}_{k+2}·Σ|terms|.
      const g64 = 2 * gamma(k + 2, U64);
      const bound = gemmAbsSum(cs, a, b, c).map((t, i) => U32 * (Math.abs(want[i]) + g64 * t) + g64 * t);
      expectWithin(got, want, bound, `ref ${JSON.stringify(cs)}`);
    }
  }
});

test('ref matmul: beta 0 ignores NaN in C, k = 0 gives beta·C', () => {
  // (1,2)·(2,2) into the first two of four elements: NaN replaced, the rest untouched.
  const c = new Float32Array([NaN, NaN, 7, 8]);
  ref(new Float32Array([1, 2]), new Float32Array([3, 4, 5, 6]), c, 1, 1, 2, 2, false, false, 0,
    0, 0);
  assert.deepEqual([...c], [1 * 3 + 2 * 5, 1 * 4 + 2 * 6, 7, 8]);
  const z = new Float32Array([NaN, 2]);
  ref(new Float32Array(0), new Float32Array(0), z, 1, 1, 0, 2, false, false, 0, 0, 0);
  assert.deepEqual([...z], [0, 0]);
});

test('native matmul matches ref: small and odd shapes, every trans combination', () => {
  const rng = new Rng(2);
  const shapes = [
    [1, 1, 1], [1, 5, 1], [1, 300, 1], [3, 7, 17], [7, 3, 1], [1, 17, 33], [33, 1, 7],
    [17, 33, 65], [65, 127, 33], [127, 65, 129], [6, 16, 16], [12, 256, 32], [5, 4, 15],
  ];
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of combos) {
      for (const beta of [0, 1]) compare(dense(1, m, k, n, ta, tb, beta), rng);
    }
  }
});

test('native matmul matches ref: sizes straddling the cache blocks', () => {
  const rng = new Rng(3);
  // KC = 256 (portable), 768 (AVX2), 1024 (AVX-512); MC = 120, 192, 140; NR = 8..32: k slices
  // of unequal length, several row blocks, partial panels.
  const shapes = [
    [143, 255, 17], [145, 257, 31], [150, 513, 40], [7, 600, 33], [200, 64, 300], [20, 100, 500],
    [191, 767, 9], [193, 769, 18], [5, 1537, 33],
  ];
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of combos) compare(dense(1, m, k, n, ta, tb, ta ? 1 : 0), rng);
  }
});

// The AVX-512 path (native/gemm.cc): register tile MR = 14 rows × NR = 32 columns, K slices of
// at most KC = 1024, row blocks of MC = 140, column blocks of NC = 1536. Sizes one below, at and
// one above each, so every edge is hit: partial tiles in m and in n (the scratch-tile C update),
// the tail of the 4× unrolled k loop, the packing's 16×16 register transposes with ragged rows
// or columns and its 16-wide stores overhanging 14-wide panels, unequal K slices
// (2049 = 683 · 3), several row blocks and two column blocks. They run on every path (the AVX2
// and portable tiles are 6 × 16 and 6 × 8, KC 768 and 256: covered above and here alike).
test('native matmul matches ref: around the AVX-512 register tile (MR 14, NR 32)', () => {
  const rng = new Rng(7);
  const betas = [0, 1, -0.5];
  let t = 0;
  for (const [ta, tb] of combos) {
    for (const m of [1, 13, 14, 15, 28, 29, 43]) {
      for (const n of [1, 15, 16, 17, 31, 32, 33, 64, 65]) {
        for (const k of [1, 3, 5, 16, 17, 35]) compare(dense(1, m, k, n, ta, tb, betas[t++ % 3]), rng);
      }
    }
  }
});

test('native matmul matches ref: around the AVX-512 cache blocks (KC 1024, MC 140, NC 1536)', () => {
  const rng = new Rng(8);
  const shapes = [
    [139, 1023, 17], [140, 1024, 32], [141, 1025, 15], [295, 321, 47], [14, 2048, 33],
    [29, 2049, 17], [3, 7, 1537], [15, 1025, 3100], [3, 7, 4097],
  ];
  let t = 0;
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of combos) compare(dense(1, m, k, n, ta, tb, [0, 1, -0.5][t++ % 3]), rng);
  }
});

test('gemmBound has teeth: a product missing one k-term exceeds it', () => {
  const rng = new Rng(9);
  for (const [m, k, n] of [[5, 1, 7], [29, 161, 33], [14, 600, 32]]) {
    for (const beta of [0, 1]) {
      const cs = dense(1, m, k, n, false, false, beta);
      const { a, b, c } = operands(cs, rng);
      const want = run(ref, cs, a, b, c);
      const bound = gemmBound(cs, a, b, c);
      expectWithin(run(native, cs, a, b, c), want, bound, `native ${JSON.stringify(cs)}`);
      for (const p of [0, k - 1]) {
        const dropped = a.slice();
        for (let i = 0; i < m; i++) dropped[i * k + p] = 0;
        const ratio = boundRatio(run(ref, cs, dropped, b, c), want, bound);
        assert.ok(ratio > 1, `dropping k-term ${p} of ${JSON.stringify(cs)} stays within the bound (${ratio})`);
      }
    }
  }
});

test('native matmul matches ref: batches with broadcast strides and subarray views', () => {
  const rng = new Rng(4);
  for (const [ta, tb] of combos) {
    for (const beta of [0, 1]) {
      const [m, k, n] = [9, 13, 19];
      compare({ ...dense(3, m, k, n, ta, tb, beta) }, rng);
      compare({ ...dense(3, m, k, n, ta, tb, beta), strideA: 0 }, rng);
      compare({ ...dense(4, m, k, n, ta, tb, beta), strideB: 0 }, rng);
      compare({ ...dense(2, m, k, n, ta, tb, beta), strideA: 0, strideB: 0 }, rng);
      compare({ ...dense(3, m, k, n, ta, tb, beta), strideA: m * k + 5, strideB: k * n + 3 }, rng);
      compare({ ...dense(5, 40, 70, 50, ta, tb, beta), strideB: 0 }, rng);  // one (200,70) GEMM
      compare(dense(8, 33, 20, 17, ta, tb, beta), rng);
    }
  }
  // Views with a byte offset into a larger buffer.
  const cs = dense(2, 5, 6, 7);
  const big = randomF32(1000, rng);
  const a = big.subarray(11, 11 + 60), b = big.subarray(200, 200 + 84);
  const c = new Float32Array(100).fill(NaN).subarray(3, 3 + 70);
  const want = run(ref, cs, a, b, c);
  const got = run(native, cs, a, b, c);
  expectWithin(got, want, gemmBound(cs, a, b, c), 'subarray views');
});

test('native matmul: beta 0 overwrites NaN garbage, beta 1 accumulates, k = 0', () => {
  const rng = new Rng(5);
  const [m, k, n] = [13, 21, 29];
  const a = randomF32(m * k, rng), b = randomF32(k * n, rng);
  const c0 = new Float32Array(m * n);
  native(a, b, c0, 1, m, k, n, false, false, 0, 0, 0);
  const garbage = new Float32Array(m * n).fill(NaN);
  native(a, b, garbage, 1, m, k, n, false, false, 0, 0, 0);
  assert.deepEqual(garbage, c0);
  const acc = randomF32(m * n, rng);
  const start = acc.slice();
  native(a, b, acc, 1, m, k, n, false, false, 0, 0, 1);
  // k = 21 is one K slice, and C' = β·C + acc is one multiply-add with β = 1: exactly the
  // float32 sum of the old C and the beta-0 result (specified in gemm_impl.h micro()).
  assert.deepEqual(acc, start.map((v, i) => v + c0[i]), 'beta 1');
  const z = new Float32Array([NaN, 1, 2]);
  native(new Float32Array(0), new Float32Array(0), z, 1, 1, 0, 3, false, false, 0, 0, 0);
  assert.deepEqual([...z], [0, 0, 0]);
  const keep = new Float32Array([1, 2, 3]);
  native(new Float32Array(0), new Float32Array(0), keep, 1, 3, 0, 1, true, true, 0, 0, 1);
  assert.deepEqual([...keep], [1, 2, 3]);
});

async function setThreads(n: number): Promise<void> {
  addon.setThreads(n);
}

test('native matmul: 1, 2, 3 and 5 threads give bitwise identical results', async () => {
  const rng = new Rng(6);
  const before = addon.getThreads();
  try {
    // Every parallel decomposition of native/gemm_driver.h: row blocks (m ≥ threads·MR·8:
    // 350 rows at MR 14 for 2 and 3 threads), the tiles left over by the threads' equal shares
    // in a last block whose column panels are shared out (350 or 400 rows: 25 or 29 tiles at MR
    // 14, 59 or 67 at MR 6), column panels (short wide products), the B-major order's column
    // chunks (Intel's AVX-512 kernel: every shape on 1 thread, the ones at least as wide as tall
    // on more, so 1 thread against 2, 3, 5 compares the two orders on the others; not when the
    // packed op(A) passes 16 MiB: 2048 × 2100), whole NC
    // column blocks (≥ 4·threads of them: n 82020 at NC 4096 or 1536, the LM head's), whole batch
    // items per thread, the flattened shared-B batch; with partial tiles for every MR/NR and
    // several K slices (k 1100 > KC 1024) and column blocks (n 1600 > NC 1536) on every path.
    // The threads claim blocks one at a time and take over what is left of each other's runs
    // (native/pool.cc); 5 threads on a machine with fewer cores leave some asleep at any moment,
    // so blocks change hands on every call: a block run twice shows in the beta ≠ 0 cases (C
    // gains the product twice), one never run in the beta 0 ones (C keeps its NaN).
    const cases: Case[] = [
      dense(1, 200, 600, 300), dense(1, 20, 100, 500, true, true), dense(1, 300, 70, 90, true),
      dense(4, 64, 64, 64, false, true), dense(3, 100, 100, 100, false, false, 1),
      dense(3, 200, 200, 200, true, false, 1), { ...dense(6, 50, 80, 70), strideB: 0 },
      dense(32, 64, 32, 64, false, true), dense(1, 1000, 300, 8),
      dense(1, 350, 170, 100), dense(1, 400, 150, 700, true, false, 1), dense(1, 2048, 2100, 8, false, true), dense(1, 30, 161, 300, true, true), dense(1, 29, 321, 1000),
      dense(6, 29, 40, 33, false, true, -0.5), { ...dense(5, 29, 30, 47), strideB: 0 },
      dense(2, 281, 161, 65, true, false, 1), dense(1, 350, 1100, 40, true, true),
      dense(1, 30, 1100, 200, false, true, 1), dense(1, 300, 40, 1600), dense(1, 20, 30, 1700, false, true),
      dense(1, 3, 20, 82020, false, true), dense(1, 17, 9, 82020, true, false, 1),
    ];
    for (const cs of cases) {
      const { a, b, c } = operands(cs, rng);
      await setThreads(1);
      const one = run(native, cs, a, b, c);
      for (const t of [2, 3, 5]) {
        await setThreads(t);
        assert.deepEqual(run(native, cs, a, b, c), one, `threads 1 vs ${t}: ${JSON.stringify(cs)}`);
      }
      expectWithin(one, run(ref, cs, a, b, c), gemmBound(cs, a, b, c), JSON.stringify(cs));
    }
  } finally {
    await setThreads(before);
  }
});

test('native matmul: a row\'s bits do not depend on the rows beside it (partial register tiles)', () => {
  // The last tile of a block with fewer rows than MR (6 or 14) runs a kernel for its rows only
  // (native/gemm_impl.h accumulate_rows); each row must still get the bits of a full tile. The
  // m-row product's rows equal the first m rows of the 30-row one, for every m and layout, with
  // two K slices (k 1100 > KC 1024) and beta 0 and −0.5.
  const rng = new Rng(11);
  for (const [ta, tb] of combos) {
    for (const [k, n, beta] of [[37, 45, 0], [1100, 33, -0.5]] as const) {
      const big = dense(1, 30, k, n, ta, tb, beta);
      const { a, b, c } = operands(big, rng);
      const all = run(native, big, a, b, c);
      for (let m = 1; m < 30; m++) {
        // op(A)'s first m rows, in A's stored layout: (m, k) or, with ta, (k, m)
        const am = ta ? Float32Array.from({ length: k * m }, (_, i) => a[Math.floor(i / m) * 30 + (i % m)]) : a.subarray(0, m * k);
        const cs = dense(1, m, k, n, ta, tb, beta);
        assert.deepEqual(run(native, cs, am, b, c.subarray(0, m * n)), all.subarray(0, m * n), `m ${m} of 30: ${JSON.stringify(cs)}`);
      }
    }
  }
});

test('matmul bias: bitwise beta 1 on a C holding the bias, on both backends; refused with beta ≠ 0', () => {
  checkBias(native, 'native matmul', addon);
  checkBias(ref, 'ref matmul');
});

test('matmul error paths throw instead of reading out of bounds', () => {
  for (const f of [native, ref]) {
    const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8);
    f(a, b, c, 1, 2, 3, 4, false, false, 0, 0, 0);  // exact sizes are fine
    assert.throws(() => f(a.subarray(1), b, c, 1, 2, 3, 4, false, false, 0, 0, 0),
      (e: Error) => e instanceof RangeError && /\ba\b.*5.*6/.test(e.message));
    assert.throws(() => f(a, b.subarray(1), c, 1, 2, 3, 4, false, false, 0, 0, 0),
      (e: Error) => e instanceof RangeError && /\bb\b.*11.*12/.test(e.message));
    assert.throws(() => f(a, b, c.subarray(1), 1, 2, 3, 4, false, false, 0, 0, 0),
      (e: Error) => e instanceof RangeError && /\bc\b.*7.*8/.test(e.message));
    // Batch strides are checked against the last item.
    assert.throws(() => f(a, b, new Float32Array(16), 2, 2, 3, 4, false, false, 1, 0, 0), RangeError);
    assert.throws(() => f(a, b, new Float32Array(16), 2, 2, 3, 4, false, false, 0, 1, 0), RangeError);
    assert.throws(() => f(a, b, c, 1, -2, 3, 4, false, false, 0, 0, 0), RangeError);
    assert.throws(() => f(a, b, c, 1, 2, 3.5, 4, false, false, 0, 0, 0), RangeError);
    assert.throws(() => f(a, b, c, 1, 2, 3, 4, false, false, -1, 0, 0), RangeError);
    // Empty products need no storage at all.
    f(new Float32Array(0), new Float32Array(0), new Float32Array(0), 0, 5, 5, 5, false, false, 25, 25, 0);
    f(new Float32Array(0), new Float32Array(0), new Float32Array(0), 3, 0, 5, 5, false, false, 0, 0, 0);
  }
  assert.throws(() => native(new Float64Array(6) as unknown as Float32Array, new Float32Array(12),
    new Float32Array(8), 1, 2, 3, 4, false, false, 0, 0, 0), TypeError);
  assert.throws(() => (native as unknown as (...x: unknown[]) => void)(new Float32Array(1)), TypeError);
});

// b as bf16 bits (Kernels.matmul: a frozen weight held as bf16, src/tensor/bf16.ts): packing
// widens each value exactly, so the product must be bit for bit that of the float32 copy — on the
// packing paths of both B layouts (whole panels and the tail, register-transposed blocks and the
// scalar rest), several K slices and NC blocks, batches with strides, a bias, 1 and 2 threads.
test('matmul with b as bf16 bits: bitwise the product of the float32 values, native and ref', () => {
  const rng = new Rng(21);
  const bits = (n: number): Uint16Array => {
    const h = new Uint16Array(n);
    const f = randomF32(n, rng);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < n; i++) h[i] = u[i] >>> 16;
    // Signed zeros, a bf16 subnormal, ±Inf and the largest finite bf16 among them.
    [0x0000, 0x8000, 0x0001, 0x7f80, 0xff80, 0x7f7f].forEach((v, i) => { if (i * 7 < n) h[i * 7] = v; });
    return h;
  };
  const widen = (h: Uint16Array): Float32Array => new Float32Array(Uint32Array.from(h, (x) => x << 16).buffer);
  const same = (got: Float32Array, want: Float32Array, what: string): void => {
    const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
    const i = g.findIndex((x, j) => x !== w[j]);
    assert.equal(i, -1, `${what}: element ${i} is ${got[i]}, the float32 b gives ${want[i]}`);
  };
  const threads = addon.getThreads();
  try {
    for (const [batch, m, k, n, sb] of [[1, 37, 300, 70, 1], [1, 64, 1100, 1600, 1], [3, 9, 40, 33, 1], [3, 9, 40, 33, 0], [1, 5, 17, 96, 1]] as const) {
      for (const [ta, tb] of combos) {
        const a = randomF32(batch * m * k, rng), h = bits(sb ? batch * k * n : k * n), bias = randomF32(n, rng);
        const cs: Case = { batch, m, k, n, ta, tb, strideA: m * k, strideB: sb ? k * n : 0, beta: 0 };
        for (const t of [1, 2]) {
          addon.setThreads(t);
          const what = `native ${JSON.stringify(cs)} threads ${t}`;
          same(run(native, cs, a, h, new Float32Array(batch * m * n)), run(native, cs, a, widen(h), new Float32Array(batch * m * n)), what);
          const withBias = (b: Float32Array | Uint16Array): Float32Array => {
            const c = new Float32Array(batch * m * n);
            native(a, b, c, batch, m, k, n, ta, tb, cs.strideA, cs.strideB, 0, bias);
            return c;
          };
          same(withBias(h), withBias(widen(h)), `${what} with a bias`);
        }
        if (m * k * n < 1e6) same(run(ref, cs, a, h, new Float32Array(batch * m * n)), run(ref, cs, a, widen(h), new Float32Array(batch * m * n)), `ref ${JSON.stringify(cs)}`);
      }
    }
  } finally {
    addon.setThreads(threads);
  }
  // A short bf16 b is refused like a short float32 one; matmulBf16 takes float32 b only.
  for (const f of [native, ref]) {
    assert.throws(() => f(new Float32Array(6), new Uint16Array(11), new Float32Array(8), 1, 2, 3, 4, false, false, 0, 0, 0),
      (e: Error) => e instanceof RangeError && /\bb\b.*11.*12/.test(e.message));
  }
  const bf16 = (createRequire(import.meta.url)('../../build/Release/kdqat.node') as { matmulBf16: (...x: unknown[]) => void }).matmulBf16;
  assert.throws(() => bf16(new Float32Array(6), new Uint16Array(12), new Float32Array(8), 1, 2, 3, 4, false, false, 0, 0, 0),
    (e: Error) => e instanceof TypeError && /matmulBf16: b must be a Float32Array, got Uint16Array/.test(e.message));
});
