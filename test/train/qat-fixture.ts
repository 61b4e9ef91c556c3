// Tiny random teachers for the KD-QAT tests: a LLaMA (byte-level BPE trained on a small SOTU
// text file, the training data too) and a BERT classifier (WordPiece; two-label JSONL task).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { loadTokenizer, saveTokenizer, trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { QAT_DEFAULTS, type QatConfig } from '../../src/train/qat.js';
import { silentReporter } from '../../src/cli/progress.js';
import { smallTextFile, tmpDir } from '../cli/helpers.js';

export { silentReporter, tmpDir };

/** Embedding rows a tokenizer.json needs. */
function vocabOf(root: string, json: object): number {
  const file = path.join(root, `.tok-${process.pid}.json`);
  saveTokenizer(file, json as never);
  const n = loadTokenizer(file).vocabSize;
  fs.rmSync(file);
  return n;
}

export function llamaConfig(vocabSize: number): LlamaConfig {
  return {
    vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64, tieWordEmbeddings: false, initializerRange: 0.15,
  };
}

/** A random LLaMA teacher directory with its tokenizer, plus the text file it is distilled on. */
export function llamaTeacher(root: string, opts: { vocab?: number; seed?: number; name?: string; dtype?: 'F32' | 'BF16' } = {}): { dir: string; text: string } {
  const text = fs.existsSync(path.join(root, 'small.txt')) ? path.join(root, 'small.txt') : smallTextFile(root);
  const json = trainByteLevelBpe([fs.readFileSync(text, 'utf8')], { vocabSize: opts.vocab ?? 300 });
  const cfg = llamaConfig(vocabOf(root, json));
  const dir = path.join(root, opts.name ?? 'teacher');
  saveModelDir(dir, {
    config: { arch: 'llama', config: cfg, meta: { bosTokenId: 0, eosTokenId: 1 } },
    params: initParams(llamaParamSpec(cfg), opts.seed ?? 5), tokenizerJson: json, ...(opts.dtype ? { dtype: opts.dtype } : {}),
  });
  return { dir, text };
}

const SENTENCES = [
  'the river flows to the sea and the sea sings back', 'a quick brown fox jumps over the lazy dog',
  'in the morning the farmers walk to the fields', 'ships sail across the ocean when the wind is strong',
  'the old mill stands by the river near the town', 'children play in the park after school',
];

/** A random BERT classifier teacher (labels neg, pos) and JSONL train/dev files. */
export function bertTeacher(root: string): { dir: string; train: string; dev: string } {
  const json = trainWordPiece([SENTENCES.join(' ')], { vocabSize: 120, minFrequency: 1 });
  const cfg: BertConfig = {
    vocabSize: vocabOf(root, json), hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64,
    maxPositionEmbeddings: 64, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1,
    attentionProbsDropoutProb: 0.1, initializerRange: 0.15, numLabels: 2,
  };
  const dir = path.join(root, 'bert-teacher');
  saveModelDir(dir, {
    config: { arch: 'bert', config: cfg, meta: { head: 'classifier', labels: ['neg', 'pos'] } },
    params: initParams(bertParamSpec(cfg, { classifier: true }), 9), tokenizerJson: json,
  });
  const lines = (n: number, off: number): string => Array.from({ length: n }, (_, i) => {
    const a = SENTENCES[(i + off) % SENTENCES.length], b = SENTENCES[(3 * i + off + 1) % SENTENCES.length];
    // Variable lengths, so batches carry padding.
    return JSON.stringify({ text: i % 3 ? `${a} ${b}` : a, label: i % 2 ? 'pos' : 'neg' });
  }).join('\n') + '\n';
  const train = path.join(root, 'train.jsonl'), dev = path.join(root, 'dev.jsonl');
  fs.writeFileSync(train, lines(40, 0));
  fs.writeFileSync(dev, lines(12, 2));
  return { dir, train, dev };
}

/** A decoder QAT config for the tiny teacher: short windows, frequent logs. */
export function decoderConfig(teacher: { dir: string; text: string }, over: Partial<QatConfig> = {}): QatConfig {
  return {
    ...QAT_DEFAULTS, teacher: teacher.dir, data: teacher.text, quant: 'w4-channel', steps: 12, lr: 1e-3, warmup: 2,
    batch: 4, seqLen: 32, evalEvery: 6, evalWindows: 4, logEvery: 2, saveEvery: 4, ...over,
  };
}
