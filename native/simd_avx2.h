// The Avx2 instance of the vector traits (see simd.h for the interface it shares with Portable
// and Avx512, the fixed reduction order and the e^x constants). Include simd.h, not this.
#pragma once
#include "simd.h"

namespace kdqat::simd {

// ---- Avx2: 8 lanes, FMA ------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx2,fma")

struct Avx2 {
  static constexpr int W = 8;
  using T = __m256;
  using M = __m256;  // lane masks: all-ones / zero lanes
  struct D {
    __m256d lo, hi;
  };

  // The first k of 8 lanes set (0 ≤ k ≤ 8).
  static KDQAT_INLINE __m256i mask(int k) {
    alignas(32) static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tbl + 8 - k));
  }
  static KDQAT_INLINE T zero() { return _mm256_setzero_ps(); }
  static KDQAT_INLINE T set1(float s) { return _mm256_set1_ps(s); }
  static KDQAT_INLINE T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static KDQAT_INLINE T load(const float* p) { return _mm256_loadu_ps(p); }
  static KDQAT_INLINE T load_bf16(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static KDQAT_INLINE T loadu(const float* p) { return _mm256_loadu_ps(p); }
  static KDQAT_INLINE void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  static KDQAT_INLINE T load_n(const float* p, int k, float fill) {
    if (k == W) return _mm256_loadu_ps(p);
    const __m256i m = mask(k);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m),
                            _mm256_castsi256_ps(m));
  }
  static KDQAT_INLINE void store_n(float* p, int k, T v) {
    if (k == W) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask(k), v);
  }
  static KDQAT_INLINE void store_i32_n(int32_t* p, int k, T v) {
    const __m256i q = _mm256_cvttps_epi32(v);
    if (k == W) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), q);
    else _mm256_maskstore_epi32(p, mask(k), q);
  }
  static KDQAT_INLINE void to_f32x(T v, float* dst) { _mm256_storeu_ps(dst, v); }
  static KDQAT_INLINE T keep(T v, int k) {
    return k == W ? v : _mm256_and_ps(v, _mm256_castsi256_ps(mask(k)));
  }
  static KDQAT_INLINE T add(T a, T b) { return _mm256_add_ps(a, b); }
  static KDQAT_INLINE T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static KDQAT_INLINE T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static KDQAT_INLINE T div(T a, T b) { return _mm256_div_ps(a, b); }
  static KDQAT_INLINE T madd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static KDQAT_INLINE T min(T a, T b) { return _mm256_min_ps(a, b); }
  static KDQAT_INLINE T max(T a, T b) { return _mm256_max_ps(a, b); }
  static KDQAT_INLINE T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static KDQAT_INLINE T sqrt(T a) { return _mm256_sqrt_ps(a); }
  static KDQAT_INLINE T trunc(T a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T exp(T x) {
    KDQAT_EXP_CONSTANTS
    x = _mm256_max_ps(set1(kLo), _mm256_min_ps(set1(kHi), x));
    const T fx = _mm256_round_ps(_mm256_mul_ps(x, set1(kLog2e)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x − n·ln2 with ln2 split in two so that n·C1 is exact (C1 has 9 significant bits).
    T r = _mm256_fnmadd_ps(fx, set1(kC1), x);
    r = _mm256_fnmadd_ps(fx, set1(kC2), r);
    T p = set1(kP0);
    p = madd(p, r, set1(kP1));
    p = madd(p, r, set1(kP2));
    p = madd(p, r, set1(kP3));
    p = madd(p, r, set1(kP4));
    p = madd(p, r, set1(kP5));
    T y = madd(p, mul(r, r), r);
    y = add(y, set1(1.0f));
    const __m256i n = _mm256_cvttps_epi32(fx);  // fx is integral in [−127, 128]
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return mul(y, _mm256_castsi256_ps(bits));
  }
  static KDQAT_INLINE T fnmadd(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static KDQAT_INLINE T rint(T a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T floor(T a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }
  static KDQAT_INLINE T band(T a, T b) { return _mm256_and_ps(a, b); }
  static KDQAT_INLINE T bor(T a, T b) { return _mm256_or_ps(a, b); }
  static KDQAT_INLINE T bxor(T a, T b) { return _mm256_xor_ps(a, b); }
  static KDQAT_INLINE T set1_bits(uint32_t u) {
    return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(u)));
  }
  static KDQAT_INLINE T neg(T a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.f)); }
  static KDQAT_INLINE M eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static KDQAT_INLINE M isnan(T a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static KDQAT_INLINE T pow2n(T n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static KDQAT_INLINE T exponent(T x) {
    const __m256i b = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(b, _mm256_set1_epi32(127)));
  }
  static KDQAT_INLINE T mant1(T x) {
    return _mm256_or_ps(_mm256_and_ps(x, set1_bits(0x007fffffu)), set1_bits(0x3f800000u));
  }
  static KDQAT_INLINE D dfrom(T x) {
    return {_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))};
  }
  static KDQAT_INLINE T dround(D d) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(d.lo)), _mm256_cvtpd_ps(d.hi), 1);
  }
  static KDQAT_INLINE D dset1(double s) { return {_mm256_set1_pd(s), _mm256_set1_pd(s)}; }
  static KDQAT_INLINE D dsub(D a, D b) { return {_mm256_sub_pd(a.lo, b.lo), _mm256_sub_pd(a.hi, b.hi)}; }
  static KDQAT_INLINE D dmul(D a, D b) { return {_mm256_mul_pd(a.lo, b.lo), _mm256_mul_pd(a.hi, b.hi)}; }
  static KDQAT_INLINE D dmadd(D a, D b, D c) {
    return {_mm256_fmadd_pd(a.lo, b.lo, c.lo), _mm256_fmadd_pd(a.hi, b.hi, c.hi)};
  }
  // Halving tree: (lanes 0..3 + 4..7), then (0,1 + 2,3), then 0 + 1.
  static KDQAT_INLINE float hsum(T a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static KDQAT_INLINE float hmax(T a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static KDQAT_INLINE float hmin(T a) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static KDQAT_INLINE M gt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static KDQAT_INLINE M ge(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static KDQAT_INLINE M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static KDQAT_INLINE M le(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static KDQAT_INLINE M not_finite(T a) {
    return _mm256_cmp_ps(abs(a), set1(kFltMax), _CMP_NLE_UQ);
  }
  static KDQAT_INLINE M mfalse() { return _mm256_setzero_ps(); }
  static KDQAT_INLINE M mand(M a, M b) { return _mm256_and_ps(a, b); }
  static KDQAT_INLINE M mor(M a, M b) { return _mm256_or_ps(a, b); }
  static KDQAT_INLINE T select(M m, T yes, T no) { return _mm256_blendv_ps(no, yes, m); }
  static KDQAT_INLINE bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static KDQAT_INLINE int count(M m) { return __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(m))); }

  static KDQAT_INLINE D dzero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static KDQAT_INLINE void dstore(double* p, D d) {
    _mm256_storeu_pd(p, d.lo);
    _mm256_storeu_pd(p + 4, d.hi);
  }
  static KDQAT_INLINE D dadd(D a, D b) {
    return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)};
  }
  static KDQAT_INLINE D dsq(D acc, T x) {
    const __m256d l = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    const __m256d h = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    return {_mm256_fmadd_pd(l, l, acc.lo), _mm256_fmadd_pd(h, h, acc.hi)};
  }
  static KDQAT_INLINE D dsqdiff(D acc, T a, T b) {
    const __m256d l = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                                    _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
    const __m256d h = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)),
                                    _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    return {_mm256_fmadd_pd(l, l, acc.lo), _mm256_fmadd_pd(h, h, acc.hi)};
  }
  // lo + hi (8 lanes → 4), then the halving tree.
  static KDQAT_INLINE double dhsum(D a) {
    const __m256d s = _mm256_add_pd(a.lo, a.hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    return _mm_cvtsd_f64(t);
  }

  static KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
  // 8×8 transpose in registers: unpack pairs, shuffle quads, swap 128-bit halves.
  static KDQAT_INLINE void transpose(T* r) {
    const T t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const T t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const T t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const T t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const T s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const T s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const T s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const T s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
  }
};

#pragma GCC pop_options

}  // namespace kdqat::simd
