// Settings of a KD-QAT run (`kdqat qat`), their defaults and checks, and the --loss syntax.
import { LOSS_NAMES, type LossName, type LossWeights } from '../distill/losses.js';

export interface QatConfig {
  /** Teacher model directory (absolute). */
  teacher: string;
  /** Decoder: corpus name or text file/directory. */
  data: string;
  /** Encoder: built-in classification task or a JSONL/TSV training file; dev: its dev file. */
  task: string;
  dev: string;
  /** Quantization preset name or JSON file (src/quant/config.ts). */
  quant: string;
  /** Loss weights, 'pred=1,rep=1,attn_map=1'. */
  loss: string;
  tau: number;
  /** '', a preset (ov) or comma-separated name patterns. */
  freeze: string;
  /** Start the student from this model directory instead of the teacher's weights. */
  studentInit: string;
  steps: number;
  lr: number;
  warmup: number;
  batch: number;
  /** Tokens per window (decoder) / maximum length (encoder); 0: min(128, max positions). */
  seqLen: number;
  accumulate: number;
  clip: number;
  weightDecay: number;
  evalEvery: number;
  /** Validation windows of a periodic evaluation (the baselines and the final one use all). */
  evalWindows: number;
  logEvery: number;
  saveEvery: number;
  seed: number;
  /** Directory of the on-disk teacher-output cache ('' = off). */
  cacheTeacher: string;
}

export const QAT_DEFAULTS: QatConfig = {
  teacher: '', data: '', task: '', dev: '', quant: 'w4-channel', loss: 'pred=1', tau: 1, freeze: '', studentInit: '',
  steps: 200, lr: 1e-4, warmup: 10, batch: 8, seqLen: 0, accumulate: 1, clip: 1, weightDecay: 0,
  evalEvery: 50, evalWindows: 32, logEvery: 10, saveEvery: 50, seed: 0, cacheTeacher: '',
};

const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;

export function checkQatConfig(c: QatConfig): void {
  if (!c.teacher) throw new Error('--teacher DIR is required: the full-precision model to distill from');
  for (const k of ['steps', 'batch', 'accumulate', 'logEvery'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${flag(k)} must be a positive integer, got ${c[k]}`);
  }
  for (const k of ['warmup', 'seqLen', 'evalEvery', 'evalWindows', 'saveEvery', 'seed'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new Error(`${flag(k)} must be a non-negative integer, got ${c[k]}`);
  }
  if (!(c.lr > 0)) throw new Error(`--lr must be positive, got ${c.lr}`);
  if (!(c.tau > 0)) throw new Error(`--tau must be positive, got ${c.tau}`);
  if (!(c.clip >= 0)) throw new Error(`--clip must be ≥ 0 (0 = off), got ${c.clip}`);
  if (!(c.weightDecay >= 0)) throw new Error(`--weight-decay must be ≥ 0, got ${c.weightDecay}`);
}

/** 'pred=1,rep=1,attn_map=0.5' → weights; a bare name means weight 1. */
export function parseLossWeights(spec: string): LossWeights {
  const out: LossWeights = {};
  const items = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`--loss: no loss given; use e.g. 'pred=1' or 'pred=1,rep=1,attn_map=1' (terms: ${LOSS_NAMES.join(', ')})`);
  for (const item of items) {
    const m = /^([a-z_]+)(?:=(.+))?$/.exec(item);
    const name = m?.[1] as LossName | undefined;
    if (!m || !name || !(LOSS_NAMES as readonly string[]).includes(name)) {
      throw new Error(`--loss: unknown term '${item.split('=')[0]}' in '${spec}'; the terms are ${LOSS_NAMES.join(', ')} (METHODS.md §3)`);
    }
    const w = m[2] === undefined ? 1 : Number(m[2]);
    if (!Number.isFinite(w) || w < 0) throw new Error(`--loss: the weight of '${name}' must be a number ≥ 0, got '${m[2]}'`);
    if (name in out) throw new Error(`--loss: '${name}' is given twice in '${spec}'`);
    out[name] = w;
  }
  if (!Object.values(out).some((w) => (w ?? 0) > 0)) throw new Error(`--loss: every weight in '${spec}' is 0; at least one term must count`);
  return out;
}
