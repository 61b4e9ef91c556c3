// An experiment as data: which runs make it up (a method applied to the teacher, seeded or not),
// which tables they form, what is measured, and the settings that size it. The runner
// (runner.ts) turns it into run directories and a results table; nothing here does work.
import type { MetricSpec } from '../report/table.js';
import type { ArchName } from '../models/registry.js';

/** What one row of a table does to the teacher. */
export type Method =
  /** The full-precision teacher itself (the upper bound). */
  | { kind: 'teacher' }
  /** Post-training round-to-nearest with a QUANT_PRESETS entry (`kdqat quantize`). */
  | { kind: 'rtn'; preset: string }
  /** KD-QAT (`kdqat qat`) with a QUANT_PRESETS entry, loss weights (METHODS.md §3) and an
   *  optional freeze preset (METHODS.md §4: 'ov'; 'auto': a probe chooses, src/train/freeze-auto.ts). */
  | { kind: 'qat'; preset: string; losses: Record<string, number>; freeze?: string };

export interface RunDef {
  /** Directory name under OUT/runs/ and the name --only selects. */
  key: string;
  label: string;
  /** Short method name shared across quantizers (teacher, rtn, qat, qat-ov, …); --only accepts it. */
  family: string;
  method: Method;
  /** Tables (group keys) this run appears in; the teacher appears in all. */
  groups: string[];
}

export interface Group { key: string; title: string }

/** What sizes the reproduction. Results depend on every field except seeds (runs are per seed)
 *  and threads; the runner refuses to mix runs made with different values. */
export interface ReproSettings {
  teacher: string;
  /** KD-QAT steps per run. */
  steps: number;
  batch: number;
  seqLen: number;
  lr: number;
  /** Perplexity: score only the first N tokens of the validation stream (0 = all). */
  evalTokens: number;
  /** Multiple-choice / classification: the first N items of each task (0 = all). */
  evalItems: number;
  /** attn-kd: the coefficients swept in the unified loss (empty for ov-freeze). */
  sweep: number[];
}

/** One finished run's measurements (metric key → value) and what it cost. */
export interface RunResult {
  run: string;
  seed: number;
  metrics: Record<string, number>;
  seconds: { method: number; eval: number };
  /** Files of the run worth pointing at (student dir, qat log, freeze_auto.json), relative to OUT. */
  files: Record<string, string>;
  /** --freeze auto: the patterns the probe chose for this seed ([] = nothing frozen). */
  freeze_auto?: string[];
}

export interface Experiment {
  name: string;
  description: string;
  /** The default teacher's architecture (src/models/registry.ts); a --teacher of any family of
   *  the same kind (decoder, or encoder with a classifier) is taken. */
  arch: ArchName;
  groups: Group[];
  metrics: MetricSpec[];
  /** The runs, given the settings (attn-kd's sweep adds rows). */
  runs(s: ReproSettings): RunDef[];
  /** The paper-sized defaults and the tiny --quick setting (for tests and smoke runs). */
  defaults: Omit<ReproSettings, 'teacher'> & { seeds: number };
  quick: Omit<ReproSettings, 'teacher'> & { seeds: number };
  /** Built-in teacher directory, relative to the package root. */
  teacher: string;
  /** Which KD-QAT student is measured: the final one (default), or the one of the best of five
   *  periodic dev evaluations (paper B reports its best dev score; `kdqat qat --keep-best`). */
  select?: 'final' | 'best-dev';
  /** Figures computed from the measured ones (e.g. the fraction of RTN's perplexity loss that
   *  KD-QAT recovers): may add metric keys to the results it is given (copies, keyed by run), and
   *  returns note lines per group, printed under that group's table. */
  derive?(results: Map<string, RunResult[]>, runs: RunDef[]): Record<string, string[]>;
}
