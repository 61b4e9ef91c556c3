// `kdqat finetune` (src/train/finetune.ts) with its default recipe has to learn a task whose
// answer is known: a small random encoder (BERT init, std 0.02, no pre-training), two labels
// decided by one keyword placed at random among filler words. Any classifier that reads the words
// gets 100%; one that learned only the label prior gets ~50%. Paper B's lr 2e-5 (the old default)
// leaves this encoder at the prior for all 192 updates, as a PyTorch replica of the same model and
// recipe does (docs/finetune.md); the width-scaled default learns it within the first epoch.
// Also: the warning when the prior is not beaten, and bitwise resume with train_accuracy.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { initParams } from '../../src/nn/params.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { trainWordPiece } from '../../src/tokenize/index.js';
import { writeJsonl } from '../../src/data/jsonl.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { FINETUNE_DEFAULTS, autoLearningRate, runFinetune, type FinetuneSummary } from '../../src/train/finetune.js';
import type { Reporter } from '../../src/train/loop.js';
import { tmpDir } from '../util.js';

const FILLER = ('the river flows to sea and sings back quick brown fox jumps over lazy dog near old mill in morning ' +
  'farmers walk fields with their tools ships sail across ocean when wind is strong steady').split(' ');
const KEYWORDS = { yes: 'apple', no: 'pear' } as const;

/** n examples: 6–15 filler words with the label's keyword at a random position. */
function keywordTask(n: number, seed: number): { text: string; label: string }[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const words = Array.from({ length: 6 + rng.int(10) }, () => FILLER[rng.int(FILLER.length)]);
    const label = rng.uniform() < 0.5 ? 'yes' : 'no';
    words.splice(rng.int(words.length + 1), 0, KEYWORDS[label]);
    return { text: words.join(' '), label };
  });
}

const CFG: BertConfig = {
  vocabSize: 120, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 64,
  typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
  initializerRange: 0.02, numLabels: 0,
};

function setup(): { root: string; model: string; train: string; dev: string; test: string } {
  const root = tmpDir('ft-learns');
  const model = path.join(root, 'enc');
  const wp = trainWordPiece([[...FILLER, ...Object.values(KEYWORDS)].join(' ')], { vocabSize: CFG.vocabSize, minFrequency: 1 });
  saveModelDir(model, { config: { arch: 'bert', config: CFG, meta: { head: 'mlm' } }, params: initParams(bertParamSpec(CFG, { mlm: true }), 4), tokenizerJson: wp });
  const train = path.join(root, 'train.jsonl'), dev = path.join(root, 'dev.jsonl'), test = path.join(root, 'test.jsonl');
  writeJsonl(train, keywordTask(2048, 2));
  writeJsonl(dev, keywordTask(256, 3));
  writeJsonl(test, keywordTask(256, 5));
  return { root, model, train, dev, test };
}

function messages(): { reporter: Reporter; lines: string[] } {
  const lines: string[] = [];
  const reporter: Reporter = { begin() {}, step() {}, eval() {}, end() {}, message: (m) => { lines.push(m); } };
  return { reporter, lines };
}

it('finetune with the default recipe learns a keyword task from a random encoder (dev ≥ 95%, train accuracy logged)', () => {
  const t = setup();
  try {
    const { reporter, lines } = messages();
    const out = path.join(t.root, 'cls');
    const s: FinetuneSummary = runFinetune({ out, reporter, config: { ...FINETUNE_DEFAULTS, model: t.model, train: t.train, dev: t.dev, test: t.test, maxLen: 32 } });
    assert.equal(s.learning_rate, autoLearningRate(CFG.hiddenSize));
    assert.equal(s.steps, 3 * 64);
    // The labels are a seeded coin: the prior is how often the training set's more common label
    // comes up on dev.
    const labels = (f: string): string[] => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l).label);
    const trainYes = labels(t.train).filter((l) => l === 'yes').length, devLabels = labels(t.dev);
    const common = trainYes * 2 > 2048 ? 'yes' : 'no';
    assert.equal(s.majority_dev_accuracy, devLabels.filter((l) => l === common).length / devLabels.length);
    assert.ok(s.majority_dev_accuracy < 0.6, `the task is balanced (prior ${s.majority_dev_accuracy})`);
    assert.ok(s.best_dev_accuracy >= 0.95, `best dev accuracy ${s.best_dev_accuracy} < 0.95 (prior ${s.majority_dev_accuracy})`);
    // --test: scored once with the kept model, on examples neither training nor selection saw.
    assert.ok(s.test_accuracy !== null && s.test_accuracy >= 0.95, `test accuracy ${s.test_accuracy}`);
    const log = readTrainLog(path.join(out, 'train_log.jsonl'));
    const last = log[log.length - 1] as { train_accuracy: number };
    assert.ok(last.train_accuracy >= 0.9, `training accuracy over the last ${FINETUNE_DEFAULTS.logEvery} steps is ${last.train_accuracy}`);
    assert.ok(!lines.some((m) => m.startsWith('warning')), lines.join('\n'));
  } finally {
    fs.rmSync(t.root, { recursive: true, force: true });
  }
});

it('finetune says when the classifier does not beat the label prior (paper B lr 2e-5 on the same encoder)', () => {
  const t = setup();
  try {
    const { reporter, lines } = messages();
    const s = runFinetune({ out: path.join(t.root, 'cls'), reporter, config: { ...FINETUNE_DEFAULTS, model: t.model, train: t.train, dev: t.dev, maxLen: 32, lr: 2e-5, maxSteps: 20 } });
    assert.equal(s.learning_rate, 2e-5);
    assert.ok(s.best_dev_accuracy <= s.majority_dev_accuracy, `dev ${s.best_dev_accuracy} vs prior ${s.majority_dev_accuracy}`);
    assert.match(lines.join('\n'), /warning: the best dev accuracy .* does not beat always answering "(yes|no)"/);
  } finally {
    fs.rmSync(t.root, { recursive: true, force: true });
  }
});

it('finetune stopped after a checkpoint and resumed logs the same losses and training accuracies as one run', () => {
  const t = setup();
  try {
    // Checkpoints every 4 updates, log lines every 3: the interval of the line at step 9 starts
    // before the step-8 checkpoint, so its train_accuracy needs the counts saved with it.
    const config = { ...FINETUNE_DEFAULTS, model: t.model, train: t.train, dev: t.dev, maxLen: 32, maxSteps: 12, evalEvery: 6, saveEvery: 4, logEvery: 3 };
    const ref = path.join(t.root, 'ref'), out = path.join(t.root, 'cut');
    runFinetune({ out: ref, config });
    class Stop extends Error {}
    const { reporter } = messages();
    reporter.step = ({ step }) => { if (step === 10) throw new Stop('stopped'); };
    assert.throws(() => runFinetune({ out, config, reporter }), Stop);
    runFinetune({ out, config, resume: true });
    const strip = (dir: string) => readTrainLog(path.join(dir, 'train_log.jsonl')).map(({ tokens_per_s: _t, ...r }) => r);
    const a = strip(ref), b = strip(out);
    assert.deepEqual(b, a);
    assert.ok(a.every((r) => typeof r.train_accuracy === 'number'), 'every line has train_accuracy');
    assert.deepEqual(fs.readFileSync(path.join(out, 'model.safetensors')), fs.readFileSync(path.join(ref, 'model.safetensors')));
  } finally {
    fs.rmSync(t.root, { recursive: true, force: true });
  }
});
