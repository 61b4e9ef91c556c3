// `kdqat qat --recompute [all|selective]` (src/tensor/recompute.ts): with losses that read no
// layer output (pred, attn_map) the run is the same bit for bit as without — every log line
// (losses and the signal statistics the probes inside the layers collect, so each is counted
// once) and the student files; the setting is saved for --resume (true, a bare --recompute or
// the config of an older run, is all), and any other value is refused.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

it('--recompute all and selective: same log and student bit for bit (pred + attn_map), saved in the checkpoint; another value is refused', () => {
  const root = tmpDir('qat-recompute');
  const teacher = llamaTeacher(root);
  const config = decoderConfig(teacher, { steps: 4, saveEvery: 4, logEvery: 2, evalEvery: 0, loss: 'pred=1,attn_map=1' });
  const plain = path.join(root, 'plain');
  runQat({ out: plain, config, reporter: silentReporter });
  const strip = (l: Record<string, unknown>) => { const { tokens_per_s: _t, wall_time_s: _w, ...r } = l; return r; };
  const a = readTrainLog(path.join(plain, 'qat_log.jsonl')).map(strip);
  assert.ok(a.some((l) => (l as { signal?: unknown }).signal), 'signal records are compared');
  for (const mode of [true, 'selective'] as const) {
    const re = path.join(root, `re-${mode}`);
    runQat({ out: re, config: { ...config, recompute: mode }, reporter: silentReporter });
    assert.deepEqual(readTrainLog(path.join(re, 'qat_log.jsonl')).map(strip), a, `--recompute ${mode}`);
    for (const f of fs.readdirSync(path.join(plain, STUDENT_DIR))) {
      assert.deepEqual(fs.readFileSync(path.join(re, STUDENT_DIR, f)), fs.readFileSync(path.join(plain, STUDENT_DIR, f)), `--recompute ${mode}: student/${f}`);
    }
    assert.equal((readCheckpoint(path.join(re, 'checkpoint')).state.config as { recompute?: unknown }).recompute, mode);
  }
  assert.throws(() => runQat({ out: path.join(root, 'bad'), config: { ...config, recompute: 'yes' }, reporter: silentReporter }),
    /--recompute must be one of off, selective, all \(a bare --recompute is all\), got "yes"/);
  fs.rmSync(root, { recursive: true });
});
