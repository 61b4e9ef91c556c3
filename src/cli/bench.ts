// `kdqat bench`: the engine benchmarks (GEMM GFLOP/s, training-step tokens/s against PyTorch).
import { Command } from 'commander';

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure GEMM GFLOP/s and training-step tokens/s (side by side with PyTorch when /usr/bin/python3 has torch)')
    .option('--json', 'print one JSON object per line')
    .option('--only <which>', 'gemm, step, qat, quant or onnx')
    .option('--no-torch', 'skip the PyTorch side')
    .action(async (opts: { json?: boolean; only?: string; torch: boolean }) => {
      const { runBench } = await import('../../bench/run.js');
      await runBench({ json: !!opts.json, only: opts.only, torch: opts.torch });
    });
}
