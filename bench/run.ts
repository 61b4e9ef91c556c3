// `npm run bench` / `kdqat bench`: GEMM GFLOP/s and training-step tokens/s, side by side with
// PyTorch. `--json` prints one JSON object per line, each naming the CPU and the SIMD path it
// ran on (bench/env.ts); otherwise a table with ratios. runBench returns the records it printed
// (what `kdqat bench --plot` draws).
import { runGemmBench } from './gemm.js';
import { runStepBench, type StepRecord } from './step.js';
import { runQatBench, type QatStepRecord } from './qat_step.js';
import { runQuantBench } from './quant.js';
import { recomputeModeOf, type RecomputeMode } from '../src/tensor/index.js';
import { printRealSizeTable, runRealSizeBench, type RealSizeRecord } from './real_size.js';
import { printOnnxTable, runOnnxBench } from './onnx.js';
import { runKQuantBench } from './kquant.js';
import { printScalingTable, runScalingBench } from './scaling.js';
import { annotate, benchEnv, type EnvFields } from './env.js';

export interface BenchOptions {
  json?: boolean;
  only?: string;
  torch?: boolean;
}

/** gemm … onnx run by default; qat adds the real-size KD-QAT steps when asked for alone. */
export const BENCH_KINDS = ['gemm', 'step', 'qat', 'quant', 'kquant', 'onnx', 'scaling', 'real'] as const;
export type BenchRecord = Record<string, unknown> & EnvFields & { bench: string };

/** The real-size KD-QAT steps (issue 13's targets) under `--only qat`. */
const REAL_QAT = ['smollm2-135m', 'bert-base'] as const;
type RealQat = (typeof REAL_QAT)[number];

// KDQAT_BENCH_MODELS=bert-base (comma-separated): only these of the real-size KD-QAT models.
function realQatModels(): RealQat[] {
  const v = process.env.KDQAT_BENCH_MODELS;
  if (!v) return [...REAL_QAT];
  return v.split(',').map((n) => {
    if (!(REAL_QAT as readonly string[]).includes(n)) throw new Error(`KDQAT_BENCH_MODELS: unknown model "${n}" (use ${REAL_QAT.join(', ')})`);
    return n as RealQat;
  });
}

/** A record's compute field from the worker's --bf16 mode (+ '-int8grad' with int8 input gradients). */
const COMPUTE: Record<string, string> = { off: 'fp32', teacher: 'bf16-teacher', layers: 'bf16-layers', all: 'bf16' };

/** A real-size run as a KD-QAT step record: shape = the model's name. */
export function realSizeToQatStep(r: RealSizeRecord): QatStepRecord & { shape: string; batch: number; seq: number; compute?: string; recompute?: RecomputeMode } {
  const tokens = r.batch * r.seq;
  return {
    bench: 'qat_step', shape: r.model, impl: r.impl, threads: r.threads, batch: r.batch, seq: r.seq,
    tokens_per_s: r.qat_tokens_per_s, step_ms: (tokens / r.qat_tokens_per_s) * 1000,
    best_tokens_per_s: r.qat_best_tokens_per_s, best_step_ms: (tokens / r.qat_best_tokens_per_s) * 1000,
    peak_rss_mb: r.peak_rss_mb, loss_first: r.loss_first, loss_last: r.loss_last,
    ...(r.impl === 'kdqat' ? { compute: (COMPUTE[r.bf16 ?? 'off'] ?? 'fp32') + (r.int8_grad ? '-int8grad' : ''), recompute: recomputeModeOf(r.recompute) } : {}),
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchRecord[]> {
  const json = !!opts.json;
  const torch = opts.torch ?? true;
  if (opts.only && !(BENCH_KINDS as readonly string[]).includes(opts.only)) {
    throw new Error(`--only ${opts.only}: not a benchmark (${BENCH_KINDS.join(', ')})`);
  }
  const realModels = realQatModels(); // checked before minutes of other benchmarks
  const env = await benchEnv({ torch });
  const all: BenchRecord[] = [];
  const emit = (recs: object[]): void => {
    for (const r of recs) {
      const a = annotate(r, env) as BenchRecord;
      all.push(a);
      if (json) console.log(JSON.stringify(a));
    }
  };
  const want = (k: string): boolean => !opts.only || opts.only === k;
  if (!json) console.log(`CPU: ${env.cpu}; kdqat ${env.kdqat ? `gemm ${env.kdqat.families.gemm?.selected}, isa ${env.kdqat.isa}` : 'TypeScript reference'}` +
    (env.torch ? `; torch ${env.torch.torch} (ATen ${env.torch.aten}, ${env.torch.blas})` : ''));
  if (want('gemm')) emit(await runGemmBench({ json, torch }));
  if (want('step')) {
    const recs = runStepBench({ torch, rounds: 2 });
    emit(recs);
    if (!json) printStepTable(recs);
  }
  if (want('qat')) {
    const recs = runQatBench({ torch, rounds: 2 }).map((r) => ({ ...r, shape: 'd256' }));
    emit(recs);
    if (!json) printStepTable(recs, 'KD-QAT step (teacher forward, student W4 per-channel fake-quant forward + backward, logits KL, AdamW)');
    // The real-size KD-QAT steps take minutes per model and thread count: only when asked for.
    if (opts.only === 'qat') {
      const real = runRealSizeBench({ models: realModels, threads: [1, 2], torch, bf16: !!env.kdqat?.bf16?.available, recompute: true });
      emit(real.map(realSizeToQatStep));
      if (!json) printRealSizeTable(real);
    }
  }
  if (want('quant')) emit(runQuantBench({ json }));
  if (want('kquant')) emit(runKQuantBench({ json }));
  if (want('onnx')) {
    const recs = await runOnnxBench({ rounds: 5 });
    emit(recs);
    if (!json) printOnnxTable(recs);
  }
  // The scaling sweep (~5 min at 2 vCPUs) and the real-size checkpoints: only when asked for.
  if (opts.only === 'scaling') {
    const recs = runScalingBench({ torch, log: json ? undefined : (s) => process.stderr.write(`  ${s}\n`) });
    emit(recs);
    if (!json) printScalingTable(recs);
  }
  if (opts.only === 'real') {
    const recs = runRealSizeBench({ torch, bf16: !!env.kdqat?.bf16?.available });
    emit(recs);
    if (!json) printRealSizeTable(recs);
  }
  return all;
}

function printStepTable(recs: (StepRecord | QatStepRecord)[], what = 'training step'): void {
  console.log(`\n${what}: LLaMA dim 256, 4 layers, 4 heads, SwiGLU 688, vocab 4096, seq 256, batch 8`);
  console.log('impl    threads  tokens/s  step ms  peak RSS MB');
  const best = new Map<string, StepRecord | QatStepRecord>();
  for (const r of recs) {
    const k = `${r.impl}:${r.threads}`;
    const b = best.get(k);
    if (!b || r.tokens_per_s > b.tokens_per_s) best.set(k, r);
  }
  for (const r of best.values()) {
    console.log(`${r.impl.padEnd(8)}${String(r.threads).padStart(7)}${r.tokens_per_s.toFixed(0).padStart(10)}${r.step_ms.toFixed(0).padStart(9)}${r.peak_rss_mb.toFixed(0).padStart(13)}`);
  }
  for (const t of [1, 2]) {
    const a = best.get(`kdqat:${t}`), b = best.get(`torch:${t}`);
    if (a && b) console.log(`${t} thread(s): kdqat/torch tokens/s = ${(a.tokens_per_s / b.tokens_per_s).toFixed(2)}x, peak RSS = ${(a.peak_rss_mb / b.peak_rss_mb).toFixed(2)}x`);
  }
}


if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const plotAt = args.indexOf('--plot');
  if (plotAt >= 0) {
    const { runBenchCli } = await import('../src/cli/bench.js');
    const next = args[plotAt + 1];
    const records = args.includes('--records') ? args[args.indexOf('--records') + 1] : undefined;
    try {
      const files = await runBenchCli({ json: args.includes('--json'), only, torch: !args.includes('--no-torch'),
        plot: next && !next.startsWith('--') ? next : true, records, force: args.includes('--force') });
      for (const f of files) process.stderr.write(`wrote ${f}\n`);
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  } else {
    await runBench({ json: args.includes('--json'), only, torch: !args.includes('--no-torch') });
  }
}
