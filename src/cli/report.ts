// `kdqat report RUN_DIR... --out report.html`: one self-contained HTML page (inline SVG, nothing
// fetched, opens from disk) for the output directories of kdqat qat, reproduce or demo runs:
// settings and command, loss terms and evaluations over steps, the signal-propagation figures,
// the comparison table (mean ± std over seeds) and the sizes of the model files.
// The report modules are imported when the command runs (see eval.ts).
import { Command } from 'commander';
import { JSON_HELP, printJson } from './options.js';

export interface ReportCliOptions {
  out?: string;
  force?: boolean;
}

export function reportCommand(): Command {
  return new Command('report')
    .description('one self-contained HTML page (settings, loss and evaluation curves, signal-propagation heatmaps, comparison table, file sizes) for kdqat qat / reproduce / demo runs')
    .argument('<run-dir...>', 'the --out directory of a kdqat qat, reproduce or demo run (several: side by side)')
    .requiredOption('--out <file>', 'the HTML file to write (e.g. report.html)')
    .option('--force', 'replace an existing --out file')
    .option('--json', JSON_HELP + ': {"report": the page, "runs": the run directories}')
    .addHelpText('after', '\nExamples:\n  kdqat report kdqat-demo --out kdqat-demo/report.html\n' +
      '  kdqat report runs/qat-w4 runs/qat-w4-ov --out compare.html\n\n' +
      'kdqat demo and kdqat reproduce write OUT/report.html themselves when they finish. The page runs no\n' +
      'code but a small error watcher, loads nothing and opens from disk (file://); see docs/report.md.')
    .action(async (dirs: string[], opts: ReportCliOptions & { json?: boolean }) => {
      const { writeRunReport } = await import('../report/report.js');
      const file = writeRunReport(dirs, opts.out!, { force: opts.force });
      if (opts.json) printJson({ report: file, runs: dirs });
      else process.stdout.write(`wrote ${file}\n`);
    });
}
