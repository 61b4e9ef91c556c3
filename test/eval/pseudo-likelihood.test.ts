// Pseudo-log-likelihood (src/eval/pseudo-likelihood.ts): the batched, head-on-masked-rows
// computation equals masking one position at a time and reading the full MLM logits; and it is
// blind to word order exactly when the encoder has no position information.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intTensor, logSoftmax, noGrad, type Tensor } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { lmLogits, type Model } from '../../src/models/model.js';
import { pseudoLogLikelihood } from '../../src/eval/pseudo-likelihood.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound } from '../tolerance.js';

const CFG: BertConfig = {
  vocabSize: 40, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64,
  maxPositionEmbeddings: 24, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, initializerRange: 0.5, numLabels: 0,
};
// Ids 0–3: [PAD] [CLS] [SEP] [MASK].
const MASK = 3, SPECIAL = new Set([0, 1, 2, 3]);
const model = (zeroPositions: boolean): Model => {
  const params = initParams(bertParamSpec(CFG, { mlm: true }), 5);
  if (zeroPositions) params.get('bert.embeddings.position_embeddings.weight')!.f32.fill(0);
  return { arch: 'bert', config: CFG, params, heads: { mlm: true, classifier: false } };
};
const SENT = [1, 4, 9, 17, 4, 30, 22, 8, 2]; // [CLS] … [SEP]
const SWAPPED = [1, 4, 22, 17, 4, 30, 9, 8, 2]; // positions 2 and 6 exchanged

/** Log-probabilities of each scored token, one masked copy and one full forward at a time. */
function oneAtATime(m: Model, ids: number[]): number[] {
  const out: number[] = [];
  noGrad(() => ids.forEach((t, i) => {
    if (SPECIAL.has(t)) return;
    const x = ids.slice();
    x[i] = MASK;
    const lp = logSoftmax(lmLogits(m, intTensor(x, [1, x.length]))).f32; // (1, T, V)
    out.push(lp[i * CFG.vocabSize + t]);
  }));
  return out;
}

// Each log-probability is the same math in two float32 orders (or the same tokens at other
// positions): within reorderBound relative to max(1, |log p|), summed over the scored tokens.
const bound = (lps: number[]): number =>
  lps.reduce((s, lp) => s + reorderBound(forwardDepth(CFG.numHiddenLayers), CFG.intermediateSize, KAPPA_MATMUL) * Math.max(1, Math.abs(lp)), 0);

test('pseudoLogLikelihood: Σ log p(x_t | x with t masked) over the non-special tokens', () => {
  const m = model(false);
  const lps = oneAtATime(m, SENT);
  assert.equal(lps.length, 7);
  const want = lps.reduce((a, b) => a + b, 0);
  const got = pseudoLogLikelihood(m, SENT, MASK, SPECIAL);
  assert.ok(Math.abs(got - want) <= bound(lps), `${got} vs ${want}`);
  assert.ok(got < 0);
  assert.equal(pseudoLogLikelihood(m, [1, 2], MASK, SPECIAL), 0, 'nothing to score');
});

test('pseudoLogLikelihood: word order matters only through the position embeddings', () => {
  const blind = model(true);
  const lps = oneAtATime(blind, SENT);
  const a = pseudoLogLikelihood(blind, SENT, MASK, SPECIAL), b = pseudoLogLikelihood(blind, SWAPPED, MASK, SPECIAL);
  assert.ok(Math.abs(a - b) <= 2 * bound(lps), `no positions: ${a} vs ${b}`);
  const seeing = model(false);
  const c = pseudoLogLikelihood(seeing, SENT, MASK, SPECIAL), d = pseudoLogLikelihood(seeing, SWAPPED, MASK, SPECIAL);
  assert.ok(Math.abs(c - d) > 10 * bound(oneAtATime(seeing, SENT)), `with positions: ${c} vs ${d}, bound ${bound(oneAtATime(seeing, SENT))}`);
});

test('pseudoLogLikelihood: a decoder is refused', () => {
  const llama = { arch: 'llama', config: {}, params: new Map<string, Tensor>() } as unknown as Model;
  assert.throws(() => pseudoLogLikelihood(llama, SENT, MASK, SPECIAL), /masked LM/);
});
