// `npm run bench` / `kdqat bench`: GEMM GFLOP/s and training-step tokens/s, side by side with
// PyTorch. `--json` prints one JSON object per line; otherwise a table with ratios.
import { runGemmBench } from './gemm.js';
import { runStepBench, type StepRecord } from './step.js';
import { runQatBench, type QatStepRecord } from './qat_step.js';
import { runQuantBench } from './quant.js';
import { printRealSizeTable, runRealSizeBench } from './real_size.js';
import { printOnnxTable, runOnnxBench } from './onnx.js';
import { runKQuantBench } from './kquant.js';

export interface BenchOptions {
  json?: boolean;
  only?: string;
  torch?: boolean;
}

function print(json: boolean, rec: object): void {
  if (json) console.log(JSON.stringify(rec));
}

export async function runBench(opts: BenchOptions): Promise<void> {
  const json = !!opts.json;
  if (!opts.only || opts.only === 'gemm') {
    const recs = await runGemmBench({ json, torch: opts.torch ?? true });
    if (json) for (const r of recs) print(true, r);
  }
  if (!opts.only || opts.only === 'step') {
    const recs = runStepBench({ torch: opts.torch ?? true, rounds: 2 });
    if (json) for (const r of recs) print(true, r);
    else printStepTable(recs);
  }
  if (!opts.only || opts.only === 'qat') {
    const recs = runQatBench({ torch: opts.torch ?? true, rounds: 2 });
    if (json) for (const r of recs) print(true, r);
    else printStepTable(recs, 'KD-QAT step (teacher forward, student W4 per-channel fake-quant forward + backward, logits KL, AdamW)');
  }
  if (!opts.only || opts.only === 'quant') {
    const recs = runQuantBench({ json });
    if (json) for (const r of recs) print(true, r);
  }
  if (!opts.only || opts.only === 'kquant') {
    const recs = runKQuantBench({ json });
    if (json) for (const r of recs) print(true, r);
  }
  if (!opts.only || opts.only === 'onnx') {
    const recs = await runOnnxBench({ rounds: 5 });
    if (json) for (const r of recs) print(true, r);
    else printOnnxTable(recs);
  }
  // Real-size checkpoints take minutes per model: only when asked for.
  if (opts.only === 'real') {
    const recs = runRealSizeBench({ torch: opts.torch ?? true });
    if (json) for (const r of recs) print(true, r);
    else printRealSizeTable(recs);
  }
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
  await runBench({ json: args.includes('--json'), only, torch: !args.includes('--no-torch') });
}
