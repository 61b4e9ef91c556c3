// Run by test/train/distributed.test.ts under `mpirun -np 3`: each rank checks the collectives
// of src/train/distributed.ts against references it computes itself (every rank can rebuild
// every other rank's data from the rank number), then prints "rank R ok".
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { Params } from '../../src/nn/params.js';
import { checkSameParams, gradientReducer, initDistributed } from '../../src/train/distributed.js';

const dist = initDistributed('mpi');
const { rank, size } = dist;
assert.equal(size, 3, 'run with mpirun -np 3');

// Values of mixed magnitudes, so the three-term sums depend on their order.
const dataOf = (r: number, n: number): Float32Array => {
  const rng = new Rng(100 + r);
  return Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 10 ** Math.floor(rng.uniform() * 8 - 4));
};
const n = 5000;
const x = dataOf(rank, n);
dist.allReduceSum(x);
const all = [0, 1, 2].map((r) => dataOf(r, n));
let otherOrder = 0;
for (let i = 0; i < n; i++) {
  const want = Math.fround(Math.fround(all[0][i] + all[1][i]) + all[2][i]);
  assert.ok(Object.is(x[i], want), `float32 sum [${i}]: ${x[i]} != ((x0 + x1) + x2) = ${want}`);
  if (Math.fround(all[0][i] + Math.fround(all[1][i] + all[2][i])) !== want) otherOrder++;
}
assert.ok(otherOrder > 0, 'the data must tell the summation orders apart');

const d = Float64Array.of(0.1 * (rank + 1), 1e16 * (rank === 1 ? -1 : 1), rank);
dist.allReduceSum(d);
assert.deepEqual([...d], [0.1 + 0.2 + 0.30000000000000004, 1e16 - 1e16 + 1e16, 3]);

// Gradients: "a" has one on every rank, "b" on rank 2 only, "c" on none, "frozen" is frozen.
const param = (name: string, n: number, grad: boolean): Tensor => {
  const t = new Tensor(new Float32Array(n), [n], grad);
  t.name = name;
  return t;
};
const params: Params = new Map([['a', param('a', 7, true)], ['b', param('b', 3, true)], ['c', param('c', 2, true)], ['frozen', param('frozen', 4, false)]]);
const gradOf = (r: number, name: string, n: number): Float32Array => dataOf(10 * r + name.charCodeAt(0), n);
params.get('a')!.grad = new Tensor(gradOf(rank, 'a', 7), [7]);
if (rank === 2) params.get('b')!.grad = new Tensor(gradOf(2, 'b', 3), [3]);
const reduce = gradientReducer(dist, params);
reduce();
const a = [0, 1, 2].map((r) => gradOf(r, 'a', 7));
assert.deepEqual([...params.get('a')!.grad!.f32], [...a[0].map((v, i) => Math.fround(Math.fround(v + a[1][i]) + a[2][i]))]);
assert.deepEqual([...params.get('b')!.grad!.f32], [...gradOf(2, 'b', 3)]);
assert.equal(params.get('c')!.grad, null, 'no gradient on any rank: still none');
assert.equal(params.get('frozen')!.grad, null);

// Identical parameters pass; a rank that differs is named.
checkSameParams(dist, params, 5);
if (rank === 1) params.get('a')!.f32[3] = 1;
assert.throws(() => checkSameParams(dist, params, 6), /after step 6 the parameters of rank 1 differ from rank 0's/);

// Checked arguments (native/args.h), before any collective: a TypeError naming the argument.
assert.throws(() => dist.allReduceSum(new Int32Array(2) as unknown as Float32Array), /mpiAllReduceSum: x must be a Float32Array, got Int32Array/);
assert.throws(() => dist.allReduceSum(undefined as unknown as Float32Array), /mpiAllReduceSum: expects 1 arguments, got 0|x must be a Float32Array, got undefined/);

dist.barrier();
process.stdout.write(`rank ${rank} ok\n`);
dist.finalize();
