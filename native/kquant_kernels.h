// Kernel family 'kquant': llama.cpp K-quant fake quantization (fakeQuantGrid). The per-ISA bodies
// (kquant_impl.inc, compiled per instruction set in kquant_isa.cc) work on whole super-blocks of
// 256 on the calling thread; the Node-API wrapper (kquant.cc) checks arguments and splits the
// blocks over the thread pool.
#pragma once
#include <cstdint>
#include <cstring>

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

// GGML_FP32_TO_FP16 (round to nearest even; src/io/half.ts) and back, as bits.
inline uint16_t f32_to_f16(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  const uint32_t sign = (b >> 16) & 0x8000, mant = b & 0x7fffff;
  const int exp = (b >> 23) & 0xff;
  uint32_t h;
  if (exp == 0xff) h = mant == 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >> 13);
  else if (exp - 112 >= 0x1f) h = sign | 0x7c00;
  else if (exp - 112 >= 1) {
    h = (static_cast<uint32_t>(exp - 112) << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    h |= sign;
  } else {
    const int shift = 126 - exp;
    if (shift > 24 || exp == 0) h = sign;
    else {
      const uint32_t m = mant | 0x800000, half = 1u << (shift - 1);
      uint32_t q = m >> shift;
      const uint32_t rest = m & ((1u << shift) - 1);
      if (rest > half || (rest == half && (q & 1))) q++;
      h = sign | q;
    }
  }
  return static_cast<uint16_t>(h);
}
inline float f16_to_f32(uint16_t h) {
  const uint32_t s32 = (h & 0x8000u) << 16, e16 = (h >> 10) & 0x1f, m16 = h & 0x3ff;
  uint32_t out;
  if (e16 == 0x1f) out = s32 | 0x7f800000 | (m16 << 13);
  else if (e16 != 0) out = s32 | ((e16 + 112) << 23) | (m16 << 13);
  else if (m16 == 0) out = s32;
  else {
    const int k = __builtin_clz(m16) - 21;
    out = s32 | (static_cast<uint32_t>(113 - k) << 23) | (((m16 << k) & 0x3ff) << 13);
  }
  float y;
  std::memcpy(&y, &out, 4);
  return y;
}

}  // namespace kdqat::kquant
