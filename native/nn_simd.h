// Vector abstraction for the 'nn' and 'optim' kernels. The kernel bodies (nn_rows.inc) are
// written once against a type V with these static members and compiled twice (nn_isa.cc):
// V = Scalar (portable, one float per "vector", libm exp) and V = Avx2 (8 floats, FMA,
// polynomial exp). Tails are handled with masked loads/stores (load_n / store_n with k < W),
// so no scalar remainder loop with different rounding exists.
//
// There is no 512-bit V: an AVX-512 CPU runs the Avx2 bodies (isaInfo() reports it and
// `npm test` prints it per family). Widening is speed work (issue 13): one more struct like
// Avx2 here, instantiated in nn_isa.cc, tested on AVX-512 machines by the same kernel tests.
#pragma once
#include <immintrin.h>
#include "simd_avx2.h"
#include "simd_exp.h"
#include <cmath>
#include <cstdint>
#include <limits>

namespace kdqat::simd {

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- portable --------------------------------------------------------------------------------
struct Scalar {
  using T = float;
  using D = double;  // double-precision accumulator
  static constexpr int W = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T load_n(const float* p, int k, float fill) { return k > 0 ? *p : fill; }
  static void store_n(float* p, int k, T v) {
    if (k > 0) *p = v;
  }
  static T keep(T v, int k) { return k > 0 ? v : 0.0f; }  // zero the lanes ≥ k
  static T set1(float a) { return a; }
  static T zero() { return 0.0f; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T fma(T a, T b, T c) { return a * b + c; }  // two roundings here; one in Avx2
  static T max(T a, T b) { return a > b ? a : b; }
  static T sqrt(T a) { return std::sqrt(a); }
  static T exp(T a) { return std::exp(a); }
  static float hsum(T a) { return a; }
  static float hmax(T a) { return a; }
  static D dzero() { return 0.0; }
  static D dadd(D a, D b) { return a + b; }
  static D dsq(D acc, T x) {  // acc + x² in double (x² of a float is exact in double)
    double d = x;
    return acc + d * d;
  }
  static D dsqdiff(D acc, T a, T b) {  // acc + (a − b)² in double
    double d = static_cast<double>(a) - static_cast<double>(b);
    return acc + d * d;
  }
  static double dhsum(D a) { return a; }
};

// ---- AVX2 + FMA ------------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx2,fma")

struct Avx2 {
  using T = __m256;
  struct D {
    __m256d lo, hi;
  };
  static constexpr int W = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int k) { return avx2::mask(k); }  // first k lanes set
  // Loads the first k lanes (k ≤ 8; masked lanes never touch memory), the rest = fill.
  static T load_n(const float* p, int k, float fill) { return avx2::load_n(p, k, fill); }
  static void store_n(float* p, int k, T v) { avx2::store_n(p, k, v); }
  static T keep(T v, int k) {  // zero the lanes ≥ k
    return k == W ? v : _mm256_and_ps(v, _mm256_castsi256_ps(mask(k)));
  }
  static T set1(float a) { return _mm256_set1_ps(a); }
  static T zero() { return _mm256_setzero_ps(); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T sqrt(T a) { return _mm256_sqrt_ps(a); }
  static float hsum(T a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(T a) { return avx2::hmax(a); }

  // exp(x): the shared AVX2 e^x (simd_exp.h).
  static T exp(T x) { return exp256_ps(x); }


  static D dzero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static D dadd(D a, D b) { return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)}; }
  static D dsq(D acc, T x) {
    __m256d l = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    __m256d h = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    return {_mm256_fmadd_pd(l, l, acc.lo), _mm256_fmadd_pd(h, h, acc.hi)};
  }
  static D dsqdiff(D acc, T a, T b) {
    __m256d l = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                              _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
    __m256d h = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    return {_mm256_fmadd_pd(l, l, acc.lo), _mm256_fmadd_pd(h, h, acc.hi)};
  }
  static double dhsum(D a) {
    __m256d s = _mm256_add_pd(a.lo, a.hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    return _mm_cvtsd_f64(t);
  }
};

#pragma GCC pop_options

}  // namespace kdqat::simd
