// KD-QAT's error paths: a NaN loss names the step, the term and the last good checkpoint; a
// vocabulary mismatch and a bad quantization config are clear errors that write nothing; an
// existing run is never replaced without --force. Plus the on-disk teacher cache and an encoder.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { QAT_DEFAULTS } from '../../src/train/qat-config.js';
import { bertTeacher, decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

it('a NaN/Inf loss stops with the step, the loss term that went bad and the last good checkpoint', () => {
  const root = tmpDir('qat-nan');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'out');
  // An absurd learning rate: the first update puts the weights near 1e30, the next loss overflows.
  assert.throws(() => runQat({ out, config: decoderConfig(teacher, { lr: 1e30, warmup: 0, saveEvery: 1, loss: 'pred=1,rep=1' }), reporter: silentReporter }),
    (e: Error) => {
      assert.match(e.message, /training stopped at step 2: the loss terms? 'pred' (NaN|-?Infinity)|training stopped at step 2: the loss terms? 'rep' (NaN|-?Infinity)/);
      assert.match(e.message, new RegExp(`last good checkpoint is ${esc(path.join(out, 'checkpoint'))} \\(step 1\\)`));
      return true;
    });
  assert.ok(!fs.existsSync(path.join(out, STUDENT_DIR)), 'no student is written');
  fs.rmSync(root, { recursive: true });
});

it('teacher/student vocabulary mismatch (--student-init) is an error before anything is written', () => {
  const root = tmpDir('qat-vocab');
  const teacher = llamaTeacher(root);
  const other = llamaTeacher(root, { vocab: 280, name: 'other' });
  const out = path.join(root, 'out');
  assert.throws(() => runQat({ out, config: decoderConfig(teacher, { studentInit: other.dir }), reporter: silentReporter }),
    /--student-init .*other: teacher\/student vocabulary mismatch: the student has vocab_size \d+/);
  assert.ok(!fs.existsSync(out));
  // Same vocab_size, different tokenizer: also a mismatch.
  const same = llamaTeacher(root, { vocab: 300, name: 'same-size' });
  fs.writeFileSync(path.join(same.dir, 'tokenizer.json'), fs.readFileSync(path.join(other.dir, 'tokenizer.json')));
  assert.throws(() => runQat({ out, config: decoderConfig(teacher, { studentInit: same.dir }), reporter: silentReporter }), /vocabulary mismatch.*the tokenizers differ/);
  assert.ok(!fs.existsSync(out));
  // A teacher whose tokenizer has more tokens than its embedding has rows.
  const big = llamaTeacher(root, { vocab: 400, name: 'big' });
  fs.writeFileSync(path.join(same.dir, 'tokenizer.json'), fs.readFileSync(path.join(big.dir, 'tokenizer.json')));
  assert.throws(() => runQat({ out, config: decoderConfig({ dir: same.dir, text: teacher.text }), reporter: silentReporter }),
    /--teacher .*same-size: cannot load the model: .*the tokenizer has \d+ tokens but .* has vocab_size \d+/);
  assert.ok(!fs.existsSync(out));
  fs.rmSync(root, { recursive: true });
});

it('a quantization config that does not fit the model is an error naming the file; an existing run stays intact', () => {
  const root = tmpDir('qat-badquant');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'summary.json'), '{"old": true}\n');
  const bad = path.join(root, 'w4-g24.json');
  fs.writeFileSync(bad, JSON.stringify({ weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 24 } } }));
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { quant: bad }), reporter: silentReporter }),
    (e: Error) => { assert.match(e.message, new RegExp(`${esc(bad)}.*24`)); return true; });
  const badBits = path.join(root, 'w9.json');
  fs.writeFileSync(badBits, JSON.stringify({ weights: { rule: { kind: 'sym', bits: 9 }, granule: 'channel' } }));
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { quant: badBits }), reporter: silentReporter }), /w9\.json.*bits/);
  const badModule = path.join(root, 'mods.json');
  fs.writeFileSync(badModule, JSON.stringify({ weights: { rule: { kind: 'sym', bits: 4 }, granule: 'channel' }, modules: ['no_such_proj'] }));
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { quant: badModule }), reporter: silentReporter }), /no_such_proj/);
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { quant: 'w5-channel' }), reporter: silentReporter }), /--quant w5-channel: neither a preset/);
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { loss: 'pred=1,attn=1' }), reporter: silentReporter }), /--loss: .*unknown distillation loss 'attn'/);
  assert.throws(() => runQat({ out, force: true, config: decoderConfig(teacher, { freeze: 'ov,nothing_here' }), reporter: silentReporter }), /--freeze ov,nothing_here: pattern 'nothing_here'/);
  assert.deepEqual(fs.readdirSync(out), ['summary.json'], 'nothing written, nothing removed');
  // Without --force an existing run is never replaced.
  assert.throws(() => runQat({ out, config: decoderConfig(teacher), reporter: silentReporter }), /already exists and is not empty; use --force/);
  assert.equal(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'), '{"old": true}\n');
  fs.rmSync(root, { recursive: true });
});

it('--cache-teacher: a second run with the same teacher and batches reads every teacher output from disk, bitwise the same', () => {
  const root = tmpDir('qat-cache');
  const teacher = llamaTeacher(root);
  const cache = path.join(root, 'cache');
  const base = decoderConfig(teacher, { steps: 6, saveEvery: 0, logEvery: 1, loss: 'pred=1,rep=1,attn_map=1' });
  const plain = runQat({ out: path.join(root, 'plain'), config: base, reporter: silentReporter });
  const first = runQat({ out: path.join(root, 'first'), config: { ...base, cacheTeacher: cache }, reporter: silentReporter });
  const second = runQat({ out: path.join(root, 'second'), config: { ...base, cacheTeacher: cache }, reporter: silentReporter });
  assert.equal(plain.teacher_cache, null);
  assert.deepEqual([first.teacher_cache!.hits, first.teacher_cache!.misses], [0, 6]);
  assert.deepEqual([second.teacher_cache!.hits, second.teacher_cache!.misses], [6, 0]);
  const losses = (d: string) => readTrainLog(path.join(root, d, 'qat_log.jsonl')).map((l) => l.loss);
  assert.deepEqual(losses('first'), losses('plain'));
  assert.deepEqual(losses('second'), losses('plain'));
  for (const f of fs.readdirSync(path.join(root, 'plain', STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(root, 'second', STUDENT_DIR, f)), fs.readFileSync(path.join(root, 'plain', STUDENT_DIR, f)), f);
  }
  // Another seed: other batches, so new entries beside the old ones.
  const other = runQat({ out: path.join(root, 'seed1'), config: { ...base, cacheTeacher: cache, seed: 1 }, reporter: silentReporter });
  assert.equal(other.teacher_cache!.misses > 0, true);
  fs.rmSync(root, { recursive: true });
});

it('encoder: ternary weights, 8-bit activations, pred+rep+attn_map on a padded classification task', () => {
  const root = tmpDir('qat-bert');
  const t = bertTeacher(root);
  const out = path.join(root, 'out');
  const s = runQat({
    out, reporter: silentReporter, config: {
      ...QAT_DEFAULTS, teacher: t.dir, task: t.train, dev: t.dev, quant: 'twn-a8', loss: 'pred=1,rep=1,attn_map=1',
      steps: 6, lr: 1e-3, warmup: 1, batch: 8, seqLen: 32, evalEvery: 3, logEvery: 2, saveEvery: 3, freeze: 'ov',
    },
  });
  assert.equal(s.arch, 'bert');
  assert.equal(s.metric, 'dev_accuracy');
  for (const m of [s.teacher, s.rtn, s.final]) assert.ok(m.dev_accuracy >= 0 && m.dev_accuracy <= 1);
  assert.equal(s.frozen.length, 2 * 2 * 2, 'value and attention.output.dense, weight and bias, 2 layers');
  const log = readTrainLog(path.join(out, 'qat_log.jsonl')) as unknown as { loss: Record<string, number>; signal?: Record<string, Record<string, unknown[]>> }[];
  assert.deepEqual(Object.keys(log[0].loss).sort(), ['attn_map', 'pred', 'rep', 'total']);
  assert.deepEqual(Object.keys(log[0].signal!.grad_norm), ['query', 'key', 'value', 'attn-out', 'ffn-in', 'ffn-out']);
  assert.deepEqual(log[0].signal!.grad_norm.value, [null, null], 'frozen: no gradient');
  assert.ok(fs.existsSync(path.join(out, STUDENT_DIR, 'quantization.json')));
  // A task whose labels do not fit the teacher's classifier.
  const three = path.join(root, 'three.jsonl');
  fs.writeFileSync(three, ['a', 'b', 'c'].map((l) => JSON.stringify({ text: 'the river flows', label: l })).join('\n') + '\n');
  assert.throws(() => runQat({ out: path.join(root, 'x'), reporter: silentReporter, config: { ...QAT_DEFAULTS, teacher: t.dir, task: three, dev: three } }),
    /three\.jsonl:1: unknown label "a" — expected one of neg, pos/);
  fs.rmSync(root, { recursive: true });
});
