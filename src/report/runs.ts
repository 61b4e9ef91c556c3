// What a report is made of: each RUN_DIR read into one record, whatever wrote it.
//   reproduce / demo (reproduce.json + results.json): the command and settings, the comparison
//     tables (mean ± std over seeds, src/report/table.ts), and the KD-QAT log of every run and
//     seed (runs/<run>/<seed>/qat_log.jsonl);
//   kdqat qat (summary.json + qat_log.jsonl): the command and config, its log, and a table of
//     the teacher, the round-to-nearest student and the KD-QAT student (one run: n = 1).
// and in both, the model files found under the directory (exports: .gguf, .onnx, .safetensors)
// with their sizes, and the records of --freeze auto probes (freeze_auto.json) of its runs. Anything else is refused with the files that were expected.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSignalLog, type RunLog } from '../analysis/signal-log.js';
import type { MetricSpec, Table, TableRow } from './table.js';
import type { FreezeAutoRecord } from '../train/freeze-auto.js';

export interface ReportLog extends RunLog {
  /** The run (reproduce: its key; qat: the directory's label) and seed. */
  run: string;
  seed: number;
}

export interface ExportFile {
  /** Relative to the source directory (the teacher's: absolute). */
  file: string;
  bytes: number;
  /** gguf, onnx, safetensors (a student's model.quantized.safetensors: "codes"). */
  format: string;
  /** What the file is, when known: "teacher (reference)", "student latent weights", … */
  role: string;
}

export interface ReportSource {
  dir: string;
  /** Shown on the page; prefixes run labels when the report has several sources. */
  label: string;
  kind: 'reproduce' | 'qat';
  /** demo, ov-freeze, attn-kd, or qat. */
  experiment: string;
  description: string;
  command: string[];
  settings: Record<string, unknown>;
  seeds: number[];
  /** Extra facts for the settings section (wall time, tokens, frozen weights, …). */
  facts: [string, string][];
  tables: Table[];
  logs: ReportLog[];
  exports: ExportFile[];
  /** --freeze auto: each run's and seed's probe record (OUT/freeze_auto.json). */
  freezeAuto: FreezeAutoRun[];
}

export interface FreezeAutoRun {
  run: string;
  seed: number;
  label: string;
  record: FreezeAutoRecord;
}

const readJson = (file: string): Record<string, unknown> => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `unreadable (${(e as Error).message})`}`);
  }
};

/** Reads one RUN_DIR. */
export function readSource(dir: string): ReportSource {
  const d = path.resolve(dir);
  if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) throw new Error(`${dir}: no such directory (give the --out directory of a kdqat qat, reproduce or demo run)`);
  if (fs.existsSync(path.join(d, 'reproduce.json'))) {
    if (!fs.existsSync(path.join(d, 'results.json'))) throw new Error(`${dir}: has reproduce.json but no results.json: the reproduction has not finished a run yet; rerun its command to continue it`);
    return readReproduce(d, dir);
  }
  if (fs.existsSync(path.join(d, 'summary.json')) && fs.existsSync(path.join(d, 'qat_log.jsonl'))) return readQat(d, dir);
  if (fs.existsSync(path.join(d, 'qat_log.jsonl'))) {
    throw new Error(`${dir}: has qat_log.jsonl but no summary.json: the KD-QAT run has not finished (kdqat qat --resume --out ${dir} continues it)`);
  }
  throw new Error(`${dir}: not a kdqat run directory: expected reproduce.json and results.json (kdqat reproduce / demo) or summary.json and qat_log.jsonl (kdqat qat)`);
}

interface ResultsJson {
  experiment: string;
  description?: string;
  command?: string[];
  settings?: Record<string, unknown>;
  seeds?: number[];
  tables?: { title: string; metrics: MetricSpec[]; rows: { key: string; label: string; metrics: Record<string, { values: { seed: number; value: number }[] }> }[]; notes?: string[] }[];
  runs?: { run: string; seed: number; seconds?: { method: number; eval: number }; files?: Record<string, string> }[];
  seconds?: { this_invocation?: number; runs_total?: number };
  written?: string;
}

function readReproduce(d: string, dir: string): ReportSource {
  const file = path.join(d, 'results.json');
  const j = readJson(file) as unknown as ResultsJson;
  if (typeof j.experiment !== 'string' || !Array.isArray(j.tables) || !Array.isArray(j.runs)) {
    throw new Error(`${file}: not a kdqat reproduce results.json (expected "experiment", "tables" and "runs"); was it written by kdqat reproduce?`);
  }
  const tables: Table[] = j.tables.map((t, ti) => {
    if (!Array.isArray(t.metrics) || !Array.isArray(t.rows)) throw new Error(`${file}: tables[${ti}] needs "metrics" and "rows"`);
    return {
      title: t.title, metrics: t.metrics, notes: t.notes ?? [],
      rows: t.rows.map((r): TableRow => ({ key: r.key, label: r.label, values: Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, v.values])) })),
    };
  });
  // A run's label: its row's, with the quantizer when there are several tables.
  const labelOf = (key: string): string => {
    const t = tables.find((x) => x.rows.some((r) => r.key === key));
    const row = t?.rows.find((r) => r.key === key);
    if (!t || !row) return key;
    const q = t.title.match(/\(([^()]+)\)\s*$/)?.[1] ?? t.title;
    return tables.length > 1 ? `${row.label} · ${q}` : row.label;
  };
  const logs: ReportLog[] = [];
  const freezeAuto: FreezeAutoRun[] = [];
  for (const r of j.runs) {
    const fa = r.files?.freeze_auto;
    if (fa) freezeAuto.push({ run: r.run, seed: r.seed, label: labelOf(r.run), record: readJson(path.join(d, fa)) as unknown as FreezeAutoRecord });
    const log = r.files?.log;
    if (!log) continue;
    const f = path.join(d, log);
    if (!fs.existsSync(f)) throw new Error(`${file}: run ${r.run} seed ${r.seed} names its log ${log}, which is missing from ${dir}`);
    logs.push({ run: r.run, seed: r.seed, label: labelOf(r.run), file: f, entries: readSignalLog(f) });
  }
  const total = j.seconds?.runs_total;
  const facts: [string, string][] = [
    ['runs finished', String(j.runs.length)],
    ...(total !== undefined ? [['compute time of the runs', `${total.toFixed(1)} s`] as [string, string]] : []),
    ...(j.written ? [['results written', j.written] as [string, string]] : []),
  ];
  const settings = j.settings ?? {};
  return {
    dir: d, label: path.basename(d), kind: 'reproduce', experiment: j.experiment, description: j.description ?? '',
    command: j.command ?? [], settings, seeds: j.seeds ?? [], facts, tables, logs, freezeAuto,
    exports: findExports(d, typeof settings.teacher === 'string' ? settings.teacher : null),
  };
}

interface SummaryJson {
  arch?: string;
  steps?: number;
  metric?: string;
  teacher?: Record<string, number>;
  rtn?: Record<string, number>;
  final?: Record<string, number>;
  best?: { step: number; metrics: Record<string, number> } | null;
  frozen?: string[];
  trainable_parameters?: number;
  quantized_weights?: number;
  tokens_seen?: number;
  wall_time_s?: number;
  train_tokens_per_s?: number;
  config?: Record<string, unknown>;
  command?: string[];
}

/** The metrics of kdqat qat's evaluations, as table columns. */
const QAT_METRICS: MetricSpec[] = [
  { key: 'valid_ppl', label: 'valid ppl', digits: 2, better: 'lower' },
  { key: 'valid_nll', label: 'valid NLL', digits: 4, better: 'lower' },
  { key: 'valid_kl', label: 'KL to teacher', digits: 4, better: 'lower' },
  { key: 'dev_accuracy', label: 'dev acc %', digits: 1, better: 'higher', scale: 100 },
];

function readQat(d: string, dir: string): ReportSource {
  const file = path.join(d, 'summary.json');
  const s = readJson(file) as SummaryJson;
  if (typeof s.config !== 'object' || s.config === null) throw new Error(`${file}: not a kdqat qat summary.json (no "config"); was it written by kdqat qat?`);
  const label = path.basename(d);
  const log = path.join(d, 'qat_log.jsonl');
  const row = (key: string, name: string, m: Record<string, number> | undefined): TableRow => ({
    key, label: name, values: Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, [{ seed: Number(s.config!.seed ?? 0), value: v }]])),
  });
  const rows = [row('teacher', 'FP teacher', s.teacher), row('rtn', 'RTN', s.rtn), row('qat', 'KD-QAT', s.final)];
  if (s.best) rows.push(row('best', `KD-QAT, best periodic (step ${s.best.step})`, s.best.metrics));
  const measured = QAT_METRICS.filter((m) => rows.some((r) => r.values[m.key]?.length));
  const tables: Table[] = measured.length ? [{ title: `KD-QAT with ${s.config.quant}${s.config.freeze ? `, freeze ${s.config.freeze}` : ''}`, metrics: measured, rows: rows.filter((r) => Object.keys(r.values).length), notes: [] }] : [];
  const facts: [string, string][] = [];
  const add = (k: string, v: unknown, unit = ''): void => { if (v !== undefined && v !== null) facts.push([k, `${typeof v === 'number' ? v.toLocaleString('en-US') : String(v)}${unit}`]); };
  add('architecture', s.arch);
  add('steps', s.steps);
  add('tokens seen', s.tokens_seen);
  add('wall time', s.wall_time_s, ' s');
  add('training throughput', s.train_tokens_per_s, ' tokens/s');
  add('quantized weights', s.quantized_weights);
  add('trainable parameters', s.trainable_parameters);
  if (s.frozen?.length) add('frozen', s.frozen.join(', '));
  const teacher = typeof s.config.teacher === 'string' ? s.config.teacher : null;
  return {
    dir: d, label, kind: 'qat', experiment: 'qat', description: `kdqat qat: ${s.config.quant}, loss ${s.config.loss}${s.config.freeze ? `, freeze ${s.config.freeze}` : ''}`,
    command: s.command ?? [], settings: s.config, seeds: [Number(s.config.seed ?? 0)], facts, tables,
    logs: [{ run: label, seed: Number(s.config.seed ?? 0), label, file: log, entries: readSignalLog(log) }],
    exports: findExports(d, teacher),
    freezeAuto: fs.existsSync(path.join(d, 'freeze_auto.json'))
      ? [{ run: label, seed: Number(s.config.seed ?? 0), label, record: readJson(path.join(d, 'freeze_auto.json')) as unknown as FreezeAutoRecord }] : [],
  };
}

const EXPORT_EXT: [RegExp, string][] = [[/\.gguf$/, 'gguf'], [/\.onnx$/, 'onnx'], [/\.onnx[._]data$/, 'onnx data'], [/\.safetensors$/, 'safetensors']];
// Not exports: the training state.
const SKIP_DIRS = new Set(['checkpoint', 'checkpoint.old', 'node_modules']);

/** Model files under `dir` (not in checkpoints or hidden directories), sorted by path; the
 *  teacher's model.safetensors first, as the reference size. */
export function findExports(dir: string, teacher: string | null): ExportFile[] {
  const out: ExportFile[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 8) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(p, depth + 1);
        continue;
      }
      const fmt = EXPORT_EXT.find(([re]) => re.test(e.name))?.[1];
      if (!fmt || !e.isFile()) continue;
      out.push({ file: path.relative(dir, p), bytes: fs.statSync(p).size, format: e.name === 'model.quantized.safetensors' ? 'codes + scales' : fmt, role: roleOf(e.name, fmt) });
    }
  };
  walk(dir, 0);
  const ref = teacher ? path.join(teacher, 'model.safetensors') : null;
  if (ref && fs.existsSync(ref)) out.unshift({ file: ref, bytes: fs.statSync(ref).size, format: 'safetensors', role: 'teacher (reference)' });
  return out;
}

function roleOf(name: string, fmt: string): string {
  if (name === 'model.quantized.safetensors') return 'student: codes and scales of the quantized weights only';
  if (name === 'model.safetensors') return 'model weights (a student: latent, full precision)';
  if (fmt === 'gguf') return 'GGUF export (llama.cpp)';
  if (fmt.startsWith('onnx')) return 'ONNX export';
  return fmt;
}
