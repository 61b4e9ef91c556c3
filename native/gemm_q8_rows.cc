// matmulQ8's row functions (declared and described in gemm_q8_rows.h): quantizing a row of
// floats to the integer codes it lies on, and writing a tile of int32 sums out as floats.
#include "gemm_q8_rows.h"

#include <immintrin.h>
#include <cmath>
#include <cstdint>

namespace kdqat::q8 {

// q = rint(clamp(fl(x·inv), −lim, lim)): inv = fl(1/s); the product rounded to float32, clamped
// (a NaN reads as −lim: MAXPS's rule, kept by every path) and rounded to the nearest integer,
// ties to even. The scalar form rounds with 1.5·2^23 (exact for |t| ≤ 2^22; no fp-contract).
inline int8_t code(float x, float inv, float lim) {
  float t = x * inv;
  t = t > -lim ? t : -lim;
  t = t < lim ? t : lim;
  return static_cast<int8_t>((t + 12582912.f) - 12582912.f);
}
// The codes of x[i0, n) and whether each x is fl(q·s).
inline bool quantize_tail(const float* x, int64_t i0, int64_t n, float inv, float s, float lim, int8_t* q) {
  bool on = true;
  for (int64_t i = i0; i < n; i++) {
    q[i] = code(x[i], inv, lim);
    on &= static_cast<float>(q[i]) * s == x[i];
  }
  return on;
}
bool quantize_portable(const float* x, int64_t n, float inv, float s, float lim, int8_t* q) {
  return quantize_tail(x, 0, n, inv, s, lim, q);
}
// Eight codes as int32 lanes (VCVTPS2DQ rounds to nearest even: the default MXCSR); `off` gets
// the lanes whose x is not fl(q·s) (an unordered compare: NaN is off).
KDQAT_Q8_AVX2 inline __m256i codes8(const float* p, __m256 inv, __m256 s, __m256 lo, __m256 hi, __m256& off) {
  const __m256 x = _mm256_loadu_ps(p);
  const __m256i q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x, inv), lo), hi));
  off = _mm256_or_ps(off, _mm256_cmp_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), s), x, _CMP_NEQ_UQ));
  return q;
}
KDQAT_Q8_AVX2 bool quantize_avx2(const float* x, int64_t n, float inv, float s, float lim, int8_t* q) {
  const __m256 vi = _mm256_set1_ps(inv), vs = _mm256_set1_ps(s), hi = _mm256_set1_ps(lim), lo = _mm256_set1_ps(-lim);
  __m256 off = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // s32 → s16 → s8 (exact: |q| ≤ 127); VPACKSSDW works per 128-bit lane, VPERMQ restores order.
    const __m256i w = _mm256_permute4x64_epi64(
        _mm256_packs_epi32(codes8(x + i, vi, vs, lo, hi, off), codes8(x + i + 8, vi, vs, lo, hi, off)), 0xD8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i),
                     _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
  }
  const bool tail_on = quantize_tail(x, i, n, inv, s, lim, q);  // every code written, on the grid or not
  return _mm256_movemask_ps(off) == 0 && tail_on;
}
KDQAT_Q8_VNNI bool quantize_avx512(const float* x, int64_t n, float inv, float s, float lim, int8_t* q) {
  const __m512 vi = _mm512_set1_ps(inv), vs = _mm512_set1_ps(s), hi = _mm512_set1_ps(lim), lo = _mm512_set1_ps(-lim);
  __mmask16 off = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x16 = _mm512_loadu_ps(x + i);
    const __m512i c = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x16, vi), lo), hi));
    off |= _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_cvtepi32_ps(c), vs), x16, _CMP_NEQ_UQ);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(c));
  }
  const bool tail_on = quantize_tail(x, i, n, inv, s, lim, q);
  return off == 0 && tail_on;
}

// ---- a row's largest |a·fold| (matmulQ8Grad's row steps) ----------------------------------------
bool row_max_portable(const float* a, const float* fold, int64_t n, float* r) {
  float m = 0;
  bool finite = true;
  for (int64_t i = 0; i < n; i++) {
    const float v = std::fabs(a[i] * fold[i]);
    finite &= v <= 3.4028234663852886e38f;  // false for Inf and NaN
    m = v > m ? v : m;
  }
  *r = m;
  return finite;
}
KDQAT_Q8_AVX2 bool row_max_avx2(const float* a, const float* fold, int64_t n, float* r) {
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), big = _mm256_set1_ps(3.4028234663852886e38f);
  __m256 m = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(fold + i)), abs);
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, big, _CMP_LE_OQ));
    m = _mm256_max_ps(m, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float tail = 0;
  const bool tail_ok = row_max_portable(a + i, fold + i, n - i, &tail);
  for (float x : lanes) tail = x > tail ? x : tail;
  *r = tail;
  return _mm256_movemask_ps(ok) == 0xff && tail_ok;
}
KDQAT_Q8_VNNI bool row_max_avx512(const float* a, const float* fold, int64_t n, float* r) {
  const __m512 big = _mm512_set1_ps(3.4028234663852886e38f);
  __m512 m = _mm512_setzero_ps();
  __mmask16 ok = 0xffff;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(fold + i)));
    ok &= _mm512_cmp_ps_mask(v, big, _CMP_LE_OQ);
    m = _mm512_max_ps(m, v);
  }
  float tail = 0;
  const bool tail_ok = row_max_portable(a + i, fold + i, n - i, &tail);
  const float head = _mm512_reduce_max_ps(m);
  *r = head > tail ? head : tail;
  return ok == 0xffff && tail_ok;
}

// ---- output (Q8Kernel::store): int32 → float, exact operations, so every path's bits agree ----
void store_portable(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs, const float* sc,
                    const float* bias, const float* rs, float* y, int64_t ldy) {
  for (int r = 0; r < mr; r++, y += ldy, acc += acc_stride)
    for (int j = 0; j < nr; j++) {
      const float v = static_cast<float>(acc[j] - cs[j]) * sc[j];
      y[j] = bias ? v + bias[j] : rs ? v * rs[r] : v;
    }
}
// VCVTDQ2PS rounds as the scalar conversion does (to nearest even: the default MXCSR); a multiply
// and an add, never fused. Masked lanes past nr are neither read nor written.
KDQAT_Q8_VNNI void store_avx512(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs,
                                const float* sc, const float* bias, const float* rs, float* y, int64_t ldy) {
  for (int h = 0; h < nr; h += 16) {
    const __mmask16 m = nr - h >= 16 ? 0xffff : static_cast<__mmask16>((1u << (nr - h)) - 1);
    const __m512i c = _mm512_maskz_loadu_epi32(m, cs + h);
    const __m512 s16 = _mm512_maskz_loadu_ps(m, sc + h);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + h) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
      const __m512i a = _mm512_maskz_loadu_epi32(m, acc + r * acc_stride + h);
      __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, c)), s16);
      if (bias) v = _mm512_add_ps(v, b);
      else if (rs) v = _mm512_mul_ps(v, _mm512_set1_ps(rs[r]));
      _mm512_mask_storeu_ps(y + r * ldy + h, m, v);
    }
  }
}
KDQAT_Q8_AVX2 void store_avx2(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs,
                              const float* sc, const float* bias, const float* rs, float* y, int64_t ldy) {
  int h = 0;
  for (; h + 8 <= nr; h += 8) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cs + h));
    const __m256 s8 = _mm256_loadu_ps(sc + h);
    const __m256 b = bias ? _mm256_loadu_ps(bias + h) : _mm256_setzero_ps();
    for (int r = 0; r < mr; r++) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + r * acc_stride + h));
      __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(a, c)), s8);
      if (bias) v = _mm256_add_ps(v, b);
      else if (rs) v = _mm256_mul_ps(v, _mm256_set1_ps(rs[r]));
      _mm256_storeu_ps(y + r * ldy + h, v);
    }
  }
  if (h < nr) store_portable(acc + h, mr, nr - h, acc_stride, cs + h, sc + h, bias ? bias + h : nullptr, rs, y + h, ldy);
}

}  // namespace kdqat::q8
