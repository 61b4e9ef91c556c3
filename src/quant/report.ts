// Quantization error of a converted model, for `kdqat quantize` and reports: SQNR per weight,
// 10·log10(Σw² / Σ(w − ŵ)²) in dB (ŵ = the dequantized codes), summarized per module kind.
import type { Model } from '../models/model.js';
import { moduleOf } from '../models/registry.js';
import { dequantizeCodes, describeQuant } from './rules.js';
import type { Converted } from './prepare.js';

export interface WeightError {
  /** Stored (logical) name, e.g. lm_head.weight for a tied head. */
  name: string;
  kind: string;
  layer: number | null;
  quant: string;
  /** dB; Infinity when ŵ = w exactly. */
  sqnrDb: number;
  /** Root mean square of w − ŵ. */
  rmse: number;
}

/** SQNR in dB of ŵ against w (float64 sums). */
export function sqnrDb(w: Float32Array, wq: Float32Array): number {
  let s = 0, e = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - wq[i];
    s += w[i] * w[i];
    e += d * d;
  }
  return e === 0 ? Infinity : 10 * Math.log10(s / e);
}

export function weightErrors(model: Model, converted: Converted): WeightError[] {
  const out: WeightError[] = [];
  for (const [name, c] of converted) {
    const w = model.params.get(name)!.f32;
    const { rows, cols, logical } = c.target;
    const wq = dequantizeCodes(c.codes, rows, cols, c.quant);
    let e = 0;
    for (let i = 0; i < w.length; i++) e += (w[i] - wq[i]) ** 2;
    const m = moduleOf(logical);
    out.push({ name: logical, kind: m.kind, layer: m.layer, quant: describeQuant(c.quant), sqnrDb: sqnrDb(w, wq), rmse: Math.sqrt(e / w.length) });
  }
  return out;
}

export interface KindSummary { kind: string; weights: number; meanSqnrDb: number; minSqnrDb: number; quant: string }

/** Mean and worst SQNR per module kind, kinds in first-seen (parameter) order. */
export function summarizeByKind(errors: WeightError[]): KindSummary[] {
  const by = new Map<string, WeightError[]>();
  for (const e of errors) by.set(e.kind, [...(by.get(e.kind) ?? []), e]);
  return [...by].map(([kind, es]) => ({
    kind,
    weights: es.length,
    meanSqnrDb: es.reduce((a, e) => a + e.sqnrDb, 0) / es.length,
    minSqnrDb: Math.min(...es.map((e) => e.sqnrDb)),
    quant: [...new Set(es.map((e) => e.quant))].join(' / '),
  }));
}
