// BERT classification accuracy: inputs built as BertTokenizer builds them, and batching with
// padding + attention mask gives the same predictions as one example at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { bertClassify, bertEncode, bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import type { Model } from '../../src/models/model.js';
import { bertInput, classifyAccuracy } from '../../src/eval/classify-accuracy.js';

const SP = { cls: 2, sep: 3, pad: 0 };
const enc = (s: string): number[] => s.split(' ').filter(Boolean).map((w) => 5 + (w.length % 20));

test('bertInput: [CLS] a [SEP] b [SEP], token types, longest-first truncation', () => {
  assert.deepEqual(bertInput(enc, { text: 'a bb', label: 0 }, SP, 10), { ids: [2, 6, 7, 3], types: [0, 0, 0, 0] });
  assert.deepEqual(bertInput(enc, { text: 'a', textPair: 'bb ccc', label: 0 }, SP, 10), { ids: [2, 6, 3, 7, 8, 3], types: [0, 0, 0, 1, 1, 1] });
  // 6 + 2 tokens into 8 - 3 = 5: the longer part loses tokens from its end until both fit.
  const r = bertInput(enc, { text: 'a b c d e f', textPair: 'x y', label: 0 }, SP, 8);
  assert.deepEqual(r.ids, [2, 6, 6, 6, 3, 6, 6, 3]);
  assert.equal(bertInput(enc, { text: 'a b c d e f g', label: 0 }, SP, 5).ids.length, 5);
});

test('classifyAccuracy: batched predictions equal single-example argmax; accuracy counts them', () => {
  const cfg: BertConfig = {
    vocabSize: 30, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 32,
    typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
    initializerRange: 0.5, numLabels: 3,
  };
  const model: Model = { arch: 'bert', config: cfg, params: initParams(bertParamSpec(cfg, { classifier: true }), 2), heads: { mlm: false, classifier: true } };
  const examples = ['one', 'a much longer sentence here with words', 'two words', 'x', 'lorem ipsum dolor sit amet'].map((text, i) => ({ text, label: i % 3 }));
  const r = classifyAccuracy(model, enc, SP, examples, { batchSize: 4 });
  const single = examples.map((ex) => {
    const { ids, types } = bertInput(enc, ex, SP, 32);
    const logits = noGrad(() => bertClassify(model.params, cfg, bertEncode(model.params, cfg, intTensor(ids, [1, ids.length]), { tokenTypeIds: intTensor(types, [1, ids.length]) })).f32);
    const l = Array.from(logits);
    return l.indexOf(Math.max(...l));
  });
  assert.deepEqual(r.predictions, single);
  assert.equal(r.acc, examples.filter((ex, i) => single[i] === ex.label).length / examples.length);
  assert.throws(() => classifyAccuracy({ ...model, heads: { mlm: true, classifier: false } } as Model, enc, SP, examples), /needs a BERT model with a classifier head/);
});
