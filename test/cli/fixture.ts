// Tiny model directories for the command tests: a random LLaMA with a byte-level BPE trained on
// a few sentences, and a random BERT classifier with a WordPiece vocab. Built in a temp dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { tmpDir } from '../util.js';

export const TEXT = [
  'The river flows to the sea, and the sea sings back to the river.',
  'A quick brown fox jumps over the lazy dog near the old mill.',
  'In the morning the farmers walk to the fields with their tools.',
  'Ships sail across the ocean when the wind is strong and steady.',
].join(' ');

export const LLAMA_CFG: LlamaConfig = {
  vocabSize: 320, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
  rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64, tieWordEmbeddings: false, initializerRange: 0.2,
};

export const BERT_CFG: BertConfig = {
  vocabSize: 120, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 64,
  typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
  initializerRange: 0.2, numLabels: 2,
};

export interface Fixture {
  root: string;
  llama: string;
  /** The same LLaMA without tokenizer.json. */
  llamaNoTok: string;
  bert: string;
  file(name: string, text: string): string;
  cleanup(): void;
}

export function makeFixture(prefix: string): Fixture {
  const root = tmpDir(prefix);
  const llama = path.join(root, 'llama');
  // <s>=0, </s>=1, <pad>=2: BOS/EOS ids in config.json as a LLaMA checkpoint has them.
  const bpe = trainByteLevelBpe([TEXT, TEXT], { vocabSize: LLAMA_CFG.vocabSize, minFrequency: 1 });
  saveModelDir(llama, {
    config: { arch: 'llama', config: LLAMA_CFG, meta: { bosTokenId: 0, eosTokenId: 1 } },
    params: initParams(llamaParamSpec(LLAMA_CFG), 7), tokenizerJson: bpe,
  });
  const llamaNoTok = path.join(root, 'llama-notok');
  fs.cpSync(llama, llamaNoTok, { recursive: true });
  fs.rmSync(path.join(llamaNoTok, 'tokenizer.json'));
  fs.rmSync(path.join(llamaNoTok, 'tokenizer_config.json'));
  fs.writeFileSync(path.join(root, 'tokenizer.json'), fs.readFileSync(path.join(llama, 'tokenizer.json')));

  const bert = path.join(root, 'bert');
  const wp = trainWordPiece([TEXT, TEXT], { vocabSize: BERT_CFG.vocabSize, minFrequency: 1 });
  saveModelDir(bert, {
    config: { arch: 'bert', config: BERT_CFG, meta: { head: 'classifier', labels: ['neg', 'pos'] } },
    params: initParams(bertParamSpec(BERT_CFG, { classifier: true }), 8), tokenizerJson: wp,
  });
  return {
    root, llama, llamaNoTok, bert,
    file(name, text) {
      const p = path.join(root, name);
      fs.writeFileSync(p, text);
      return p;
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** Runs `node bin/kdqat.js ...args` and returns its exit code and output. */
export function kdqat(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/kdqat.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
