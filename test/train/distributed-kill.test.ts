// kill -9 of one rank of a `kdqat qat --distributed mpi` job (src/train/distributed.ts, issue 17):
// mpirun ends the job, rank 0 names the last good checkpoint (native/mpi.cc mpiLastWords), and
// `--resume` on the same rank count ends bit for bit where one process with the same global
// batch ends (the bound of test/train/distributed.test.ts: exact). Needs Open MPI; fails without.
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { llamaTeacher, tmpDir } from './qat-fixture.js';
import { BIN, kdqat } from '../cli/helpers.js';
import { killRank1, mpirun, needMpi } from './mpi.js';

before(needMpi);
it('kill -9 of rank 1: rank 0 stops within seconds naming the last good checkpoint; --resume on 2 ranks ends bitwise as one process would', async () => {
  const root = tmpDir('dist-kill');
  const teacher = llamaTeacher(root);
  const common = ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '20', '--lr', '1e-3', '--warmup', '1', '--seq-len', '32',
    '--eval-every', '0', '--eval-windows', '2', '--log-every', '5', '--save-every', '3'];
  const out = path.join(root, 'run');
  await killRank1([BIN, ...common, '--batch', '4'], out, 20);

  const r = mpirun(2, [BIN, 'qat', '--out', out, '--resume', '--distributed', 'mpi']);
  assert.equal(r.code, 0, r.stderr);
  const one = path.join(root, 'one');
  const s = await kdqat(...common, '--batch', '2', '--accumulate', '2', '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(fs.readFileSync(path.join(out, 'student', 'model.safetensors')).equals(fs.readFileSync(path.join(one, 'student', 'model.safetensors'))),
    'resumed 2-rank student differs from the one-process run');
});
