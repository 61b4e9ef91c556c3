// Fake-quantization ops with autograd (METHODS.md §1-2): the forward replaces a weight by
// ŵ = dequant(quant(w)) through the `fakeQuant` kernel (the same one quantizeCodes uses, so
// fake ≡ convert bitwise); the backward is the straight-through estimator (plain or clipped)
// or, for LSQ, Esser et al. 2020's step gradient. The STE lives here and nowhere else.
import { Tensor, uninitF32 } from '../tensor/tensor.js';
import { record } from '../tensor/autograd.js';
import { kernel } from '../tensor/registry.js';
import { offGridWeight, onIntegerGrid, type IntegerGrid } from '../tensor/ops/matmul.js';
import {
  type WeightQuant, checkWeightQuant, checkStep, granuleCount, groupOf, bitsOf, ruleCode,
  withContext, isKRule,
} from './rules.js';

const f32 = Math.fround;

function matrixShape(where: string, w: Tensor): [number, number] {
  if (w.dtype !== 'f32' || w.ndim !== 2) {
    throw new RangeError(`${where}: expected a 2-D float32 weight (out, in), got ${w.dtype} of shape [${w.shape}]`);
  }
  return [w.shape[0], w.shape[1]];
}

/** ŵ (rows, cols) = fake-quantized w; `step` (granuleCount) is the learned scale for LSQ. */
export function fakeQuantWeight(w: Tensor, q: WeightQuant, step?: Tensor): Tensor {
  const where = 'fakeQuantWeight';
  const [rows, cols] = matrixShape(where, w);
  checkWeightQuant(q, rows, cols, where);
  checkStep(q, rows, cols, step?.f32, where);
  const G = granuleCount(rows, cols, q);
  const rule = ruleCode(q.rule), bits = bitsOf(q.rule), group = groupOf(q, cols);
  const out = new Tensor(uninitF32(w.size), w.shape);
  if (isKRule(q.rule)) {
    // llama.cpp K-quant grid: its own kernel (no LSQ step); the STE below is the same.
    withContext(where, q, rows, cols, () => kernel('fakeQuantGrid')(w.f32, out.f32, null, null, null, rows, cols, rule));
    offGridWeight(out);
    const clip = f32(q.clip ?? Infinity);
    return record(out, 'fakeQuantWeight', [w], (g) => {
      if (clip === Infinity) return [g]; // plain STE: ∂ŵ/∂w = 1
      const gw = new Float32Array(w.size);
      for (let i = 0; i < gw.length; i++) gw[i] = Math.abs(w.f32[i]) <= clip ? g.f32[i] : 0; // clipped STE
      return [new Tensor(gw, w.shape)];
    });
  }
  const scales = new Float32Array(G);
  const zeros = q.rule.kind === 'asym' ? new Int32Array(G) : null;
  withContext(where, q, rows, cols, () =>
    kernel('fakeQuant')(w.f32, out.f32, null, scales, zeros, step?.f32 ?? null, rows, cols, rule, bits, group));
  const clip = q.clip ?? Infinity;
  const inputs = step ? [w, step] : [w];
  const grid = weightGrid(q, rows, cols, scales);
  if (grid) onIntegerGrid(out, grid);
  else offGridWeight(out);
  return record(out, 'fakeQuantWeight', inputs, (g) => {
    if (!step && clip === Infinity) return [g]; // plain STE: ∂ŵ/∂w = 1
    const gw = uninitF32(w.size);
    const gs = step ? new Float32Array(G) : null;
    kernel('fakeQuantBackward')(w.f32, g.f32, gw, step?.f32 ?? null, zeros, gs, rows, cols, rule, bits, group, clip);
    const gwT = new Tensor(gw, w.shape);
    return step ? [gwT, new Tensor(gs!, step.shape)] : [gwT];
  });
}

/** The integer grid of a weight ŵ = code·s (rows, cols) with these per-granule scales, one per
 *  tensor or row, which a Linear's GEMMs can use (ops/matmul.ts: the integer forward takes |code|
 *  ≤ 64, matmulOnGrid ≤ 256): TWN, or sym of ≤ 8 bits per tensor or channel; null for every
 *  other quantizer. */
export function weightGrid(q: WeightQuant, rows: number, cols: number, scales: Float32Array): IntegerGrid | null {
  const kind = q.rule.kind, bits = bitsOf(q.rule), G = granuleCount(rows, cols, q);
  if (!(kind === 'twn' || (kind === 'sym' && bits <= 8)) || !(G === 1 || G === rows) || scales.length !== G) return null;
  return { scales, maxCode: kind === 'twn' ? 1 : 2 ** (bits - 1) };
}

/** How Linear's int8 input gradient (Kernels.matmulQ8Grad, compute.ts withInt8Grad) takes a
 *  weight quantized by q: 'codes', ŵ's own codes (a grid of weightGrid's with |code| ≤ 64: TWN,
 *  sym ≤ 7 bits, per tensor or channel), exactly; 'regrid', ŵ rounded to a 7-bit grid per row
 *  first (every other quantizer: per group, K-quants, 8 bits; tensor/ops/matmul.ts linearGrads). */
export function int8GradGrid(q: WeightQuant, rows: number, cols: number): 'codes' | 'regrid' {
  const g = weightGrid(q, rows, cols, new Float32Array(granuleCount(rows, cols, q)));
  return g !== null && g.maxCode <= 64 ? 'codes' : 'regrid';
}

/** LSQ step initialization: the min-max scale of each granule (sym: max|w|/Qp, asym:
 *  (max−min)/(2^b−1)), shape [granuleCount], a leaf that requires a gradient. */
export function initStep(w: Tensor, q: WeightQuant): Tensor {
  const where = 'initStep';
  const [rows, cols] = matrixShape(where, w);
  checkWeightQuant(q, rows, cols, where);
  if (q.rule.kind !== 'sym' && q.rule.kind !== 'asym') {
    throw new RangeError(`${where}: rule ${q.rule.kind} has no learnable step (LSQ applies to sym and asym)`);
  }
  const G = granuleCount(rows, cols, q);
  const scales = new Float32Array(G);
  const zeros = q.rule.kind === 'asym' ? new Int32Array(G) : null;
  withContext(where, q, rows, cols, () => kernel('fakeQuant')(w.f32, null, null, scales, zeros, null, rows, cols,
    ruleCode(q.rule), bitsOf(q.rule), groupOf(q, cols)));
  return new Tensor(scales, [G], true);
}

/** fakeQuantInput(x, bits, clip) once per input tensor: the Linears that read the same x (a
 *  layer's query, key and value projections; a gated MLP's gate and up) share one x̂ — the same
 *  values as quantizing it for each, one pass instead of several, and one straight-through
 *  backward of their summed gradients (the STE multiplies by 0 or 1, so the same sum). */
export function inputQuantizer(bits: number, clip?: number): (x: Tensor) => Tensor {
  const done = new WeakMap<Tensor, Tensor>();
  return (x) => {
    let y = done.get(x);
    if (!y) {
      y = fakeQuantInput(x, bits, clip);
      done.set(x, y);
    }
    return y;
  };
}

/** Dynamic per-tensor symmetric fake quantization of an activation (paper B: 8-bit inputs of
 *  quantized Linears), clamped to ±clip when given (TernaryBERT: 2.5); STE backward, zero
 *  outside ±clip. */
export function fakeQuantInput(x: Tensor, bits: number, clip?: number): Tensor {
  const where = 'fakeQuantInput';
  if (x.dtype !== 'f32') throw new TypeError(`${where}: expected a float32 tensor, got ${x.dtype}`);
  if (!(Number.isInteger(bits) && bits >= 2 && bits <= 8)) {
    throw new RangeError(`${where}: bits ${bits} is outside 2..8 (activations on shape [${x.shape}])`);
  }
  if (clip !== undefined && !(clip > 0)) throw new RangeError(`${where}: clip ${clip} must be > 0`);
  const c = clip ?? Infinity;
  const out = new Tensor(uninitF32(x.size), x.shape);
  let s: number;
  try {
    s = kernel('fakeQuantInput')(x.f32, out.f32, bits, c);
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`${where}: ${bits}-bit on shape [${x.shape}]: ${e.message}`);
    throw e;
  }
  // out = code·s with |code| ≤ Qp (−Qp−1 is never reached: |x| ≤ max|x| = s·Qp up to rounding,
  // Kernels.fakeQuantInput), so a Linear can run it as an integer GEMM (matmulQ8).
  onIntegerGrid(out, { scales: new Float32Array([s]), maxCode: 2 ** (bits - 1) - 1 });
  return record(out, 'fakeQuantInput', [x], (g) => {
    if (c === Infinity) return [g];
    const gx = uninitF32(x.size);
    kernel('fakeQuantInputBackward')(x.f32, g.f32, gx, c);
    return [new Tensor(gx, x.shape)];
  });
}
