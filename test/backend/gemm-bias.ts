// The GEMM kernels' bias argument (Kernels.matmul): C = op(A)·op(B) + bias in every row must be
// bit for bit what the same kernel gives with C holding the bias in every row and beta 1 (the
// contract's definition), on every trans combination, register-tile and cache-block edge (K
// slices included: only the first adds the bias), k = 0, batches with a shared B, and 1 and 2
// threads; a bias with beta ≠ 0 or of the wrong length is refused. Shared by gemm.test.ts
// (matmul) and gemm-bf16.test.ts (matmulBf16), each run on the native kernel and the reference.
import assert from 'node:assert/strict';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomF32 } from '../util.js';

type Matmul = Kernels['matmul'];

interface Pool { getThreads(): number; setThreads(n: number): void }

/** Checks f's bias against beta 1 on a bias-filled C; with the addon's pool (native only) at 1
 *  and 2 threads, restoring its thread count after. */
export function checkBias(f: Matmul, name: string, pool?: Pool): void {
  const before = pool?.getThreads();
  try {
    checkShapes(f, name, pool);
  } finally {
    if (pool) pool.setThreads(before!);
  }
  const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8);
  assert.throws(() => f(a, b, c, 1, 2, 3, 4, false, false, 0, 0, 1, new Float32Array(4)),
    (e: Error) => e instanceof RangeError && /bias needs beta 0/.test(e.message), `${name}: bias with beta 1`);
  assert.throws(() => f(a, b, c, 1, 2, 3, 4, false, false, 0, 0, 0, new Float32Array(3)),
    (e: Error) => e instanceof RangeError && /bias/.test(e.message), `${name}: bias of 3 for n 4`);
}

function checkShapes(f: Matmul, name: string, pool?: Pool): void {
  const rng = new Rng(21);
  const shapes: [number, number, number, number, boolean?][] = [];  // batch, m, k, n, shared B
  for (const m of [1, 13, 14, 15, 29]) for (const n of [1, 15, 16, 17, 33, 65]) for (const k of [0, 1, 3, 36]) shapes.push([1, m, k, n]);
  shapes.push([3, 9, 13, 19, true], [2, 40, 71, 50]);
  // Several K slices (KC 1024 / 1536) and column blocks (NC 1536): the native kernels' blocking;
  // the reference has none, and these would take it seconds. n 33000: ≥ 8 column blocks of NC
  // 4096 (portable) or 1536, so 2 threads split the columns (gemm_driver.h), each block's bias
  // its own slice.
  if (pool) shapes.push([1, 141, 1537, 47], [1, 150, 1100, 1600], [1, 3, 5, 33000]);
  for (const [batch, m, k, n, shared] of shapes) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const sA = m * k, sB = shared ? 0 : k * n;
      const a = randomF32((batch - 1) * sA + m * k, rng), b = randomF32((batch - 1) * sB + k * n, rng);
      const bias = randomF32(n, rng);
      const filled = new Float32Array(batch * m * n).map((_, i) => bias[i % n]);
      const want = filled.slice();
      f(a, b, want, batch, m, k, n, ta, tb, sA, sB, 1);
      for (const threads of pool ? [1, 2] : [0]) {
        if (pool) pool.setThreads(threads);
        const got = new Float32Array(batch * m * n).fill(NaN);  // beta 0: never read
        f(a, b, got, batch, m, k, n, ta, tb, sA, sB, 0, bias);
        const what = `${name} bias, batch ${batch} ${m}x${k}x${n} ta=${ta} tb=${tb} threads ${threads}`;
        assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), what);
      }
    }
  }
}
