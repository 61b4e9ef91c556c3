// `kdqat eval`: perplexity (--text FILE, --corpus NAME), multiple-choice accuracy (--mc FILE|task)
// and classification accuracy (--cls FILE|task) of a model directory, several at once.
//
// Perplexity windows (src/eval/stream-perplexity.ts): the text (UTF-8, line ends read as \n) is
// tokenized as a whole, without special tokens, and cut into non-overlapping windows of --seq-len inputs; adjacent windows share
// one boundary token, so every token after the first is predicted once, with 0…seq-1 tokens of
// context; the remainder is a shorter last window. A corpus split is the same with an EOS
// after each document. --ppl-convention llama.cpp scores as llama-perplexity does instead
// (src/eval/llamacpp-perplexity.ts: BOS per window when the tokenizer adds one, second half of
// each window scored), so the figure is comparable with llama.cpp's on the exported GGUF.
//
// The model and data modules are imported when the command runs, so `kdqat --help` and the
// other commands do not pay for loading them.
import * as fs from 'node:fs';
import { Command } from 'commander';
import { addFlag } from './flags.js';
import { UsageError } from '../train/usage.js';
import type { EvalJob, EvalResult, JobSettings } from './eval-tasks.js';

export interface EvalOptions {
  model?: string;
  tokenizer?: string;
  text?: string[];
  corpus?: string[];
  split?: string;
  mc?: string[];
  cls?: string[];
  textField?: string;
  labelField?: string;
  seq?: string;
  pplConvention?: string;
  batchSize?: string;
  limit?: string;
  json?: boolean;
  latent?: boolean;
}

export interface EvalReport {
  model: string;
  arch: string;
  parameters: number;
  tokenizer: string;
  results: (EvalResult & { seconds: number })[];
  seconds: { load: number; total: number };
}

export interface Output {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Progress lines are drawn only on a terminal. */
  isTTY: boolean;
}

const processOutput = (): Output => ({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: !!process.stderr.isTTY,
});

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function evalCommand(): Command {
  const cmd = new Command('eval')
    .description('evaluate a model directory: perplexity, multiple-choice accuracy, classification accuracy')
    .requiredOption('--model <dir>', 'Hugging Face model directory (config.json, model.safetensors)')
    .option('--tokenizer <file>', 'tokenizer.json to use when the model directory has none')
    .option('--text <file>', 'perplexity over a UTF-8 text file, the "text" of each line of a .jsonl file, the rows of a Parquet / Arrow file, or a directory of them (repeatable)', collect)
    .option('--corpus <name>', 'perplexity over a built-in corpus split: sotu, brown, moby-dick (repeatable)', collect)
    .option('--split <split>', 'split of --corpus and built-in --cls tasks: test or valid', 'test')
    .option('--mc <file|task>', 'multiple-choice accuracy: a JSONL file (kdqat\'s items, or HellaSwag/ARC/OpenBookQA/MMLU/PIQA/SciQ/WinoGrande/COPA/BoolQ rows) or continuation, wordnet-def (repeatable)', collect)
    .option('--cls <file|task>', 'classification accuracy: a JSONL/TSV/CSV/Parquet/Arrow file or brown-genre (repeatable)', collect)
    .option('--text-field <name[,pair]>', 'the field holding the text of --text JSON Lines / Parquet / Arrow files and of --cls files (two for a pair), when it is not one kdqat recognizes')
    .option('--label-field <name>', '--cls files: the field holding the label, when it is not "label" or "labels"')
    .option('--ppl-convention <name>', 'perplexity windows: kdqat (every token after the first, once) or llama.cpp (as llama-perplexity: BOS per window, second half scored)', 'kdqat');
  // Stored under the keys EvalOptions has always had (seq, batchSize, limit).
  addFlag(cmd, '--seq-len <n>', 'perplexity window / classification max length in tokens (default: min(max_position_embeddings, 512))', undefined, 'seq');
  addFlag(cmd, '--batch <n>', 'sequences per forward pass (default 8)', undefined, 'batchSize');
  addFlag(cmd, '--eval-items <n>', 'score only the first n items of each --mc/--cls task', undefined, 'limit');
  return cmd
    .option('--json', 'print one JSON object instead of a table')
    .option('--latent', 'a quantized student directory: evaluate its latent full-precision weights instead of the dequantized low-bit ones')
    .addHelpText('after', '\nPerplexity windows: the text is tokenized whole (no special tokens) and cut into\n' +
      'non-overlapping windows of --seq-len inputs sharing one boundary token; each token after the first\n' +
      'is predicted once. --corpus joins the documents of the split with an EOS after each.\n' +
      '--ppl-convention llama.cpp: as llama-perplexity -c SEQ: windows of --seq-len tokens, each starting\n' +
      'with BOS when the tokenizer adds one, only the second half of each window scored, the\n' +
      'remainder dropped; needs at least 2·--seq-len tokens.\n\n' +
      'Examples:\n' +
      '  kdqat eval --model out/llama --text notes.txt --mc items.jsonl\n' +
      '  kdqat eval --model out/llama --corpus sotu --split test --mc continuation --mc wordnet-def --eval-items 200 --json\n' +
      '  kdqat eval --model out/bert-cls --cls brown-genre --split valid')
    .action(async (opts: EvalOptions) => {
      await runEval(opts, processOutput());
    });
}

export async function runEval(opts: EvalOptions, out: Output): Promise<EvalReport> {
  const t0 = performance.now();
  if (!opts.text?.length && !opts.corpus?.length && !opts.mc?.length && !opts.cls?.length) {
    throw new UsageError('nothing to evaluate: give at least one of --text FILE, --corpus NAME, --mc FILE|TASK, --cls FILE|TASK');
  }
  if (opts.split !== undefined && opts.split !== 'test' && opts.split !== 'valid') throw new UsageError(`--split must be test or valid, got ${JSON.stringify(opts.split)}`);
  const { openModel, openTokenizer, positiveInt, eosIds, describeModel, specialIds } = await import('./open-model.js');
  const { clsJob, corpusJob, mcJob, textJob } = await import('./eval-tasks.js');
  const { fieldNames } = await import('../data/classification.js');
  if (opts.labelField && !opts.cls?.length) throw new UsageError('--label-field names the label field of --cls files; give --cls FILE');
  if (opts.textField && !opts.cls?.length && !opts.text?.length) throw new UsageError('--text-field names the text field of --text and --cls files; give --text FILE or --cls FILE');
  if (opts.textField?.includes(',') && opts.text?.length) throw new UsageError(`--text-field ${opts.textField}: a pair of fields is for --cls files; --text files have one text field`);
  const fieldNamesOf = (t: string | undefined, l: string | undefined) => {
    try {
      return fieldNames(t, l);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  const { countParams } = await import('../nn/params.js');
  // Flag values are checked before the model is loaded: a bad one is a usage error (status 2).
  const given = {
    seq: opts.seq === undefined ? undefined : positiveInt('--seq-len', opts.seq, 0),
    batchSize: positiveInt('--batch', opts.batchSize, 8),
    limit: opts.limit === undefined ? undefined : positiveInt('--eval-items', opts.limit, 0),
  };
  // Parquet / Arrow text is read (asynchronously) before the jobs are built.
  const { preloadTables } = await import('../data/tables.js');
  await withTextFlag(() => preloadTables(opts.text ?? [], opts.textField ? 'all' : 'text'));
  await preloadTables([...opts.mc ?? [], ...opts.cls ?? []].filter((f) => fs.existsSync(f)), 'all');
  const m = openModel(opts.model, { latent: opts.latent });
  const tok = openTokenizer(m, opts.tokenizer);
  const maxPos = m.model.config.maxPositionEmbeddings;
  const settings: JobSettings = {
    seq: given.seq ?? Math.min(maxPos, 512),
    convention: pplConvention(opts.pplConvention),
    batchSize: given.batchSize,
    limit: given.limit,
    split: (opts.split ?? 'test') as 'test' | 'valid',
    fields: fieldNamesOf(opts.textField, opts.labelField),
  };
  if (settings.seq > maxPos) throw new UsageError(`--seq-len ${settings.seq} exceeds the model's max_position_embeddings (${maxPos})`);
  const eos = eosIds(m, tok)[0];
  const bos = specialIds(m).bos ?? tok.specials.bos;
  const jobs: EvalJob[] = [
    ...(opts.text ?? []).map((f) => textJob(m, tok, f, settings, eos)),
    ...(opts.corpus ?? []).map((c) => corpusJob(m, tok, c, settings, eos)),
    // An empty context is predicted from EOS, as lm-evaluation-harness does (BOS if no EOS).
    ...(opts.mc ?? []).map((f) => mcJob(m, tok, f, settings, eos ?? bos ?? undefined)),
    ...(opts.cls ?? []).map((f) => clsJob(m, tok, f, settings)),
  ];
  const loadSeconds = (performance.now() - t0) / 1000;

  const results: EvalReport['results'] = [];
  for (const job of jobs) {
    const t = performance.now();
    const progress = out.isTTY && !opts.json
      ? (done: number, total: number) => out.stderr(`\r\x1b[K${job.kind} ${job.source}: ${done}/${total}`)
      : () => {};
    let r: EvalResult;
    try {
      r = job.run(progress);
    } catch (e) {
      if (out.isTTY && !opts.json) out.stderr('\r\x1b[K');
      throw new Error(`${job.kind} of ${job.source} failed: ${(e as Error).message}`);
    }
    if (out.isTTY && !opts.json) out.stderr('\r\x1b[K');
    results.push({ ...r, seconds: (performance.now() - t) / 1000 });
  }
  const report: EvalReport = {
    model: m.dir, arch: m.loaded.hf.arch, parameters: countParams(m.model.params), tokenizer: tok.path, results,
    seconds: { load: loadSeconds, total: (performance.now() - t0) / 1000 },
  };
  out.stdout(opts.json ? `${JSON.stringify(report)}\n` : formatTable(report, describeModel(m)));
  return report;
}

/** An error reading --text FILE, prefixed with the flag as the jobs' errors are. */
async function withTextFlag(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    throw new Error(`--text ${(e as Error).message}`);
  }
}

function pplConvention(v: string | undefined): JobSettings['convention'] {
  if (v === undefined || v === 'kdqat' || v === 'llama.cpp') return v ?? 'kdqat';
  throw new UsageError(`--ppl-convention must be kdqat or llama.cpp, got ${JSON.stringify(v)}`);
}

const METRICS: Record<string, string[]> = {
  perplexity: ['ppl', 'nll'],
  'multiple-choice': ['acc', 'acc_norm'],
  classification: ['acc'],
};
const COUNT: Record<string, [string, string]> = {
  perplexity: ['tokens', 'tokens'],
  'multiple-choice': ['items', 'items'],
  classification: ['examples', 'examples'],
};

function formatTable(r: EvalReport, what: string): string {
  const rows: string[][] = [['evaluation', 'source', 'metric', 'value', 'n', 'time']];
  for (const x of r.results) {
    METRICS[x.kind].forEach((k, i) => {
      const v = x[k] as number;
      const val = k === 'ppl' ? v.toFixed(3) : k === 'nll' ? `${v.toFixed(4)} nats` : v.toFixed(4);
      const [key, unit] = COUNT[x.kind];
      rows.push(i === 0
        ? [x.kind, x.source, k, val, `${(x[key] as number).toLocaleString('en-US')} ${unit}`, `${x.seconds.toFixed(1)} s`]
        : ['', '', k, val, '', '']);
    });
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]): string => row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  const head = `model: ${r.model} — ${what}, ${r.parameters.toLocaleString('en-US')} parameters\n`;
  const notes = [
    ...r.results.filter((x) => typeof x.layout === 'string').map((x) => `note: ${x.source}: ${x.layout} rows (${x.layout_from})\n`),
    ...r.results.filter((x) => (x.truncated_choices as number) > 0)
      .map((x) => `note: ${x.source}: ${x.truncated_choices} choice(s) longer than the model's positions were scored on their last tokens\n`),
  ];
  return `${head}${rows.map(line).join('\n')}\n${notes.join('')}`;
}
