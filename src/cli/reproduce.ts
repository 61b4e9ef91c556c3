// `kdqat reproduce ov-freeze` and `kdqat reproduce attn-kd`: the two papers' comparisons on the
// built-in teachers (src/experiments/), several seeds, a table of mean ± std written as JSON and
// Markdown. Resumable at run granularity: rerun the same command to continue.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type { Experiment, ReproSettings } from '../experiments/types.js';
import type { Report, RunnerIO } from '../experiments/runner.js';
import { OV_FREEZE, OV_QUANTIZERS } from '../experiments/ov-freeze.js';
import { ATTN_KD } from '../experiments/attn-kd.js';
import { progressReporter } from './progress.js';
import { JSON_HELP, UsageError, commandLine, intArg, numArg, printJson } from './options.js';
import { addFlag } from './flags.js';
import { architecture } from '../models/registry.js';

/** The package root (built-in teachers live under it). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** "3" → seeds 0, 1, 2; "0,4,7" → those seeds; "5," → seed 5 alone. */
export function seedsArg(v: string): number[] {
  const t = v.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < 1) throw new InvalidArgumentError(`expected a number of seeds ≥ 1 or a list like 0,1,2, got '${v}'`);
    return Array.from({ length: n }, (_, i) => i);
  }
  const parts = t.split(',').map((s) => s.trim());
  if (parts.length >= 2 && parts[parts.length - 1] === '') parts.pop(); // "5," names one seed
  if (!t.includes(',') || !parts.every((s) => /^\d+$/.test(s))) {
    throw new InvalidArgumentError(`expected a number of seeds (3 = seeds 0,1,2) or a comma-separated list of seeds like 0,1,2 (one seed: 5,), got '${v}'`);
  }
  const seeds = parts.map(Number);
  if (new Set(seeds).size !== seeds.length) throw new InvalidArgumentError(`seed list '${v}' repeats a seed`);
  return seeds;
}

export function numListArg(v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (v.trim() === '' || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new InvalidArgumentError(`expected a comma-separated list of positive numbers like 0.1,0.5,0.9, got '${v}'`);
  }
  return xs;
}

export const listOf = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Options shared by the reproductions and the demo. */
export interface ReproOpts {
  seeds?: number[];
  steps?: number;
  batch?: number;
  seqLen?: number;
  lr?: number;
  evalTokens?: number;
  evalItems?: number;
  sweep?: number[];
  teacher?: string;
  quick?: boolean;
  out?: string;
  force?: boolean;
  threads?: number;
  only?: string[];
}

/** Settings: the experiment's defaults (or --quick), flags on top; checked. */
export function resolveRepro(exp: Experiment, o: ReproOpts): { settings: ReproSettings; seeds: number[] } {
  const base = o.quick ? exp.quick : exp.defaults;
  const settings: ReproSettings = {
    teacher: path.resolve(o.teacher ?? path.join(PACKAGE_ROOT, exp.teacher)),
    steps: o.steps ?? base.steps, batch: o.batch ?? base.batch, seqLen: o.seqLen ?? base.seqLen, lr: o.lr ?? base.lr,
    evalTokens: o.evalTokens ?? base.evalTokens, evalItems: o.evalItems ?? base.evalItems, sweep: o.sweep ?? base.sweep,
  };
  for (const k of ['steps', 'batch', 'seqLen'] as const) {
    if (!(settings[k] >= 1)) throw new UsageError(`--${k === 'seqLen' ? 'seq-len' : k} must be at least 1, got ${settings[k]}`);
  }
  for (const k of ['evalTokens', 'evalItems'] as const) {
    if (!(settings[k] >= 0)) throw new UsageError(`--${k === 'evalTokens' ? 'eval-tokens' : 'eval-items'} must be ≥ 0 (0 = all), got ${settings[k]}`);
  }
  if (settings.evalTokens === 1) throw new UsageError('--eval-tokens 1: perplexity needs at least 2 tokens (0 = all)');
  if (!(settings.lr > 0)) throw new UsageError(`--lr must be positive, got ${settings.lr}`);
  if (o.threads !== undefined && !(o.threads >= 1)) throw new UsageError(`--threads must be at least 1, got ${o.threads}`);
  const seeds = o.seeds ?? Array.from({ length: base.seeds }, (_, i) => i);
  return { settings, seeds };
}

/** Terminal output of a reproduction: log lines and progress bars on stderr, the table on stdout
 *  (--json: on stderr too; stdout then holds only the JSON report). */
export function processIO(o: { json?: boolean } = {}): RunnerIO {
  const tty = !!process.stderr.isTTY;
  const table = o.json ? process.stderr : process.stdout;
  return {
    log: (line) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`),
    status: (line) => { if (tty) process.stderr.write(`\r\x1b[K${line}`); },
    print: (text) => table.write(text.endsWith('\n') ? text : `${text}\n`),
    reporter: (label) => progressReporter({ label }),
  };
}

/** Runs an experiment with the library's methods (imported here, so --help stays fast). */
export async function reproduce(exp: Experiment, o: ReproOpts, out: string, io: RunnerIO = processIO()): Promise<Report> {
  const { settings, seeds } = resolveRepro(exp, o);
  const { existsSync } = await import('node:fs');
  if (!existsSync(settings.teacher)) {
    throw new Error(`--teacher ${settings.teacher}: no such directory${o.teacher ? '' : ' (the built-in teacher is missing from the installation)'}`);
  }
  // The teacher must be the kind the experiment is about (checked before anything is written).
  const { readHfConfig } = await import('../io/hf-config.js');
  const hf = (() => {
    try {
      return readHfConfig(path.join(settings.teacher, 'config.json'));
    } catch (e) {
      throw new Error(`--teacher ${settings.teacher}: cannot read its config.json: ${(e as Error).message}`);
    }
  })();
  const want = architecture(exp.arch), got = architecture(hf.arch);
  const kind = want.kind === 'decoder' ? 'a decoder (causal LM)' : 'an encoder classifier (kdqat finetune)';
  const heads = got.headsOf(hf.meta);
  if (got.kind !== want.kind || (got.kind === 'encoder' && !heads.classifier)) {
    const head = heads.classifier ? 'classifier' : heads.mlm ? 'mlm' : 'base';
    throw new Error(`--teacher ${settings.teacher}: is a ${hf.arch}${got.kind === 'encoder' ? ` with a ${head} head` : ''} model; ${exp.name} needs ${kind}`);
  }
  const { setThreads, getThreads } = await import('../tensor/index.js');
  if (o.threads !== undefined) setThreads(o.threads);
  const { runExperiment } = await import('../experiments/runner.js');
  const { libraryMethods } = await import('../experiments/methods.js');
  const { writeRunReport, REPORT_FILE } = await import('../report/report.js');
  const banner = `kdqat ${exp.name === 'demo' ? 'demo' : `reproduce ${exp.name}`} → ${out} (${getThreads()} thread${getThreads() === 1 ? '' : 's'}; seeds ${seeds.join(',')}; ` +
    `${settings.steps} KD-QAT steps of batch ${settings.batch} × ${settings.seqLen} tokens, lr ${settings.lr})`;
  const report = runExperiment(exp, {
    out, settings, seeds, only: o.only, force: o.force, commandLine: commandLine(), banner,
    // The directory is this reproduction's (checked by the runner), so the page is replaced.
    report: () => writeRunReport([out], path.join(out, REPORT_FILE), { force: true }),
  }, libraryMethods(exp, settings), io);
  // How to draw the runs' gradient norms side by side (the first seed of the first two KD-QAT runs).
  const logs = exp.runs(settings).filter((r) => r.method.kind === 'qat')
    .map((r) => ({ r, res: report.results.find((x) => x.run === r.key && x.files.log) }))
    .filter((x) => x.res).slice(0, 2);
  if (logs.length) {
    const q = (s: string): string => (/^[\w./-]+$/.test(s) ? s : JSON.stringify(s));
    io.log(`signal propagation: kdqat plot ${logs.map((x) => `--log ${q(path.join(out, x.res!.files.log))}`).join(' ')} ` +
      `${logs.map((x) => `--label ${q(x.r.label)}`).join(' ')} --out ${q(path.join(out, 'figures'))}`);
  }
  return report;
}

/** The flags every reproduction takes. */
export function addReproOptions(cmd: Command, exp: Experiment, outDefault: string): Command {
  const d = exp.defaults, q = exp.quick;
  cmd.option('--seeds <n|list>', `number of seeds (3 = seeds 0,1,2) or a list like 0,4,7 (seed 5 alone: 5,) (default ${d.seeds}; --quick ${q.seeds})`, seedsArg);
  addFlag(cmd, '--steps <n>', `KD-QAT steps per run (default ${d.steps}; --quick ${q.steps})`, intArg);
  addFlag(cmd, '--batch <n>', `sequences per KD-QAT step (default ${d.batch}; --quick ${q.batch})`, intArg);
  addFlag(cmd, '--seq-len <n>', `tokens per training sequence${architecture(exp.arch).kind === 'encoder' ? ' (and evaluation max length)' : ''} (default ${d.seqLen}; --quick ${q.seqLen})`, intArg);
  cmd.option('--lr <x>', `peak KD-QAT learning rate (default ${d.lr}; --quick ${q.lr})`, numArg);
  addFlag(cmd, '--eval-items <n>', `score the first n items of each evaluation task, 0 = all (default ${d.evalItems || 'all'}; --quick ${q.evalItems})`, intArg);
  return cmd
    .option('--json', JSON_HELP + ': the comparison (tables and per-run results)')
    .option('--teacher <dir>', `teacher model directory (default: the built-in ${exp.teacher})`)
    .option('--quick', 'a tiny setting (2 steps, few items) for smoke tests; its results mean nothing')
    .option('--out <dir>', `output directory (default ./${outDefault})`)
    .option('--only <runs>', 'comma-separated runs to do now: run names, method names or quantizers (see below); the table shows every finished run', listOf)
    .option('--threads <n>', 'native threads (default: all cores)', intArg)
    .option('--force', 'start over: remove the runs and tables of an earlier reproduction in --out');
}

function runList(exp: Experiment): string {
  const runs = exp.runs({ ...exp.defaults, teacher: '' });
  const fams = [...new Set(runs.map((r) => r.family))];
  return `\n\nRuns (--only): ${runs.map((r) => r.key).join(', ')}\nMethods (--only): ${fams.join(', ')}` +
    (exp.groups.length > 1 ? `\nQuantizers (--only): ${exp.groups.map((g) => g.key).join(', ')}` : '');
}

const LAYOUT = (out: string): string => `
Output (--out, default ./${out}): results.md and results.json (the tables, every per-seed value,
the command line, settings and timings), report.html (the page of kdqat report: settings, table,
loss and signal-propagation figures; opens from disk), reproduce.json (the settings), and runs/<run>/<seed>/
with the student (student/), the KD-QAT log (qat_log.jsonl: loss terms and per-module gradient
norms, for kdqat plot) and result.json. A run whose result.json exists is not redone: rerun the
same command to continue an interrupted reproduction (different settings are refused; --force
starts over). The teacher and RTN are deterministic and run once (n = 1).`;

function subcommand(exp: Experiment, extra: (c: Command) => Command, help: string): Command {
  const outDefault = `reproduce-${exp.name}`;
  const cmd = new Command(exp.name).description(exp.description);
  extra(addReproOptions(cmd, exp, outDefault));
  return cmd
    .addHelpText('after', `${help}${runList(exp)}\n${LAYOUT(outDefault)}`)
    .action(async function (this: Command) {
      const o = this.opts() as ReproOpts & { json?: boolean };
      const report = await reproduce(exp, o, path.resolve(o.out ?? outDefault), processIO({ json: o.json }));
      if (o.json) printJson(report);
    });
}

export function reproduceCommand(): Command {
  const ov = subcommand(OV_FREEZE, (c) => c
    .option('--eval-tokens <n>', 'perplexity over the first n tokens of the SOTU validation addresses, 0 = all (default all; --quick 64)', intArg),
  `
Paper A (ov-freeze), decoder: the SOTU LLaMA teacher; RTN, KD-QAT (logits loss), KD-QAT +
ov-freeze (v_proj/o_proj not trained) and KD-QAT + auto-freeze (--freeze auto: a probe chooses
what to freeze; its choice per seed is in the notes and results.json) at
${OV_QUANTIZERS.map((q) => q.key).join(', ')}.
Metrics: perplexity on the SOTU validation addresses; acc and acc_norm on the continuation and
wordnet-def multiple-choice tasks; the fraction of RTN's perplexity loss that KD-QAT recovers,
(ppl_RTN − ppl_KDQAT)/(ppl_RTN − ppl_FP).

Examples:
  kdqat reproduce ov-freeze --out runs/ov-freeze
  kdqat reproduce ov-freeze --only w4-channel --seeds 2 --steps 200
  kdqat reproduce ov-freeze --quick --out /tmp/smoke`);
  const attn = subcommand(ATTN_KD, (c) => c
    .option('--sweep <list>', `unified loss: with α = 1, β takes each value; with β = 1, α does (default ${ATTN_KD.defaults.sweep.join(',')})`, numListArg),
  `
Paper B (attention KD), encoder: an encoder classifier fine-tuned on a built-in task (default the
RoFormer Brown-genre teacher; --teacher DIR of one from kdqat finetune --task word-order trains and
measures on word-order: the task is recognised by the teacher's labels); one table per quantizer:
TWN ternary weights with 8-bit activations (twn-a8), then twn, tq2_0, w2/w3 per channel and per
group of 32 (--only twn-a8 runs one): RTN, and KD-QAT with pred+rep, +attn_score (TernaryBERT),
+attn_map, +attn_out, and the unified pred+rep+α·attn_map+β·attn_out. Metrics: dev and test accuracy of the
student with the best of five periodic dev evaluations (paper B reports its best dev score; the
test split, not used to choose, is the honest figure).

Examples:
  kdqat reproduce attn-kd --out runs/attn-kd
  kdqat reproduce attn-kd --only twn-a8 --seeds 3 --out runs/attn-kd
  kdqat reproduce attn-kd --sweep 0.1,0.5,0.9 --only unified --out runs/attn-kd`);
  return new Command('reproduce')
    .description("reproduce the papers' comparisons on the built-in teachers: ov-freeze (paper A), attn-kd (paper B)")
    .addCommand(ov.exitOverride())
    .addCommand(attn.exitOverride());
}
