// kill -9 during `kdqat pretrain`, then --resume: the resumed run continues the uninterrupted
// run's loss curve exactly and ends with the same weights; at most the steps since the last
// checkpoint are redone.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTrainLog } from '../../src/train/train-log.js';
import { readCheckpointState } from '../../src/train/checkpoint.js';
import { TINY, sleep, smallTextFile, spawnKdqat, tmpDir } from './helpers.js';

const STEPS = 120, SAVE_EVERY = 5;

it('SIGKILL mid-run, then --resume: same losses at the same steps and identical final weights', async (t) => {
  const root = tmpDir('cli-resume');
  const text = smallTextFile(root);
  // One thread each: results are bitwise reproducible for a given thread count, and the two
  // runs share the machine's two cores.
  const args = (out: string): string[] => ['pretrain', '--corpus', text, '--out', out, ...TINY, '--vocab', '300',
    '--steps', String(STEPS), '--batch', '2', '--warmup', '10', '--eval-every', '40', '--eval-windows', '4',
    '--save-every', String(SAVE_EVERY), '--log-every', '1', '--threads', '1'];
  const refOut = path.join(root, 'ref'), out = path.join(root, 'killed');
  const ref = spawnKdqat(args(refOut));
  const victim = spawnKdqat(args(out));

  // Kill as soon as a checkpoint exists and a step or more has been logged after it.
  const stateFile = path.join(out, 'checkpoint', 'state.json');
  const logFile = path.join(out, 'train_log.jsonl');
  let exited = false;
  void victim.done.then(() => { exited = true; });
  for (;;) {
    assert.ok(!exited, 'the run finished before it could be killed; raise STEPS');
    if (fs.existsSync(stateFile)) {
      const logged = readTrainLog(logFile).length;
      if (logged > readCheckpointState(path.dirname(stateFile)).step) break;
    }
    await sleep(5);
  }
  victim.child.kill('SIGKILL');
  const killed = await victim.done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(!fs.existsSync(path.join(out, 'summary.json')), 'the killed run did not finish');

  const checkpointStep = readCheckpointState(path.join(out, 'checkpoint')).step;
  const loggedBeforeKill = readTrainLog(logFile).length;
  const lost = loggedBeforeKill - checkpointStep;
  assert.ok(checkpointStep >= SAVE_EVERY && checkpointStep % SAVE_EVERY === 0, `checkpoint at step ${checkpointStep}`);
  assert.ok(lost >= 0 && lost <= SAVE_EVERY, `${lost} steps since the checkpoint were lost (at most --save-every ${SAVE_EVERY})`);

  t.diagnostic(`killed after step ${loggedBeforeKill}; resuming from the step-${checkpointStep} checkpoint`);
  const resumed = spawnKdqat(['pretrain', '--out', out, '--resume', '--threads', '1']);
  const [r, rr] = await Promise.all([ref.done, resumed.done]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(rr.code, 0, rr.stderr);
  assert.match(rr.stderr, new RegExp(`resuming at step ${checkpointStep}/${STEPS}`));

  // Same numbers at the same steps (tokens/s is a timing, not a result).
  const strip = (f: string) => readTrainLog(f).map(({ tokens_per_s: _t, ...rest }) => rest);
  const a = strip(path.join(refOut, 'train_log.jsonl')), b = strip(logFile);
  assert.equal(b.length, STEPS, 'every step logged exactly once');
  assert.deepEqual(b.map((l) => l.step), a.map((l) => l.step));
  for (let i = 0; i < a.length; i++) assert.deepEqual(b[i], a[i], `log line of step ${a[i].step}`);
  assert.ok(a[STEPS - 1].loss < a[0].loss, 'and the model learned something');
  assert.deepEqual(fs.readFileSync(path.join(out, 'model.safetensors')), fs.readFileSync(path.join(refOut, 'model.safetensors')),
    'final weights are bitwise identical');
  fs.rmSync(root, { recursive: true });
});
