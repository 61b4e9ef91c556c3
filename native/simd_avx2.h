// AVX2 pieces shared by the 'nn' vector type (nn_simd.h, Avx2) and the 'quant' one
// (quant_simd.h, QAvx2): tail masks, masked loads/stores and horizontal max/min. Plain AVX2
// (no FMA), so both targets can inline them.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace kdqat::avx2 {

#pragma GCC push_options
#pragma GCC target("avx2")

/** The first k of 8 lanes set (0 ≤ k ≤ 8). */
inline __m256i mask(int k) {
  alignas(32) static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                              0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tbl + 8 - k));
}

/** Loads the first k lanes (masked lanes never touch memory); the rest are `fill`. */
inline __m256 load_n(const float* p, int k, float fill) {
  if (k == 8) return _mm256_loadu_ps(p);
  __m256i m = mask(k);
  return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}

/** Stores the first k lanes. */
inline void store_n(float* p, int k, __m256 v) {
  if (k == 8) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, mask(k), v);
}

inline float hmax(__m256 a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmin(__m256 a) {
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  s = _mm_min_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#pragma GCC pop_options

}  // namespace kdqat::avx2
