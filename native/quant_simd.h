// Vector abstraction for the 'quant' kernels (quant_rows.inc is written once against V and
// compiled twice in quant_isa.cc): QScalar (portable, one float per "vector") and QAvx2
// (8 floats). Only IEEE-exact operations are used (add, sub, mul, div, min, max, truncation,
// compares, selects, float↔int of integers), so both give the same bits as the TypeScript
// reference; no FMA anywhere. Tails use masked loads/stores with a neutral fill.
#pragma once
#include <immintrin.h>

#include "simd_avx2.h"
#include <cmath>
#include <cstdint>

namespace kdqat::quant {

struct QScalar {
  using T = float;
  using M = bool;
  static constexpr int W = 1;
  static T load_n(const float* p, int k, float fill) { return k > 0 ? *p : fill; }
  static void store_n(float* p, int k, T v) {
    if (k > 0) *p = v;
  }
  static void store_i32_n(int32_t* p, int k, T v) {  // v holds an integer
    if (k > 0) *p = static_cast<int32_t>(v);
  }
  static T set1(float a) { return a; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  // Exactly _mm256_min_ps / _mm256_max_ps: the second operand unless the first is smaller /
  // larger (so ±0 ties and NaN resolve alike on both paths).
  static T min(T a, T b) { return a < b ? a : b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T abs(T a) { return std::fabs(a); }
  static T trunc(T a) { return std::trunc(a); }
  static M gt(T a, T b) { return a > b; }
  static M ge(T a, T b) { return a >= b; }
  static M lt(T a, T b) { return a < b; }
  static M le(T a, T b) { return a <= b; }
  static M not_finite(T a) { return !(std::fabs(a) <= 3.40282347e38f); }
  static M mfalse() { return false; }
  static M mand(M a, M b) { return a && b; }
  static M mor(M a, M b) { return a || b; }
  static T select(M m, T yes, T no) { return m ? yes : no; }
  static bool any(M m) { return m; }
  static float hmax(T a) { return a; }
  static float hmin(T a) { return a; }
  static void to_f32x(T v, float* dst) { dst[0] = v; }  // W floats out
};

#pragma GCC push_options
#pragma GCC target("avx2")

struct QAvx2 {
  using T = __m256;
  using M = __m256;
  static constexpr int W = 8;
  static __m256i mask(int k) { return avx2::mask(k); }  // first k lanes set
  static T load_n(const float* p, int k, float fill) { return avx2::load_n(p, k, fill); }
  static void store_n(float* p, int k, T v) { avx2::store_n(p, k, v); }
  static void store_i32_n(int32_t* p, int k, T v) {
    __m256i q = _mm256_cvttps_epi32(v);
    if (k == W) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), q);
    else _mm256_maskstore_epi32(p, mask(k), q);
  }
  static T set1(float a) { return _mm256_set1_ps(a); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static T trunc(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static M gt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ge(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M le(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static M not_finite(T a) { return _mm256_cmp_ps(abs(a), set1(3.40282347e38f), _CMP_NLE_UQ); }
  static M mfalse() { return _mm256_setzero_ps(); }
  static M mand(M a, M b) { return _mm256_and_ps(a, b); }
  static M mor(M a, M b) { return _mm256_or_ps(a, b); }
  static T select(M m, T yes, T no) { return _mm256_blendv_ps(no, yes, m); }
  static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static float hmax(T a) { return avx2::hmax(a); }
  static float hmin(T a) { return avx2::hmin(a); }
  static void to_f32x(T v, float* dst) { _mm256_storeu_ps(dst, v); }
};

#pragma GCC pop_options

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

}  // namespace kdqat::quant
