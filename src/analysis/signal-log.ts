// Reading the KD-QAT training log (JSONL, one record per logged step, written by `kdqat qat`):
//   {"step": 10, "lr": 0.0001, "loss": {"total": 2.1, "pred": 1.9, ...}, "signal": SignalRecord}
// "signal" may be absent on lines that carry no signal statistics, "loss" on lines that carry
// none. The train_log.jsonl of `kdqat pretrain` / `finetune` logs the loss as one number
// ({"step": 10, "loss": 4.9, ...}): it reads as the term "total". Evaluation lines add the
// evaluator's metrics (EVAL_METRICS: src/train/qat-eval.ts) as top-level keys; other keys are
// ignored. Every malformed line is an error naming the file and line.
import * as fs from 'node:fs';
import type { SignalRecord } from './signal.js';
import { explainFsError } from '../io/files.js';

export interface LogEntry {
  step: number;
  lr: number | null;
  /** Loss terms; a term logged as null (a non-finite value) is left out. */
  loss: Record<string, number>;
  signal: SignalRecord | null;
  /** The evaluation's metrics on an evaluation line ({} elsewhere). */
  eval: Record<string, number>;
}

/** What periodic evaluations log: KD-QAT's (src/train/qat-eval.ts: decoder, then encoder), and
 *  masked-LM pre-training's validation loss. */
export const EVAL_METRICS = ['valid_ppl', 'valid_nll', 'valid_kl', 'dev_accuracy', 'valid_mlm_loss'] as const;

/** One run's log with the label its plots show. */
export interface RunLog {
  label: string;
  file: string;
  entries: LogEntry[];
}

const EXAMPLE = '{"step": 10, "lr": 1e-4, "loss": {"total": 2.1}, "signal": {"grad_norm": {"q": [0.1, 0.2]}}}';

export function readSignalLog(file: string): LogEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--log ${code === 'ENOENT' ? `${file}: file not found` : explainFsError(e, file, 'read').message}`);
  }
  return parseSignalLog(text, file);
}

/** Parses JSONL text; `file` names the source in errors (`file:line: what`). */
export function parseSignalLog(text: string, file: string): LogEntry[] {
  const out: LogEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message}); each line must be one record like ${EXAMPLE}`);
    }
    out.push(entryOf(raw, where));
  }
  if (out.length === 0) throw new Error(`${file}: no records (expected JSON lines like ${EXAMPLE})`);
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function entryOf(raw: unknown, where: string): LogEntry {
  if (!isObject(raw)) throw new Error(`${where}: expected a JSON object like ${EXAMPLE}`);
  const step = raw.step;
  if (typeof step !== 'number' || !Number.isFinite(step)) throw new Error(`${where}: "step" must be a number, got ${JSON.stringify(step)}`);
  const lr = raw.lr ?? null;
  if (lr !== null && typeof lr !== 'number') throw new Error(`${where}: "lr" must be a number, got ${JSON.stringify(lr)}`);
  const loss: Record<string, number> = {};
  if (typeof raw.loss === 'number') {
    if (Number.isFinite(raw.loss)) loss.total = raw.loss;
  } else if (raw.loss !== undefined && raw.loss !== null) {
    if (!isObject(raw.loss)) throw new Error(`${where}: "loss" must be a number or an object of loss terms like {"total": 2.1}`);
    for (const [k, v] of Object.entries(raw.loss)) {
      if (v === null) continue;
      if (typeof v !== 'number') throw new Error(`${where}: loss.${k} must be a number, got ${JSON.stringify(v)}`);
      loss[k] = v;
    }
  }
  const ev: Record<string, number> = {};
  for (const k of EVAL_METRICS) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number') throw new Error(`${where}: "${k}" must be a number, got ${JSON.stringify(v)}`);
    ev[k] = v;
  }
  return { step, lr, loss, signal: signalOf(raw.signal, where), eval: ev };
}

function signalOf(raw: unknown, where: string): SignalRecord | null {
  if (raw === undefined || raw === null) return null;
  if (!isObject(raw)) throw new Error(`${where}: "signal" must be an object { metric: { kind: [value per layer] } }`);
  const out: Record<string, Record<string, (number | null)[]>> = {};
  for (const [metric, byKind] of Object.entries(raw)) {
    if (!isObject(byKind)) throw new Error(`${where}: signal.${metric} must be an object { kind: [value per layer] }`);
    const kinds: Record<string, (number | null)[]> = {};
    for (const [kind, values] of Object.entries(byKind)) {
      if (!Array.isArray(values) || !values.every((v) => v === null || (typeof v === 'number' && Number.isFinite(v)))) {
        throw new Error(`${where}: signal.${metric}.${kind} must be an array of numbers, one per layer (null where not measured)`);
      }
      kinds[kind] = values as (number | null)[];
    }
    out[metric] = kinds;
  }
  return out as SignalRecord;
}
