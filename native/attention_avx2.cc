// Fused attention, AVX2+FMA build of attention_impl.inc (its table is chosen once in attention.cc).
#include "attention_kernels.h"
#include "simd.h"

#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <limits>

namespace kdqat {
namespace attn {
namespace avx2 {

#define KT __attribute__((target("avx2,fma")))

// The attention bodies' 8-lane vector, over the simd.h Avx2 traits (same operations, so the
// same bits as before the traits existed). hsum/hmax below keep this family's own order, which
// its portable build (attention_portable.cc) shares.
using A = simd::Avx2;
struct Vec {
  __m256 v;
};
KT static inline Vec vload(const float* p) { return {A::load(p)}; }
KT static inline void vstore(float* p, Vec a) { A::store(p, a.v); }
KT static inline Vec vzero() { return {A::zero()}; }
KT static inline Vec vset1(float x) { return {A::set1(x)}; }
KT static inline Vec vfma(Vec a, Vec b, Vec c) { return {A::madd(a.v, b.v, c.v)}; }
KT static inline Vec vadd(Vec a, Vec b) { return {A::add(a.v, b.v)}; }
KT static inline Vec vsub(Vec a, Vec b) { return {A::sub(a.v, b.v)}; }
KT static inline Vec vmul(Vec a, Vec b) { return {A::mul(a.v, b.v)}; }
// max_ps returns its second operand when either is NaN: keep the data second so NaN propagates.
KT static inline Vec vmax(Vec acc, Vec x) { return {A::max(acc.v, x.v)}; }
KT static inline Vec vexp(Vec a) { return {A::exp(a.v)}; }  // simd.h e^x, its error bound
// x with the lanes ≥ k (0 < k ≤ kW) set to −∞.
KT static inline Vec vtail(Vec x, int64_t k) {
  const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return {_mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), x.v, _mm256_castsi256_ps(keep))};
}

KT static inline float hsum(Vec a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a.v);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
KT static inline float hmax(Vec a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a.v);
  float m = t[0];
  for (int i = 1; i < 8; i++) m = (t[i] > m || t[i] != t[i]) ? t[i] : m;
  return m;
}

// dst[i·ldd + r] = src[r][i] for an 8×8 block (unpack / shuffle / 128-bit permute network).
KT static inline void transposeW(const float* const* src, float* dst, int64_t ldd) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src[i]);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

#include "attention_impl.inc"

#undef KT

}  // namespace avx2
}  // namespace attn
}  // namespace kdqat
