// `kdqat bench`: the engine benchmarks (GEMM GFLOP/s, training-step tokens/s against PyTorch),
// and `--plot`: their figures and an HTML page, from a fresh run or from records that
// `kdqat bench --json` wrote (--records). The bench and plotting modules load when it runs.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../train/usage.js';

export interface BenchCliOptions {
  json?: boolean;
  only?: string;
  torch?: boolean;
  /** true: the default directory; a path ending in .html: the page (figures beside it); else a directory. */
  plot?: string | boolean;
  /** Records to plot instead of running (a file written by --json; `-` for stdin). */
  records?: string;
  force?: boolean;
}

export const DEFAULT_PLOT_DIR = 'bench-plots';

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure GEMM GFLOP/s and training-step tokens/s (side by side with PyTorch when /usr/bin/python3 has torch); --plot draws them')
    .option('--json', 'print one JSON object per line (each names the CPU and the SIMD path it ran on)')
    .option('--only <which>', 'gemm, step, qat (+ the real-size KD-QAT steps when alone), quant, kquant, onnx, scaling (KD-QAT step against threads, width and sequence length; ~5 min) or real')
    .option('--no-torch', 'skip the PyTorch side')
    .option('--plot [out]', `write SVG figures and index.html into a directory (default ${DEFAULT_PLOT_DIR}), or the page to a FILE.html with the figures beside it`)
    .option('--records <file>', 'with --plot: draw these records (written by --json; - for stdin) instead of running')
    .option('--force', 'with --plot: replace existing figures and page')
    .addHelpText('after', '\nExamples:\n  kdqat bench --only scaling --json > scaling.jsonl\n  kdqat bench --plot figures/bench --records scaling.jsonl\n' +
      '  kdqat bench --only gemm --plot figures/gemm --force')
    .action(async (opts: BenchCliOptions) => {
      for (const f of await runBenchCli(opts)) process.stderr.write(`wrote ${f}\n`);
    });
}

/** Runs (or reads) the records and, with --plot, writes the figures; returns the files written. */
export async function runBenchCli(opts: BenchCliOptions): Promise<string[]> {
  if (opts.records && !opts.plot) throw new UsageError('--records is for --plot (draw records instead of running)');
  if (!opts.plot) {
    const { runBench } = await import('../../bench/run.js');
    await runBench({ json: !!opts.json, only: opts.only, torch: opts.torch });
    return [];
  }
  const target = opts.plot === true ? DEFAULT_PLOT_DIR : opts.plot;
  const isPage = target.endsWith('.html');
  const dir = path.resolve(isPage ? path.dirname(target) : target);
  const page = isPage ? path.resolve(target) : path.join(dir, 'index.html');
  const recordsFile = path.join(dir, isPage ? `${path.basename(target, '.html')}.jsonl` : 'records.jsonl');
  const { benchFigures, benchPage, parseBenchRecords } = await import('../report/bench-page.js');
  const { atomicWrite } = await import('../io/atomic.js');
  const { checkOutput } = await import('../io/outputs.js');
  const refuse = (files: string[]): void => {
    // Never the records read (--records), never a directory where a file goes.
    for (const f of files) checkOutput(f, { flag: '--plot', kind: 'file', force: true, inputs: [{ flag: '--records', path: opts.records === '-' ? null : opts.records }] });
    const existing = files.filter((f) => fs.existsSync(f));
    if (!opts.force && existing.length) {
      throw new Error(`--plot ${target}: ${existing.length} file(s) already exist (e.g. ${path.basename(existing[0])}); pass --force to replace them`);
    }
  };
  // Checked before a run of minutes, and again once the figures are known.
  refuse([page, recordsFile]);
  let text: string, source: string;
  if (opts.records) {
    text = opts.records === '-' ? fs.readFileSync(0, 'utf8') : (await import('../io/files.js')).readFileChecked(opts.records, 'utf8');
    source = opts.records === '-' ? 'stdin' : opts.records;
  } else {
    const { runBench } = await import('../../bench/run.js');
    const recs = await runBench({ json: !!opts.json, only: opts.only, torch: opts.torch });
    text = recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    source = path.basename(recordsFile);
  }
  const recs = parseBenchRecords(text, source);
  const figures = benchFigures(recs);
  if (figures.length === 0) {
    throw new Error(`${source}: no records to draw (${[...new Set(recs.map((r) => r.bench))].join(', ') || 'none'}); ` +
      'figures exist for gemm, qat_step and qat_scaling records (--only gemm, qat or scaling)');
  }
  const svgs = figures.map((f) => path.join(dir, `${f.name}.svg`));
  refuse([...svgs, page, ...(opts.records ? [] : [recordsFile])]);
  fs.mkdirSync(dir, { recursive: true });
  const force = opts.force ?? false;
  const written: string[] = [];
  if (!opts.records) { atomicWrite(recordsFile, force, (w) => w(text)); written.push(recordsFile); }
  figures.forEach((f, i) => { atomicWrite(svgs[i], force, (w) => w(f.svg)); written.push(svgs[i]); });
  atomicWrite(page, force, (w) => w(benchPage(figures, { source })));
  written.push(page);
  return written;
}
