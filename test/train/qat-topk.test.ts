// `kdqat qat --cache-teacher-topk K`: a run on a top-K cache gives the same losses and student
// whether its batches miss (first run) or hit (second run), --resume stays bitwise, the approximate
// `pred` is never larger than the full KL of the same step, and bad settings are errors naming
// the option, raised before anything is written.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { QAT_DEFAULTS, checkQatConfig } from '../../src/train/qat-config.js';
import type { Reporter } from '../../src/train/loop.js';
import { bertTeacher, decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

it('--cache-teacher-topk: hits equal misses bitwise, --resume is bitwise, pred ≤ the full KL at step 1', () => {
  const root = tmpDir('qat-topk');
  const teacher = llamaTeacher(root);
  const cache = path.join(root, 'cache');
  const base = decoderConfig(teacher, { steps: 8, saveEvery: 4, logEvery: 1, tau: 2, loss: 'pred=1,rep=1', cacheTeacher: cache, cacheTeacherTopk: 8 });
  const first = runQat({ out: path.join(root, 'first'), config: base, reporter: silentReporter });
  const second = runQat({ out: path.join(root, 'second'), config: base, reporter: silentReporter });
  assert.equal(first.teacher_cache!.hits, 0);
  assert.equal(second.teacher_cache!.misses, 0);
  const losses = (d: string) => readTrainLog(path.join(root, d, 'qat_log.jsonl')).map((l) => l.loss);
  assert.deepEqual(losses('second'), losses('first'));
  // A crash after step 5's update, resumed from the step-4 checkpoint.
  const crashing: Reporter = { ...silentReporter, step: (s) => { if (s.step === 5) throw new Error('simulated crash'); } };
  const out = path.join(root, 'crashed');
  assert.throws(() => runQat({ out, config: base, reporter: crashing }), /simulated crash/);
  runQat({ out, config: base, resume: true, reporter: silentReporter });
  assert.deepEqual(losses('crashed'), losses('first'));
  for (const f of fs.readdirSync(path.join(root, 'first', STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(out, STUDENT_DIR, f)), fs.readFileSync(path.join(root, 'first', STUDENT_DIR, f)), f);
  }
  // Step 1 sees the same student under both teachers: the bucketed KL is ≤ the full KL.
  runQat({ out: path.join(root, 'full'), config: { ...base, cacheTeacherTopk: 0, steps: 1 }, reporter: silentReporter });
  const approx = (losses('first')[0] as unknown as Record<string, number>).pred, full = (losses('full')[0] as unknown as Record<string, number>).pred;
  assert.ok(approx <= full * (1 + 1e-5) && approx > 0, `top-8 pred ${approx} vs full ${full}`);
  fs.rmSync(root, { recursive: true });
});

it('--cache-teacher-topk errors name the option and write nothing', () => {
  assert.throws(() => checkQatConfig({ ...QAT_DEFAULTS, teacher: 't', cacheTeacherTopk: 4 }), /--cache-teacher-topk 4 needs --cache-teacher DIR/);
  assert.throws(() => checkQatConfig({ ...QAT_DEFAULTS, teacher: 't', cacheTeacher: 'c', cacheTeacherTopk: 1.5 }), /--cache-teacher-topk must be a non-negative integer, got 1.5/);
  const root = tmpDir('qat-topk-bad');
  const teacher = llamaTeacher(root);
  const out = path.join(root, 'out');
  assert.throws(() => runQat({ out, config: decoderConfig(teacher, { cacheTeacher: path.join(root, 'c'), cacheTeacherTopk: 100000 }), reporter: silentReporter }),
    /--cache-teacher-topk 100000 must be below the teacher's vocab_size \d+/);
  const t = bertTeacher(root);
  assert.throws(() => runQat({
    out, reporter: silentReporter,
    config: { ...QAT_DEFAULTS, teacher: t.dir, task: t.train, dev: t.dev, quant: 'twn-a8', steps: 2, batch: 8, seqLen: 32, cacheTeacher: path.join(root, 'c'), cacheTeacherTopk: 2 },
  }), /--cache-teacher-topk 2: top-K logits are for a decoder teacher/);
  assert.ok(!fs.existsSync(out));
  fs.rmSync(root, { recursive: true });
});

it('the teacher-cache key names the kernels\' code paths: a cache written on another SIMD path is not reused', async () => {
  const { spawnSync } = await import('node:child_process');
  const { nativeIsa } = await import('../../src/backend/index.js');
  const root = tmpDir('kdqat-cache-key-');
  const t = llamaTeacher(root);
  const key = (isa: string | undefined): string => {
    const env = { ...process.env };
    delete env.KDQAT_ISA;
    if (isa) env.KDQAT_ISA = isa;
    const code = `import { teacherKey } from ${JSON.stringify(path.resolve('src/train/teacher-cache.ts'))}; console.log(teacherKey(${JSON.stringify(t.dir)}, { pred: true }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const here = key(undefined);
  assert.match(here, /^[0-9a-f]{32}$/);
  assert.equal(key(undefined), here, 'deterministic');
  // Where the CPU runs a SIMD path, the portable path computes (and caches) other bits.
  if (nativeIsa() !== null && nativeIsa() !== 'portable') assert.notEqual(key('portable'), here);
  else assert.equal(key('portable'), here);
  fs.rmSync(root, { recursive: true });
});
