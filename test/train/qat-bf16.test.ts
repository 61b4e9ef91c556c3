// `kdqat qat --bf16`: a bad mode is an error; where AVX512_BF16 runs, 'teacher' and 'all' train
// (the setting is recorded in the run's config, so --resume keeps it) and change the numbers
// (the GEMMs really ran in bf16); where it cannot run they are refused naming the flag and the
// missing CPU feature, before anything is written (never a silent float32 fallback).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { bf16Unavailable } from '../../src/backend/index.js';
import { decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

it('--bf16 must be off, teacher or all', () => {
  const root = tmpDir('qat-bf16-bad');
  const teacher = llamaTeacher(root);
  assert.throws(() => runQat({ out: path.join(root, 'out'), config: decoderConfig(teacher, { bf16: 'half' }), reporter: silentReporter }),
    /--bf16 must be one of off, teacher, all, got "half"/);
  fs.rmSync(root, { recursive: true });
});

it('--bf16 teacher|all trains where AVX512_BF16 runs, and is refused (naming the flag and avx512_bf16) elsewhere', () => {
  const root = tmpDir('qat-bf16');
  const teacher = llamaTeacher(root);
  const why = bf16Unavailable();
  const over = { steps: 4, evalEvery: 0, saveEvery: 2 };
  if (why) {
    for (const mode of ['teacher', 'all']) {
      const out = path.join(root, `out-${mode}`);
      assert.throws(() => runQat({ out, config: decoderConfig(teacher, { ...over, bf16: mode }), reporter: silentReporter }),
        (e: Error) => e.message.startsWith(`--bf16 ${mode}: `) && e.message.includes('avx512_bf16') && e.message.includes(why));
      assert.ok(!fs.existsSync(out), 'nothing written');
    }
  } else {
    const losses: Record<string, number[]> = {};
    for (const mode of ['off', 'teacher', 'all']) {
      const out = path.join(root, `out-${mode}`);
      const s = runQat({ out, config: decoderConfig(teacher, { ...over, bf16: mode }), reporter: silentReporter });
      assert.equal(s.config.bf16, mode);
      assert.ok(fs.existsSync(path.join(out, STUDENT_DIR)));
      const ckpt = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
      assert.equal(ckpt.config.bf16, mode, 'recorded in the checkpoint for --resume');
      losses[mode] = fs.readFileSync(path.join(out, 'qat_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
        .filter((r) => r.loss !== undefined).map((r) => r.loss.total as number);
      assert.ok(losses[mode].length > 0 && losses[mode].every(Number.isFinite), `${mode}: ${losses[mode]}`);
    }
    // bf16 GEMMs round their inputs to 8 significant bits: the losses must move.
    assert.notDeepEqual(losses.teacher, losses.off);
    assert.notDeepEqual(losses.all, losses.teacher);
  }
  fs.rmSync(root, { recursive: true });
});
