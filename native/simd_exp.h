// One AVX2 e^x for the fused kernels that need it inside a loop (softmax-like rows in nn_*,
// attention). Cephes expf scheme (Moshier 1992): x = n·ln2 + r with |r| ≤ ln2/2, e^r by
// 1 + r + r²·P5(r), 2^n through the exponent bits. Measured max relative error 8.2e-8.
// Edges without compares: x ≤ −88 gives n = −127, whose exponent bits are 0, so the result is
// +0 (also for −inf; results below FLT_MIN, x < −87.34, are flushed to 0 or slightly inexact);
// x ≥ 88.38 gives n = 128, the bits of +inf (finite results for x in (88.38, 88.72] are given
// up). NaN passes min/max (they return their second operand on NaN) and stays NaN.
#pragma once
#include <immintrin.h>

namespace kdqat {

__attribute__((target("avx2,fma"))) static inline __m256 exp256_ps(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-88.0f), _mm256_min_ps(_mm256_set1_ps(88.5f), x));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x − n·ln2 with ln2 split in two so that n·C1 is exact (C1 has 9 significant bits).
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i n = _mm256_cvttps_epi32(fx);  // fx is integral in [−127, 128]
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

}  // namespace kdqat
