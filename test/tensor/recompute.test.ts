// Activation recomputation (src/tensor/recompute.ts), all of a block or all but its GEMMs
// (selective): the same values and gradients bit for bit as the plain graph — the second
// forward runs the same deterministic kernels on the same inputs, or takes the first forward's
// GEMM outputs, so there is no rounding bound to state: any difference is a bug — and less
// memory held between forward and backward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Tensor, backward, matmul, zeros, noGrad, recompute, rmsNorm, silu, sum, mul, add, withCompute, withRecompute, bf16Unavailable, computePrecision, type RecomputeMode } from '../../src/tensor/index.js';
import { kernelOf, registerKernels } from '../../src/tensor/registry.js';
import { headPrecision } from '../../src/tensor/compute.js';
import { drainPool } from '../../src/tensor/storage.js';
import { backwardFrom } from '../../src/tensor/autograd.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import type { Architecture, ModelSizes } from '../../src/models/architecture.js';
import type { Model } from '../../src/models/model.js';
import type { LossWeights } from '../../src/distill/losses.js';
import { familyModel, randomIds } from '../quant/models.js';
import { randomF32 } from '../util.js';
import { forwardDepth, reorderBound, scaleOf } from '../tolerance.js';
import { BACKENDS, onBackend } from '../backends.js';
import { B, SIZES, T, bitsEqual, kdStep, tinyPair } from './kd-step.js';

/** Runs fn counting the calls of the reference GEMM kernel (fn runs on the reference backend). */
function countingGemms<T>(fn: () => T): { result: T; gemms: number } {
  const orig = kernelOf('ref', 'matmul')!;
  let gemms = 0;
  registerKernels('ref', { matmul: ((...args: Parameters<typeof orig>) => { gemms++; return orig(...args); }) as typeof orig });
  try {
    let result: T | undefined;
    onBackend('ref', () => { result = fn(); });
    return { result: result as T, gemms };
  } finally {
    registerKernels('ref', { matmul: orig });
  }
}

for (const mode of ['all', 'selective'] as const) {
  test(`recompute (${mode}): two outputs (one unused), a parameter inside, an input without a gradient; the GEMMs it runs`, () => {
    const run = (re: boolean) => countingGemms(() => {
      const w = new Tensor(randomF32(8 * 8, new Rng(2), 0.5), [8, 8], true);
      const g = new Tensor(randomF32(8, new Rng(3)), [8], true);
      const x = new Tensor(randomF32(4 * 8, new Rng(4)), [4, 8], true);
      const c = new Tensor(randomF32(4 * 8, new Rng(5)), [4, 8]); // no gradient
      const block = ([xi, ci]: readonly Tensor[]): Tensor[] => {
        const h = silu(matmul(rmsNorm(xi, g, 1e-5), w));
        return [add(mul(h, ci), xi), h];
      };
      const [y, h] = re ? recompute(block, [x, c], { selective: mode === 'selective' }) : block([x, c]);
      assert.ok(!re || h.requiresGrad);
      backward(sum(mul(y, y)));
      return { y: y.f32, gx: x.grad!.f32, gw: w.grad!.f32, gg: g.grad!.f32 };
    });
    const a = run(false), b = run(true);
    bitsEqual(b.result.y, a.result.y, 'y');
    bitsEqual(b.result.gx, a.result.gx, 'dx');
    bitsEqual(b.result.gw, a.result.gw, 'dw');
    bitsEqual(b.result.gg, a.result.gg, 'dg');
    // The plain graph: the forward GEMM and its two gradients. All: the forward's GEMM again in
    // backward. Selective: not again (its output comes from the tape).
    assert.equal(a.gemms, 3);
    assert.equal(b.gemms, mode === 'all' ? 4 : 3);
  });
}

for (const mode of ['all', 'selective'] as const) {
  test(`recompute (${mode}): with release, the block's outputs of both forwards go back to the pool once its node has run; without, or as a root, they stay`, () => {
    const run = (release: boolean, asRoot: boolean) => {
      const w = new Tensor(randomF32(8 * 8, new Rng(2), 0.5), [8, 8], true);
      const x = new Tensor(randomF32(4 * 8, new Rng(4)), [4, 8], true);
      const c = zeros([4, 8]); // an input without a gradient, in pool storage, handed back as an output
      c.f32.set(randomF32(32, new Rng(5)));
      const made: Tensor[][] = []; // what each call of the block returned: first forward, then second
      const block = ([xi, ci]: readonly Tensor[]): Tensor[] => {
        const h = silu(matmul(xi, w));
        const out = [add(h, xi), h];
        made.push(out);
        return [...out, ci];
      };
      const [y, h, cOut] = recompute(block, [x, c], { selective: mode === 'selective' });
      assert.equal(cOut.data.buffer, c.data.buffer);
      const loss = sum(mul(y, h));
      if (asRoot) backwardFrom([loss, y], [new Tensor(Float32Array.of(1), []), new Tensor(new Float32Array(32).fill(0.5), [4, 8])], { release });
      else backward(loss, null, { release });
      assert.equal(c.f32.length, 32, 'an input handed back as an output is never given back');
      return { made, y, h, gx: x.grad!.f32.slice(), gw: w.grad!.f32.slice() };
    };
    const kept = run(false, false);
    assert.equal(kept.made.length, 2, 'the block ran twice');
    for (const t of [...kept.made.flat(), kept.y, kept.h]) assert.equal(t.f32.length, 32, 'without release every output stays readable');
    const freed = run(true, false);
    bitsEqual(freed.gx, kept.gx, 'dx');
    bitsEqual(freed.gw, kept.gw, 'dw');
    freed.made.flat().forEach((t, i) => assert.equal(t.f32.length, 0, `output ${i % 2} of forward ${i < 2 ? 1 : 2} is given back`));
    assert.equal(freed.y.f32.length, 0, "the block's returned y is a view of the first forward's: given back with it");
    // y a root of the pass: its values stay readable (and so the first forward's y, the same buffer).
    const root = run(true, true);
    assert.equal(root.y.f32.length, 32, 'a root stays readable');
    assert.equal(root.made[0][0].f32.length, 32, "the root's buffer stays readable");
  });
}

test('selective recompute: a block that runs another GEMM the second time is refused', () => {
  const w = new Tensor(randomF32(16, new Rng(9)), [4, 4], true);
  const x = new Tensor(randomF32(8, new Rng(10)), [2, 4], true);
  let calls = 0;
  const [y] = recompute(([xi]) => [calls++ === 0 ? matmul(xi, w) : mul(xi, xi)], [x], { selective: true });
  assert.throws(() => backward(sum(y)), /the block's first forward ran 1 GEMMs, its second 0: the block is not a function of its inputs/);
  let shapes = 0;
  const [z] = recompute(([xi]) => [shapes++ === 0 ? matmul(xi, w) : matmul(w, w)], [x], { selective: true });
  assert.throws(() => backward(sum(z)), /GEMM 1 of the block's second forward makes \[4, 4\], its first made \[2, 4\]/);
});

test('recompute under noGrad is the plain function (no graph)', () => {
  const w = new Tensor(randomF32(16, new Rng(7)), [4, 4], true);
  const x = new Tensor(randomF32(8, new Rng(8)), [2, 4]);
  const [y] = noGrad(() => recompute(([xi]) => [matmul(xi, w)], [x]));
  assert.equal(y.node, null);
  assert.equal(y.requiresGrad, false);
});

// Every registered family, KD-QAT with fake-quantized weights (LSQ steps; ternary weights and
// 8-bit activations for encoders), the attention-map taps and, for encoders, dropout.
// Without taps that cross a layer boundary (the layer's output read by the loss as well as by
// the next layer), the loss and every gradient are the same bit for bit with and without
// recomputation. With `rep` (hidden states) such an output sums three gradients — the loss's
// and the next layer's two uses — and recomputation sums the next layer's two first, so the
// gradients are another float32 evaluation of the same sum: both are within chainBound of the
// exact value, hence within reorderBound of each other (test/tolerance.ts).
function compare(name: string, teacher: Model, student: Model, w: LossWeights, exact: boolean, mode: RecomputeMode): void {
  const a = kdStep(teacher, student, w), b = kdStep(teacher, student, w, { recompute: mode });
  assert.ok(Number.isFinite(a.loss) && a.loss > 0);
  bitsEqual(Float32Array.of(b.loss), Float32Array.of(a.loss), 'loss');
  assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys()].sort());
  assert.ok(a.grads.size > 4 * SIZES.layers, `${a.grads.size} gradients`);
  const bound = reorderBound(3 * forwardDepth(SIZES.layers), Math.max(SIZES.intermediate, SIZES.vocab, B * T), Math.max(a.kappa, b.kappa));
  for (const [k, g] of a.grads) {
    const h = b.grads.get(k)!;
    if (exact) bitsEqual(h, g, `${name} (${mode}): d/d${k}`);
    else {
      const scale = Math.max(1, scaleOf(g));
      for (let i = 0; i < g.length; i++) {
        assert.ok(Math.abs(h[i] - g[i]) <= bound * scale, `${name} (${mode}): d/d${k}[${i}] ${h[i]} vs ${g[i]} (bound ${bound.toExponential(2)})`);
      }
    }
  }
}

for (const backend of BACKENDS) {
  for (const name of Object.keys(ARCHITECTURES)) {
    test(`${backend}: ${name}: KD-QAT with layers recomputed (all, selective): loss and gradients bit for bit (pred + attn_map), within reorderBound with rep`, () => {
      onBackend(backend, () => {
        const { teacher, student } = tinyPair(name);
        for (const mode of ['all', 'selective'] as const) {
          compare(name, teacher, student, { pred: 1, attn_map: 0.5 }, true, mode);
          compare(name, teacher, student, { pred: 1, rep: 1 }, false, mode);
        }
      });
    });
  }
}

test("a recomputed block runs again in the forward's GEMM and head precisions", () => {
  const seen: string[] = [];
  const x = new Tensor(Float32Array.of(1, 2, 3, 4), [2, 2], true);
  const [y] = withCompute('fp32', () => recompute(([a]) => {
    seen.push(`${computePrecision()}/${headPrecision().forward}/${headPrecision().backward}`);
    return [mul(a, a)];
  }, [x]), { head: { forward: 'bf16', backward: 'fp32' } });  // scopes only: no GEMM runs, so this needs no AVX512_BF16
  backward(sum(y));
  assert.deepEqual(seen, ['fp32/bf16/fp32', 'fp32/bf16/fp32'], 'forward, then the recomputation in backward');
});

test('bf16 compute: the recomputed layers keep the forward\'s precision', () => {
  const why = bf16Unavailable();
  if (why) {
    // Without AVX512_BF16 the bf16 path is refused (tested in compute.test.ts); nothing to compare.
    assert.throws(() => withCompute('bf16', () => matmul(new Tensor(new Float32Array(4), [2, 2]), new Tensor(new Float32Array(4), [2, 2]))));
    return;
  }
  const { teacher, student } = tinyPair('llama');
  const w: LossWeights = { pred: 1 };
  const a = withCompute('bf16', () => kdStep(teacher, student, w, { preset: 'w4-g32' }));
  const c = kdStep(teacher, student, w, { preset: 'w4-g32' });
  for (const mode of ['all', 'selective'] as const) {
    const b = withCompute('bf16', () => kdStep(teacher, student, w, { recompute: mode, preset: 'w4-g32' }));
    bitsEqual(Float32Array.of(b.loss), Float32Array.of(a.loss), `${mode}: loss`);
    for (const [k, g] of a.grads) bitsEqual(b.grads.get(k)!, g, `${mode}: ${k}`);
  }
  assert.notEqual(c.loss, a.loss, 'fp32 and bf16 losses differ (else this test compares nothing)');
});

test('memory: a recomputed stack holds only the layer inputs between forward and backward; selectively, also the GEMM outputs', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with --expose-gc');
  const big: ModelSizes = { vocab: 64, hidden: 128, layers: 6, heads: 4, kvHeads: 2, intermediate: 512, seq: 64, dropout: 0 };
  const rec = ARCHITECTURES.llama as Architecture;
  const { model } = familyModel('llama', big, 3);
  const ids = randomIds(4, 64, big.vocab);
  // V8 frees ArrayBuffer memory on a background sweeper after a collection: collect, let it
  // run (a macrotask), collect again, before reading the count.
  const settled = async (): Promise<number> => {
    drainPool(); // buffers an earlier backward gave back would otherwise serve this forward
    for (let i = 0; i < 3; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 20));
    }
    return process.memoryUsage().arrayBuffers;
  };
  const held = async (mode: RecomputeMode): Promise<number> => {
    const before = await settled();
    const out = withRecompute(mode, () => rec.forward(model, { ids }, {}));
    const loss = sum(out.head!.x);
    const bytes = (await settled()) - before;
    backward(loss);
    return bytes;
  };
  const all = await held('all'), selective = await held('selective'), plain = await held('off');
  // Per layer the plain graph keeps ≥ 4 (B·T, F) tensors of the MLP alone (gate, silu, up,
  // product: 4 · 256 · 512 · 4 B = 2 MiB); the recomputed one keeps the (B·T, C) layer input
  // (128 KiB) and the output. Selectively it also keeps the GEMM outputs, q (B·T, C), k and v
  // (B·T, C·kvHeads/heads), o and down (B·T, C), gate and up (B·T, F), and nothing else: not
  // silu(gate) or the product (2 (B·T, F) per layer), which the plain graph holds.
  const tokens = 4 * 64, f32 = 4, C = big.hidden, Ckv = (C * big.kvHeads) / big.heads, F = big.intermediate;
  assert.ok(plain >= big.layers * 4 * tokens * F * f32, `plain graph holds ${plain} B`);
  assert.ok(all <= big.layers * 3 * tokens * C * f32 + tokens * C * 4 * f32, `recomputed graph holds ${all} B`);
  const tape = big.layers * tokens * (3 * C + 2 * Ckv + 2 * F) * f32;
  assert.ok(selective >= tape, `selectively recomputed graph holds ${selective} B, its GEMM outputs alone ${tape} B`);
  assert.ok(selective <= all + tape, `selectively recomputed graph holds ${selective} B: more than the recomputed graph (${all} B) and the GEMM outputs (${tape} B)`);
  assert.ok(plain - selective >= big.layers * 2 * tokens * F * f32, `plain ${plain} B, selective ${selective} B`);
});
