// What the bf16 GEMMs share (gemm_bf16.cc: matmulBf16, gemm_grid.cc: matmulOnGrid): the target
// attribute, float32 → bf16 pair words with VCVTNE2PS2BF16, and the update of C from a tile of
// float32 sums.
#pragma once
#include <immintrin.h>
#include <cstdint>

#define KDQAT_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma")))

namespace kdqat {
namespace bf16 {

// The (lo_j, hi_j) pair words of VCVTNE2PS2BF16(hi, lo), whose bf16 of lo are words 0..15 and of
// hi words 16..31: word 2j takes lo_j, word 2j+1 hi_j.
KDQAT_BF16 inline __m512i interleave_pairs(__m512 lo, __m512 hi) {
  const __m512i b = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, b);
}

// 32 contiguous floats → their 16 pair words in order, in one VCVTNE2PS2BF16.
KDQAT_BF16 inline void convert32(const float* src, uint32_t* w) {
  _mm512_store_si512(w, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + 16),
                                                                      _mm512_loadu_ps(src))));
}

// C(mr, nr) = acc + beta·C for acc with row stride `stride`, one fused multiply-add per element
// (beta = 0 never reads C), the same operation for full and edge tiles (masked), so the rounding
// does not depend on tiling. With a bias (nr floats; beta 0): acc + bias_j, the rounding of beta 1
// on a C holding the bias.
KDQAT_BF16 inline void update_c(const float* acc, int stride, float* c, int64_t ldc, int mr, int nr,
                                float beta, const float* bias) {
  const __m512 vb = _mm512_set1_ps(beta);
  for (int h = 0; h < nr; h += 16) {
    const __mmask16 m = nr - h >= 16 ? 0xffff : (1u << (nr - h)) - 1;
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + h) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
      const __m512 x = _mm512_load_ps(acc + r * stride + h);
      float* cp = c + r * ldc + h;
      _mm512_mask_storeu_ps(cp, m, bias ? _mm512_add_ps(x, bv)
                                   : beta == 0.f ? x : _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, cp), x));
    }
  }
}

}  // namespace bf16
}  // namespace kdqat
