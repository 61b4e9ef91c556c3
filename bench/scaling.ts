// `kdqat bench --only scaling`: how the KD-QAT step's cost grows. The step of bench/qat_step.ts
// (teacher forward, student W4 per-channel fake-quant forward + backward, logits KL, AdamW; the
// same worker, bench/qat_step_worker.ts, and the same PyTorch script, bench/torch_qat_step.py,
// given the shape) in tokens/s, kdqat and PyTorch side by side in one run:
//   threads  1, 2                      at d256, T256
//   width    d256, d512, d768, d1024   at T256, the most threads
//   seq      T128, T256, T512, T1024   at d256, the most threads
// To keep the sweep to a few minutes on 2 vCPUs, every point has 2 layers (not 4), 1024 tokens
// per step (batch = 1024 / T: B8×T128 … B1×T1024), vocab 4096, heads = dim / 64, SwiGLU width
// 2.6875·dim (688 at d256, as bench/step.ts), 1 warm-up step and 2 timed steps.
// The linear layers cost the same per token at any T, so at a fixed token count only attention
// changes along the seq sweep: its score and value products cost ∝ T per token (∝ T² per
// sequence). Each record carries attn_flop_share, the causal attention products' share of the
// step's matmul FLOPs per token: 2·T·d per layer against 2·(4d² + 3·d·ff) for the projections
// and 2·d·V for the LM head; tokens/s falls with T by about that share if the kernels keep pace.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { TORCH_PYTHON, runChild, torchAvailable, STEP_SHAPE } from './step.js';
import type { QatStepRecord } from './qat_step.js';

export type Sweep = 'threads' | 'width' | 'seq';

export interface ScalingRecord extends Omit<QatStepRecord, 'bench'> {
  bench: 'qat_scaling';
  /** The sweeps this point belongs to (the d256 T256 point belongs to all three). */
  sweeps: Sweep[];
  shape: string;
  dim: number; layers: number; heads: number; ff: number; vocab: number; seq: number; batch: number;
  tokens_per_step: number;
  attn_flop_share: number;
  /** Forward matmul FLOPs per token of one model (matmulFlopsPerToken). */
  matmul_flops_per_token: number;
}

export const SCALING = {
  layers: 2, tokens: 1024, vocab: 4096, widths: [256, 512, 768, 1024], seqs: [128, 256, 512, 1024],
  steps: 2, warmup: 1, baseDim: 256, baseSeq: 256,
};

export interface ScalingPoint { dim: number; seq: number; threads: number; sweeps: Sweep[] }

/** The points of the three sweeps, each once (the base point carries every sweep it is on). */
export function scalingPoints(threads: number[] = [1, 2]): ScalingPoint[] {
  const top = Math.max(...threads);
  const pts = new Map<string, ScalingPoint>();
  const add = (dim: number, seq: number, t: number, s: Sweep): void => {
    const k = `${dim}:${seq}:${t}`;
    const p = pts.get(k);
    if (p) { if (!p.sweeps.includes(s)) p.sweeps.push(s); } else pts.set(k, { dim, seq, threads: t, sweeps: [s] });
  };
  for (const t of threads) add(SCALING.baseDim, SCALING.baseSeq, t, 'threads');
  for (const d of SCALING.widths) add(d, SCALING.baseSeq, top, 'width');
  for (const T of SCALING.seqs) add(SCALING.baseDim, T, top, 'seq');
  return [...pts.values()];
}

export function shapeOf(dim: number, seq: number) {
  return {
    dim, layers: SCALING.layers, heads: dim / 64, hidden: Math.round(dim * (STEP_SHAPE.hidden / STEP_SHAPE.dim)),
    vocab: SCALING.vocab, seq, batch: Math.max(1, Math.floor(SCALING.tokens / seq)),
  };
}

type Dims = { dim: number; layers: number; hidden: number; vocab: number; seq: number };

/** Forward matmul FLOPs per token of one model (the step runs ~4× that: teacher forward,
 *  student forward and backward): projections, causal attention products, LM head. */
export function matmulFlopsPerToken(s: Dims): number {
  const attn = 2 * s.seq * s.dim;
  const proj = 2 * (4 * s.dim * s.dim + 3 * s.dim * s.hidden);
  return s.layers * (attn + proj) + 2 * s.dim * s.vocab;
}

/** The causal attention products' share of the step's matmul FLOPs per token (see above). */
export function attnFlopShare(s: Dims): number {
  return (s.layers * 2 * s.seq * s.dim) / matmulFlopsPerToken(s);
}

/** A worker's qat_step record as a point of the sweeps (its shape fields added). */
export function scalingRecord(r: QatStepRecord, sweeps: Sweep[], s: ReturnType<typeof shapeOf>): ScalingRecord {
  return {
    ...r, bench: 'qat_scaling', sweeps, shape: `d${s.dim}-L${s.layers}-T${s.seq}-B${s.batch}`,
    dim: s.dim, layers: s.layers, heads: s.heads, ff: s.hidden, vocab: s.vocab, seq: s.seq, batch: s.batch,
    tokens_per_step: s.seq * s.batch, attn_flop_share: attnFlopShare(s), matmul_flops_per_token: matmulFlopsPerToken(s),
  };
}

const here = dirname(fileURLToPath(import.meta.url));

export function runScalingBench(opts: { threads?: number[]; torch?: boolean; log?: (s: string) => void } = {}): ScalingRecord[] {
  const useTorch = (opts.torch ?? true) && torchAvailable();
  const out: ScalingRecord[] = [];
  for (const p of scalingPoints(opts.threads)) {
    const s = shapeOf(p.dim, p.seq);
    const args = [String(SCALING.steps), JSON.stringify(s), String(SCALING.warmup)];
    const runs: [string, string[]][] = [[process.execPath, ['--import', 'tsx', join(here, 'qat_step_worker.ts'), ...args]]];
    if (useTorch) runs.push([TORCH_PYTHON, [join(here, 'torch_qat_step.py'), ...args]]);
    for (const [cmd, a] of runs) {
      const r = runChild<QatStepRecord>(cmd, a, p.threads);
      const rec = scalingRecord(r, p.sweeps, s);
      opts.log?.(`${rec.shape} ${rec.impl} ${rec.threads}t: ${rec.tokens_per_s.toFixed(0)} tokens/s`);
      out.push(rec);
    }
  }
  return out;
}

export function printScalingTable(recs: ScalingRecord[]): void {
  console.log(`\nKD-QAT step scaling: ${SCALING.layers} layers, ${SCALING.tokens} tokens per step, vocab ${SCALING.vocab}, ` +
    `${SCALING.warmup} warm-up + ${SCALING.steps} timed steps (bench/scaling.ts)`);
  console.log('shape               thr  attn FLOP %  kdqat tok/s  torch tok/s  kdqat/torch');
  const key = (r: ScalingRecord) => `${r.shape}:${r.threads}`;
  for (const k of new Set(recs.map(key))) {
    const a = recs.find((r) => key(r) === k && r.impl === 'kdqat'), b = recs.find((r) => key(r) === k && r.impl === 'torch');
    const r = (a ?? b)!;
    const f = (x?: ScalingRecord) => (x ? x.tokens_per_s.toFixed(0) : '-').padStart(13);
    console.log(`${r.shape.padEnd(20)}${String(r.threads).padStart(3)}${(100 * r.attn_flop_share).toFixed(1).padStart(13)}${f(a)}${f(b)}` +
      `${(a && b ? `${(a.tokens_per_s / b.tokens_per_s).toFixed(2)}×` : '-').padStart(13)}`);
  }
}
