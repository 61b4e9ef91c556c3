// A LLaMA decoder layer and a BERT encoder layer, forward and backward, against PyTorch-made
// fixtures (scripts/make_fixtures.py), on every backend, to a float32 rounding bound
// (test/tolerance.ts chainBound) rather than a figure observed on one CPU.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor, backward, intTensor, sum, mul } from '../../src/tensor/index.js';
import { llamaBlock, type LlamaConfig } from '../../src/models/llama.js';
import { bertBlock, type BertConfig } from '../../src/models/bert.js';
import { ropeTables } from '../../src/tensor/ops/nn.js';
import type { Params } from '../../src/nn/params.js';
import { relError } from '../util.js';
import { chainBound, withMatmulMagnitudes } from '../tolerance.js';
import { BACKENDS, onBackend } from '../backends.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

function load(file: string): { t: (n: string) => Tensor; meta: Record<string, unknown>; names: string[] } {
  const { tensors, metadata } = readSafetensors(fixture(`${file}.safetensors`), { float32: true });
  for (const [k, v] of readSafetensors(fixture(`${file}_grads.safetensors`), { float32: true }).tensors) tensors.set(k, v);
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    try {
      meta[k] = JSON.parse(v);
    } catch {
      meta[k] = v;
    }
  }
  const t = (n: string): Tensor => {
    const x = tensors.get(n);
    assert.ok(x, `fixture ${file} has no tensor '${n}'`);
    return new Tensor(x.data as Float32Array, x.shape);
  };
  return { t, meta, names: [...tensors.keys()] };
}

function paramsFrom(names: string[], t: (n: string) => Tensor): Params {
  const p: Params = new Map();
  for (const n of names) {
    if (/^(x|y|gy|gx|h|mask|rope_\w+|attn_\w+|context|sa_out)$|^grad\./.test(n)) continue;
    const x = t(n);
    p.set(n, new Tensor(x.f32.slice(), x.shape, true));
  }
  return p;
}

// Longest chains of dependent float32 stages (a stage: one reduction or one elementwise
// rounding; norms count mean/variance/scale, softmax max-exp/normalize):
//   LLaMA forward: rmsnorm 2, q/k/v 1, RoPE 1, scores 1, softmax 2, P·V 1, o_proj 1, +x 1,
//     rmsnorm 2, gate/up 1, silu·up 1, down 1, +h 1 = 16;
//   BERT forward: q/k/v 1, scores 1, softmax 2, P·V 1, dense 1, +x 1, LayerNorm 3,
//     intermediate 1, gelu 1, output.dense 1, +a 1, LayerNorm 3 = 17.
// The backward of a stage is at most two dependent steps (e.g. a matmul's dX and dW, a norm's
// two row reductions), so a gradient is at most 3× the forward depth. The longest reduction
// n is the intermediate size (96, 128): the attention reductions (D = 16, T = 7) and the weight
// gradients' (B·T = 14) are shorter. κ is measured on the products themselves
// (withMatmulMagnitudes) — a property of the fixture data, not of the CPU.
const DEPTH = { llama: 16, bert: 17 } as const;

/** Asserts the relative error (to max(1, max|want|)) is within tol (chainBound). */
function expectRel(got: Tensor, want: Tensor, what: string, tol: number): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  // Relative to the tensor's largest entry, floored at 1: some gradients are exactly 0 in
  // exact arithmetic (the key bias cannot change a softmax row) and are float32 noise here.
  const e = relErrorTo1(got, want);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > bound ${tol.toExponential(2)}`);
}

function relErrorTo1(got: Tensor, want: Tensor): number {
  let maxAbs = 0;
  for (const v of want.f32) maxAbs = Math.max(maxAbs, Math.abs(v));
  return relError(got.f32, want.f32) * Math.max(maxAbs, 1e-30) / Math.max(maxAbs, 1);
}

for (const be of BACKENDS) {
  describe(`model blocks vs PyTorch (${be})`, () => {
    it('LLaMA decoder layer: forward, input and parameter gradients, attention', () => onBackend(be, () => {
      const { t, meta, names } = load('llama_block');
      const num = (k: string): number => Number(meta[k]);
      const C = num('hidden_size'), H = num('num_attention_heads');
      const cfg: LlamaConfig = {
        vocabSize: 1, hiddenSize: C, intermediateSize: num('intermediate_size'), numHiddenLayers: 1,
        numAttentionHeads: H, numKeyValueHeads: num('num_key_value_heads'), rmsNormEps: num('rms_norm_eps'),
        ropeTheta: num('rope_theta'), maxPositionEmbeddings: 4096, tieWordEmbeddings: true, initializerRange: 0.02,
      };
      const params = paramsFrom(names, t);
      const xf = t('x');
      const x = new Tensor(xf.f32.slice(), xf.shape, true);
      const T = x.shape[1];
      const { cos, sin } = ropeTables(T, C / H, cfg.ropeTheta);
      const { result: { y, cap }, kappa } = withMatmulMagnitudes(() => {
        const out = llamaBlock(params, '', cfg, x, { cos, sin, capture: { probs: true, scores: true } });
        backward(sum(mul(out.y, t('gy'))));
        return out;
      });
      const n = num('intermediate_size');
      const fwd = chainBound(DEPTH.llama, n, kappa), bwd = chainBound(3 * DEPTH.llama, n, kappa);
      expectRel(y, t('y'), 'y', fwd);
      expectRel(cap.probs!, t('attn_probs'), 'attention probabilities', fwd);
      expectRel(cap.scores!, t('attn_scores'), 'attention scores', fwd);
      expectRel(x.grad!, t('gx'), 'dL/dx', bwd);
      for (const [n, p] of params) expectRel(p.grad!, t(`grad.${n}`), `dL/d${n}`, bwd);
      // Teeth: o_proj off by 1 % moves y by far more than the bound.
      const o = 'self_attn.o_proj.weight', w = params.get(o)!;
      params.set(o, new Tensor(w.f32.map((v) => v * 1.01), w.shape));
      const yBad = llamaBlock(params, '', cfg, x, { cos, sin }).y;
      assert.ok(relErrorTo1(yBad, t('y')) > 10 * fwd, `a 1 % o_proj error is within the bound ${fwd}`);
    }));

    it('BERT encoder layer with padding: forward, gradients, attention sub-layer outputs', () => onBackend(be, () => {
      const { t, meta, names } = load('bert_block');
      const num = (k: string): number => Number(meta[k]);
      const cfg: BertConfig = {
        vocabSize: 1, hiddenSize: num('hidden_size'), numHiddenLayers: 1, numAttentionHeads: num('num_attention_heads'),
        intermediateSize: num('intermediate_size'), maxPositionEmbeddings: 512, typeVocabSize: 2,
        layerNormEps: num('layer_norm_eps'), hiddenAct: 'gelu', hiddenDropoutProb: 0, attentionProbsDropoutProb: 0,
        initializerRange: 0.02, numLabels: 0,
      };
      const params = paramsFrom(names, t);
      const xf = t('x');
      const x = new Tensor(xf.f32.slice(), xf.shape, true);
      const maskF = t('mask');
      const keyMask = intTensor(Int32Array.from(maskF.data, (v) => (v ? 1 : 0)), maskF.shape);
      const capture = { probs: true, scores: true, context: true, saOut: true, attnOut: true };
      const { result: { y, cap }, kappa } = withMatmulMagnitudes(() => {
        const out = bertBlock(params, '', cfg, x, { keyMask, capture });
        backward(sum(mul(out.y, t('gy'))));
        return out;
      });
      const n = cfg.intermediateSize;
      const fwd = chainBound(DEPTH.bert, n, kappa), bwd = chainBound(3 * DEPTH.bert, n, kappa);
      expectRel(y, t('y'), 'y', fwd);
      expectRel(cap.context!, t('context'), 'context', fwd);
      expectRel(cap.saOut!, t('sa_out'), 'sa_out', fwd);
      expectRel(cap.attnOut!, t('attn_out'), 'attn_out', fwd);
      expectRel(cap.probs!, t('attn_probs'), 'attention probabilities', fwd);
      expectRel(cap.scores!, t('attn_scores'), 'attention scores', fwd);
      expectRel(x.grad!, t('gx'), 'dL/dx', bwd);
      for (const [n, p] of params) expectRel(p.grad!, t(`grad.${n}`), `dL/d${n}`, bwd);
      // Teeth: the output LayerNorm's weight off by 1 % moves y by far more than the bound.
      const g = 'output.LayerNorm.weight', gain = params.get(g)!;
      params.set(g, new Tensor(gain.f32.map((v) => v * 1.01), gain.shape));
      const yBad = bertBlock(params, '', cfg, x, { keyMask }).y;
      assert.ok(relErrorTo1(yBad, t('y')) > 10 * fwd, `a 1 % output.LayerNorm.weight error is within the bound ${fwd}`);
    }));
  });
}
