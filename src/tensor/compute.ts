// Compute precision of the GEMMs (scoped, like noGrad): 'fp32' runs the float32 matmul kernel,
// 'bf16' runs matmulBf16 (inputs rounded to bf16, float32 accumulation; src/tensor/kernels.ts),
// which needs a CPU with AVX512_BF16 (bf16Unavailable() in src/backend says why not). Weights,
// activations between ops, gradients and optimizer state stay float32: only the GEMM inputs
// are rounded. A matmul's backward GEMMs use the precision in force at its forward, so a
// student forward run under withCompute('bf16') is bf16 in both directions.
//
// The fused attention kernel (ops/attention.ts) keeps its internal products in float32.

export type ComputePrecision = 'fp32' | 'bf16';

let current: ComputePrecision = 'fp32';

/** Runs fn with the matmul op's GEMMs in `precision`, restoring the previous one after. */
export function withCompute<T>(precision: ComputePrecision, fn: () => T): T {
  const prev = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

export function computePrecision(): ComputePrecision {
  return current;
}
