// Tiny random teachers for the reproduce/demo tests, shaped like the built-in ones: a LLaMA with
// a byte-level BPE trained on a few SOTU addresses (the reproduction distills on SOTU), and a
// BERT classifier with the four brown-genre labels and a WordPiece vocab from a few Brown files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { loadCorpus } from '../../src/data/corpora.js';
import { BROWN_GENRE_LABELS } from '../../src/data/brown-genre.js';
import { trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { tmpDir } from '../util.js';

export interface ReproFixture {
  root: string;
  llama: string;
  bert: string;
  cleanup(): void;
}

export function makeReproFixture(prefix: string): ReproFixture {
  const root = tmpDir(prefix);
  const bpe = trainByteLevelBpe(loadCorpus('sotu').documents.slice(0, 8).map((d) => d.text), { vocabSize: 1024, minFrequency: 2 });
  const llamaCfg: LlamaConfig = {
    vocabSize: 1024, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64, tieWordEmbeddings: false, initializerRange: 0.2,
  };
  const llama = path.join(root, 'llama');
  saveModelDir(llama, {
    config: { arch: 'llama', config: llamaCfg, meta: { bosTokenId: 0, eosTokenId: 1 } },
    params: initParams(llamaParamSpec(llamaCfg), 7), tokenizerJson: bpe,
  });
  const wp = trainWordPiece(loadCorpus('brown').documents.slice(0, 10).map((d) => d.text), { vocabSize: 400, minFrequency: 2 });
  const bertCfg: BertConfig = {
    vocabSize: 400, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 64,
    typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
    initializerRange: 0.2, numLabels: 4,
  };
  const bert = path.join(root, 'bert');
  saveModelDir(bert, {
    config: { arch: 'bert', config: bertCfg, meta: { head: 'classifier', labels: BROWN_GENRE_LABELS } },
    params: initParams(bertParamSpec(bertCfg, { classifier: true }), 8), tokenizerJson: wp,
  });
  return { root, llama, bert, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}
