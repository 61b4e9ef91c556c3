// Benchmark (issue 11's scale): real-size random checkpoints in the exact layout of SmolLM2-135M,
// Qwen2.5-0.5B (decoders) and BERT-base (encoder, classifier) — config.json as published
// (bench/configs/), weights BF16 as the real files ship — loaded by kdqat's loader and by a
// PyTorch script on the same file (bench/torch_real_size.py): load time, forward tokens/s
// without gradients, KD-QAT step tokens/s (settings in bench/real_size_shapes.ts) and peak RSS,
// each configuration in its own child process (bench/real_size_worker.ts). The checkpoints are
// made once into $KDQAT_BENCH_DIR (default: the OS temp directory), 0.3–1 GB each.
// Not part of the default `npm run bench` (minutes per model): `npm run bench -- --only real`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { recomputeModeOf, type RecomputeMode } from '../src/tensor/index.js';
import { TORCH_PYTHON, runChild, torchAvailable } from './step.js';
import { SHAPES, type RealSizeName } from './real_size_shapes.js';

export interface RealSizeRecord {
  bench: 'real_size';
  impl: 'kdqat' | 'torch';
  model: RealSizeName;
  threads: number;
  batch: number;
  seq: number;
  load_ms: number;
  forward_tokens_per_s: number;
  qat_tokens_per_s: number;
  qat_best_tokens_per_s: number;
  /** Untimed KD-QAT steps before the timed ones (both workers: 2; absent in older records: 1),
   *  and the first one's time: the one-time costs (the heap growing to its peak) are there. */
  warmup_steps?: number;
  first_step_ms?: number;
  peak_rss_mb: number;
  loss_first: number;
  loss_last: number;
  /** kdqat's GEMM precision (KDQAT_BF16 of the worker: off, teacher or all); absent for torch. */
  bf16?: string;
  /** How the student's layers were recomputed in backward (KDQAT_RECOMPUTE; `--recompute`):
   *  off, selective or all (true in records from before the selective mode: all). */
  recompute?: RecomputeMode | boolean;
  /** The student's input gradients as int8 GEMMs (KDQAT_INT8_GRAD=on; `kdqat qat --int8-grad`);
   *  absent for torch and in older records: off. */
  int8_grad?: boolean;
  /** MiB the teacher's weights held as bf16 save (`kdqat qat` does it for a BF16
   *  checkpoint; KDQAT_TEACHER_BF16=off in the worker keeps them float32: 0); absent for torch
   *  and in older records. */
  teacher_bf16_saved_mb?: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, 'real_size_worker.ts');

function checkpoint(name: RealSizeName): string {
  const dir = join(process.env.KDQAT_BENCH_DIR ?? os.tmpdir(), `kdqat-bench-${name}`);
  // The config is part of the key: a changed bench/configs file makes a new checkpoint.
  const cfg = fs.readFileSync(join(here, 'configs', `${name}.json`), 'utf8');
  const stamp = join(dir, '.bench-config.json');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === cfg) return dir;
  process.stderr.write(`making the ${SHAPES[name].label} checkpoint in ${dir} …\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', WORKER, 'make', name, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`making ${dir} failed (${r.status})`);
  fs.writeFileSync(stamp, cfg);
  return dir;
}

export function runRealSizeBench(opts: { models?: RealSizeName[]; threads?: number[]; steps?: number; torch?: boolean; bf16?: boolean; recompute?: boolean } = {}): RealSizeRecord[] {
  const models = opts.models ?? (Object.keys(SHAPES) as RealSizeName[]);
  const threads = opts.threads ?? [2];
  const steps = String(opts.steps ?? 2);
  const useTorch = (opts.torch ?? true) && torchAvailable();
  const out: RealSizeRecord[] = [];
  for (const name of models) {
    const dir = checkpoint(name);
    for (const t of threads) {
      const kdqat = (env: Record<string, string>): void => {
        out.push(runChild<RealSizeRecord>(process.execPath, ['--import', 'tsx', WORKER, 'run', name, dir, steps], t, env));
      };
      // fp32; where the CPU has AVX512_BF16 the same step with every GEMM but the student's LM
      // head in bf16 (--bf16 layers: kdqat qat's default there) and with every GEMM in bf16
      // (--bf16 all); with `recompute`, fp32 and layers again with the layers recomputed in
      // backward, selectively and all of them, and fp32 selective with int8 input gradients (what
      // `kdqat qat --int8-grad auto`, the default, runs where the GEMMs are float32: from BERT-base's
      // twn-a8 codes, from SmolLM2's w4-g32 ŵ rounded to 7 bits per row).
      for (const re of opts.recompute ? ['off', 'selective', 'all'] : ['off']) {
        kdqat({ KDQAT_RECOMPUTE: re });
        if (re === 'selective') kdqat({ KDQAT_RECOMPUTE: re, KDQAT_INT8_GRAD: 'on' });
        if (opts.bf16) kdqat({ KDQAT_RECOMPUTE: re, KDQAT_BF16: 'layers' });
        if (opts.bf16 && re === 'off') kdqat({ KDQAT_RECOMPUTE: re, KDQAT_BF16: 'all' });
      }
      if (useTorch) out.push(runChild<RealSizeRecord>(TORCH_PYTHON, [join(here, 'torch_real_size.py'), name, dir, steps], t));
    }
  }
  return out;
}

export function printRealSizeTable(recs: RealSizeRecord[]): void {
  console.log('\nreal-size checkpoints (random weights in the published layouts; KD-QAT settings in bench/real_size_shapes.ts)');
  console.log('model            impl            thr  B×T      load s  fwd tok/s  KD-QAT tok/s  peak RSS MB');
  for (const r of recs) {
    const bf = { all: 'bf16', layers: 'bf16-layers', teacher: 'bf16-teacher' }[r.bf16 ?? 'off'] ?? '';
    const re = recomputeModeOf(r.recompute);
    const impl = r.impl === 'kdqat' ? [r.impl, bf, { off: '', selective: 're-sel', all: 're' }[re], r.int8_grad ? 'i8g' : ''].filter(Boolean).join('/') : r.impl;
    console.log(`${r.model.padEnd(17)}${impl.padEnd(16)}${String(r.threads).padStart(3)}  ${`${r.batch}×${r.seq}`.padEnd(8)}` +
      `${(r.load_ms / 1000).toFixed(2).padStart(7)}${r.forward_tokens_per_s.toFixed(0).padStart(11)}` +
      `${r.qat_tokens_per_s.toFixed(1).padStart(14)}${r.peak_rss_mb.toFixed(0).padStart(13)}`);
  }
  for (const name of new Set(recs.map((r) => r.model))) {
    for (const t of new Set(recs.map((r) => r.threads))) {
      const kd = (bf16: string, re: RecomputeMode, int8Grad = false) => recs.find((r) => r.model === name && r.threads === t && r.impl === 'kdqat' &&
        (r.bf16 ?? 'off') === bf16 && recomputeModeOf(r.recompute) === re && (r.int8_grad ?? false) === int8Grad);
      const a = kd('off', 'off'), b = recs.find((r) => r.model === name && r.threads === t && r.impl === 'torch');
      if (a && b) {
        const vs = (label: string, r: RealSizeRecord | undefined): string => (r ? `; ${label}: ${(r.qat_tokens_per_s / b.qat_tokens_per_s).toFixed(2)}×, RSS ${(r.peak_rss_mb / b.peak_rss_mb).toFixed(2)}×` : '');
        console.log(`${name}, ${t} thread(s): kdqat/torch load time ${(a.load_ms / b.load_ms).toFixed(2)}×, forward tokens/s ${(a.forward_tokens_per_s / b.forward_tokens_per_s).toFixed(2)}×, ` +
          `KD-QAT tokens/s ${(a.qat_tokens_per_s / b.qat_tokens_per_s).toFixed(2)}×, peak RSS ${(a.peak_rss_mb / b.peak_rss_mb).toFixed(2)}×` +
          vs('bf16 layers (the default here)', kd('layers', 'off')) + vs('bf16', kd('all', 'off')) +
          vs('recompute selective', kd('off', 'selective')) + vs('recompute selective + int8 grad (the default with float32 GEMMs)', kd('off', 'selective', true)) + vs('recompute', kd('off', 'all')) +
          vs('bf16 layers + recompute selective', kd('layers', 'selective')) + vs('bf16 layers + recompute', kd('layers', 'all')));
      }
    }
  }
}
