// Fused attention, AVX2+FMA build of attention_impl.inc (chosen at run time by cpu_isa()).
#include "attention_kernels.h"

#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <limits>

namespace kdqat {
namespace attn {
namespace avx2 {

#define KT __attribute__((target("avx2,fma")))

struct Vec {
  __m256 v;
};
KT static inline Vec vload(const float* p) { return {_mm256_loadu_ps(p)}; }
KT static inline void vstore(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
KT static inline Vec vzero() { return {_mm256_setzero_ps()}; }
KT static inline Vec vset1(float x) { return {_mm256_set1_ps(x)}; }
KT static inline Vec vfma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
KT static inline Vec vadd(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
KT static inline Vec vsub(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
KT static inline Vec vmul(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
// max_ps returns its second operand when either is NaN: keep the data second so NaN propagates.
KT static inline Vec vmax(Vec acc, Vec x) { return {_mm256_max_ps(acc.v, x.v)}; }

// e^x, Cephes expf scheme: x = n·ln2 + r, |r| ≤ ln2/2, e^r by a degree-7 polynomial
// (rel. error ~1e-7), times 2^n via the exponent bits. Results below FLT_MIN (x < −87.33,
// including −∞) are flushed to 0; NaN stays NaN.
KT static inline Vec vexp(Vec a) {
  const __m256 x0 = a.v;
  __m256 x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), x0);
  x = _mm256_max_ps(_mm256_set1_ps(-87.3365447505531f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x − n·ln2 with ln2 split in two so n·C1 is exact.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  // 2^n for n in [−126, 128): n = 128 only for x ≈ 88.38, where e^x overflows anyway.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  const __m256 tiny = _mm256_cmp_ps(x0, _mm256_set1_ps(-87.3365447505531f), _CMP_LT_OQ);
  return {_mm256_andnot_ps(tiny, y)};
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
KT static inline void transpose8(const float* const* src, float* dst, int64_t ldd) {
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
