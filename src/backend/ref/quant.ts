// Reference kernels, family 'quant': weight fake quantization (METHODS.md §2) and its
// straight-through / LSQ backward, and dynamic activation quantization. Plain loops in float32
// arithmetic (Math.fround at every step, as C `float`) that define the semantics of
// src/tensor/kernels.ts; native/quant.cc must match them bit for bit.
import type { Kernels, QuantRuleCode } from '../../tensor/kernels.js';
import { QuantRule } from '../../tensor/kernels.js';
import { toF16, fromF16 } from '../../io/half.js';
import { expectLength } from './nn.js';

const f32 = Math.fround;
const LANES = 16;

/** C roundf: nearest integer, halves away from zero (exact for float32 inputs). */
export function roundAway(x: number): number {
  return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(-x + 0.5);
}

/** GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x)). */
const fp16 = (x: number): number => fromF16(toF16(x));

/** Granule layout of a (rows, cols) weight for `group` (0 = tensor, else a divisor of cols). */
export interface Geometry { seg: number; segsPerRow: number; granules: number; size: number }

export function geometry(fn: string, rows: number, cols: number, group: number): Geometry {
  if (group === 0) return { seg: cols, segsPerRow: 1, granules: 1, size: rows * cols };
  if (!(Number.isInteger(group) && group > 0 && cols % group === 0)) {
    throw new RangeError(`${fn}: group ${group} does not divide cols ${cols}`);
  }
  return { seg: group, segsPerRow: cols / group, granules: (rows * cols) / group, size: group };
}

/** Granule of segment j of row r. */
const granuleOf = (g: Geometry, r: number, j: number): number => (g.granules === 1 ? 0 : r * g.segsPerRow + j);

/** The fixed-order double sum of the contract: lane j mod 16 within a segment, lanes in order. */
export function laneSum(n: number, term: (j: number) => number): number {
  const lanes = new Float64Array(LANES);
  for (let j = 0; j < n; j++) lanes[j % LANES] += term(j);
  let s = 0;
  for (let l = 0; l < LANES; l++) s += lanes[l];
  return s;
}

function checkFinite(fn: string, w: Float32Array, cols: number): void {
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) {
      throw new RangeError(`${fn}: non-finite weight ${w[i]} at row ${Math.floor(i / cols)}, column ${i % cols}`);
    }
  }
}

function checkStep(fn: string, step: Float32Array): void {
  for (let i = 0; i < step.length; i++) {
    if (!(step[i] >= 0 && step[i] < Infinity)) {
      throw new RangeError(`${fn}: LSQ step ${step[i]} of granule ${i} must be finite and ≥ 0`);
    }
  }
}

const BLOCK: Partial<Record<QuantRuleCode, number>> = {
  [QuantRule.q4_0]: 32, [QuantRule.q8_0]: 32, [QuantRule.tq2_0]: 256,
};

function checkRule(fn: string, rule: QuantRuleCode, bits: number, group: number, lsq: boolean): void {
  if (!(rule >= 0 && rule <= 5 && Number.isInteger(rule))) throw new RangeError(`${fn}: unknown rule ${rule}`);
  const uniform = rule === QuantRule.sym || rule === QuantRule.asym;
  if (uniform && !(Number.isInteger(bits) && bits >= 2 && bits <= 8)) {
    throw new RangeError(`${fn}: bits ${bits} outside 2..8`);
  }
  if (lsq && !uniform) throw new RangeError(`${fn}: an LSQ step needs rule sym or asym, got rule ${rule}`);
  const block = BLOCK[rule];
  if (block !== undefined && group !== block) {
    throw new RangeError(`${fn}: rule ${rule} needs group ${block}, got ${group}`);
  }
}

/** Runs fn(i, r, j) over every element, j = its segment within the row (row-major order). */
function forSegments(rows: number, cols: number, g: Geometry, fn: (seg0: number, r: number, j: number) => void): void {
  for (let r = 0; r < rows; r++) for (let j = 0; j < g.segsPerRow; j++) fn(r * cols + j * g.seg, r, j);
}

/** Per-granule scale (and zero point / raw ggml d) from the weights, min-max or TWN or ggml. */
function granuleParams(w: Float32Array, rows: number, cols: number, g: Geometry, rule: QuantRuleCode,
  bits: number, scales: Float32Array, zeros: Int32Array | null, extra: Float32Array): void {
  const G = g.granules;
  if (rule === QuantRule.twn) {
    const s1 = new Float64Array(G);
    forSegments(rows, cols, g, (o, r, j) => { s1[granuleOf(g, r, j)] += laneSum(g.seg, (k) => Math.abs(w[o + k])); });
    for (let k = 0; k < G; k++) extra[k] = f32(f32(0.7) * f32(s1[k] / g.size)); // Δ
    const s2 = new Float64Array(G), count = new Float64Array(G);
    forSegments(rows, cols, g, (o, r, j) => {
      const k = granuleOf(g, r, j), d = extra[k];
      s2[k] += laneSum(g.seg, (m) => (Math.abs(w[o + m]) > d ? Math.abs(w[o + m]) : 0));
      for (let m = 0; m < g.seg; m++) if (Math.abs(w[o + m]) > d) count[k]++;
    });
    for (let k = 0; k < G; k++) scales[k] = count[k] > 0 ? f32(s2[k] / count[k]) : 0; // α
    return;
  }
  // Max |w|, min and max (with 0), and q4_0's signed element of largest magnitude (first wins).
  const amax = new Float32Array(G), mn = new Float32Array(G), mx = new Float32Array(G);
  const smax = new Float32Array(G);
  forSegments(rows, cols, g, (o, r, j) => {
    const k = granuleOf(g, r, j);
    for (let m = 0; m < g.seg; m++) {
      const v = w[o + m];
      if (amax[k] < Math.abs(v)) { amax[k] = Math.abs(v); smax[k] = v; }
      if (v < mn[k]) mn[k] = v;
      if (v > mx[k]) mx[k] = v;
    }
  });
  for (let k = 0; k < G; k++) {
    switch (rule) {
      case QuantRule.sym: scales[k] = f32(amax[k] / (2 ** (bits - 1) - 1)); break;
      case QuantRule.asym: {
        const qmax = 2 ** bits - 1;
        scales[k] = f32(f32(mx[k] - mn[k]) / qmax);
        break;
      }
      case QuantRule.q4_0: extra[k] = f32(smax[k] / -8); break;
      case QuantRule.q8_0: extra[k] = f32(amax[k] / 127); break;
      case QuantRule.tq2_0: extra[k] = amax[k]; break;
    }
    if (rule >= QuantRule.q4_0) scales[k] = fp16(extra[k]);
  }
  if (zeros) for (let k = 0; k < G; k++) zeros[k] = zeroPoint(mn[k], scales[k], bits);
}

/** Asym zero point: clamp(round(−mn/s), 0, 2^b−1); 0 when s = 0. */
function zeroPoint(mn: number, s: number, bits: number): number {
  if (s === 0) return 0;
  return Math.min(2 ** bits - 1, Math.max(0, roundAway(f32(-mn / s)))) | 0;
}

/** Integer code of one weight and its dequantized value (the contract's per-rule formulas). */
function quantOne(v: number, rule: QuantRuleCode, bits: number, s: number, z: number, d: number): [number, number] {
  switch (rule) {
    case QuantRule.sym: {
      if (s === 0) return [0, 0];
      const q = Math.min(2 ** (bits - 1) - 1, Math.max(-(2 ** (bits - 1)), roundAway(f32(v / s)))) | 0;
      return [q, f32(q * s)];
    }
    case QuantRule.asym: {
      if (s === 0) return [0, 0];
      const q = Math.min(2 ** bits - 1, Math.max(0, roundAway(f32(v / s)) + z)) | 0;
      return [q, f32((q - z) * s)];
    }
    case QuantRule.twn: {
      const q = Math.abs(v) > d ? (v > 0 ? 1 : -1) : 0;
      return [q, f32(q * s)];
    }
    case QuantRule.q4_0: {
      const id = d ? f32(1 / d) : 0;
      const q = Math.min(15, Math.trunc(f32(f32(v * id) + 8.5)));
      return [q, f32((q - 8) * s)];
    }
    case QuantRule.q8_0: {
      const id = d ? f32(1 / d) : 0;
      const q = roundAway(f32(v * id)) | 0;
      return [q, f32(q * s)];
    }
    default: { // tq2_0
      const id = d ? f32(1 / d) : 0;
      const q = (roundAway(f32(v * id)) | 0) + 1;
      return [q, f32((q - 1) * s)];
    }
  }
}

/** Per-granule LSQ bounds [Qn, Qp] and gradient-scale level count. */
function lsqBounds(rule: QuantRuleCode, bits: number, z: number): [number, number, number] {
  if (rule === QuantRule.sym) return [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 2 ** (bits - 1) - 1];
  const qmax = 2 ** bits - 1;
  return [-z, qmax - z, qmax];
}

export const quantKernels: Partial<Kernels> = {
  fakeQuant(w, out, codes, scales, zeros, step, rows, cols, rule, bits, group) {
    const fn = 'fakeQuant';
    checkRule(fn, rule, bits, group, step !== null);
    const g = geometry(fn, rows, cols, group);
    expectLength(fn, 'w', w, rows * cols);
    if (out) expectLength(fn, 'out', out, rows * cols);
    if (codes) expectLength(fn, 'codes', codes, rows * cols);
    expectLength(fn, 'scales', scales, g.granules);
    if (rule === QuantRule.asym && !zeros) throw new RangeError(`${fn}: asym needs a zeros buffer`);
    if (zeros) expectLength(fn, 'zeros', zeros, g.granules);
    checkFinite(fn, w, cols);
    const extra = new Float32Array(g.granules); // TWN Δ, or ggml's unrounded d
    if (step) {
      expectLength(fn, 'step', step, g.granules);
      checkStep(fn, step);
      scales.set(step);
      if (zeros) {
        const mn = new Float32Array(g.granules);
        forSegments(rows, cols, g, (o, r, j) => {
          const k = granuleOf(g, r, j);
          for (let m = 0; m < g.seg; m++) if (w[o + m] < mn[k]) mn[k] = w[o + m];
        });
        for (let k = 0; k < g.granules; k++) zeros[k] = zeroPoint(mn[k], step[k], bits);
      }
    } else {
      granuleParams(w, rows, cols, g, rule, bits, scales, zeros, extra);
    }
    forSegments(rows, cols, g, (o, r, j) => {
      const k = granuleOf(g, r, j);
      const s = scales[k], z = zeros ? zeros[k] : 0, d = extra[k];
      for (let m = 0; m < g.seg; m++) {
        const [q, y] = quantOne(w[o + m], rule, bits, s, z, d);
        if (codes) codes[o + m] = q;
        if (out) out[o + m] = y;
      }
    });
  },

  fakeQuantBackward(w, gy, gw, step, zeros, gstep, rows, cols, rule, bits, group, clip) {
    const fn = 'fakeQuantBackward';
    checkRule(fn, rule, bits, group, step !== null);
    const g = geometry(fn, rows, cols, group);
    for (const [name, b] of [['w', w], ['gy', gy], ['gw', gw]] as const) expectLength(fn, name, b, rows * cols);
    clip = f32(clip);
    if (!step) {
      for (let i = 0; i < w.length; i++) gw[i] = Math.abs(w[i]) <= clip ? gy[i] : 0;
      return;
    }
    expectLength(fn, 'step', step, g.granules);
    if (!gstep) throw new RangeError(`${fn}: an LSQ step needs a gstep buffer`);
    expectLength(fn, 'gstep', gstep, g.granules);
    if (rule === QuantRule.asym) {
      if (!zeros) throw new RangeError(`${fn}: asym LSQ needs the forward's zeros`);
      expectLength(fn, 'zeros', zeros, g.granules);
    }
    const acc = new Float64Array(g.granules);
    forSegments(rows, cols, g, (o, r, j) => {
      const k = granuleOf(g, r, j), s = step[k];
      const [qn, qp] = lsqBounds(rule, bits, zeros ? zeros[k] : 0);
      acc[k] += laneSum(g.seg, (m) => {
        const x = w[o + m];
        let inside = true, t = 0;
        if (s !== 0) {
          const v = f32(x / s);
          inside = qn <= v && v <= qp;
          t = inside ? f32(roundAway(v) - v) : v < qn ? qn : qp;
        }
        gw[o + m] = inside && Math.abs(x) <= clip ? gy[o + m] : 0;
        return gy[o + m] * t; // exact in double (two float32 factors)
      });
    });
    for (let k = 0; k < g.granules; k++) {
      const [, , levels] = lsqBounds(rule, bits, 0);
      gstep[k] = f32(acc[k] * (1 / Math.sqrt(g.size * levels)));
    }
  },

  fakeQuantInput(x, out, bits, clip) {
    const fn = 'fakeQuantInput';
    if (!(Number.isInteger(bits) && bits >= 2 && bits <= 8)) throw new RangeError(`${fn}: bits ${bits} outside 2..8`);
    if (!(clip > 0)) throw new RangeError(`${fn}: clip ${clip} must be > 0 (Infinity: none)`);
    expectLength(fn, 'out', out, x.length);
    clip = f32(clip);
    const qp = 2 ** (bits - 1) - 1;
    let amax = 0;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) throw new RangeError(`${fn}: non-finite input ${x[i]} at index ${i}`);
      amax = Math.max(amax, Math.min(Math.abs(x[i]), clip));
    }
    const s = f32(amax / qp);
    for (let i = 0; i < x.length; i++) {
      if (s === 0) { out[i] = 0; continue; }
      const xc = Math.min(clip, Math.max(-clip, x[i]));
      const q = Math.min(qp, Math.max(-qp - 1, roundAway(f32(xc / s)))) | 0;
      out[i] = f32(q * s);
    }
    return s;
  },

  fakeQuantInputBackward(x, gy, gx, clip) {
    const fn = 'fakeQuantInputBackward';
    expectLength(fn, 'gy', gy, x.length);
    expectLength(fn, 'gx', gx, x.length);
    clip = f32(clip);
    for (let i = 0; i < x.length; i++) gx[i] = Math.abs(x[i]) < clip ? gy[i] : 0;
  },
};
