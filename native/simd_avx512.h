// The Avx512 instance of the vector traits: 16 lanes, FMA, mask registers (see simd.h for the
// interface it shares with Portable and Avx2, the fixed reduction order and the e^x constants).
// Include simd.h, not this.
#pragma once
#include "simd.h"
#include "simd_avx2.h"

namespace kdqat::simd {

// ---- Avx512: 16 lanes, FMA, mask registers (F/DQ/BW/VL) ---------------------------------------
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")

struct Avx512 {
  static constexpr int W = 16;
  using T = __m512;
  using M = __mmask16;
  struct D {
    __m512d lo, hi;
  };

  static KDQAT_INLINE __mmask16 mask(int k) {  // the first k of 16 lanes (0 ≤ k ≤ 16)
    return static_cast<__mmask16>((1u << k) - 1u);
  }
  static KDQAT_INLINE T zero() { return _mm512_setzero_ps(); }
  static KDQAT_INLINE T set1(float s) { return _mm512_set1_ps(s); }
  static KDQAT_INLINE T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static KDQAT_INLINE T load(const float* p) { return _mm512_loadu_ps(p); }
  static KDQAT_INLINE T load_bf16(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static KDQAT_INLINE T loadu(const float* p) { return _mm512_loadu_ps(p); }
  static KDQAT_INLINE void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  static KDQAT_INLINE T load_n(const float* p, int k, float fill) {
    if (k == W) return _mm512_loadu_ps(p);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask(k), p);
  }
  static KDQAT_INLINE void store_n(float* p, int k, T v) {
    if (k == W) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, mask(k), v);
  }
  static KDQAT_INLINE void store_i32_n(int32_t* p, int k, T v) {
    _mm512_mask_storeu_epi32(p, mask(k), _mm512_cvttps_epi32(v));
  }
  static KDQAT_INLINE void to_f32x(T v, float* dst) { _mm512_storeu_ps(dst, v); }
  static KDQAT_INLINE T keep(T v, int k) { return k == W ? v : _mm512_maskz_mov_ps(mask(k), v); }
  static KDQAT_INLINE T add(T a, T b) { return _mm512_add_ps(a, b); }
  static KDQAT_INLINE T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static KDQAT_INLINE T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static KDQAT_INLINE T div(T a, T b) { return _mm512_div_ps(a, b); }
  static KDQAT_INLINE T madd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static KDQAT_INLINE T min(T a, T b) { return _mm512_min_ps(a, b); }
  static KDQAT_INLINE T max(T a, T b) { return _mm512_max_ps(a, b); }
  static KDQAT_INLINE T abs(T a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.f), a); }
  static KDQAT_INLINE T sqrt(T a) { return _mm512_sqrt_ps(a); }
  static KDQAT_INLINE T trunc(T a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T exp(T x) {
    KDQAT_EXP_CONSTANTS
    x = _mm512_max_ps(set1(kLo), _mm512_min_ps(set1(kHi), x));
    const T fx = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(kLog2e)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm512_fnmadd_ps(fx, set1(kC1), x);
    r = _mm512_fnmadd_ps(fx, set1(kC2), r);
    T p = set1(kP0);
    p = madd(p, r, set1(kP1));
    p = madd(p, r, set1(kP2));
    p = madd(p, r, set1(kP3));
    p = madd(p, r, set1(kP4));
    p = madd(p, r, set1(kP5));
    T y = madd(p, mul(r, r), r);
    y = add(y, set1(1.0f));
    const __m512i n = _mm512_cvttps_epi32(fx);
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
    return mul(y, _mm512_castsi512_ps(bits));
  }
  static KDQAT_INLINE T fnmadd(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }
  static KDQAT_INLINE T rint(T a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T floor(T a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T band(T a, T b) { return _mm512_and_ps(a, b); }
  static KDQAT_INLINE T bor(T a, T b) { return _mm512_or_ps(a, b); }
  static KDQAT_INLINE T bxor(T a, T b) { return _mm512_xor_ps(a, b); }
  static KDQAT_INLINE T set1_bits(uint32_t u) {
    return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int32_t>(u)));
  }
  static KDQAT_INLINE T neg(T a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.f)); }
  static KDQAT_INLINE M eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static KDQAT_INLINE M isnan(T a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static KDQAT_INLINE T pow2n(T n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static KDQAT_INLINE T exponent(T x) {
    const __m512i b = _mm512_srli_epi32(_mm512_castps_si512(x), 23);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(b, _mm512_set1_epi32(127)));
  }
  static KDQAT_INLINE T mant1(T x) {
    return _mm512_or_ps(_mm512_and_ps(x, set1_bits(0x007fffffu)), set1_bits(0x3f800000u));
  }
  static KDQAT_INLINE D dfrom(T x) {
    return {_mm512_cvtps_pd(_mm512_castps512_ps256(x)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1))};
  }
  static KDQAT_INLINE T dround(D d) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(d.lo)), _mm512_cvtpd_ps(d.hi), 1);
  }
  static KDQAT_INLINE D dset1(double s) { return {_mm512_set1_pd(s), _mm512_set1_pd(s)}; }
  static KDQAT_INLINE D dsub(D a, D b) { return {_mm512_sub_pd(a.lo, b.lo), _mm512_sub_pd(a.hi, b.hi)}; }
  static KDQAT_INLINE D dmul(D a, D b) { return {_mm512_mul_pd(a.lo, b.lo), _mm512_mul_pd(a.hi, b.hi)}; }
  static KDQAT_INLINE D dmadd(D a, D b, D c) {
    return {_mm512_fmadd_pd(a.lo, b.lo, c.lo), _mm512_fmadd_pd(a.hi, b.hi, c.hi)};
  }
  // Halving tree: lanes 0..7 + 8..15, then the Avx2 tree.
  static KDQAT_INLINE __m256 lo(T a) { return _mm512_castps512_ps256(a); }
  static KDQAT_INLINE __m256 hi(T a) { return _mm512_extractf32x8_ps(a, 1); }
  static KDQAT_INLINE float hsum(T a) { return Avx2::hsum(_mm256_add_ps(lo(a), hi(a))); }
  static KDQAT_INLINE float hmax(T a) { return Avx2::hmax(_mm256_max_ps(lo(a), hi(a))); }
  static KDQAT_INLINE float hmin(T a) { return Avx2::hmin(_mm256_min_ps(lo(a), hi(a))); }

  static KDQAT_INLINE M gt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static KDQAT_INLINE M ge(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static KDQAT_INLINE M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static KDQAT_INLINE M le(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static KDQAT_INLINE M not_finite(T a) {
    return _mm512_cmp_ps_mask(abs(a), set1(kFltMax), _CMP_NLE_UQ);
  }
  static KDQAT_INLINE M mfalse() { return 0; }
  static KDQAT_INLINE M mand(M a, M b) { return a & b; }
  static KDQAT_INLINE M mor(M a, M b) { return a | b; }
  static KDQAT_INLINE T select(M m, T yes, T no) { return _mm512_mask_blend_ps(m, no, yes); }
  static KDQAT_INLINE bool any(M m) { return m != 0; }
  static KDQAT_INLINE int count(M m) { return __builtin_popcount(static_cast<unsigned>(m)); }

  static KDQAT_INLINE D dzero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  static KDQAT_INLINE void dstore(double* p, D d) {
    _mm512_storeu_pd(p, d.lo);
    _mm512_storeu_pd(p + 8, d.hi);
  }
  static KDQAT_INLINE D dadd(D a, D b) {
    return {_mm512_add_pd(a.lo, b.lo), _mm512_add_pd(a.hi, b.hi)};
  }
  static KDQAT_INLINE D dsq(D acc, T x) {
    const __m512d l = _mm512_cvtps_pd(lo(x)), h = _mm512_cvtps_pd(hi(x));
    return {_mm512_fmadd_pd(l, l, acc.lo), _mm512_fmadd_pd(h, h, acc.hi)};
  }
  static KDQAT_INLINE D dsqdiff(D acc, T a, T b) {
    const __m512d l = _mm512_sub_pd(_mm512_cvtps_pd(lo(a)), _mm512_cvtps_pd(lo(b)));
    const __m512d h = _mm512_sub_pd(_mm512_cvtps_pd(hi(a)), _mm512_cvtps_pd(hi(b)));
    return {_mm512_fmadd_pd(l, l, acc.lo), _mm512_fmadd_pd(h, h, acc.hi)};
  }
  // lo + hi (16 lanes → 8), 8 → 4, then the Avx2 tree.
  static KDQAT_INLINE double dhsum(D a) {
    const __m512d s = _mm512_add_pd(a.lo, a.hi);
    const __m256d q = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd(q, 1));
    t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    return _mm_cvtsd_f64(t);
  }

  static KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
  // 16×16 in registers: interleave row pairs, then quads (both within 128-bit lanes), then
  // swap 128-bit lanes twice (the same four stages as Avx2::transpose, one wider).
  static KDQAT_INLINE void transpose(T* r) {
    T t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
      r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
      r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
      r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    // Now lane l of r[4i + j] holds column 4l + j of rows 4i..4i+3.
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      const int a = (i / 4) * 8 + i % 4;
      t[a] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0x88);
      t[a + 4] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0xDD);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
      r[j + 8] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
  }
};

#pragma GCC pop_options

}  // namespace kdqat::simd
