// BERT classification: inputs built as BertTokenizer builds them, and batching with padding +
// attention mask (sorted by length) gives the same predictions as one example at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { bertClassify, bertEncode, bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import type { Model } from '../../src/models/model.js';
import { classificationAccuracy, encodeExample, type ClassifierTokenizer } from '../../src/eval/classification.js';
import type { WeightFn } from '../../src/nn/params.js';
import { Tensor } from '../../src/tensor/index.js';

const negated = (p: Tensor): Tensor => new Tensor(p.f32.map((v) => -v), p.shape);

// One id per word (5 + length), no special tokens of its own: [CLS]=2, [SEP]=3, [PAD]=0.
const tok: ClassifierTokenizer = {
  encode: (s) => s.split(' ').filter(Boolean).map((w) => 5 + (w.length % 20)),
  specials: { cls: 2, sep: 3, pad: 0 },
};

test('encodeExample: [CLS] a [SEP] b [SEP], token types, longest-first truncation', () => {
  assert.deepEqual(encodeExample(tok, { text: 'a bb', label: 0 }, 10), { ids: [2, 6, 7, 3], typeIds: [0, 0, 0, 0], label: 0 });
  assert.deepEqual(encodeExample(tok, { text: 'a', textPair: 'bb ccc', label: 1 }, 10), { ids: [2, 6, 3, 7, 8, 3], typeIds: [0, 0, 0, 1, 1, 1], label: 1 });
  // 6 + 2 tokens into 8 - 3 = 5: the longer part loses tokens from its end until both fit.
  const r = encodeExample(tok, { text: 'a b c d e f', textPair: 'x y', label: 0 }, 8);
  assert.deepEqual(r.ids, [2, 6, 6, 6, 3, 6, 6, 3]);
  assert.deepEqual(r.typeIds, [0, 0, 0, 0, 0, 1, 1, 1]);
  assert.equal(encodeExample(tok, { text: 'a b c d e f g', label: 0 }, 5).ids.length, 5);
});

test('encodeExample in RoBERTa\'s layout: <s> a </s></s> b </s>, no token types; <s>/</s> stand in for [CLS]/[SEP]', () => {
  const bpe: ClassifierTokenizer = { encode: tok.encode, specials: { bos: 0, pad: 1, eos: 2 } };
  const layout = { pairSeparators: 2, tokenTypes: false };
  assert.deepEqual(encodeExample(bpe, { text: 'a', textPair: 'bb ccc', label: 1 }, 10, layout), { ids: [0, 6, 2, 2, 7, 8, 2], typeIds: [0, 0, 0, 0, 0, 0, 0], label: 1 });
  // Truncation leaves room for the extra separator.
  assert.equal(encodeExample(bpe, { text: 'a b c d e f', textPair: 'x y', label: 0 }, 8, layout).ids.length, 8);
  assert.deepEqual(encodeExample(bpe, { text: 'a bb', label: 0 }, 10, layout).ids, [0, 6, 7, 2]);
});

test('classificationAccuracy: batched predictions equal single-example argmax; accuracy counts them', () => {
  const cfg: BertConfig = {
    vocabSize: 30, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 32,
    typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
    initializerRange: 0.5, numLabels: 3,
  };
  const model: Model = { arch: 'bert', config: cfg, params: initParams(bertParamSpec(cfg, { classifier: true }), 2), heads: { mlm: false, classifier: true } };
  const examples = ['one', 'a much longer sentence here with words', 'two words', 'x', 'lorem ipsum dolor sit amet']
    .map((text, i) => (i === 2 ? { text, textPair: 'and a pair', label: i % 3 } : { text, label: i % 3 }));
  const progress: Array<[number, number]> = [];
  const r = classificationAccuracy(model, tok, examples, { batchSize: 4, onBatch: (d, t) => progress.push([d, t]) });
  const single = examples.map((ex) => {
    const { ids, typeIds } = encodeExample(tok, ex, 32);
    const logits = noGrad(() => bertClassify(model.params, cfg, bertEncode(model.params, cfg, intTensor(ids, [1, ids.length]), { tokenTypeIds: intTensor(typeIds, [1, ids.length]) })).f32);
    const l = Array.from(logits);
    return l.indexOf(Math.max(...l));
  });
  assert.deepEqual(r.predictions, single);
  assert.equal(r.n, examples.length);
  assert.equal(r.accuracy, examples.filter((ex, i) => single[i] === ex.label).length / examples.length);
  assert.deepEqual(progress, [[4, 5], [5, 5]]);
  // Other batch sizes give the same result.
  assert.deepEqual(classificationAccuracy(model, tok, examples, { batchSize: 2 }).predictions, single);
  // A weight function (a quantized student's) is applied: an FFN weight negated through it gives
  // the predictions of the model whose weight is negated.
  const W = 'bert.encoder.layer.0.output.dense.weight';
  const neg: WeightFn = (name, p) => (name === W ? negated(p) : p);
  const negParams = new Map(model.params);
  negParams.set(W, negated(model.params.get(W)!));
  const viaWeight = classificationAccuracy(model, tok, examples, { weight: neg }).predictions;
  assert.deepEqual(viaWeight, classificationAccuracy({ ...model, params: negParams }, tok, examples).predictions);
  assert.notDeepEqual(viaWeight, single, 'the negated weight changes the predictions');
  assert.throws(() => classificationAccuracy({ ...model, heads: { mlm: true, classifier: false } } as Model, tok, examples),
    /needs an encoder with a classifier head; this is a BERT encoder \(masked-LM head\); fine-tune it first/);
});
