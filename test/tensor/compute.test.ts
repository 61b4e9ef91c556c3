// withCompute('bf16'): the matmul op runs matmulBf16 for its forward and, with the precision of
// its forward, its backward GEMMs; outside the scope it is float32 again. Checked bitwise
// against direct kernel calls (same kernels, same arguments). Where the native bf16 kernel
// cannot run, the op must refuse (the kernel's error, naming why), not fall back to float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, backward, matmul, withCompute, computePrecision, bf16Unavailable, Rng, sum } from '../../src/tensor/index.js';
import { kernel } from '../../src/tensor/registry.js';
import { randomF32 } from '../util.js';

test('withCompute scopes the precision and restores it after a throw', () => {
  assert.equal(computePrecision(), 'fp32');
  assert.throws(() => withCompute('bf16', () => {
    assert.equal(computePrecision(), 'bf16');
    throw new Error('inner');
  }), /inner/);
  assert.equal(computePrecision(), 'fp32');
});

test("matmul under withCompute('bf16'): forward and backward are matmulBf16 calls", () => {
  const rng = new Rng(1);
  const [m, k, n] = [7, 33, 9];
  const a = new Tensor(randomF32(m * k, rng), [m, k], true), w = new Tensor(randomF32(n * k, rng), [n, k], true);
  const why = bf16Unavailable();
  if (why) {
    assert.throws(() => withCompute('bf16', () => matmul(a, w, { transB: true })), /matmulBf16: bf16 compute is unavailable/);
    return;
  }
  const y = withCompute('bf16', () => matmul(a, w, { transB: true }));
  const want = new Float32Array(m * n);
  kernel('matmulBf16')(a.f32, w.f32, want, 1, m, k, n, false, true, 0, 0, 0);
  assert.deepEqual(y.f32, want);
  const f32 = new Float32Array(m * n);
  kernel('matmul')(a.f32, w.f32, f32, 1, m, k, n, false, true, 0, 0, 0);
  assert.notDeepEqual(y.f32, f32, 'bf16 rounding changes the product');
  backward(sum(y));  // outside the scope: the backward keeps the forward's precision
  const ones = new Float32Array(m * n).fill(1);
  const ga = new Float32Array(m * k), gw = new Float32Array(n * k);
  kernel('matmulBf16')(ones, w.f32, ga, 1, m, n, k, false, false, 0, 0, 0);
  kernel('matmulBf16')(ones, a.f32, gw, 1, n, m, k, true, false, 0, 0, 0);
  assert.deepEqual(a.grad!.f32, ga);
  assert.deepEqual(w.grad!.f32, gw);
  // Outside the scope: float32 again.
  assert.deepEqual(matmul(a, w, { transB: true }).f32, f32);
});
