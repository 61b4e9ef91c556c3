// Runs an experiment (types.ts) into an output directory:
//   OUT/reproduce.json              the experiment and its settings (what the runs depend on)
//   OUT/runs/<run>/<seed>/          one run: student/ (the quantized model dir and its qat log)
//                                   and result.json (its measurements), written last
//   OUT/results.json, results.md    the tables (mean ± std over seeds) with every per-seed value
//   OUT/report.html                 the page of src/report/report.ts (when RunOptions.report)
// A run whose result.json exists is finished and is not recomputed, so an interrupted
// reproduction is restarted by rerunning the same command. The teacher and RTN are
// deterministic: one run each (seed 0), whatever --seeds says.
// Rerunning into OUT with different settings is refused (results made with different settings
// must not be averaged together); --force removes what a previous reproduction wrote there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OUTPUT_MARKER, checkNotInput, isOwnDir, writeMarker } from '../io/outputs.js';
import { atomicWrite } from '../io/atomic.js';
import { formatMarkdown, formatText, tableJson, type Table } from '../report/table.js';
import type { Reporter } from '../train/loop.js';
import type { Experiment, Method, ReproSettings, RunDef, RunResult } from './types.js';

/** What the runner needs done per method; methods.ts provides the real one. Each writes into
 *  `runDir` (new and empty) and returns the model directory to evaluate. */
export interface MethodRunner {
  /** Post-training round-to-nearest of the teacher. */
  rtn(o: { teacher: string; preset: string; runDir: string }): { modelDir: string };
  /** KD-QAT of the teacher; `log` is its JSONL log (loss terms, per-module gradient norms). */
  qat(o: {
    teacher: string; method: Extract<Method, { kind: 'qat' }>; settings: ReproSettings;
    seed: number; runDir: string; reporter: Reporter;
  }): { modelDir: string; log?: string; freezeAuto?: { patterns: string[]; file: string } };
  /** The measurements of a model directory. */
  evaluate(modelDir: string, progress: (what: string, done: number, total: number) => void): Record<string, number>;
}

export interface RunnerIO {
  /** Progress and status lines (stderr). */
  log(line: string): void;
  /** Draws a transient progress line (a terminal), or nothing. */
  status(line: string): void;
  /** The table goes to stdout. */
  print(text: string): void;
  /** A training progress reporter for one run. */
  reporter(label: string): Reporter;
}

export interface RunOptions {
  out: string;
  settings: ReproSettings;
  seeds: number[];
  /** Run keys to run (all when absent); the tables show every finished run regardless. */
  only?: string[];
  force?: boolean;
  commandLine: string[];
  /** Logged once the output directory is checked. */
  banner?: string;
  /** Writes the HTML report once the tables are written (also when some runs failed); returns
   *  its path, which is printed. */
  report?: () => string;
}

export interface Report {
  tables: Table[];
  results: RunResult[];
  /** Runs computed now / found finished. */
  ran: number;
  skipped: number;
  seconds: number;
}

const MANIFEST = 'reproduce.json';
/** Everything a reproduction writes into OUT; --force removes exactly these. */
const OUTPUTS = [MANIFEST, 'runs', 'results.json', 'results.md', 'report.html'];

/** Selects runs by key, family (e.g. qat-ov) or group (e.g. q4_0); unknown names are an error. */
export function selectRuns(all: RunDef[], only: string[] | undefined, exp: Experiment): RunDef[] {
  if (!only?.length) return all;
  const names = new Set([...all.map((r) => r.key), ...all.map((r) => r.family), ...exp.groups.map((g) => g.key)]);
  const bad = only.filter((o) => !names.has(o));
  if (bad.length) {
    throw new Error(`--only ${bad.join(',')}: no such run; ${exp.name} has runs ${all.map((r) => r.key).join(', ')} ` +
      `(or name a method: ${[...new Set(all.map((r) => r.family))].join(', ')}${exp.groups.length > 1 ? `; or a quantizer: ${exp.groups.map((g) => g.key).join(', ')}` : ''})`);
  }
  // A group (quantizer) selects its whole table: its runs and the teacher.
  return all.filter((r) => only.some((o) => o === r.key || o === r.family || r.groups.includes(o)));
}

/** Seeds a run is made with: every seed if it trains, else one run (seed 0). */
export const runSeeds = (r: RunDef, seeds: number[]): number[] => r.method.kind === 'qat' ? seeds : [0];

/** Checks OUT: new, or a reproduction of the same experiment and settings (resumed), or --force. */
export function prepareOut(exp: Experiment, o: RunOptions): void {
  const out = o.out;
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new Error(`--out ${out}: is a file; choose a directory`);
  checkNotInput('--out', out, [{ flag: '--teacher', path: o.settings.teacher }]);
  const manifest = path.join(out, MANIFEST);
  const want = { experiment: exp.name, settings: o.settings };
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0 && !o.force) {
    if (!fs.existsSync(manifest)) {
      throw new Error(`--out ${out}: exists, is not empty and holds no ${exp.name} reproduction; choose another --out, or --force to use it (removes ${OUTPUTS.join(', ')} there)`);
    }
    let have: { experiment?: string; settings?: Record<string, unknown> };
    try {
      have = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    } catch (e) {
      throw new Error(`${manifest}: unreadable (${(e as Error).message}); --force starts the reproduction over`);
    }
    if (have.experiment !== exp.name) {
      throw new Error(`--out ${out}: holds a reproduction of ${have.experiment}, not ${exp.name}; choose another --out, or --force to replace it`);
    }
    const s = o.settings as unknown as Record<string, unknown>;
    const diffs = Object.keys(s).filter((k) => JSON.stringify(s[k]) !== JSON.stringify(have.settings?.[k]));
    if (diffs.length) {
      throw new Error(`--out ${out}: its runs were made with ${diffs.map((k) => `${k} ${JSON.stringify(have.settings?.[k])}`).join(', ')}, ` +
        `not ${diffs.map((k) => JSON.stringify(s[k])).join(', ')}; rerun with the same settings to continue it, choose another --out, or --force to start over`);
    }
    return; // the same reproduction: continue it
  }
  if (o.force && fs.existsSync(out) && fs.readdirSync(out).length > 0) {
    if (!isOwnDir(out, [MANIFEST])) {
      throw new Error(`--out ${out}: exists and was not written by kdqat (it has no ${OUTPUT_MARKER} marker); --force only replaces ` +
        `kdqat's own outputs — remove it yourself if it can go, or choose another --out`);
    }
    for (const name of OUTPUTS) fs.rmSync(path.join(out, name), { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
  writeMarker(out);
  atomicWrite(manifest, true, (w) => w(JSON.stringify(want, null, 2) + '\n'));
}

const resultFile = (out: string, run: string, seed: number): string => path.join(out, 'runs', run, String(seed), 'result.json');

function readResult(file: string): RunResult | null {
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult;
  } catch (e) {
    throw new Error(`${file}: unreadable (${(e as Error).message}); delete its run directory to redo that run`);
  }
}

export function runExperiment(exp: Experiment, o: RunOptions, methods: MethodRunner, io: RunnerIO): Report {
  const t0 = performance.now();
  const all = exp.runs(o.settings);
  const selected = selectRuns(all, o.only, exp);
  prepareOut(exp, o);
  if (o.banner) io.log(o.banner);
  const todo = selected.flatMap((r) => runSeeds(r, o.seeds).map((seed) => ({ r, seed })));
  let ran = 0, skipped = 0;
  // A failed run (a NaN loss, say) is reported and left without result.json, so a rerun retries
  // it; the other runs go on, and the command fails at the end, naming it.
  const failed: string[] = [];
  todo.forEach(({ r, seed }, i) => {
    const tag = `[${i + 1}/${todo.length}] ${r.key}${r.method.kind === 'qat' ? ` seed ${seed}` : ''}`;
    const file = resultFile(o.out, r.key, seed);
    if (readResult(file)) {
      skipped++;
      io.log(`${tag}: finished earlier, kept (${path.relative(o.out, file)})`);
      return;
    }
    try {
      runOne(r, seed, tag, file);
      ran++;
    } catch (e) {
      failed.push(`${tag}: ${(e as Error).message}`);
      io.log(`${tag}: FAILED: ${(e as Error).message} (its files are in ${path.relative(o.out, path.dirname(file)) || '.'}; a rerun retries it)`);
    }
  });

  function runOne(r: RunDef, seed: number, tag: string, file: string): void {
    const runDir = path.dirname(file);
    fs.rmSync(runDir, { recursive: true, force: true }); // an interrupted run starts over
    fs.mkdirSync(runDir, { recursive: true });
    const files: Record<string, string> = {};
    let freezeAuto: string[] | undefined;
    const tm = performance.now();
    io.log(`${tag}: ${describe(r.method)}`);
    let modelDir = o.settings.teacher;
    if (r.method.kind === 'rtn') {
      modelDir = methods.rtn({ teacher: o.settings.teacher, preset: r.method.preset, runDir }).modelDir;
    } else if (r.method.kind === 'qat') {
      const res = methods.qat({ teacher: o.settings.teacher, method: r.method, settings: o.settings, seed, runDir, reporter: io.reporter(`${r.key} s${seed}`) });
      modelDir = res.modelDir;
      if (res.log) files.log = path.relative(o.out, res.log);
      if (res.freezeAuto) {
        freezeAuto = res.freezeAuto.patterns;
        files.freeze_auto = path.relative(o.out, res.freezeAuto.file);
      }
    }
    if (r.method.kind !== 'teacher') files.student = path.relative(o.out, modelDir);
    const methodSeconds = (performance.now() - tm) / 1000;
    const te = performance.now();
    const metrics = methods.evaluate(modelDir, (what, done, total) => io.status(`${tag}: eval ${what} ${done}/${total}`));
    io.status('');
    for (const [k, v] of Object.entries(metrics)) {
      if (!Number.isFinite(v)) throw new Error(`${tag}: ${k} is ${v}; the run in ${runDir} is broken (see its log); nothing was recorded for it`);
    }
    const result: RunResult = { run: r.key, seed, metrics, seconds: { method: methodSeconds, eval: (performance.now() - te) / 1000 }, files, ...(freezeAuto ? { freeze_auto: freezeAuto } : {}) };
    atomicWrite(file, false, (w) => w(JSON.stringify(result, null, 2) + '\n'));
    io.log(`${tag}: done in ${(result.seconds.method + result.seconds.eval).toFixed(1)} s: ${headline(exp, metrics)}`);
  }

  // Tables from every finished run in OUT (including runs of seeds or rows not selected now).
  const results = new Map<string, RunResult[]>();
  for (const r of all) {
    const dir = path.join(o.out, 'runs', r.key);
    if (!fs.existsSync(dir)) continue;
    const seeds = fs.readdirSync(dir).filter((s) => /^\d+$/.test(s)).map(Number).sort((a, b) => a - b);
    const rs = seeds.map((s) => readResult(resultFile(o.out, r.key, s))).filter((x): x is RunResult => x !== null);
    if (rs.length) results.set(r.key, rs.map((x) => ({ ...x, metrics: { ...x.metrics } })));
  }
  const notes = exp.derive?.(results, all) ?? {};
  // Tables of quantizers with no finished run of their own are left out (the teacher's row
  // alone says nothing), unless that leaves no table.
  const own = (g: string): boolean => all.some((r) => r.groups.length === 1 && r.groups[0] === g && results.has(r.key));
  const shown = exp.groups.filter((g) => own(g.key));
  const tables: Table[] = (shown.length ? shown : exp.groups.slice(0, 1)).map((g) => ({
    title: `${exp.name}: ${g.title}`,
    metrics: exp.metrics,
    rows: all.filter((r) => r.groups.includes(g.key)).map((r) => ({
      key: r.key, label: r.label,
      values: Object.fromEntries(exp.metrics.map((m) => [m.key, (results.get(r.key) ?? [])
        .filter((x) => m.key in x.metrics).map((x) => ({ seed: x.seed, value: x.metrics[m.key] }))])),
    })),
    notes: notes[g.key] ?? [],
  }));
  const seconds = (performance.now() - t0) / 1000;
  const flat = [...results.values()].flat();
  writeReport(o, exp, tables, flat, seconds);
  io.print(tables.map(formatText).join('\n'));
  let reportError: Error | null = null;
  if (o.report) {
    try {
      io.print(`report: ${o.report()}`);
    } catch (e) {
      reportError = e as Error;
      io.log(`report.html: not written: ${reportError.message}`);
    }
  }
  if (failed.length) {
    throw new Error(`${failed.length} run(s) failed (the tables hold the others; rerun the command to retry them):\n  ${failed.join('\n  ')}`);
  }
  if (reportError) throw reportError;
  return { tables, results: flat, ran, skipped, seconds };
}

function describe(m: Method): string {
  if (m.kind === 'teacher') return 'evaluating the full-precision teacher';
  if (m.kind === 'rtn') return `round-to-nearest with ${m.preset}`;
  const losses = Object.entries(m.losses).map(([k, v]) => v === 1 ? k : `${v}·${k}`).join(' + ');
  return `KD-QAT with ${m.preset}, loss ${losses}${m.freeze ? `, freeze ${m.freeze}` : ''}`;
}

function headline(exp: Experiment, metrics: Record<string, number>): string {
  return exp.metrics.filter((m) => m.key in metrics)
    .map((m) => `${m.label} ${(metrics[m.key] * (m.scale ?? 1)).toFixed(m.digits)}`).join(', ');
}

function writeReport(o: RunOptions, exp: Experiment, tables: Table[], results: RunResult[], seconds: number): void {
  const json = {
    experiment: exp.name,
    description: exp.description,
    command: o.commandLine,
    settings: o.settings,
    seeds: o.seeds,
    only: o.only ?? null,
    tables: tables.map(tableJson),
    runs: results,
    seconds: { this_invocation: seconds, runs_total: results.reduce((s, r) => s + r.seconds.method + r.seconds.eval, 0) },
    written: new Date().toISOString(),
  };
  const md = `# kdqat reproduce ${exp.name}\n\n${exp.description}.\n\n` +
    `Command: \`${o.commandLine.join(' ')}\`\n\n` +
    `Settings: ${Object.entries(o.settings).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')}; seeds ${o.seeds.join(',')}. ` +
    'Cells: mean ± sample std over seeds (n = seeds; the teacher and RTN are deterministic, one run).\n\n' +
    tables.map(formatMarkdown).join('\n');
  // The directory is this reproduction's (prepareOut checked it), so the tables are replaced.
  atomicWrite(path.join(o.out, 'results.json'), true, (w) => w(JSON.stringify(json, null, 2) + '\n'));
  atomicWrite(path.join(o.out, 'results.md'), true, (w) => w(md));
}
