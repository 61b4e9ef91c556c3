// kill -9 of one rank of a `kdqat qat --distributed mpi` job (src/train/distributed.ts, issue 17):
// mpirun ends the job, rank 0 names the last good checkpoint (native/mpi.cc mpiLastWords), and
// `--resume` on the same rank count ends bit for bit where one process with the same global
// batch ends (the bound of test/train/distributed.test.ts: exact). Needs Open MPI; fails without.
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { llamaTeacher, tmpDir } from './qat-fixture.js';
import { BIN, kdqat, sleep } from '../cli/helpers.js';
import { ROOT, mpirun, needMpi } from './mpi.js';

before(needMpi);
it('kill -9 of rank 1: rank 0 stops within seconds naming the last good checkpoint; --resume on 2 ranks ends bitwise as one process would', async () => {
  const root = tmpDir('dist-kill');
  const teacher = llamaTeacher(root);
  const common = ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '20', '--lr', '1e-3', '--warmup', '1', '--seq-len', '32',
    '--eval-every', '0', '--eval-windows', '2', '--log-every', '5', '--save-every', '3'];
  const out = path.join(root, 'run');
  const job = spawn('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', 'KDQAT_THREADS=1', process.execPath, BIN, ...common,
    '--batch', '4', '--distributed', 'mpi', '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  job.stderr!.on('data', (d) => { stderr += d; });
  const ended = new Promise<number | null>((resolve) => job.on('close', (code) => resolve(code)));
  const state = path.join(out, 'checkpoint', 'state.json');
  for (let i = 0; i < 400 && !fs.existsSync(state); i++) await sleep(50);
  assert.ok(fs.existsSync(state), `no checkpoint appeared: ${stderr}`);
  // Rank 1: the child of mpirun whose environment says so.
  const ranks = spawnSync('ps', ['--ppid', String(job.pid), '-o', 'pid='], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter(Boolean);
  const rank1 = ranks.find((p) => fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes('OMPI_COMM_WORLD_RANK=1'));
  assert.ok(rank1, `rank 1 not found among ${ranks}`);
  const t0 = performance.now();
  process.kill(rank1, 'SIGKILL');
  const code = await ended;
  const seconds = (performance.now() - t0) / 1000;
  assert.notEqual(code, 0);
  assert.ok(seconds < 10, `the job took ${seconds.toFixed(1)} s to end`);
  assert.match(stderr, /rank 1 .*exited on signal 9/);
  const m = /kdqat: rank 0 of 2: ended by mpirun during step \d+ .*; the last good checkpoint is (\S+) \(step (\d+)\); continue from it with the same mpirun -np 2 command and --resume/.exec(stderr);
  assert.ok(m, stderr);
  assert.equal(m[1], path.join(out, 'checkpoint'));
  const saved = JSON.parse(fs.readFileSync(state, 'utf8'));
  assert.equal(saved.step, Number(m[2]), 'the checkpoint named is the one on disk');
  assert.ok(saved.step < 20, 'killed before the end');

  const r = mpirun(2, [BIN, 'qat', '--out', out, '--resume', '--distributed', 'mpi']);
  assert.equal(r.code, 0, r.stderr);
  const one = path.join(root, 'one');
  const s = await kdqat(...common, '--batch', '2', '--accumulate', '2', '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(fs.readFileSync(path.join(out, 'student', 'model.safetensors')).equals(fs.readFileSync(path.join(one, 'student', 'model.safetensors'))),
    'resumed 2-rank student differs from the one-process run');
});
