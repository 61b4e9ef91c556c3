// `kdqat pretrain --arch bert` then `kdqat finetune --task brown-genre` with a tiny model: the
// classifier directory carries its labels and evaluates.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { asModel, loadModelDir } from '../../src/io/model-dir.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { classificationAccuracy, encodeExample } from '../../src/eval/classification.js';
import type { BertConfig } from '../../src/models/bert.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { TINY, kdqat, smallTextFile, tmpDir } from './helpers.js';

it('bert pretrain (MLM) → finetune brown-genre → a classifier directory that evaluates', async () => {
  const root = tmpDir('cli-finetune');
  const text = smallTextFile(root);
  const mlm = path.join(root, 'mlm'), cls = path.join(root, 'cls');
  const p = await kdqat('pretrain', '--arch', 'bert', '--corpus', text, '--out', mlm, ...TINY, '--vocab', '400',
    '--steps', '4', '--batch', '4', '--warmup', '1', '--eval-every', '2', '--save-every', '0', '--log-every', '1');
  assert.equal(p.code, 0, p.stderr);
  const log = readTrainLog(path.join(mlm, 'train_log.jsonl'));
  assert.ok(Number.isFinite(log[1].valid_mlm_loss), 'validation MLM loss at step 2');
  assert.equal(JSON.parse(fs.readFileSync(path.join(mlm, 'config.json'), 'utf8')).architectures[0], 'BertForMaskedLM');

  const f = await kdqat('finetune', '--model', mlm, '--task', 'brown-genre', '--out', cls, '--max-steps', '4',
    '--batch', '8', '--max-len', '32', '--lr', '1e-3', '--eval-every', '4', '--log-every', '1', '--eval-test');
  assert.equal(f.code, 0, f.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(cls, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
  assert.deepEqual(config.id2label, { 0: 'press', 1: 'general', 2: 'learned', 3: 'fiction' });
  assert.deepEqual(config.label2id, { press: 0, general: 1, learned: 2, fiction: 3 });
  assert.equal(config.num_labels, 4);

  const m = loadModelDir(cls);
  assert.equal(m.arch, 'bert');
  assert.equal((m.config as BertConfig).numLabels, 4);
  assert.equal(m.hf.arch === 'bert' && m.hf.meta.head, 'classifier');
  const tok = loadTokenizer(m.tokenizerPath!);
  const examples = [
    { text: 'The senate voted on the bill today, the committee chairman said.', label: 0 },
    { text: 'She closed the door and listened to the rain.', label: 3 },
    { text: 'The coefficients of the series converge for all positive values.', label: 2 },
  ];
  const r = classificationAccuracy(asModel(m), tok, examples, { maxLen: 32, batchSize: 2 });
  assert.equal(r.n, 3);
  assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
  assert.ok(r.predictions.every((k) => k >= 0 && k < 4));

  const summary = JSON.parse(fs.readFileSync(path.join(cls, 'summary.json'), 'utf8'));
  assert.equal(summary.steps, 4);
  assert.equal(summary.best_step, 4);
  assert.ok(summary.best_dev_accuracy >= 0 && summary.best_dev_accuracy <= 1);
  assert.ok(summary.test_accuracy >= 0 && summary.test_accuracy <= 1);
  // The encoder came from the MLM checkpoint; pooler and classifier are new.
  const src = loadModelDir(mlm);
  assert.equal(m.params.has('bert.pooler.dense.weight') && !src.params.has('bert.pooler.dense.weight'), true);
  fs.rmSync(root, { recursive: true });
});

it('classification inputs are [CLS] text [SEP] (pairs: [CLS] a [SEP] b [SEP]), truncated longest-first', () => {
  const tok = {
    encode: (t: string) => t.split(' ').map((w) => w.length + 10),
    specials: { cls: 1, sep: 2, pad: 0 },
  };
  assert.deepEqual(encodeExample(tok, { text: 'a bb ccc', label: 1 }, 16), { ids: [1, 11, 12, 13, 2], typeIds: [0, 0, 0, 0, 0], label: 1 });
  assert.deepEqual(encodeExample(tok, { text: 'a bb ccc', label: 0 }, 4).ids, [1, 11, 12, 2]);
  const pair = encodeExample(tok, { text: 'a bb ccc dddd', textPair: 'x y', label: 0 }, 7);
  assert.deepEqual(pair.ids, [1, 11, 12, 2, 11, 11, 2]);
  assert.deepEqual(pair.typeIds, [0, 0, 0, 0, 1, 1, 1]);
});
