// The mpirun runs of the distributed tests (test/train/distributed.test.ts, pretrain-distributed.test.ts).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeMpi } from '../../src/backend/index.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const INSTALL = 'install Open MPI (apt-get install openmpi-bin libopenmpi-dev), then rebuild the addon (npm rebuild kdqat, or npx node-gyp rebuild here)';

/** `mpirun -np N` of a node command, one thread per rank; fails the test when MPI is missing. */
export function mpirun(np: number, args: string[], timeout = 60_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), '-x', 'KDQAT_THREADS=1', process.execPath, ...args], {
    cwd: ROOT, encoding: 'utf8', timeout, env: { ...process.env, KDQAT_THREADS: '1' },
  });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') assert.fail(`mpirun not found: ${INSTALL}`);
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Fails (never skips) when the addon has no MPI. */
export function needMpi(): void {
  const { reason } = nativeMpi();
  if (reason) assert.fail(`the addon has no MPI (${reason}); ${INSTALL}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a 2-rank job of `args` (writing to `out`), SIGKILLs rank 1 once the first checkpoint is
 * on disk, and checks what issue 17 asks: the job ends within seconds, mpirun names rank 1, and
 * rank 0 names the last good checkpoint — the one on disk, written before the end (`steps`).
 */
export async function killRank1(args: string[], out: string, steps: number): Promise<void> {
  const job = spawn('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', 'KDQAT_THREADS=1', process.execPath, ...args,
    '--distributed', 'mpi', '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
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
  assert.ok(saved.step < steps, 'killed before the end');
}
