// Vector traits for the SGEMM micro-kernel: one struct per ISA with the handful of operations
// gemm_impl.h needs (zero, load, store, broadcast, fused or unfused multiply-add). The kernel
// code is written once over these and compiled per ISA, so the AVX-512 variant (which cannot
// run on the development machine) shares every line of logic with the tested AVX2 one.
#pragma once
#include <immintrin.h>

#define KDQAT_AVX2 __attribute__((target("avx2,fma")))
#define KDQAT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define KDQAT_INLINE __attribute__((always_inline)) inline

namespace kdqat {
namespace gemmvec {

// Plain C++ with GCC vector extensions (SSE2 code on baseline x86-64, no intrinsics). madd
// is an unfused a·b + c: the build uses -ffp-contract=off and baseline x86-64 has no FMA, so
// the portable path rounds twice.
struct Portable {
  static constexpr int W = 4;
  typedef float T __attribute__((vector_size(16)));
  static KDQAT_INLINE T zero() { return T{0.f, 0.f, 0.f, 0.f}; }
  static KDQAT_INLINE T load(const float* p) {
    T r;
    __builtin_memcpy(&r, p, sizeof r);
    return r;
  }
  static KDQAT_INLINE void store(float* p, T x) { __builtin_memcpy(p, &x, sizeof x); }
  static KDQAT_INLINE T bcast(const float* p) { return set1(*p); }
  static KDQAT_INLINE T set1(float s) { return T{s, s, s, s}; }
  static KDQAT_INLINE T madd(T a, T b, T c) { return a * b + c; }
  static KDQAT_INLINE void prefetch(const void* p) { __builtin_prefetch(p); }
};

struct Avx2 {
  static constexpr int W = 8;
  using T = __m256;
  static KDQAT_AVX2 KDQAT_INLINE T zero() { return _mm256_setzero_ps(); }
  static KDQAT_AVX2 KDQAT_INLINE T load(const float* p) { return _mm256_loadu_ps(p); }
  static KDQAT_AVX2 KDQAT_INLINE void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  static KDQAT_AVX2 KDQAT_INLINE T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static KDQAT_AVX2 KDQAT_INLINE T set1(float s) { return _mm256_set1_ps(s); }
  static KDQAT_AVX2 KDQAT_INLINE T madd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static KDQAT_AVX2 KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
};

struct Avx512 {
  static constexpr int W = 16;
  using T = __m512;
  static KDQAT_AVX512 KDQAT_INLINE T zero() { return _mm512_setzero_ps(); }
  static KDQAT_AVX512 KDQAT_INLINE T load(const float* p) { return _mm512_loadu_ps(p); }
  static KDQAT_AVX512 KDQAT_INLINE void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  static KDQAT_AVX512 KDQAT_INLINE T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static KDQAT_AVX512 KDQAT_INLINE T set1(float s) { return _mm512_set1_ps(s); }
  static KDQAT_AVX512 KDQAT_INLINE T madd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static KDQAT_AVX512 KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
};

}  // namespace gemmvec
}  // namespace kdqat
