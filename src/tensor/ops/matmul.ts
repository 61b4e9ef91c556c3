// Matrix products: batched matmul with optional transposes (one GEMM kernel call), and the
// Linear layer y = x·Wᵀ (+ b) with W stored (out, in) as PyTorch's nn.Linear does, whose forward
// is an integer GEMM when fake quantization put both operands on integer grids (IntegerGrid).
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { kernel, kernelSource } from '../registry.js';
import { backwardPrecision, computePrecision, gridGemmEnabled, int8GradEnabled, integerGemmEnabled, type ComputePrecision } from '../compute.js';
import { gemmOutput } from '../recompute.js';
import { empty, fmt, requireF32, sumTo } from './util.js';
import { reshape } from './shape.js';
import { widenBf16 } from '../bf16.js';
import { giveBack, uninitF32 } from '../storage.js';
import { QuantRule } from '../kernels.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * op(a)·op(b) over matching leading batch axes: a (..., m, k) or (..., k, m) with transA;
 * b (..., k, n) or (..., n, k) with transB. Either side may be 2-D and is then shared across
 * the other's batch.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  requireF32('matmul', a);
  requireOperandB('matmul', b);
  const tA = !!opts.transA, tB = !!opts.transB;
  if (a.ndim < 2 || b.ndim < 2) throw new RangeError(`matmul: operands must be at least 2-D, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const m = tA ? ac : ar, k = tA ? ar : ac;
  const kb = tB ? bc : br, n = tB ? br : bc;
  if (k !== kb) {
    throw new RangeError(`matmul: inner dimensions differ: ${fmt(a.shape)}${tA ? 'ᵀ' : ''} · ${fmt(b.shape)}${tB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  }
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  let batchShape: number[];
  if (aBatch.length && bBatch.length) {
    if (aBatch.length !== bBatch.length || aBatch.some((d, i) => d !== bBatch[i])) {
      throw new RangeError(`matmul: batch axes differ: ${fmt(a.shape)} vs ${fmt(b.shape)}`);
    }
    batchShape = aBatch;
  } else batchShape = aBatch.length ? aBatch : bBatch;
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const plan: GemmPlan = { tA, tB, batch, m, k, n, sA: aBatch.length ? m * k : 0, sB: bBatch.length ? k * n : 0, gemm: gemmName(), bgemm: gemmName(backwardPrecision()) };
  const out = gemmOutput([...batchShape, m, n], (o) => forwardGemm(plan.gemm, a.f32, b, o.f32, batch, m, k, n, tA, tB, plan.sA, plan.sB));
  return record(out, 'matmul', [a, b], (g) => gemmGrads(plan, a, b, g));
}

/** A GEMM's B operand: float32, or a bf16 weight (tensor/bf16.ts) that nothing differentiates. */
function requireOperandB(op: string, b: Tensor): void {
  if (b.dtype === 'bf16' && !b.requiresGrad) return;
  requireF32(op, b);
}

/** The forward GEMM C = op(A)·op(B) (+ bias). A bf16 B goes to the float32 kernel as its bits,
 *  which it widens exactly as it packs; matmulBf16 takes float32 inputs, so there it is widened
 *  first (the same values, so the same product either way). */
function forwardGemm(
  gemm: 'matmul' | 'matmulBf16', a: Float32Array, b: Tensor, c: Float32Array, batch: number, m: number, k: number, n: number,
  tA: boolean, tB: boolean, sA: number, sB: number, bias: Float32Array | null = null,
): void {
  if (b.dtype === 'bf16' && gemm === 'matmul') kernel('matmul')(a, b.bf16, c, batch, m, k, n, tA, tB, sA, sB, 0, bias);
  else kernel(gemm)(a, widenBf16(b).f32, c, batch, m, k, n, tA, tB, sA, sB, 0, bias);
}

// withCompute('bf16'): forward and backward GEMMs on bf16-rounded inputs (src/tensor/compute.ts).
function gemmName(p: ComputePrecision = computePrecision()): 'matmul' | 'matmulBf16' {
  return p === 'bf16' ? 'matmulBf16' : 'matmul';
}

/** One forward GEMM C = op(A)·op(B) as the kernel sees it, kept for its backward. */
interface GemmPlan {
  tA: boolean; tB: boolean;
  batch: number; m: number; k: number; n: number;
  sA: number; sB: number; // 0: the operand is one matrix shared by every batch item
  gemm: 'matmul' | 'matmulBf16';
  bgemm: 'matmul' | 'matmulBf16'; // the backward's (compute.ts backwardPrecision)
}

/** dA and dB of C = op(A)·op(B) from dC = g (null where the operand needs no gradient, or for dA
 *  when needA is false). */
function gemmGrads(p: GemmPlan, a: Tensor, bStored: Tensor, g: Tensor, needA = a.requiresGrad): [Tensor | null, Tensor | null] {
  const gemm = kernel(p.bgemm);
  const b = needA ? widenBf16(bStored) : bStored; // dA reads B (a bf16 B needs no dB)
  const { tA, tB, batch, m, k, n, sA, sB } = p;
  let ga: Tensor | null = null, gb: Tensor | null = null;
  if (needA) {
    ga = empty(a.shape);
    // dA = dC·op(B)ᵀ, or stored transposed: op(B)·dCᵀ.
    for (let i = 0; i < (sA ? 1 : batch); i++) {
      // A shared across the batch sums its items' gradients: the first overwrites (beta 0
      // never reads the fresh buffer), the rest accumulate.
      const bi = sA ? batch : 1, beta = i === 0 ? 0 : 1;
      const cOff = sA ? 0 : i * m * n, bOff = sA ? 0 : i * sB;
      const gSub = g.f32.subarray(cOff), bSub = b.f32.subarray(bOff);
      if (!tA) gemm(gSub, bSub, ga.f32, bi, m, n, k, false, !tB, m * n, sB, beta);
      else gemm(bSub, gSub, ga.f32, bi, k, n, m, tB, true, sB, m * n, beta);
    }
  }
  if (b.requiresGrad) {
    gb = empty(b.shape);
    for (let i = 0; i < (sB ? 1 : batch); i++) {
      const bi = sB ? batch : 1, beta = i === 0 ? 0 : 1;
      const cOff = sB ? 0 : i * m * n, aOff = sB ? 0 : i * sA;
      const gSub = g.f32.subarray(cOff), aSub = a.f32.subarray(aOff);
      if (!tB) gemm(aSub, gSub, gb.f32, bi, k, m, n, !tA, false, sA, m * n, beta);
      else gemm(gSub, aSub, gb.f32, bi, n, m, k, true, tA, m * n, sA, beta);
    }
  }
  return [ga, gb];
}

/** Fake quantization's promise about a tensor it made (src/quant/ops.ts): every value is an
 *  integer code times a scale, x̂ = q·s with |q| ≤ maxCode; `scales` holds one value (the whole
 *  tensor) or one per row (a weight's output channels). */
export interface IntegerGrid {
  scales: Float32Array;
  maxCode: number;
}
const grids = new WeakMap<Tensor, IntegerGrid>();

/** Records that t lies on grid g and returns t. matmulQ8 checks every value against the grid as
 *  it packs, so a tensor written after this only loses the integer forward. */
export function onIntegerGrid(t: Tensor, g: IntegerGrid): Tensor {
  grids.set(t, g);
  return t;
}

/** The grid recorded for t, if any. */
export function integerGrid(t: Tensor): IntegerGrid | undefined {
  return grids.get(t);
}

/** matmulQ8's scales for y = x·Wᵀ when it applies: an input on one ≤ 8-bit grid (|q| ≤ 127) and
 *  a weight on ≤ 7-bit grids (|q| ≤ 64) per tensor or per row, the integer forward allowed
 *  (compute.ts) and run natively with SIMD (the native backend registers it only then). */
function integerPlan(x: Tensor, weight: Tensor): { sa: number; sb: Float32Array } | null {
  if (!integerGemmEnabled() || kernelSource('matmulQ8') !== 'native') return null;
  const gx = grids.get(x), gw = grids.get(weight);
  if (!gx || !gw || gx.scales.length !== 1 || gx.maxCode > 127 || gw.maxCode > 64) return null;
  const [outF, inF] = weight.shape;
  if (inF > 131072 || (gw.scales.length !== 1 && gw.scales.length !== outF)) return null;
  return { sa: gx.scales[0], sb: gw.scales };
}

// Fake-quantized weights on no grid matmulQ8Grad takes (quantized per group, on a K-quant grid,
// or on more than 7 bits): the int8 input gradient rounds them to 7 bits per row first (below).
const offGrid = new WeakSet<Tensor>();

/** Records that t is a fake-quantized weight ŵ on none of the grids int8GradPlan takes, so the
 *  int8 input gradient may run on ŵ rounded to a 7-bit grid per row; returns t. */
export function offGridWeight(t: Tensor): Tensor {
  offGrid.add(t);
  return t;
}

/** matmulQ8Grad's plan for dX = dY·Ŵ of y = x·Wᵀ when it applies (the int8 input gradient on,
 *  compute.ts, run natively with SIMD): Ŵ's own steps where it is on a ≤ 7-bit grid per tensor or
 *  per row (its codes, exactly); 'regrid' for a fake-quantized Ŵ on another grid (offGridWeight),
 *  which linearGrads first rounds to sym 7-bit per row. */
function int8GradPlan(weight: Tensor): Float32Array | 'regrid' | null {
  if (!int8GradEnabled() || kernelSource('matmulQ8Grad') !== 'native' || weight.shape[0] > 131072) return null;
  const gw = grids.get(weight);
  if (gw && gw.maxCode <= 64 && (gw.scales.length === 1 || gw.scales.length === weight.shape[0])) return gw.scales;
  return offGrid.has(weight) || gw ? 'regrid' : null;
}

/** Ŵ (rows, cols) rounded to a symmetric 7-bit grid per row (the fakeQuant kernel: s_r =
 *  max_j |Ŵ_rj|/63, ŵ'_rj = fl(round(fl(Ŵ_rj/s_r))·s_r), codes in [−63, 63]), and its steps:
 *  |ŵ' − Ŵ| ≤ s_r·(½ + 64u) + u·|Ŵ| per element, u = 2^-24 (the quotient's and the product's
 *  roundings). */
function regrid7(weight: Tensor): { b: Float32Array; sb: Float32Array } {
  const [rows, cols] = weight.shape;
  const b = uninitF32(weight.size), sb = new Float32Array(rows);
  kernel('fakeQuant')(weight.f32, b, null, sb, null, null, rows, cols, QuantRule.sym, 7, cols);
  return { b, sb };
}

/** The grids of y = x·Wᵀ that Kernels.matmulOnGrid can take (|q| ≤ 256): W's per-tensor or
 *  per-row scales (sw: the forward, unless matmulQ8 runs it, and dX = dY·W), x's one scale (sx:
 *  dW = dYᵀ·x) — under 'fp32' only (bf16 GEMMs are cheaper still), where the native addon has
 *  the kernel (AMX) and grid GEMMs are allowed (compute.ts). Null when neither applies. */
function gridPlan(x: Tensor, weight: Tensor): { sx: Float32Array | null; sw: Float32Array | null } | null {
  if (computePrecision() !== 'fp32' || !gridGemmEnabled() || kernelSource('matmulOnGrid') !== 'native') return null;
  const gx = grids.get(x), gw = grids.get(weight);
  const sx = gx && gx.scales.length === 1 && gx.maxCode <= 256 ? gx.scales : null;
  const sw = gw && gw.maxCode <= 256 && (gw.scales.length === 1 || gw.scales.length === weight.shape[0]) ? gw.scales : null;
  return sx || sw ? { sx, sw } : null;
}

/** nn.Linear: x (..., in), weight (out, in), bias (out) → (..., out). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 2) throw new RangeError(`linear: weight must be (out, in), got ${fmt(weight.shape)}`);
  requireOperandB('linear', weight);
  const [outF, inF] = weight.shape;
  if (x.shape[x.ndim - 1] !== inF) {
    throw new RangeError(`linear: input ${fmt(x.shape)} has ${x.shape[x.ndim - 1]} features, weight ${fmt(weight.shape)} expects ${inF}`);
  }
  const lead = x.shape.slice(0, -1);
  const N = x.size / inF;
  const x2 = reshape(x, [N, inF]);
  const q8 = integerPlan(x, weight), onGrid = gridPlan(x, weight), q8Grad = int8GradPlan(weight);
  if (!bias && !q8 && !onGrid && !q8Grad) return reshape(matmul(x2, weight, { transB: true }), [...lead, outF]);
  requireF32('linear', x2, ...(bias ? [bias] : []));
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new RangeError(`linear: bias ${fmt(bias.shape)} does not match ${outF} outputs`);
  // y = x·Wᵀ + b as one GEMM whose first K slice adds b as it stores each tile (the kernel's
  // bias argument), so the bias costs no pass over y and no second buffer. On integer grids the
  // forward is matmulQ8 (its bias the same way), with only W on one matmulOnGrid (float32); the
  // backward is gridGrads or the float GEMMs, its dX matmulQ8Grad under withInt8Grad.
  const plan: GemmPlan = { tA: false, tB: true, batch: 1, m: N, k: inF, n: outF, sA: 0, sB: 0, gemm: gemmName(), bgemm: gemmName(backwardPrecision()) };
  // Both kernels check the grids as they pack: off them (a tensor changed since it was made), the
  // float GEMM.
  const y = gemmOutput([N, outF], (o) => {
    if (q8 && kernel('matmulQ8')(x2.f32, q8.sa, weight.f32, q8.sb, o.f32, N, inF, outF, bias?.f32 ?? null)) return;
    if (!q8 && onGrid?.sw && kernel('matmulOnGrid')(x2.f32, weight.f32, onGrid.sw, o.f32, N, inF, outF, false, true, bias?.f32 ?? null)) return;
    forwardGemm(plan.gemm, x2.f32, weight, o.f32, 1, N, inF, outF, false, true, 0, 0, bias?.f32 ?? null);
  });
  const out = record(y, 'linear', bias ? [x2, weight, bias] : [x2, weight], (g) => [
    ...linearGrads(plan, onGrid, q8Grad, x2, weight, g),
    ...(bias ? [bias.requiresGrad ? sumTo(g, [outF]) : null] : []),
  ]);
  return reshape(out, [...lead, outF]);
}

/** dx and dW of y = x·Wᵀ: dx = matmulQ8Grad(g, W) when int8 says so (int8GradPlan) and W is on
 *  that grid, otherwise as below; dW by gridGrads or gemmGrads. With 'regrid', dx is formed from
 *  ŵ' = regrid7(W): against dY·Ŵ its error adds Σ_p |dY_ip|·|ŵ'_pj − Ŵ_pj| to matmulQ8Grad's
 *  bound over ŵ' (kernels.ts), i.e. at most half a 7-bit step of Ŵ's row p per term. */
function linearGrads(
  plan: GemmPlan, onGrid: { sx: Float32Array | null; sw: Float32Array | null } | null, int8: Float32Array | 'regrid' | null,
  x: Tensor, weight: Tensor, g: Tensor,
): [Tensor | null, Tensor | null] {
  let gx: Tensor | null = null;
  if (int8 && x.requiresGrad) {
    const [outF, inF] = weight.shape;
    const { b, sb } = int8 === 'regrid' ? regrid7(weight) : { b: weight.f32, sb: int8 };
    gx = empty(x.shape);
    // Declined (Ŵ off its grid, or dY not finite): its buffer is given back, nothing else holds it.
    if (!kernel('matmulQ8Grad')(g.f32, b, sb, gx.f32, x.shape[0], outF, inF)) gx = (giveBack(gx.f32), null);
    if (b !== weight.f32) giveBack(b);
  }
  const needX = x.requiresGrad && !gx;
  const [gx2, gw] = onGrid ? gridGrads(onGrid, x, weight, g, needX) : gemmGrads(plan, x, weight, g, needX);
  return [gx ?? gx2, gw];
}

/** dx = g·W and dW = gᵀ·x of y = x·Wᵀ (x (N, in), W (out, in), g (N, out)) as gemmGrads forms them
 *  under 'fp32', each as matmulOnGrid where its right operand has a grid and is on it (the
 *  kernel checks every value: off it, the float32 GEMM). */
function gridGrads(
  p: { sx: Float32Array | null; sw: Float32Array | null }, x: Tensor, weight: Tensor, g: Tensor, needX = x.requiresGrad,
): [Tensor | null, Tensor | null] {
  const [outF, inF] = weight.shape, N = x.shape[0];
  const onGrid = kernel('matmulOnGrid'), gemm = kernel('matmul');
  let gx: Tensor | null = null, gw: Tensor | null = null;
  if (needX) {
    gx = empty(x.shape);
    if (!p.sw || !onGrid(g.f32, weight.f32, p.sw, gx.f32, N, outF, inF, false, false)) gemm(g.f32, weight.f32, gx.f32, 1, N, outF, inF, false, false, 0, 0, 0);
  }
  if (weight.requiresGrad) {
    gw = empty(weight.shape);
    if (!p.sx || !onGrid(g.f32, x.f32, p.sx, gw.f32, outF, N, inF, true, false)) gemm(g.f32, x.f32, gw.f32, 1, outF, N, inF, true, false, 0, 0, 0);
  }
  return [gx, gw];
}
