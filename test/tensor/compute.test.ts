// withCompute('bf16'): the matmul op runs matmulBf16 for its forward and, with the precision of
// its forward, its backward GEMMs; outside the scope it is float32 again. Checked bitwise
// against direct kernel calls (same kernels, same arguments). Where the native bf16 kernel
// cannot run, the op must refuse (the kernel's error, naming why), not fall back to float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, backward, matmul, withCompute, computePrecision, bf16Unavailable, Rng, sum } from '../../src/tensor/index.js';
import { backwardPrecision, headPrecision } from '../../src/tensor/compute.js';
import { lazyLogits } from '../../src/models/architecture.js';
import { kernel } from '../../src/tensor/registry.js';
import { headKlDiv } from '../../src/tensor/ops/head-kl.js';
import { randomF32 } from '../util.js';

test('withCompute scopes the precision and restores it after a throw', () => {
  assert.equal(computePrecision(), 'fp32');
  assert.throws(() => withCompute('bf16', () => {
    assert.equal(computePrecision(), 'bf16');
    throw new Error('inner');
  }), /inner/);
  assert.equal(computePrecision(), 'fp32');
});

test('the head precision: the GEMM precision unless given, scoped and restored with it', () => {
  const hp = (f: string, b = f) => ({ forward: f, backward: b });
  assert.deepEqual(headPrecision(), hp('fp32'));
  withCompute('bf16', () => assert.deepEqual(headPrecision(), hp('bf16')));
  withCompute('bf16', () => assert.deepEqual(headPrecision(), hp('fp32', 'bf16')), { head: { forward: 'fp32', backward: 'bf16' } });
  assert.throws(() => withCompute('bf16', () => {
    assert.equal(computePrecision(), 'bf16');
    assert.deepEqual(headPrecision(), hp('fp32'));
    withCompute('fp32', () => assert.deepEqual(headPrecision(), hp('fp32')));
    withCompute('bf16', () => assert.deepEqual(headPrecision(), hp('bf16'))); // an inner scope without one: its GEMM precision
    assert.deepEqual(headPrecision(), hp('fp32'));
    throw new Error('inner');
  }, { head: 'fp32' }), /inner/);
  assert.deepEqual(headPrecision(), hp('fp32'));
  assert.equal(computePrecision(), 'fp32');
  assert.equal(backwardPrecision(), 'fp32');
  withCompute('fp32', () => assert.equal(backwardPrecision(), 'bf16'), { backward: 'bf16' });
  assert.equal(backwardPrecision(), 'fp32');
});

test("an LM head made under withCompute('bf16', f, { head: 'fp32' }) computes its logits and their gradients in float32", () => {
  const why = bf16Unavailable();
  const [rows, c, v] = [5, 24, 40];
  // The same x and weight on every call (fresh tensors: each head gets its own gradients).
  const head = (): { x: Tensor; weight: Tensor; logits: null } =>
    ({ x: new Tensor(randomF32(rows * c, new Rng(4)), [rows, c], true), weight: new Tensor(randomF32(v * c, new Rng(5)), [v, c], true), logits: null });
  const direct = (name: 'matmul' | 'matmulBf16', h: ReturnType<typeof head>): Float32Array => {
    const y = new Float32Array(rows * v);
    kernel(name)(h.x.f32, h.weight.f32, y, 1, rows, c, v, false, true, 0, 0, 0);
    return y;
  };
  // float32 head under a bf16 body: read (and differentiated) after the scope has ended, as the loss does.
  const h32 = head();
  const o32 = withCompute(why ? 'fp32' : 'bf16', () => lazyLogits({}, h32), { head: 'fp32' });
  assert.equal(o32.head.compute, 'fp32');
  assert.deepEqual(o32.logits.f32, direct('matmul', h32));
  backward(sum(o32.logits));
  const ones = new Float32Array(rows * v).fill(1), gx = new Float32Array(rows * c);
  kernel('matmul')(ones, h32.weight.f32, gx, 1, rows, v, c, false, false, 0, 0, 0);
  assert.deepEqual(h32.x.grad!.f32, gx, 'the backward GEMM is float32 too');
  if (why) return; // the bf16 head below needs AVX512_BF16
  // without a head precision the head follows the GEMM precision: bf16
  const h16 = head();
  const o16 = withCompute('bf16', () => lazyLogits({}, h16));
  assert.equal(o16.head.compute, 'bf16');
  assert.deepEqual(o16.logits.f32, direct('matmulBf16', h16));
  assert.notDeepEqual(o16.logits.f32, o32.logits.f32, 'the two heads differ (else this compares nothing)');
});

test("`--bf16 layers`' head (float32 logits, bf16 backward): the logits are matmul, ∂x and ∂W matmulBf16, dense and fused", () => {
  if (bf16Unavailable()) { // the bf16 backward is refused, not run in float32
    const a = new Tensor(randomF32(4, new Rng(1)), [2, 2], true);
    const y = withCompute('fp32', () => matmul(a, a), { backward: 'bf16' });
    assert.throws(() => backward(sum(y)), /matmulBf16/);
    return;
  }
  const [rows, c, v] = [6, 40, 50];
  const mk = () => ({ x: new Tensor(randomF32(rows * c, new Rng(7)), [rows, c], true), weight: new Tensor(randomF32(v * c, new Rng(8)), [v, c], true), logits: null });
  const call = (name: 'matmul' | 'matmulBf16', a: Float32Array, b: Float32Array, m: number, k: number, n: number, ta: boolean, tb: boolean) => {
    const y = new Float32Array(m * n);
    kernel(name)(a, b, y, 1, m, k, n, ta, tb, 0, 0, 0);
    return y;
  };
  const h = mk();
  const o = withCompute('bf16', () => lazyLogits({}, h), { head: { forward: 'fp32', backward: 'bf16' } });
  assert.deepEqual([o.head.compute, o.head.backward], ['fp32', 'bf16']);
  assert.deepEqual(o.logits.f32, call('matmul', h.x.f32, h.weight.f32, rows, c, v, false, true));
  const g = randomF32(rows * v, new Rng(9));
  backward(o.logits, new Tensor(g, [rows, v]));
  assert.deepEqual(h.x.grad!.f32, call('matmulBf16', g, h.weight.f32, rows, v, c, false, false), '∂x = G·W in bf16');
  assert.deepEqual(h.weight.grad!.f32, call('matmulBf16', g, h.x.f32, v, rows, c, true, false), '∂W = Gᵀ·x in bf16');
  assert.notDeepEqual(h.x.grad!.f32, call('matmul', g, h.weight.f32, rows, v, c, false, false), 'bf16 and float32 differ here (else this compares nothing)');
  // The fused KL (head-kl.ts) takes the same precisions from the head: its ∂x is G·W with G its
  // logits gradient, so under the two settings it differs exactly as the GEMMs do.
  const t = new Tensor(randomF32(rows * v, new Rng(10)), [rows, v]);
  const fused = (backwardPrec: 'fp32' | 'bf16') => {
    const hh = mk();
    backward(headKlDiv(t, { ...hh, compute: 'fp32', backward: backwardPrec }));
    return [hh.x.grad!.f32, hh.weight.grad!.f32];
  };
  const [gx32, gw32] = fused('fp32'), [gx16, gw16] = fused('bf16');
  assert.notDeepEqual(gx16, gx32);
  assert.notDeepEqual(gw16, gw32);
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
