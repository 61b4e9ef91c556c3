// Argument checking shared by the GEMM entry points matmul (gemm.cc) and matmulBf16
// (gemm_bf16.cc): both take (a, b, c, batch, m, k, n, transA, transB, strideA, strideB, beta[,
// bias]) with the contract of Kernels.matmul (src/tensor/kernels.ts).
#pragma once
#include "common.h"
#include "gemm.h"

namespace kdqat {

struct GemmArgs {
  const float* a;
  BOperand b;  // float32, or (where the entry point takes it) bf16 bits
  float* c;
  int64_t batch, m, k, n, stride_a, stride_b;
  bool ta, tb;
  float beta;
  const float* bias;  // n floats, or nullptr; only with beta 0
  bool empty;  // batch, m or n is 0: nothing to do (the arrays were not required to exist)
};

// Checks types, sizes (m, k, n below 2^31) and that every array is long enough (args.h); throws a
// TypeError/RangeError whose message starts with `fn`. bf16_b: b may also be a Uint16Array of
// bf16 bits (matmul; matmulBf16 takes float32 only).
GemmArgs gemm_args(const Napi::CallbackInfo& info, const char* fn, bool bf16_b = false);

}  // namespace kdqat
