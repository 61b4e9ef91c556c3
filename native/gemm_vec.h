// Vector traits for the SGEMM micro-kernel: one struct per ISA with the handful of operations
// gemm_impl.h needs (zero, load, store, broadcast, fused or unfused multiply-add). The kernel
// code is written once over these and compiled per ISA, so the AVX-512 variant shares every
// line of logic with the AVX2 one (each is tested on the machines that can run it).
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
  // The first n (0 ≤ n ≤ W) floats at p, zeros after them; reads nothing past p + n.
  static KDQAT_INLINE T load_n(const float* p, int n) {
    T r = zero();
    for (int i = 0; i < n; i++) r[i] = p[i];
    return r;
  }
  static KDQAT_INLINE T bcast(const float* p) { return set1(*p); }
  static KDQAT_INLINE T set1(float s) { return T{s, s, s, s}; }
  static KDQAT_INLINE T madd(T a, T b, T c) { return a * b + c; }
  static KDQAT_INLINE void prefetch(const void* p) { __builtin_prefetch(p); }
  // r[0..W) rows of a W×W block → its columns, in place (used by the packing routines).
  static KDQAT_INLINE void transpose(T* r) {
    typedef int I __attribute__((vector_size(16)));
    const T t0 = __builtin_shuffle(r[0], r[1], I{0, 4, 1, 5});
    const T t1 = __builtin_shuffle(r[0], r[1], I{2, 6, 3, 7});
    const T t2 = __builtin_shuffle(r[2], r[3], I{0, 4, 1, 5});
    const T t3 = __builtin_shuffle(r[2], r[3], I{2, 6, 3, 7});
    r[0] = __builtin_shuffle(t0, t2, I{0, 1, 4, 5});
    r[1] = __builtin_shuffle(t0, t2, I{2, 3, 6, 7});
    r[2] = __builtin_shuffle(t1, t3, I{0, 1, 4, 5});
    r[3] = __builtin_shuffle(t1, t3, I{2, 3, 6, 7});
  }
};

struct Avx2 {
  static constexpr int W = 8;
  using T = __m256;
  static KDQAT_AVX2 KDQAT_INLINE T zero() { return _mm256_setzero_ps(); }
  static KDQAT_AVX2 KDQAT_INLINE T load(const float* p) { return _mm256_loadu_ps(p); }
  static KDQAT_AVX2 KDQAT_INLINE void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  static KDQAT_AVX2 KDQAT_INLINE T load_n(const float* p, int n) {  // masked: never faults
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
  }
  static KDQAT_AVX2 KDQAT_INLINE T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static KDQAT_AVX2 KDQAT_INLINE T set1(float s) { return _mm256_set1_ps(s); }
  static KDQAT_AVX2 KDQAT_INLINE T madd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static KDQAT_AVX2 KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
  // 8×8 transpose in registers: unpack pairs, shuffle quads, swap 128-bit halves.
  static KDQAT_AVX2 KDQAT_INLINE void transpose(T* r) {
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

struct Avx512 {
  static constexpr int W = 16;
  using T = __m512;
  static KDQAT_AVX512 KDQAT_INLINE T zero() { return _mm512_setzero_ps(); }
  static KDQAT_AVX512 KDQAT_INLINE T load(const float* p) { return _mm512_loadu_ps(p); }
  static KDQAT_AVX512 KDQAT_INLINE void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  static KDQAT_AVX512 KDQAT_INLINE T load_n(const float* p, int n) {  // masked: never faults
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static KDQAT_AVX512 KDQAT_INLINE T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static KDQAT_AVX512 KDQAT_INLINE T set1(float s) { return _mm512_set1_ps(s); }
  static KDQAT_AVX512 KDQAT_INLINE T madd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static KDQAT_AVX512 KDQAT_INLINE void prefetch(const void* p) {
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
  }
  // 16×16 in registers: interleave row pairs, then quads (both within 128-bit lanes), then
  // swap 128-bit lanes twice (the same four stages as Avx2::transpose, one wider).
  static KDQAT_AVX512 KDQAT_INLINE void transpose(T* r) {
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

}  // namespace gemmvec
}  // namespace kdqat
