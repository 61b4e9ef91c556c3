// Bad input gets a clear error, not a crash: shape mismatches name both shapes and the op;
// NaN/Inf is reported with the op that produced it under KDQAT_CHECK_NUMERICS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Tensor, intTensor, zeros, setCheckNumerics, NumericsError } from '../../src/tensor/index.js';
import { BACKENDS, onBackend } from '../backends.js';

for (const be of BACKENDS) {
  describe(`errors (${be})`, () => {
    it('shape mismatches name the op and both shapes', () => onBackend(be, () => {
      assert.throws(() => T.add(zeros([2, 3]), zeros([4])), /add: shapes \[2, 3\] and \[4\] do not broadcast/);
      assert.throws(() => T.matmul(zeros([2, 3]), zeros([4, 5])), /matmul: inner dimensions differ: \[2, 3\] · \[4, 5\]/);
      assert.throws(() => T.linear(zeros([2, 3]), zeros([4, 5])), /linear: input \[2, 3\] has 3 features, weight \[4, 5\] expects 5/);
      assert.throws(() => T.reshape(zeros([2, 3]), [4, 2]), /reshape: \[2, 3\] \(6 elements\) cannot become \[4, 2\]/);
      assert.throws(() => T.layerNorm(zeros([2, 3]), zeros([4]), null), /layerNorm: weight has shape \[4\], expected \[3\]/);
      assert.throws(() => T.attention(zeros([1, 2, 3, 4]), zeros([1, 2, 2, 4]), zeros([1, 2, 2, 4])), /3 query heads are not a multiple of 2/);
      assert.throws(() => T.crossEntropy(zeros([2, 5]), intTensor([1, 2, 3])), /crossEntropy: targets has shape \[3\], expected \[2\]/);
      assert.throws(() => T.slice(zeros([2, 3]), 1, 2, 5), /slice: \[2, 5\) is outside axis 1 of size 3/);
      assert.throws(() => new Tensor(new Float32Array(5), [2, 3]), /5 elements but shape \[2,3\] needs 6/);
    }));

    it('out-of-range indices throw instead of reading out of bounds', () => onBackend(be, () => {
      assert.throws(() => T.embedding(zeros([4, 2]), intTensor([1, 4])), RangeError);
      assert.throws(() => T.embedding(zeros([4, 2]), intTensor([-1])), RangeError);
      assert.throws(() => T.crossEntropy(zeros([2, 5]), intTensor([1, 7])), RangeError);
    }));

    it('KDQAT_CHECK_NUMERICS names the op that produced NaN/Inf', () => onBackend(be, () => {
      setCheckNumerics(true);
      try {
        const x = new Tensor(Float32Array.of(1, -1, 4), [3], true);
        assert.throws(() => T.log(x), (e: Error) => e instanceof NumericsError && /^log: output has 1 NaN\/Inf/.test(e.message));
        const y = new Tensor(Float32Array.of(0, 2, 3), [3], true);
        const r = T.sqrt(y); // forward fine: sqrt(0) = 0; backward 1/(2·0) = Inf
        assert.throws(() => T.backward(T.sum(r)), (e: Error) => e instanceof NumericsError && /^sqrt: gradient of input 0/.test(e.message));
      } finally {
        setCheckNumerics(false);
      }
      // Off: no check, NaN flows through silently.
      const z = T.log(new Tensor(Float32Array.of(-1), [1]));
      assert.ok(Number.isNaN(z.f32[0]));
    }));
  });
}
