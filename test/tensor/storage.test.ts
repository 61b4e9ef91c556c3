// Tensor storage given back by autograd (src/tensor/storage.ts, backwardFrom's `release` and its
// gradient bookkeeping): gradients are the same bit for bit whether or not the graph's storage
// is given back (only which buffer holds a value changes, never an operation on it, so there is
// no rounding bound to state), what is given back is exactly the graph's own intermediates, and
// a buffer given back is detached wherever it was seen before it serves a new tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { Rng, Tensor, add, attention, backward, matmul, mul, reshape, silu, sum, zeros } from '../../src/tensor/index.js';
import { kernel } from '../../src/tensor/registry.js';
import { drainPool, giveBack, pooledBytes, setPoolLimit, storagePolicy, uninitF32, withStoragePolicy, zerosF32, type StoragePolicy } from '../../src/tensor/storage.js';
import { AdamW } from '../../src/train/optim.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import { randomF32 } from '../util.js';
import { BACKENDS, onBackend } from '../backends.js';
import { gradCheck } from '../gradcheck.js';
import { bitsEqual, kdStep, tinyPair } from './kd-step.js';

for (const backend of BACKENDS) {
  for (const name of Object.keys(ARCHITECTURES)) {
    test(`${backend}: ${name}: KD-QAT with the graph's storage given back (to the pool, to the heap): loss and gradients bit for bit, plain and recomputed (selective, all)`, () => {
      onBackend(backend, () => {
        const { teacher, student } = tinyPair(name);
        for (const recompute of ['off', 'selective', 'all'] as const) {
          const w = { pred: 1, rep: 1, attn_map: 0.5 };
          const a = kdStep(teacher, student, w, { recompute });
          const b = kdStep(teacher, student, w, { recompute, release: true });
          const c = kdStep(teacher, student, w, { recompute, release: true }); // from a filled pool
          assert.ok(pooledBytes() > 0, 'the release steps gave buffers back');
          // Freed to the heap instead: the next steps' storage is memory other tensors had.
          const [d, e] = withStoragePolicy('heap', () => [1, 2].map(() => kdStep(teacher, student, w, { recompute, release: true })));
          assert.equal(pooledBytes(), 0, 'nothing pooled under the heap policy');
          for (const s of [b, c, d, e]) {
            bitsEqual(Float32Array.of(s.loss), Float32Array.of(a.loss), 'loss');
            assert.deepEqual([...s.grads.keys()].sort(), [...a.grads.keys()].sort());
            for (const [k, g] of a.grads) bitsEqual(s.grads.get(k)!, g, `${name} (recompute ${recompute}): d/d${k}`);
          }
        }
      });
    });
  }
}

test('release: the intermediates and their views are given back; the root, leaves and retained tensors keep their values', () => {
  const rng = new Rng(1);
  const x = new Tensor(randomF32(4 * 8, rng), [4, 8], true);
  const w = new Tensor(randomF32(8 * 8, rng, 0.5), [8, 8], true);
  const run = (release: boolean) => {
    const h = matmul(x, w);           // owns its buffer
    const a = silu(h);
    const kept = mul(a, a).retainGrad();
    const flat = reshape(mul(kept, kept), [32]); // a view: its buffer is the product's
    const loss = sum(flat);
    const values = { loss: loss.item(), x: x.f32.slice(), kept: kept.f32.slice() };
    backward(loss, null, { release });
    return { h, a, kept, flat, loss, values };
  };
  const off = run(false);
  assert.equal(off.h.size, 32, 'without release the graph keeps its values');
  const gx = x.grad!.f32.slice(), gw = w.grad!.f32.slice();
  x.grad = w.grad = null;
  const on = run(true);
  assert.equal(on.h.size, 0, 'h was given back');
  assert.equal(on.a.size, 0, 'silu(h) was given back');
  assert.throws(() => kernel('axpy')(1, on.h.f32, new Float32Array(32)), RangeError, 'a use of h fails a length check');
  assert.equal(on.loss.item(), on.values.loss, 'the root keeps its value');
  bitsEqual(x.f32, on.values.x, 'the leaf keeps its value');
  bitsEqual(on.kept.f32, on.values.kept, 'a tensor that retains its gradient keeps its value');
  assert.equal(on.flat.size, 0, 'a view of a given-back intermediate goes with it');
  bitsEqual(x.grad!.f32, gx, 'dx');
  bitsEqual(w.grad!.f32, gw, 'dw');
});

test('release keeps the buffer a root shares (a root that is a view of an intermediate)', () => {
  const x = new Tensor(Float32Array.of(1, 2, 3, 4), [4], true);
  const s = mul(x, x);                  // owns its buffer
  const loss = sum(reshape(s, [2, 2])); // sum of a view: not a view of s
  const root = reshape(s, [4]);         // a root that is a view of s
  const g = zeros([4]);                 // the caller's gradient, from the same allocator
  g.f32.fill(1);
  backward(root, g, { release: true });
  assert.deepEqual([...root.f32], [1, 4, 9, 16], "the root's values: s's buffer is kept");
  assert.deepEqual([...g.f32], [1, 1, 1, 1], "the caller's gradient is not the pass's to give back");
  assert.equal(s.size, 4);
  assert.deepEqual([...x.grad!.f32], [2, 4, 6, 8]);
  assert.equal(loss.size, 1, 'a tensor outside the backward graph is untouched');
});

test('gradients that share a buffer (x + x, views, an attention output held for its joint node): central differences, and the same with release', () => {
  const rng = new Rng(3);
  const q = new Tensor(randomF32(1 * 4 * 2 * 8, rng), [1, 4, 2, 8], true);
  const k = new Tensor(randomF32(1 * 4 * 1 * 8, rng), [1, 4, 1, 8], true);
  const v = new Tensor(randomF32(1 * 4 * 1 * 8, rng), [1, 4, 1, 8], true);
  const f = (qi: Tensor, ki: Tensor, vi: Tensor): Tensor => {
    const { out } = attention(qi, ki, vi, { causal: true });
    const y = add(out, out);           // one gradient buffer reaches both inputs of the add
    return add(y, reshape(reshape(y, [64]), [1, 4, 2, 8]));
  };
  gradCheck('shared gradient buffers', f, [q, k, v]);
  const run = (release: boolean) => {
    q.grad = k.grad = v.grad = null;
    const z = f(q, k, v);
    backward(sum(mul(z, z)), null, { release });
    return [q.grad!.f32.slice(), k.grad!.f32.slice(), v.grad!.f32.slice()];
  };
  const a = run(false), b = run(true);
  a.forEach((g, i) => bitsEqual(b[i], g, ['dq', 'dk', 'dv'][i]));
});

test('a buffer given back is detached everywhere before it serves the next allocation of its size', () => {
  drainPool();
  const n = 1000 + Math.floor(Math.random() * 1000); // a size nothing else in this process asks for
  const a = uninitF32(n);
  a.fill(7);
  const view = a.subarray(10, 20);
  giveBack(a);
  assert.equal(a.length, 0);
  assert.equal(view.length, 0, 'a view of the same buffer is detached too');
  assert.equal(pooledBytes(), n * 4);
  const z = zerosF32(n);
  assert.equal(pooledBytes(), 0, 'the next allocation of that size took the pooled memory');
  assert.ok(z.every((e) => e === 0), 'zerosF32 clears reused memory');
  giveBack(z);
  const u = uninitF32(n);
  assert.equal(u.length, n);
  // Not a whole stamped buffer: left to the collector.
  const plain = new Float32Array(8);
  giveBack(plain);
  giveBack(u.subarray(1));
  assert.equal(plain.length, 8);
  assert.equal(u.length, n);
  drainPool();
});

for (const backend of BACKENDS) {
  test(`${backend}: the release kernel detaches the whole buffer`, () => {
    onBackend(backend, () => {
      const x = new Float32Array(64);
      const view = new Float32Array(x.buffer, 16, 4);
      kernel('release')(x);
      assert.equal(x.length, 0);
      assert.equal(view.length, 0);
      assert.equal(x.buffer.byteLength, 0);
      kernel('release')(x); // already detached: nothing to do
    });
  });
}

test("zeroGrad(true) gives the gradients back: pooled under the 'pool' policy, freed past the pool (detached) under 'heap'; zeroGrad() leaves them to their holders", () => {
  drainPool();
  const rng = new Rng(3);
  const w = new Tensor(randomF32(6 * 5, rng), [6, 5], true);
  const fixed = new Tensor(randomF32(4, rng), [4], true); // a gradient not from uninitF32/zerosF32
  const params = new Map([['w', w], ['fixed', fixed]]);
  const opt = new AdamW(params, { lr: 1e-3 });
  const grads = () => {
    backward(sum(mul(matmul(new Tensor(randomF32(3 * 6, rng), [3, 6]), w), matmul(new Tensor(randomF32(3 * 6, rng), [3, 6]), w))));
    fixed.grad = new Tensor(new Float32Array(4).fill(1), [4]);
    return [w.grad!.f32, fixed.grad.f32];
  };
  let [gw, gf] = grads();
  const kept = gw.slice();
  opt.zeroGrad();
  assert.equal(w.grad, null);
  assert.deepEqual(gw, kept, 'zeroGrad() does not touch the old gradient');
  assert.equal(storagePolicy(), 'pool', 'the default policy');
  [gw, gf] = grads();
  const pooledBefore = pooledBytes(); // backward pooled the intermediate gradients
  assert.ok(pooledBefore > 0);
  opt.zeroGrad(true);
  assert.equal(gw.length, 0, "w's gradient was given back");
  assert.equal(gf.length, 4, 'a gradient the storage did not hand out is left to the collector');
  assert.equal(pooledBytes(), pooledBefore + 6 * 5 * 4, "w's gradient is pooled");
  withStoragePolicy('heap', () => {
    assert.equal(pooledBytes(), 0, "switching to 'heap' frees what the pool held");
    assert.equal(storagePolicy(), 'heap');
    [gw, gf] = grads(); // backward's intermediates are freed, not pooled
    assert.equal(pooledBytes(), 0);
    const view = gw.subarray(2, 4);
    opt.zeroGrad(true);
    assert.equal(w.grad, null);
    assert.equal(gw.length, 0, "w's gradient was freed");
    assert.equal(view.length, 0, 'and every view of it is detached');
    assert.equal(gf.length, 4, 'a gradient the storage did not hand out is left to the collector');
    assert.equal(pooledBytes(), 0, 'freed, not pooled');
    withStoragePolicy('pool', () => {
      giveBack(uninitF32(10));
      assert.equal(pooledBytes(), 40, "an inner 'pool' scope pools");
    });
    assert.equal(storagePolicy(), 'heap', 'the outer policy is back');
  });
  assert.equal(storagePolicy(), 'pool');
  assert.throws(() => withStoragePolicy('heap', () => { throw new Error('inside'); }), /inside/);
  assert.equal(storagePolicy(), 'pool', 'restored when fn throws');
  assert.throws(() => withStoragePolicy('free' as StoragePolicy, () => 0), /policy must be one of pool, heap, got "free"/);
  drainPool();
});

test('a full pool frees the sizes least recently asked for first', () => {
  drainPool();
  try {
    const base = 1000 + Math.floor(Math.random() * 1e5);
    const [A, Bn, C] = [base, base + 7, base + 13]; // sizes nothing else in this process asks for
    const bytes = (n: number): number => n * 4;
    setPoolLimit(bytes(A) * 2 + bytes(Bn) + bytes(C) - 1); // all but one of them
    giveBack(uninitF32(A));
    giveBack(uninitF32(Bn));
    const a1 = uninitF32(A), a2 = uninitF32(A); // A asked for again: now the most recently used size
    assert.equal(pooledBytes(), bytes(Bn));
    giveBack(a1);
    giveBack(a2);
    assert.equal(pooledBytes(), 2 * bytes(A) + bytes(Bn));
    giveBack(uninitF32(C));                 // does not fit: B, the least recently used, goes
    assert.equal(pooledBytes(), 2 * bytes(A) + bytes(C));
    uninitF32(Bn);
    assert.equal(pooledBytes(), 2 * bytes(A) + bytes(C), 'B was not in the pool any more');
    uninitF32(A);
    assert.equal(pooledBytes(), bytes(A) + bytes(C));
  } finally {
    setPoolLimit(Math.min(8 * 2 ** 30, totalmem() / 4));
    drainPool();
  }
});
