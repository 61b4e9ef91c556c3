// withDropoutRows (src/tensor/ops/nn.ts): a data-parallel rank that computes rows [lo, hi) of a
// batch draws, bit for bit, the dropout masks those rows get in the whole batch — on every
// backend, for any seed, and again in recompute's second forward. Exact by construction (the
// shifted seed reaches the same hash inputs), so the comparisons are bitwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Tensor, backward, dropout, mul, recompute, sum, withDropoutRows } from '../../src/tensor/index.js';
import { randomF32 } from '../util.js';
import { BACKENDS, onBackend } from '../backends.js';

/** The dropout mask of x's shape under `seed` (the output of dropout on ones, scaled). */
const maskOf = (shape: number[], p: number, seed: number): Float32Array =>
  dropout(new Tensor(new Float32Array(shape.reduce((a, b) => a * b)).fill(1), shape), p, seed).f32;

test('withDropoutRows: a slice of rows draws the whole batch\'s masks of those rows, on every backend', () => {
  for (const backend of BACKENDS) {
    onBackend(backend, () => {
      for (const shape of [[5, 3, 4], [6, 8], [4, 2, 3, 3]]) {
        const B = shape[0], per = shape.slice(1).reduce((a, b) => a * b);
        for (const seed of [0, 1, -7, 3e9, 123456789 * 7919 + 5]) {
          const whole = maskOf(shape, 0.4, seed);
          let dropped = 0;
          for (let lo = 0; lo < B; lo++) {
            for (let hi = lo + 1; hi <= B; hi++) {
              const part = withDropoutRows(lo, hi - lo, () => maskOf([hi - lo, ...shape.slice(1)], 0.4, seed));
              assert.deepEqual([...part], [...whole.subarray(lo * per, hi * per)], `${backend} [${shape}] seed ${seed} rows ${lo}..${hi}`);
            }
          }
          whole.forEach((m) => { if (m === 0) dropped++; });
          assert.ok(dropped > 0 && dropped < whole.length, 'the masks must tell the rows apart');
        }
      }
      // Outside the scope: masks as before (row 0 = the unshifted seed).
      assert.deepEqual([...maskOf([3, 4], 0.5, 9)], [...withDropoutRows(0, 3, () => maskOf([3, 4], 0.5, 9))]);
      assert.throws(() => withDropoutRows(1, 2, () => maskOf([5], 0.5, 9)), /dropout: a tensor of 5 elements is not 2 batch rows/);
    });
  }
});

test('withDropoutRows: recompute draws the same masks in its second forward (the gradient is the plain graph\'s)', () => {
  const grad = (re: boolean): Float32Array => {
    const x = new Tensor(randomF32(3 * 8, new Rng(3)), [3, 8], true);
    const block = ([xi]: readonly Tensor[]): Tensor[] => [mul(dropout(xi, 0.5, 77), xi)];
    // Backward runs outside the scope: recompute must bring the rows back itself.
    const [y] = withDropoutRows(2, 3, () => (re ? recompute(block, [x]) : block([x])));
    backward(sum(y));
    return x.grad!.f32;
  };
  assert.deepEqual([...grad(true)], [...grad(false)]);
});
