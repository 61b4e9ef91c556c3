// Quantizer test cases shared by the quant tests: every rule × granule on odd shapes, and
// weights with the awkward values (all-zero granules, exact rounding ties, ±0, tiny values).
import type { WeightQuant, Rule, Granule } from '../../src/quant/rules.js';
import { Rng } from '../../src/tensor/rng.js';

export interface Case { name: string; q: WeightQuant; rows: number; cols: number }

const granules = (groups: number[]): Granule[] => [
  { kind: 'tensor' }, { kind: 'channel' }, ...groups.map((size) => ({ kind: 'group', size }) as const),
];

/** Every rule × granule (uniform rules at 2, 3, 4, 8 bits; LSQ variants; clipped STE). */
export function allCases(): Case[] {
  const out: Case[] = [];
  const uniform: Rule[] = [];
  for (const bits of [2, 3, 4, 8]) uniform.push({ kind: 'sym', bits }, { kind: 'asym', bits });
  for (const [rows, cols, groups] of [[7, 96, [32, 12]], [5, 45, [15, 9]]] as const) {
    for (const rule of [...uniform, { kind: 'twn' } as Rule]) {
      for (const granule of granules([...groups])) {
        for (const lsq of rule.kind === 'twn' ? [false] : [false, true]) {
          const q: WeightQuant = { rule, granule, ...(lsq ? { lsq } : {}) };
          out.push({ name: `${JSON.stringify(q)} on [${rows}, ${cols}]`, q, rows, cols });
        }
      }
    }
  }
  for (const kind of ['q4_0', 'q8_0', 'tq2_0'] as const) {
    out.push({ name: kind, q: { rule: { kind }, granule: { kind: 'channel' } }, rows: 5, cols: 512 });
  }
  return out;
}

/** Weights (rows, cols) ~ N(0, 1)·row scale, with row 1 all zero, a granule-sized run of
 *  zeros, exact ties at ±0.5 and ±1.5 of a power-of-two scale, −0, and tiny values. */
export function awkwardWeights(rows: number, cols: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = 2 ** ((r % 5) - 2);
    for (let c = 0; c < cols; c++) w[r * cols + c] = rng.normal() * scale;
  }
  if (rows > 1) w.fill(0, cols, 2 * cols);
  if (rows > 2) {
    w.fill(0, 2 * cols, 2 * cols + 32);
    w[2 * cols + 33] = -0;
  }
  if (rows > 3) {
    // max |w| = 7 in row 3: sym 4-bit s = 1, so ±0.5, ±1.5, ±2.5 are exact ties.
    const o = 3 * cols;
    for (let c = 0; c < cols; c++) w[o + c] = Math.max(-6.9, Math.min(6.9, w[o + c]));
    w.set([7, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1e-30, -1e-30, 3.5], o);
  }
  return w;
}

/** A learned step around the min-max one: ×[0.5, 1.5) per granule, so values clamp too. */
export function jitterStep(step: Float32Array, seed = 2): Float32Array {
  const rng = new Rng(seed);
  return step.map((s) => s * (0.5 + rng.uniform()));
}

/** Index of the first bitwise difference (Object.is: −0 ≠ 0, NaN = NaN), or −1. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
