// `npx tsx bench/distributed.ts [steps]`: data-parallel KD-QAT on one machine (issue 17): the
// same run — teachers/llama-sotu (d256, 4 layers, vocab 4096), W4 per-channel, pred KL, global
// batch 8 × 128 tokens, no evaluations — as 1 process × 2 threads and as 2 MPI ranks × 1
// thread (mpirun --oversubscribe). Prints one JSON record per configuration: training tokens/s,
// the mean all-reduce time per step (gradients + loss, on rank 0) and the wait before it for the
// slower rank's backward, the bytes all-reduced per step and the CPU model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuModel } from './env.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const steps = process.argv[2] ?? '8';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-bench-dist-'));

function run(cmd: string, args: string[], env: Record<string, string>): Record<string, unknown> {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const worker = ['--import', 'tsx', 'bench/distributed_worker.ts'];
const configs = [
  { ranks: 1, threads: 2, summary: () => run(process.execPath, [...worker, path.join(tmp, 'one'), steps], { KDQAT_THREADS: '2' }) },
  {
    ranks: 2, threads: 1, summary: () => run('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', 'KDQAT_THREADS=1',
      process.execPath, ...worker, path.join(tmp, 'two'), steps, '--distributed'], { KDQAT_THREADS: '1' }),
  },
];
for (const c of configs) {
  const s = c.summary() as { train_tokens_per_s: number; trainable_parameters: number; steps: number; distributed?: { allreduce_ms_per_step: number; wait_ms_per_step: number } };
  process.stdout.write(JSON.stringify({
    bench: 'distributed', model: 'teachers/llama-sotu', ranks: c.ranks, threads_per_rank: c.threads, steps: s.steps, tokens_per_step: 8 * 128,
    train_tokens_per_s: s.train_tokens_per_s, allreduce_ms_per_step: s.distributed?.allreduce_ms_per_step ?? 0, wait_ms_per_step: s.distributed?.wait_ms_per_step ?? 0,
    allreduce_bytes_per_step: c.ranks > 1 ? 4 * s.trainable_parameters : 0, cpu: cpuModel(), vcpus: os.cpus().length,
  }) + '\n');
}
fs.rmSync(tmp, { recursive: true, force: true });
