// Benchmark (b)/(c): one training step (forward, backward, AdamW) of a LLaMA-style LM —
// dim 256, 4 layers, 4 heads, SwiGLU hidden 688, vocab 4096, sequence 256, batch 8 — in
// tokens/s and peak RSS, at 1 and 2 threads, interleaved with the same step in PyTorch
// (bench/torch_step.py, Debian's /usr/bin/python3). Each measurement runs in its own child
// process so that peak RSS belongs to that configuration alone.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface StepRecord {
  bench: 'train_step';
  impl: 'kdqat' | 'torch';
  threads: number;
  tokens_per_s: number;
  step_ms: number;
  peak_rss_mb: number;
  loss_first: number;
  loss_last: number;
}

export const STEP_SHAPE = { dim: 256, layers: 4, heads: 4, hidden: 688, vocab: 4096, seq: 256, batch: 8 };

const here = dirname(fileURLToPath(import.meta.url));
export const TORCH_PYTHON = '/usr/bin/python3';

export function torchAvailable(): boolean {
  if (!existsSync(TORCH_PYTHON)) return false;
  const r = spawnSync(TORCH_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
  return r.status === 0;
}

export function threadEnv(threads: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KDQAT_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_WAIT_POLICY: 'PASSIVE',
  };
}

export function runChild<R = StepRecord>(cmd: string, args: string[], threads: number, extraEnv: Record<string, string> = {}): R {
  const r = spawnSync(cmd, args, { env: { ...threadEnv(threads), ...extraEnv }, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`${cmd} printed no JSON:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as R;
}

export function runStepBench(opts: { threads?: number[]; steps?: number; rounds?: number; torch?: boolean } = {}): StepRecord[] {
  const threads = opts.threads ?? [1, 2];
  const steps = opts.steps ?? 5;
  const useTorch = (opts.torch ?? true) && torchAvailable();
  const out: StepRecord[] = [];
  for (let round = 0; round < (opts.rounds ?? 1); round++) {
    for (const t of threads) {
      out.push(runChild(process.execPath, ['--import', 'tsx', join(here, 'step_worker.ts'), String(steps)], t));
      if (useTorch) out.push(runChild(TORCH_PYTHON, [join(here, 'torch_step.py'), String(steps)], t));
    }
  }
  return out;
}
