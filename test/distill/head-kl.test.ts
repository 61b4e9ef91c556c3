// The fused, chunked logits KL (tensor/ops/head-kl.ts; `pred` through distillLoss) against the
// dense path it replaces (klDiv on x·Wᵀ): value and gradients, τ ≠ 1, row weights / padding,
// chunk sizes that split the rows unevenly, 1 and 2 threads, both backends; against finite
// differences; and on whole decoders (tied and untied heads, fake-quantized head weight) where
// the gradient must reach every parameter exactly as the dense path sends it.
//
// Bound (test/tolerance.ts): both paths compute the same math with the same kernels, the
// GEMMs blocked differently (a chunk of rows vs all rows), so each is within chainBound of the
// exact value and they differ by at most reorderBound. Loss: 5 float32 stages (the logits GEMM,
// then the log-softmax KL's max, exp-sum, log, difference), n = max(C, V), κ = 2 (the KL's
// Σ|terms| ≤ 2× its value, as test/distill/losses.test.ts states). Gradients: 6 stages (+ the
// dx / dW GEMM), n = the longest reduction max(C, V, rows), κ = KAPPA_MATMUL, relative to the
// gradient's scale. Model level: the forward and backward through L layers (forwardDepth).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Rng, Tensor, backward, gather, getThreads, headKlDiv, intTensor, klDiv, linear, noGrad, nativeAvailable, setThreads,
} from '../../src/tensor/index.js';
import { drainPool, freshBytes } from '../../src/tensor/storage.js';
import { captureFor, distillLoss } from '../../src/distill/losses.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { architecture } from '../../src/models/registry.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { prepare } from '../../src/quant/prepare.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import type { Model } from '../../src/models/model.js';
import { BACKENDS, onBackend } from '../backends.js';
import { expectWithin } from '../bounds.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound, scaleOf } from '../tolerance.js';
import { gradCheck, param } from '../gradcheck.js';

const leaf = (shape: number[], rng: Rng, s: number, grad: boolean): Tensor => {
  const t = param(shape, rng, s);
  t.requiresGrad = grad;
  return t;
};

/** Dense reference: klDiv(x_t·W_tᵀ, x_s·W_sᵀ) with gradients to x_s and W_s. */
function dense(xt: Tensor, wt: Tensor | null, xs: Tensor, ws: Tensor, tau: number, w?: Float32Array): { loss: number; gx: Float32Array; gw: Float32Array } {
  xs.grad = null; ws.grad = null;
  const t = wt ? noGrad(() => linear(xt, wt)) : xt;
  const l = klDiv(t, linear(xs, ws), tau, w);
  backward(l);
  return { loss: l.item(), gx: xs.grad!.f32.slice(), gw: ws.grad!.f32.slice() };
}

function fused(xt: Tensor, wt: Tensor | null, xs: Tensor, ws: Tensor, tau: number, w?: Float32Array, chunk?: number): { loss: number; gx: Float32Array; gw: Float32Array } {
  xs.grad = null; ws.grad = null;
  const l = headKlDiv(wt ? { x: xt, weight: wt } : xt, { x: xs, weight: ws }, tau, w, chunk);
  backward(l);
  return { loss: l.item(), gx: xs.grad!.f32.slice(), gw: ws.grad!.f32.slice() };
}

for (const backend of BACKENDS) {
  for (const threads of [1, 2]) {
    test(`headKlDiv equals klDiv on x·Wᵀ (τ, row weights, chunks, teacher head or logits) on ${backend}, ${threads} thread(s)`, () => onBackend(backend, () => {
      const before = nativeAvailable() ? getThreads() : 1;
      if (nativeAvailable()) setThreads(threads);
      try {
        const rng = new Rng(11);
        const B = 3, T = 5, C = 24, V = 67, rows = B * T;
        const xs = leaf([B, T, C], rng, 1, true), ws = leaf([V, C], rng, 0.3, true);
        const xt = leaf([B, T, C], rng, 1, false), wt = leaf([V, C], rng, 0.3, false);
        const mask = new Float32Array(rows).fill(1);
        for (const r of [4, 9, 10, 14]) mask[r] = 0; // padding rows, not contiguous
        const lossTol = (l: number): number => reorderBound(5, Math.max(C, V), 2) * Math.abs(l);
        const gradTol = (g: Float32Array): number => reorderBound(6, Math.max(C, V, rows), KAPPA_MATMUL) * scaleOf(g);
        for (const tau of [1, 2.5]) {
          for (const w of [undefined, mask]) {
            for (const teacherHead of [true, false]) {
              const tIn = teacherHead ? xt : noGrad(() => linear(xt, wt));
              const want = dense(tIn, teacherHead ? wt : null, xs, ws, tau, w);
              for (const chunk of [undefined, 1, 4, rows]) {
                const what = `τ ${tau}, ${w ? 'masked' : 'all rows'}, teacher ${teacherHead ? 'head' : 'logits'}, chunk ${chunk ?? 'default'}`;
                const got = fused(tIn, teacherHead ? wt : null, xs, ws, tau, w, chunk);
                expectWithin([got.loss], [want.loss], lossTol(want.loss), `loss (${what})`);
                expectWithin(got.gx, want.gx, gradTol(want.gx), `∂/∂x (${what})`);
                expectWithin(got.gw, want.gw, gradTol(want.gw), `∂/∂W (${what})`);
                if (w) for (const r of [4, 9, 10, 14]) for (let c = 0; c < C; c++) assert.equal(got.gx[r * C + c], 0, 'a padding row gets no gradient');
              }
            }
          }
        }
      } finally {
        if (nativeAvailable()) setThreads(before);
      }
    }));
  }
}

test('headKlDiv gradients match finite differences (τ = 2, masked rows, 2-row chunks)', () => {
  const rng = new Rng(5);
  const xs = leaf([2, 3, 6], rng, 1, true), ws = leaf([9, 6], rng, 0.5, true);
  const xt = leaf([2, 3, 6], rng, 1, false), wt = leaf([9, 6], rng, 0.5, false);
  const w = Float32Array.of(1, 1, 0, 1, 1, 1);
  gradCheck('headKlDiv', (x, W) => headKlDiv({ x: xt, weight: wt }, { x, weight: W }, 2, w, 2), [xs, ws], { n: 9 * 6 });
});

test('headKlDiv: an upstream gradient ≠ 1 scales dx and dW; no gradient is made without recording', () => {
  const rng = new Rng(3);
  const xs = leaf([4, 8], rng, 1, true), ws = leaf([10, 8], rng, 0.5, true);
  const xt = leaf([4, 8], rng, 1, false), wt = leaf([10, 8], rng, 0.5, false);
  const a = fused(xt, wt, xs, ws, 1.5);
  xs.grad = null; ws.grad = null;
  backward(headKlDiv({ x: xt, weight: wt }, { x: xs, weight: ws }, 1.5), new Tensor(Float32Array.of(-3), []));
  for (const [g, ref] of [[xs.grad!.f32, a.gx], [ws.grad!.f32, a.gw]] as const) {
    expectWithin(g, Float32Array.from(ref, (v) => -3 * v), reorderBound(1, 1, 1) * 3 * scaleOf(ref), 'scaled gradient');
  }
  const off = noGrad(() => headKlDiv({ x: xt, weight: wt }, { x: xs, weight: ws }, 1.5));
  assert.equal(off.requiresGrad, false);
  assert.equal(off.item(), a.loss, 'the value does not depend on whether gradients are made');
});

test('headKlDiv refuses a teacher that requires a gradient, and mismatched shapes', () => {
  const rng = new Rng(1);
  const xs = leaf([4, 8], rng, 1, true), ws = leaf([10, 8], rng, 0.5, true);
  assert.throws(() => headKlDiv({ x: xs, weight: ws }, { x: xs, weight: ws }), /teacher is a target/);
  const xt = leaf([4, 8], rng, 1, false), wt = leaf([11, 8], rng, 0.5, false);
  assert.throws(() => headKlDiv({ x: xt, weight: wt }, { x: xs, weight: ws }), /does not match/);
  assert.throws(() => headKlDiv(leaf([4, 11], rng, 1, false), { x: xs, weight: ws }), /do not match/);
});

// The fused loss computes its gradients during the forward and hands them to the backward pass
// (storage.ts handOver), which then owns them: a weight leaf that an embedding lookup reads too
// (a tied embedding) gets the two gradients added in place into one of them. Before, the pass
// took them for the caller's and summed them into a third V × C buffer (108 MiB per step at
// SmolLM2's shape). The sum is the same either way (one float addition per element).
test('headKlDiv hands its gradients to backward: a tied weight leaf gets both gradients summed in place, no third V × C buffer', () => {
  const rng = new Rng(21);
  const B = 2, T = 5, C = 16, V = 300;
  const W = leaf([V, C], rng, 0.3, true);
  const ids = intTensor(Int32Array.from({ length: B * T }, () => rng.int(V)), [B, T]);
  const xt = leaf([B, T, C], rng, 1, false), wt = leaf([V, C], rng, 0.3, false);
  const gradOf = (lookup: 'W' | 'copy', head: 'W' | 'copy'): { g: Float32Array; fresh: number } => {
    W.grad = null;
    const copy = new Tensor(W.f32.slice(), W.shape);
    const x = gather(lookup === 'W' ? W : copy, ids);
    const l = headKlDiv({ x: xt, weight: wt }, { x, weight: head === 'W' ? W : copy }, 1.5);
    drainPool(); // every buffer the pass asks for is then a new one
    const f0 = freshBytes();
    backward(l);
    return { g: W.grad!.f32.slice(), fresh: freshBytes() - f0 };
  };
  const viaHead = gradOf('copy', 'W').g, viaLookup = gradOf('W', 'copy').g;
  const both = gradOf('W', 'W');
  assert.deepEqual(both.g, viaHead.map((v, i) => Math.fround(v + viaLookup[i])), 'the two gradients, summed once');
  assert.ok(both.fresh < 2 * V * C * 4, `the pass made ${both.fresh} bytes: the lookup's gradient and no second V × C buffer`);
});

// ---- whole decoders through distillLoss -------------------------------------------------------

const cfg = (tied: boolean): LlamaConfig => ({
  vocabSize: 96, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
  rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 16, tieWordEmbeddings: tied, initializerRange: 0.1,
});

for (const backend of BACKENDS) {
  for (const tied of [true, false]) {
    test(`distillLoss 'pred' fused equals dense on a ${tied ? 'tied' : 'untied'} decoder with a 4-bit head (τ 2, padding) on ${backend}`, () => onBackend(backend, () => {
      const config = cfg(tied);
      const rec = architecture('llama');
      const tParams = initParams(llamaParamSpec(config), 1);
      for (const p of tParams.values()) p.requiresGrad = false;
      const teacher = { arch: 'llama', config, params: tParams } as Model;
      const sParams: Params = new Map([...tParams].map(([k, v]) => [k, new Tensor(v.f32.slice(), v.shape, true)]));
      const student = { arch: 'llama', config, params: sParams } as Model;
      // Every Linear and the head fake-quantized (the head weight is the tied embedding when tied).
      const prepared = prepare(student, { ...QUANT_PRESETS['w4-g32'], modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'] });
      assert.ok(prepared.quantized.has(tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), 'the head is quantized');
      const B = 2, T = 7;
      const rng = new Rng(9);
      const ids = intTensor(Int32Array.from({ length: B * T }, () => rng.int(config.vocabSize)), [B, T]);
      const mask = intTensor(Int32Array.from({ length: B * T }, (_, i) => (i >= T + 4 ? 0 : 1)), [B, T]);
      const w = { pred: 1 };
      const capture = captureFor(w, 'llama');
      const run = (fusedOn: boolean): { loss: number; grads: Map<string, Float32Array>; dense: boolean } => {
        for (const p of sParams.values()) p.grad = null;
        const t = noGrad(() => rec.forward(teacher, { ids, mask }, { capture }));
        const s = rec.forward(student, { ids, mask }, { capture, weight: prepared.weight });
        const r = distillLoss(s, t, w, { arch: 'llama', tau: 2, mask, fused: fusedOn });
        backward(r.total);
        return { loss: r.total.item(), grads: new Map([...sParams].map(([k, p]) => [k, p.grad!.f32.slice()])), dense: s.head!.logits !== null };
      };
      const want = run(false), got = run(true);
      assert.equal(want.dense, true);
      assert.equal(got.dense, false, 'the fused path never computed the (B, T, V) logits');
      const n = Math.max(config.vocabSize, config.intermediateSize, B * T);
      const depth = 2 * forwardDepth(config.numHiddenLayers) + 6;
      expectWithin([got.loss], [want.loss], reorderBound(5, n, 2) * want.loss, 'pred');
      for (const [k, g] of want.grads) {
        expectWithin(got.grads.get(k)!, g, reorderBound(depth, n, KAPPA_MATMUL) * scaleOf(g), `∂pred/∂${k}`);
      }
      // The head's gradient reached its parameter (through the fake quantizer's STE) either way.
      const head = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
      assert.ok(scaleOf(got.grads.get(head)!) > 0);
    }));
  }
}

test("distillLoss keeps the dense path when 'ce' reads the logits", () => {
  const config = cfg(true);
  const rec = architecture('llama');
  const params = initParams(llamaParamSpec(config), 2);
  const m = { arch: 'llama', config, params } as Model;
  const ids = intTensor(Int32Array.from({ length: 8 }, (_, i) => i * 7 % 96), [1, 8]);
  const labels = intTensor(Int32Array.from({ length: 8 }, (_, i) => (i * 5 + 1) % 96), [1, 8]);
  const t = noGrad(() => rec.forward(m, { ids }));
  const s = rec.forward(m, { ids });
  const r = distillLoss(s, t, { pred: 1, ce: 1 }, { arch: 'llama', labels });
  assert.ok(s.head!.logits, 'ce computed the dense logits, pred reused them');
  const want = klDiv(t.logits, s.logits).item();
  assert.equal(r.terms.pred!.item(), want);
});
