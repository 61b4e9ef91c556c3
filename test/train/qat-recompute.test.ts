// `kdqat qat --recompute` (src/tensor/recompute.ts): with losses that read no layer output
// (pred, attn_map) the run is the same bit for bit as without — every log line (losses and the
// signal statistics the probes inside the layers collect, so each is counted once) and the
// student files; the setting is saved for --resume, and a non-boolean value is refused.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

it('--recompute: same log and student bit for bit (pred + attn_map), saved in the checkpoint; a non-boolean is refused', () => {
  const root = tmpDir('qat-recompute');
  const teacher = llamaTeacher(root);
  const config = decoderConfig(teacher, { steps: 4, saveEvery: 4, logEvery: 2, evalEvery: 0, loss: 'pred=1,attn_map=1' });
  const plain = path.join(root, 'plain'), re = path.join(root, 're');
  runQat({ out: plain, config, reporter: silentReporter });
  runQat({ out: re, config: { ...config, recompute: true }, reporter: silentReporter });
  const strip = (l: Record<string, unknown>) => { const { tokens_per_s: _t, wall_time_s: _w, ...r } = l; return r; };
  const a = readTrainLog(path.join(plain, 'qat_log.jsonl')).map(strip), b = readTrainLog(path.join(re, 'qat_log.jsonl')).map(strip);
  assert.ok(a.some((l) => (l as { signal?: unknown }).signal), 'signal records are compared');
  assert.deepEqual(b, a);
  for (const f of fs.readdirSync(path.join(plain, STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(re, STUDENT_DIR, f)), fs.readFileSync(path.join(plain, STUDENT_DIR, f)), `student/${f}`);
  }
  assert.equal((readCheckpoint(path.join(re, 'checkpoint')).state.config as { recompute?: boolean }).recompute, true);
  assert.throws(() => runQat({ out: path.join(root, 'bad'), config: { ...config, recompute: 'yes' as unknown as boolean }, reporter: silentReporter }),
    /--recompute is a switch \(true or false\), got "yes"/);
  fs.rmSync(root, { recursive: true });
});
