// `kdqat plot`: figures of the signal-propagation study (METHODS.md §4) from one or more KD-QAT
// logs (qat_log.jsonl), side by side: loss terms, per metric the mean-over-layers lines per
// module kind and a layer × kind heatmap, and the periodic evaluation against the step. The
// train_log.jsonl of pretrain / finetune gives the learning curves (loss, validation perplexity
// or dev accuracy). Writes NAME.svg and NAME.png per figure into --out.
// The plotting modules are imported when the command runs (see eval.ts).
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JSON_HELP, listArg, printJson } from './options.js';

export interface PlotCliOptions {
  log?: string[];
  label?: string[];
  out?: string;
  force?: boolean;
  heatmap?: string;
  png?: boolean;
}

export function plotCommand(): Command {
  return new Command('plot')
    .description('plot the signal-propagation statistics, loss terms and evaluations of KD-QAT logs, or the learning curves of pretrain/finetune logs (SVG + PNG), several runs side by side')
    .requiredOption('--log <file>', 'a qat_log.jsonl, or the train_log.jsonl of pretrain/finetune (repeat for several runs)', listArg)
    .option('--label <name>', 'the label of each --log, in the same order (default: the log\'s directory name)', listArg)
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--heatmap <mode>', 'heatmap values: mean (over logged steps, default) or last (logged step)')
    .option('--no-png', 'write SVG only')
    .option('--force', 'replace existing figures')
    .option('--json', JSON_HELP + ': {"files": [the files written]}')
    .addHelpText('after', '\nExample:\n  kdqat plot --log runs/kdqat/qat_log.jsonl --log runs/kdqat-ov/qat_log.jsonl ' +
      '--label KD-QAT --label "KD-QAT + ov-freeze" --out figures/ov\n' +
      '  kdqat plot --log runs/llama/train_log.jsonl --out figures/llama   # loss and validation perplexity curves')
    .action(async (opts: PlotCliOptions & { json?: boolean }) => {
      const files = await runPlot(opts);
      if (opts.json) printJson({ files });
      else for (const f of files) process.stdout.write(`wrote ${f}\n`);
    });
}

/** Returns the files written. */
export async function runPlot(opts: PlotCliOptions): Promise<string[]> {
  const logs = opts.log ?? [];
  if (logs.length === 0) throw new Error('--log is required (a qat_log.jsonl written by kdqat qat, or a train_log.jsonl of pretrain/finetune)');
  if (!opts.out) throw new Error('--out is required');
  const labels = opts.label ?? [];
  if (labels.length > 0 && labels.length !== logs.length) {
    throw new Error(`--label given ${labels.length} time(s) for ${logs.length} --log file(s); give one label per log, in the same order`);
  }
  const heatmap = opts.heatmap ?? 'mean';
  if (heatmap !== 'mean' && heatmap !== 'last') throw new Error(`--heatmap must be mean or last, got '${heatmap}'`);
  const { readSignalLog } = await import('../analysis/signal-log.js');
  const { plotRuns, svgToPng } = await import('../analysis/plots.js');
  const { evalFigures } = await import('../analysis/plots-steps.js');
  const { atomicWrite } = await import('../io/atomic.js');
  const runs = logs.map((file, i) => ({
    file, label: labels[i] ?? defaultLabel(file), entries: readSignalLog(file),
  }));
  const dup = runs.find((r, i) => runs.findIndex((s) => s.label === r.label) !== i);
  if (dup) throw new Error(`two runs are labelled '${dup.label}'; name them with --label A --label B`);
  const figures = [...plotRuns(runs, { heatmap }), ...evalFigures(runs)];
  const out = path.resolve(opts.out);
  const files = figures.flatMap((f) => [`${f.name}.svg`, ...(opts.png === false ? [] : [`${f.name}.png`])]).map((n) => path.join(out, n));
  // Checked before writing anything, so a refused run leaves the directory as it was: never a
  // log read (--log), never a directory where a figure goes.
  const { checkOutput } = await import('../io/outputs.js');
  for (const f of files) checkOutput(f, { kind: 'file', force: true, inputs: logs.map((l) => ({ flag: '--log', path: l })) });
  if (!opts.force) {
    const existing = files.filter((f) => fs.existsSync(f));
    if (existing.length) throw new Error(`--out ${opts.out}: ${existing.length} figure(s) already exist (e.g. ${path.basename(existing[0])}); pass --force to replace them`);
  }
  fs.mkdirSync(out, { recursive: true });
  const written: string[] = [];
  for (const f of figures) {
    const svgFile = path.join(out, `${f.name}.svg`);
    atomicWrite(svgFile, opts.force ?? false, (w) => w(f.svg));
    written.push(svgFile);
    if (opts.png === false) continue;
    const pngFile = path.join(out, `${f.name}.png`);
    const png = svgToPng(f.svg);
    atomicWrite(pngFile, opts.force ?? false, (w) => w(png));
    written.push(pngFile);
  }
  return written;
}

/** runs/kdqat-ov/qat_log.jsonl → kdqat-ov (train_log.jsonl likewise); a log named otherwise → its file name. */
function defaultLabel(file: string): string {
  const base = path.basename(file);
  return base === 'qat_log.jsonl' || base === 'train_log.jsonl' ? path.basename(path.dirname(path.resolve(file))) : base.replace(/\.jsonl$/, '');
}
