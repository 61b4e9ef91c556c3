// `kdqat quantize`: post-training round-to-nearest quantization of a model directory with any
// quantizer (the baseline every table starts from). Prints the quantization error per module
// kind and writes a student directory (quant/student.ts), which `kdqat eval` reads as the
// dequantized low-bit model. The model modules are imported when the command runs (see eval.ts).
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface QuantizeOptions {
  model?: string;
  quant?: string;
  out?: string;
  tokenizer?: string;
  force?: boolean;
  json?: boolean;
}

export interface QuantizeReport {
  model: string;
  out: string;
  quant: string;
  summary: string;
  kinds: { kind: string; weights: number; quant: string; meanSqnrDb: number; minSqnrDb: number }[];
  weights: { name: string; quant: string; sqnrDb: number; rmse: number }[];
  seconds: number;
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .description('post-training round-to-nearest quantization of a model directory into a student directory')
    .requiredOption('--model <dir>', 'Hugging Face model directory (a student directory is re-quantized from its latent weights)')
    .requiredOption('--quant <preset|file>', 'a preset (w4-channel, w3-channel, w4-g128, q4_0, q8_0, tq2_0, twn, twn-a8, …) or a JSON config (docs/quantization.md)')
    .requiredOption('--out <dir>', 'the student directory to write')
    .option('--tokenizer <file>', 'tokenizer.json to copy when the model directory has none')
    .option('--force', 'replace an earlier kdqat output at --out (never an input, never a directory kdqat did not write)')
    .option('--json', 'print one JSON object (per-kind and per-weight errors) instead of a table')
    .addHelpText('after', '\nExamples:\n  kdqat quantize --model teachers/llama-sotu --quant w4-channel --out out/llama-rtn-w4\n' +
      '  kdqat quantize --model teachers/bert-brown-genre --quant twn-a8 --out out/bert-twn\n' +
      '  kdqat eval --model out/llama-rtn-w4 --corpus sotu')
    .action(async (opts: QuantizeOptions) => {
      await runQuantize(opts, (s) => process.stdout.write(s), (s) => process.stderr.write(s));
    });
}

export async function runQuantize(opts: QuantizeOptions, stdout: (s: string) => void, stderr: (s: string) => void): Promise<QuantizeReport> {
  const t0 = performance.now();
  if (!opts.quant) throw new Error('--quant is required: a preset name or a JSON config file');
  if (!opts.out) throw new Error('--out is required: the student directory to write');
  const { loadQuantConfig } = await import('../quant/config.js');
  const { describeQuant } = await import('../quant/rules.js');
  // The config is checked before the model is loaded, the output before any work.
  const { config, source } = loadQuantConfig(opts.quant);
  const out = path.resolve(opts.out);
  if (fs.existsSync(out) && !opts.force) throw new Error(`--out ${opts.out}: ${out} already exists; pass --force to replace it`);
  if (opts.tokenizer && !fs.existsSync(opts.tokenizer)) throw new Error(`--tokenizer ${opts.tokenizer}: file not found`);
  const { checkOutput } = await import('../io/outputs.js');
  checkOutput(out, {
    kind: 'dir', force: opts.force, legacy: ['quantization.json'],
    inputs: [{ flag: '--model', path: opts.model }, { flag: '--quant', path: opts.quant }, { flag: '--tokenizer', path: opts.tokenizer }],
  });
  const { openModel, describeModel } = await import('./open-model.js');
  const { isStudentDir, saveStudent } = await import('../quant/student.js');
  const { prepare, convert, summarizePlan } = await import('../quant/prepare.js');
  const { weightErrors, summarizeByKind } = await import('../quant/report.js');
  const fromStudent = !!opts.model && isStudentDir(path.resolve(opts.model));
  const m = openModel(opts.model, { latent: fromStudent });
  if (!opts.json) stderr(`${m.dir}: ${describeModel(m)}; quantizing with ${source}\n`);
  const prepared = prepare(m.model, config, { source });
  const converted = convert(m.model, prepared);
  const errors = weightErrors(m.model, converted);
  const kinds = summarizeByKind(errors);
  const tokenizerFrom = opts.tokenizer ?? m.loaded.tokenizerPath;
  saveStudent(out, m.model, prepared, { force: opts.force, tokenizerFrom, hf: m.loaded.hf, converted });
  const report: QuantizeReport = {
    model: m.dir, out, quant: source, summary: summarizePlan(prepared), kinds,
    weights: errors.map((e) => ({ name: e.name, quant: e.quant, sqnrDb: e.sqnrDb, rmse: e.rmse })),
    seconds: (performance.now() - t0) / 1000,
  };
  // JSON has no Infinity: an exact weight (SQNR ∞) is written as null.
  if (opts.json) stdout(`${JSON.stringify(report, (_k, v) => (v === Infinity ? null : v))}\n`);
  else stdout(formatTable(report, config.weights ? describeQuant(config.weights) : ''));
  return report;
}

const db = (x: number): string => (x === Infinity ? '∞' : x.toFixed(2));

function formatTable(r: QuantizeReport, dflt: string): string {
  const rows: string[][] = [['module', 'weights', 'quantizer', 'mean SQNR dB', 'min SQNR dB']];
  for (const k of r.kinds) rows.push([k.kind, String(k.weights), k.quant, db(k.meanSqnrDb), db(k.minSqnrDb)]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]): string => row.map((cell, c) => (c === 1 || c >= 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const all = r.weights.map((w) => w.sqnrDb);
  const mean = all.reduce((a, b) => a + b, 0) / Math.max(1, all.length);
  return `${r.summary} (default: ${dflt})\n${rows.map(line).join('\n')}\nmean SQNR over ${all.length} weights: ${db(mean)} dB\n` +
    `wrote ${r.out} (${r.seconds.toFixed(1)} s); evaluate it with: kdqat eval --model ${r.out} …\n`;
}
