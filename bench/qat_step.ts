// Benchmark: one KD-QAT step (issue 4's speed bar) — teacher forward without gradients, student
// forward with 4-bit symmetric per-output-channel fake quantization of the 7 projection weights
// of every layer (STE), logits KL at τ = 1, backward, AdamW — on the bench/step.ts model (dim
// 256, 4 layers, 4 heads, SwiGLU 688, vocab 4096, seq 256, batch 8), in tokens/s and peak RSS
// at 1 and 2 threads, interleaved with the same step in PyTorch (bench/torch_qat_step.py).
// Each measurement runs in its own child process (bench/qat_step_worker.ts).
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { TORCH_PYTHON, runChild, torchAvailable } from './step.js';

export interface QatStepRecord {
  bench: 'qat_step';
  impl: 'kdqat' | 'torch';
  threads: number;
  tokens_per_s: number;
  step_ms: number;
  /** The fastest single step (the least disturbed on a shared machine). */
  best_tokens_per_s: number;
  best_step_ms: number;
  peak_rss_mb: number;
  loss_first: number;
  loss_last: number;
}

const here = dirname(fileURLToPath(import.meta.url));

export function runQatBench(opts: { threads?: number[]; steps?: number; rounds?: number; torch?: boolean } = {}): QatStepRecord[] {
  const threads = opts.threads ?? [1, 2];
  const steps = opts.steps ?? 5;
  const useTorch = (opts.torch ?? true) && torchAvailable();
  const out: QatStepRecord[] = [];
  for (let round = 0; round < (opts.rounds ?? 1); round++) {
    for (const t of threads) {
      out.push(runChild<QatStepRecord>(process.execPath, ['--import', 'tsx', join(here, 'qat_step_worker.ts'), String(steps)], t));
      if (useTorch) out.push(runChild<QatStepRecord>(TORCH_PYTHON, [join(here, 'torch_qat_step.py'), String(steps)], t));
    }
  }
  return out;
}
