// Kernel family 'kquant': llama.cpp K-quant fake quantization (fakeQuantGrid). The per-ISA bodies
// (kquant_impl.inc, compiled per instruction set in kquant_isa.cc) work on whole super-blocks of
// 256 on the calling thread; the Node-API wrapper (kquant.cc) checks arguments and splits the
// blocks over the thread pool.
#pragma once
#include <cstdint>
#include <cstring>

#include "quant_util.h"

namespace kdqat::kquant {

// The K-quant formats, in the order of src/quant/formats.ts FORMATS (and QuantRule q2_k … q6_k).
enum KFmt { kQ2_K = 0, kQ3_K = 1, kQ4_K = 2, kQ5_K = 3, kQ6_K = 4 };

struct KQuantOps {
  // ŵ of nb blocks of w (the fixed point of formats.ts gridQuantRef) into out; returns the first
  // block whose scale overflows fp16 (out then partly written), or −1.
  int64_t (*grid)(int fmt, const float* w, int64_t nb, float* out);
  // codes (nb·256), scales and mins (one per sub-block; mins null for Q3_K/Q6_K) of ŵ.
  void (*deploy)(int fmt, const float* y, int64_t nb, int32_t* codes, float* scales, float* mins);
};

const KQuantOps& kquant_ops();  // the table for cpu_isa()
const char* kquant_path();

// fp16 conversions as bits (ggml's, round to nearest even): one copy, quant_util.h.
using kdqat::quant::f16_to_f32;
using kdqat::quant::f32_to_f16;

}  // namespace kdqat::kquant
