// Compute precision of the GEMMs (scoped, like noGrad): 'fp32' runs the float32 matmul kernel,
// 'bf16' runs matmulBf16 (inputs rounded to bf16, float32 accumulation; src/tensor/kernels.ts),
// which needs a CPU with AVX512_BF16 (bf16Unavailable() in src/backend says why not). Weights,
// activations between ops, gradients and optimizer state stay float32: only the GEMM inputs
// are rounded. A matmul's backward GEMMs use the precision in force at its forward, so a
// student forward run under withCompute('bf16') is bf16 in both directions.
//
// The fused attention kernel (ops/attention.ts) keeps its internal products in float32.
//
// A decoder's LM head (the vocabulary projection: its logits, or the fused logits KL, forward
// and backward; models/architecture.ts lazyLogits) runs in the scope's head precision, which is
// the GEMM precision unless given, and may differ between its forward (the logits) and its
// backward (∂x, ∂W): withCompute('bf16', f, { head: { forward: 'fp32', backward: 'bf16' } }) is
// a bf16 body whose head computes its logits in float32 (`kdqat qat --bf16 layers`).

export type ComputePrecision = 'fp32' | 'bf16';
/** An LM head's GEMM precisions: its forward (the logits) and its backward (∂x and ∂W). */
export interface HeadPrecision {
  forward: ComputePrecision;
  backward: ComputePrecision;
}
const both = (p: ComputePrecision): HeadPrecision => ({ forward: p, backward: p });

/** An on/off setting scoped like noGrad: `with(on, fn)` runs fn under it and restores it after. */
function scopedFlag(initial: boolean): { get(): boolean; with<T>(on: boolean, fn: () => T): T } {
  let value = initial;
  return {
    get: () => value,
    with<T>(on: boolean, fn: () => T): T {
      const prev = value;
      value = on;
      try {
        return fn();
      } finally {
        value = prev;
      }
    },
  };
}

// Integer GEMMs: a Linear whose input and weight fake quantization put on integer grids (8-bit
// activations × TWN or ≤ 7-bit sym weights, per tensor or per row; ops/matmul.ts IntegerGrid)
// runs its forward as Kernels.matmulQ8 where the native addon has a SIMD path for it: exact
// integer sums, so the codes' exact product times the scales to within 3 float32 roundings (the
// float32 GEMM's summation error grows with k), whatever the precision in force. On by default;
// withIntegerGemm(false, f) turns it off.
const integerGemm = scopedFlag(true);
/** Runs fn with Linear's integer forward allowed (on) or not, restoring the setting after. */
export const withIntegerGemm = integerGemm.with;
export const integerGemmEnabled = integerGemm.get;

// Grid GEMMs: under 'fp32', a Linear's GEMMs with one operand on such a grid — the forward
// y = x·Ŵᵀ (when the integer forward does not apply: a float input) and dX = dY·Ŵ, with Ŵ TWN or
// sym ≤ 8 bits per tensor or row, and dW = dYᵀ·x̂ with x̂ the 8-bit input — run as
// Kernels.matmulOnGrid where the native addon has it (AMX): float32 accuracy from bf16 tiles
// (src/tensor/kernels.ts states the bound). Otherwise, and under 'bf16', the usual GEMMs. On by
// default; withGridGemm(false, f) turns it off.
const gridGemm = scopedFlag(true);
/** Runs fn with Linear's grid GEMMs allowed (on) or not, restoring the setting after. */
export const withGridGemm = gridGemm.with;
export const gridGemmEnabled = gridGemm.get;

// Int8 input gradients: a Linear whose weight fake quantization put on an integer grid (TWN or
// sym ≤ 7 bits, per tensor or per row) computes dX = dY·Ŵ as Kernels.matmulQ8Grad, dY rounded to
// 8 bits per row: an approximation (the kernel's contract bounds it; Banner et al. 2018 propagate
// errors at 8 bits), so off by default: withInt8Grad(true, f) turns it on for the Linears recorded
// in f (`kdqat qat --int8-grad`). Where matmulQ8 has no SIMD path (the kernel is then not
// registered) the float32 GEMM runs as before.
const int8Grad = scopedFlag(false);
/** Runs fn with Linear's int8 input gradient on or off, restoring the setting after. */
export const withInt8Grad = int8Grad.with;
export const int8GradEnabled = int8Grad.get;

let current: ComputePrecision = 'fp32';
let currentBackward: ComputePrecision | null = null;
let currentHead: HeadPrecision = both('fp32');

/** Runs fn with the matmul op's GEMMs in `precision` (their backward GEMMs in `o.backward`,
 *  default `precision`) and an LM head's in `o.head` (default `precision` both ways), restoring
 *  the previous ones after. */
export function withCompute<T>(
  precision: ComputePrecision, fn: () => T, o: { head?: ComputePrecision | HeadPrecision; backward?: ComputePrecision } = {},
): T {
  const prev = current, prevBackward = currentBackward, prevHead = currentHead;
  current = precision;
  currentBackward = o.backward ?? null;
  currentHead = o.head === undefined ? both(precision) : typeof o.head === 'string' ? both(o.head) : { ...o.head };
  try {
    return fn();
  } finally {
    current = prev;
    currentBackward = prevBackward;
    currentHead = prevHead;
  }
}

export function computePrecision(): ComputePrecision {
  return current;
}

/** The precision of the backward GEMMs of a matmul recorded now. */
export function backwardPrecision(): ComputePrecision {
  return currentBackward ?? current;
}

/** The precisions an LM head created now computes in (lazyLogits records them on the head). */
export function headPrecision(): HeadPrecision {
  return { ...currentHead };
}

/** Every setting of this file as one value, so that a forward run again later (recompute.ts)
 *  runs under the settings of its first run. */
export interface ComputeScope {
  precision: ComputePrecision;
  backward: ComputePrecision | null;
  head: HeadPrecision;
  integerGemm: boolean;
  gridGemm: boolean;
  int8Grad: boolean;
}

export function computeScope(): ComputeScope {
  return { precision: current, backward: currentBackward, head: { ...currentHead }, integerGemm: integerGemm.get(), gridGemm: gridGemm.get(), int8Grad: int8Grad.get() };
}

/** Runs fn under the settings s (computeScope()), restoring the present ones after. */
export function withComputeScope<T>(s: ComputeScope, fn: () => T): T {
  return withIntegerGemm(s.integerGemm, () => withGridGemm(s.gridGemm, () => withInt8Grad(s.int8Grad,
    () => withCompute(s.precision, fn, { head: s.head, backward: s.backward ?? undefined }))));
}
