// Multiple-choice scoring: right padding must not change causal scores (batch-size invariance),
// acc_norm divides by the choice's characters (lm-evaluation-harness), empty contexts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intTensor, noGrad, logSoftmax } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { lmLogits, type Model } from '../../src/models/model.js';
import { scoreMultipleChoice } from '../../src/eval/multiple-choice.js';
import type { MultipleChoiceRecord } from '../../src/data/types.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound } from '../tolerance.js';

const CFG: LlamaConfig = {
  vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
  rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 40, tieWordEmbeddings: true, initializerRange: 0.3,
};
const model: Model = { arch: 'llama', config: CFG, params: initParams(llamaParamSpec(CFG), 3) };
// One token per character (codes 32..95), so lengths are easy to control.
const tok = { encode: (s: string): number[] => [...s].map((c) => (c.charCodeAt(0) - 32) & 63) };

const RECORDS: MultipleChoiceRecord[] = [
  { context: 'THE RIVER FLOWS TO THE', choices: ['SEA', 'MILL', 'A VERY LONG ANSWER'], label: 0 },
  { context: 'A', choices: ['B', 'CD'], label: 1 },
  { context: 'SHIPS SAIL ACROSS THE WIDE AND DEEP', choices: ['OCEAN', 'FIELD', 'X', 'YY'], label: 0 },
  { context: 'WIND', choices: ['IS STRONG', 'IS'], label: 0 },
  { context: 'A LONG CONTEXT THAT WILL BE CUT FROM THE LEFT TO FIT THE MODEL', choices: ['END', 'STOP'], label: 1 },
  // 45 tokens with the delimiter > 40 positions: scored on its last 40 targets.
  { context: 'LONG CHOICE', choices: ['SHORT', 'AN ANSWER LONGER THAN ALL OF THE POSITIONS!!!'.slice(0, 44)], label: 0 },
];

test('scores are identical with batch size 1 and 16 (right padding does not change causal results)', () => {
  const one = scoreMultipleChoice(model, tok, RECORDS, { batchSize: 1 });
  const many = scoreMultipleChoice(model, tok, RECORDS, { batchSize: 16 });
  const three = scoreMultipleChoice(model, tok, RECORDS, { batchSize: 3 });
  assert.deepEqual(many.scores, one.scores);
  assert.deepEqual(three.scores, one.scores);
  assert.deepEqual(many.predictions, one.predictions);
  assert.ok(one.scores.flat().every((s) => Number.isFinite(s) && s < 0));
  assert.equal(one.truncatedChoices, 1);
});

test('each score is the summed log-softmax of the continuation tokens of a lone forward pass', () => {
  const r = scoreMultipleChoice(model, tok, RECORDS, { batchSize: 4 });
  for (const [i, rec] of RECORDS.entries()) {
    rec.choices.forEach((c, j) => {
      let ids = [...tok.encode(rec.context), ...tok.encode(` ${c}`)];
      const contStart = ids.length - tok.encode(` ${c}`).length;
      const cut = Math.max(0, ids.length - (CFG.maxPositionEmbeddings + 1)); // left truncation
      ids = ids.slice(cut);
      const T = ids.length - 1, V = CFG.vocabSize;
      const logp = noGrad(() => logSoftmax(lmLogits(model, intTensor(ids.slice(0, -1), [1, T]))).f32);
      let s = 0;
      for (let p = Math.max(1, contStart - cut); p < ids.length; p++) s += logp[(p - 1) * V + ids[p]];
      // Batched scoring vs a lone forward: the same math in other shapes (reorderBound); each
      // log-probability is off by at most that relative to the logits' scale (≤ its own
      // magnitude + 1), and the score sums them (float64).
      const k = ids.length - Math.max(1, contStart - cut);
      const tol = reorderBound(forwardDepth(CFG.numHiddenLayers), Math.max(CFG.intermediateSize, T), KAPPA_MATMUL) * (Math.abs(s) + k);
      assert.ok(Math.abs(r.scores[i][j] - s) <= tol, `item ${i} choice ${j}: ${r.scores[i][j]} vs ${s} (bound ${tol})`);
    });
  }
});

test('partial scoring (Winogrande): the same continuation after each choice, the choice cut from the left to fit', () => {
  const recs: MultipleChoiceRecord[] = [
    { context: '', choices: ['I POURED WATER INTO THE CUP UNTIL THE BOTTLE', 'I POURED WATER INTO THE CUP UNTIL THE CUP'], continuation: 'WAS FULL.', label: 1 },
    { context: '', choices: ['A', 'AN OPTION SO LONG THAT IT DOES NOT FIT BEFORE ITS CONTINUATION'], continuation: 'ENDS HERE', label: 0 },
  ];
  const r = scoreMultipleChoice(model, tok, recs, { batchSize: 3 });
  const V = CFG.vocabSize;
  recs.forEach((rec, i) => rec.choices.forEach((c, j) => {
    const cont = tok.encode(` ${rec.continuation}`);
    let ids = [...tok.encode(c), ...cont];
    ids = ids.slice(Math.max(0, ids.length - (CFG.maxPositionEmbeddings + 1)));
    const start = ids.length - cont.length, T = ids.length - 1;
    const logp = noGrad(() => logSoftmax(lmLogits(model, intTensor(ids.slice(0, -1), [1, T]))).f32);
    let s = 0;
    for (let p = start; p < ids.length; p++) s += logp[(p - 1) * V + ids[p]];
    // As above: a lone forward against the batched one (reorderBound), summed over the continuation.
    const tol = reorderBound(forwardDepth(CFG.numHiddenLayers), Math.max(CFG.intermediateSize, T), KAPPA_MATMUL) * (Math.abs(s) + cont.length);
    assert.ok(Math.abs(r.scores[i][j] - s) <= tol, `item ${i} choice ${j}: ${r.scores[i][j]} vs ${s} (bound ${tol})`);
  }));
  assert.equal(r.truncatedChoices, 0);
});

test('acc picks the largest sum, acc_norm the largest sum per character of the choice', () => {
  const r = scoreMultipleChoice(model, tok, RECORDS);
  RECORDS.forEach((rec, i) => {
    const s = r.scores[i];
    const best = s.indexOf(Math.max(...s));
    const norm = s.map((x, j) => x / [...rec.choices[j]].length); // without the " " delimiter; code points, as Python's len
    assert.equal(r.predictions[i].acc, best);
    assert.equal(r.predictions[i].accNorm, norm.indexOf(Math.max(...norm)));
  });
  const acc = RECORDS.filter((rec, i) => r.predictions[i].acc === rec.label).length / RECORDS.length;
  assert.equal(r.acc, acc);
  assert.equal(r.n, RECORDS.length);
});

test('the pair is encoded as the harness does: whole, the context\'s trailing spaces moved to the continuation', () => {
  // A tokenizer that marks the start of every text (as SentencePiece's "▁" prefix does): the
  // choice encoded alone would begin with the mark, in the pair it does not.
  const marked = { encode: (s: string): number[] => (s === '' ? [] : [63, ...tok.encode(s)]) };
  const recs: MultipleChoiceRecord[] = [
    { context: 'THE RIVER FLOWS TO THE', choices: ['SEA', 'MILL'], label: 0 },
    { context: 'WIND  ', choices: ['IS STRONG', 'IS'], label: 0 },
  ];
  const r = scoreMultipleChoice(model, marked, recs, { batchSize: 4 });
  const V = CFG.vocabSize;
  recs.forEach((rec, i) => rec.choices.forEach((c, j) => {
    const ctx = rec.context.trimEnd();
    const ids = marked.encode(`${rec.context} ${c}`); // = ctx + moved spaces + " " + choice
    const start = marked.encode(ctx).length, T = ids.length - 1;
    const logp = noGrad(() => logSoftmax(lmLogits(model, intTensor(ids.slice(0, -1), [1, T]))).f32);
    let s = 0;
    for (let p = start; p < ids.length; p++) s += logp[(p - 1) * V + ids[p]];
    const tol = reorderBound(forwardDepth(CFG.numHiddenLayers), Math.max(CFG.intermediateSize, T), KAPPA_MATMUL) * (Math.abs(s) + ids.length - start);
    assert.ok(Math.abs(r.scores[i][j] - s) <= tol, `item ${i} choice ${j}: ${r.scores[i][j]} vs ${s} (bound ${tol})`);
  }));
});

test('an empty context is predicted from the prefix token; without one it is an error', () => {
  const recs: MultipleChoiceRecord[] = [{ context: '', choices: ['AB', 'CD'], label: 0 }];
  const r = scoreMultipleChoice(model, tok, recs, { prefixId: 5 });
  const withCtx = scoreMultipleChoice(model, tok, [{ ...recs[0], context: '%' }]); // '%' is token 5
  assert.deepEqual(r.scores, withCtx.scores);
  assert.throws(() => scoreMultipleChoice(model, tok, recs), /item 0: the context is empty and no prefix token/);
});
