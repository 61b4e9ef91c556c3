// Every encoder family end to end through its record only: a small pre-trained checkpoint in the
// family's Hugging Face layout (with a tokenizer of its kind) is fine-tuned into a classifier
// (kdqat finetune), distilled into a 4-bit student with ov-freeze and every loss term (KD-QAT),
// and the student evaluates on the dev set, giving the accuracy the run reported.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initParams } from '../../src/nn/params.js';
import { matchesPattern } from '../../src/nn/modules.js';
import { architecture, type ArchName } from '../../src/models/registry.js';
import type { Heads } from '../../src/models/architecture.js';
import { loadModelDir, saveModelDir, type SaveConfig } from '../../src/io/model-dir.js';
import { trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { FINETUNE_DEFAULTS, runFinetune } from '../../src/train/finetune.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { QAT_DEFAULTS } from '../../src/train/qat-config.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { LOSS_NAMES } from '../../src/distill/losses.js';
import { loadModel, teacherTokenizer } from '../../src/experiments/evaluate.js';
import { classificationAccuracy } from '../../src/eval/classification.js';
import { loadClassification } from '../../src/data/classification.js';
import { silentReporter, tmpDir } from './qat-fixture.js';

const SENTENCES = [
  'the river flows to the sea and the sea sings back', 'a quick brown fox jumps over the lazy dog',
  'in the morning the farmers walk to the fields', 'ships sail across the ocean when the wind is strong',
  'the old mill stands by the river near the town', 'children play in the park after school',
];
const MLM: Heads = { lm: false, mlm: true, classifier: false };

/** A random masked-LM checkpoint of `family` (hidden 32, 2 layers) with a tokenizer of its kind:
 *  WordPiece, or byte-level BPE with RoBERTa's specials at RoBERTa's ids (<s> 0, <pad> 1, </s> 2). */
function checkpoint(root: string, family: ArchName): string {
  const rec = architecture(family);
  const bpe = rec.pretrain.tokenizer.name !== 'WordPiece';
  const tok = bpe
    ? trainByteLevelBpe([SENTENCES.join(' ')], { vocabSize: 280, specialTokens: ['<s>', '<pad>', '</s>', '<unk>', '<mask>'] })
    : trainWordPiece([SENTENCES.join(' ')], { vocabSize: 120, minFrequency: 1 });
  const vocab = bpe ? 290 : 130; // ≥ the tokenizer's tokens (a few spare rows, as real checkpoints have)
  const config = { ...rec.pretrain.config({ vocab, hidden: 32, layers: 2, heads: 4, kvHeads: 4, intermediate: 64, seq: 48, dropout: 0.1 }), initializerRange: 0.15 };
  const dir = path.join(root, `${family}-mlm`);
  saveModelDir(dir, {
    config: { arch: family, config, meta: rec.metaForHeads(MLM) } as SaveConfig,
    params: initParams(rec.paramSpec(config, MLM), 11), tokenizerJson: tok,
  });
  return dir;
}

function task(root: string): { train: string; dev: string } {
  const lines = (n: number, off: number): string => Array.from({ length: n }, (_, i) => {
    const a = SENTENCES[(i + off) % SENTENCES.length], b = SENTENCES[(3 * i + off + 1) % SENTENCES.length];
    // Variable lengths (so batches carry padding) and some pairs (the family's pair layout).
    return JSON.stringify(i % 4 === 3 ? { text: a, text_pair: b, label: i % 2 ? 'pos' : 'neg' } : { text: i % 3 ? `${a} ${b}` : a, label: i % 2 ? 'pos' : 'neg' });
  }).join('\n') + '\n';
  const train = path.join(root, 'train.jsonl'), dev = path.join(root, 'dev.jsonl');
  fs.writeFileSync(train, lines(24, 0));
  fs.writeFileSync(dev, lines(10, 2));
  return { train, dev };
}

const ALL_LOSSES = LOSS_NAMES.map((n) => `${n}=${n === 'attn_score' ? 0.1 : 1}`).join(',');

for (const family of ['bert', 'roberta', 'xlm-roberta', 'distilbert', 'roformer'] as const) {
  describe(`${family}: finetune → KD-QAT → evaluate, through the record`, () => {
    it('fine-tunes a classifier, distills it with ov-freeze and every loss term, and the student evaluates', () => {
      const rec = architecture(family);
      const root = tmpDir(`enc-qat-${family}`);
      const { train, dev } = task(root);
      const cls = path.join(root, 'cls');
      const ft = runFinetune({
        out: cls, reporter: silentReporter,
        config: { ...FINETUNE_DEFAULTS, model: checkpoint(root, family), train, dev, epochs: 1, batch: 8, lr: 1e-3, maxLen: 32, warmupRatio: 0, maxSteps: 3, evalEvery: 3 },
      });
      assert.equal(ft.steps, 3);
      assert.ok(ft.best_dev_accuracy >= 0 && ft.best_dev_accuracy <= 1);
      // The classifier directory is the family's …ForSequenceClassification with the task's labels.
      const json = JSON.parse(fs.readFileSync(path.join(cls, 'config.json'), 'utf8'));
      assert.equal(json.model_type, family);
      assert.equal(rec.hfClasses[json.architectures[0]], 'classifier');
      assert.deepEqual(json.id2label, { 0: 'neg', 1: 'pos' });

      const out = path.join(root, 'qat');
      const s = runQat({
        out, reporter: silentReporter,
        config: {
          ...QAT_DEFAULTS, teacher: cls, task: train, dev, quant: 'w4-channel-lsq', freeze: 'ov', loss: ALL_LOSSES,
          steps: 3, lr: 1e-3, warmup: 0, batch: 8, seqLen: 32, evalEvery: 0, logEvery: 1, saveEvery: 0,
        },
      });
      assert.equal(s.arch, family);
      assert.equal(s.steps, 3);
      // Every loss term is logged, finite, at every step.
      type Line = { loss?: Record<string, number>; signal?: Record<string, Record<string, (number | null)[]>> };
      const log = (readTrainLog(path.join(out, 'qat_log.jsonl')) as unknown as Line[]).filter((l) => l.loss);
      assert.equal(log.length, 3);
      for (const l of log) {
        assert.deepEqual(Object.keys(l.loss!).sort(), [...LOSS_NAMES, 'total'].sort());
        for (const [k, v] of Object.entries(l.loss!)) assert.ok(Number.isFinite(v) && v >= 0, `${k} = ${v}`);
        // The signal log groups the family's weights by the record's module kinds, per layer.
        assert.deepEqual(Object.keys(l.signal!.grad_norm), [...rec.modules.kinds]);
        for (const per of Object.values(l.signal!.grad_norm)) assert.equal(per.length, 2);
      }
      // ov-freeze: the value and attention-output projections (the record's names) are the
      // teacher's bit for bit; the other quantized weights moved.
      const teacher = loadModelDir(cls).params, student = loadModelDir(path.join(out, STUDENT_DIR)).params;
      const ov = rec.modules.freezePresets.ov;
      const quantized = [...student.keys()].filter((n) => n.endsWith('.weight') && /\.layer\.\d+\./.test(n) && student.get(n)!.ndim === 2);
      const frozen = quantized.filter((n) => ov.some((p) => matchesPattern(n, p)));
      assert.equal(frozen.length, 2 * 2, `two frozen projections per layer: ${frozen.join(', ')}`);
      for (const n of frozen) assert.ok(s.frozen.includes(n), `${n} is reported frozen`);
      for (const n of quantized) {
        const same = Buffer.from(student.get(n)!.f32.buffer).equals(Buffer.from(teacher.get(n)!.f32.buffer));
        assert.equal(same, frozen.includes(n), `${n}: ${frozen.includes(n) ? 'frozen but moved' : 'trained but unchanged'}`);
      }
      // The student, reopened as deployed (quantized weights), evaluates to the accuracy reported.
      const { model, weight } = loadModel(path.join(out, STUDENT_DIR));
      assert.equal(model.arch, family);
      const devEx = loadClassification(dev, { labels: ['neg', 'pos'] }).examples;
      const acc = classificationAccuracy(model, teacherTokenizer(cls), devEx, { maxLen: 32, weight }).accuracy;
      assert.equal(acc, s.final.dev_accuracy);
      fs.rmSync(root, { recursive: true });
    });
  });
}
