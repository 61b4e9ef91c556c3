// The mpirun runs of the distributed tests (test/train/distributed.test.ts, pretrain-distributed.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
