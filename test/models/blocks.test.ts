// A LLaMA decoder layer and a BERT encoder layer, forward and backward, against PyTorch-made
// fixtures (scripts/make_fixtures.py), to 1e-4 relative, on every backend.
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

function expectRel(got: Tensor, want: Tensor, what: string, tol = 1e-4): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  // Relative to the tensor's largest entry, floored at 1: some gradients are exactly 0 in
  // exact arithmetic (the key bias cannot change a softmax row) and are float32 noise here.
  let maxAbs = 0;
  for (const v of want.f32) maxAbs = Math.max(maxAbs, Math.abs(v));
  const e = relError(got.f32, want.f32) * Math.max(maxAbs, 1e-30) / Math.max(maxAbs, 1);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
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
      const { y, cap } = llamaBlock(params, '', cfg, x, { cos, sin, capture: { probs: true, scores: true } });
      expectRel(y, t('y'), 'y');
      expectRel(cap.probs!, t('attn_probs'), 'attention probabilities');
      expectRel(cap.scores!, t('attn_scores'), 'attention scores');
      backward(sum(mul(y, t('gy'))));
      expectRel(x.grad!, t('gx'), 'dL/dx');
      for (const [n, p] of params) expectRel(p.grad!, t(`grad.${n}`), `dL/d${n}`);
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
      const { y, cap } = bertBlock(params, '', cfg, x, {
        keyMask, capture: { probs: true, scores: true, context: true, saOut: true, attnOut: true },
      });
      expectRel(y, t('y'), 'y');
      expectRel(cap.context!, t('context'), 'context');
      expectRel(cap.saOut!, t('sa_out'), 'sa_out');
      expectRel(cap.attnOut!, t('attn_out'), 'attn_out');
      expectRel(cap.probs!, t('attn_probs'), 'attention probabilities');
      expectRel(cap.scores!, t('attn_scores'), 'attention scores');
      backward(sum(mul(y, t('gy'))));
      expectRel(x.grad!, t('gx'), 'dL/dx');
      for (const [n, p] of params) expectRel(p.grad!, t(`grad.${n}`), `dL/d${n}`);
    }));
  });
}
