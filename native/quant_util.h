// Small helpers of the 'quant' wrappers: JavaScript-style number text for error messages (so
// native and reference messages are identical) and the fp16 round trip of ggml block scales.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace kdqat::quant {

// The contract's fixed-order sum: 16 double lanes, element j of a segment into lane j mod 16,
// lanes added in order at the end. Lanes start at +0, so no lane is ever −0.
struct Lanes16 {
  double l[16] = {0};
  double total() const {
    double s = 0;
    for (double v : l) s += v;
    return s;
  }
};

// A number as JavaScript prints it, for the cases messages need (integers, NaN, ±Infinity).
inline std::string js_num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// GGML_FP32_TO_FP16: binary32 → binary16 bits, round to nearest even (port of src/io/half.ts).
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

// GGML_FP16_TO_FP32: binary16 bits → binary32, exact.
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

// GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x)): the fp16 round trip of ggml block scales.
inline float fp16_round(float x) { return f16_to_f32(f32_to_f16(x)); }

}  // namespace kdqat::quant
