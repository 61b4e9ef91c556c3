// The one vector abstraction of the addon: a traits struct per instruction set (Portable, Avx2,
// Avx512) with the same static members, so that a kernel is written once as a template (or an
// .inc body) over V and compiled per ISA; the function tables of dispatch.h pick one at load.
//
//   W, T                     lanes per vector and the vector type
//   zero, set1, bcast        constants / broadcast of *p
//   load, loadu, store       W floats (unaligned; load ≡ loadu)
//   load_bf16                W bf16 bit patterns, widened exactly (the float with those high bits)
//   load_n, store_n, keep    the first k ≤ W lanes: masked loads/stores (masked lanes never
//                            touch memory; loaded ones take `fill`), keep zeroes lanes ≥ k.
//                            Tails use these, so no scalar remainder loop rounds differently.
//   add sub mul div min max sqrt abs trunc   lane-wise, IEEE-exact (correctly rounded)
//   madd(a, b, c) = a·b + c  fused (one rounding) on Avx2/Avx512; unfused (two roundings) on
//                            Portable, which matches the build's -ffp-contract=off
//   hsum, hmax, hmin         horizontal reductions in a FIXED order (below)
//   D, dzero, dadd, dsq, dsqdiff, dhsum   double-precision accumulators (sums of squares)
//   M, gt ge lt le, not_finite, mfalse, mand, mor, select, any, count   lane masks (quant
//                            kernels); count = how many lanes are set
//   store_i32_n, to_f32x     truncating int32 store of k lanes; W floats out
//   exp                      e^x (Portable: libm; Avx2/Avx512: the polynomial below)
//   fnmadd(a, b, c) = c − a·b   fused like madd; rint floor (round to nearest even / down)
//   band bor bxor, set1_bits bitwise on the float lanes, a lane of the given bits; neg = −x
//   eq, isnan                compares: ordered equal, and unordered (a NaN lane)
//   pow2n(n)                 2^n for integral float lanes n in [−126, 127], from exponent bits
//   exponent, mant1          for positive normal x = 2^e·m, m ∈ [1, 2): e as a float, and m
//   dfrom, dround, dset1, dsub, dmul, dmadd   double lanes (D): widen W floats, round back to
//                            float, and lane-wise arithmetic (dmadd fused like madd)
//   dstore                   the W double lanes to memory, lane i at p[i]
//   transpose, prefetch      W×W in-register transpose (GEMM packing) and a T0 prefetch
//
// Fixed reduction order (hsum/hmax/hmin/dhsum): a halving tree — the upper half of the lanes is
// added to the lower half until one lane is left: W=16 → 8 → 4 → 2 → 1. Kernels accumulate in a
// fixed set of vectors per row (or per fixed block), so for a given ISA the result depends on
// the data and n only, never on the thread count. Different ISAs give different (bounded) bits.
//
// The GEMM (gemm_impl.h) is written over the same traits: load/store/bcast/madd/transpose.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#ifndef KDQAT_AVX2
#define KDQAT_AVX2 __attribute__((target("avx2,fma")))
#define KDQAT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define KDQAT_INLINE __attribute__((always_inline)) inline
#endif
// Kernel bodies are compiled inside `#pragma GCC target("avx2,fma")` and
// `#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")` regions (the pragma takes
// string literals only, no macros) matching the structs' regions below.

namespace kdqat::simd {

// The float whose high 16 bits are h (bf16 → float32, exact).
KDQAT_INLINE float widen_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kFltMax = 3.40282347e38f;

// ---- Portable: GCC vector extensions, 4 lanes (SSE2 code on baseline x86-64) ------------------
struct Portable {
  static constexpr int W = 4;
  typedef float T __attribute__((vector_size(16)));
  typedef int32_t M __attribute__((vector_size(16)));  // lane masks: −1 / 0
  struct D {  // 4 double lanes (a plain array: no 32-byte vector ABI on baseline x86-64)
    double l[4];
  };

  static KDQAT_INLINE T zero() { return T{0.f, 0.f, 0.f, 0.f}; }
  static KDQAT_INLINE T set1(float s) { return T{s, s, s, s}; }
  static KDQAT_INLINE T bcast(const float* p) { return set1(*p); }
  static KDQAT_INLINE T load(const float* p) {
    T r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static KDQAT_INLINE T loadu(const float* p) { return load(p); }
  static KDQAT_INLINE T load_bf16(const uint16_t* p) {
    T r;
    for (int i = 0; i < W; i++) r[i] = widen_bf16(p[i]);
    return r;
  }
  static KDQAT_INLINE void store(float* p, T x) { std::memcpy(p, &x, sizeof x); }
  static KDQAT_INLINE T load_n(const float* p, int k, float fill) {
    if (k == W) return load(p);
    T r = set1(fill);
    for (int i = 0; i < k; i++) r[i] = p[i];
    return r;
  }
  static KDQAT_INLINE void store_n(float* p, int k, T v) {
    if (k == W) return store(p, v);
    for (int i = 0; i < k; i++) p[i] = v[i];
  }
  static KDQAT_INLINE void store_i32_n(int32_t* p, int k, T v) {  // v holds integers
    for (int i = 0; i < k; i++) p[i] = static_cast<int32_t>(v[i]);
  }
  static KDQAT_INLINE void to_f32x(T v, float* dst) { store(dst, v); }
  static KDQAT_INLINE T keep(T v, int k) {
    for (int i = k; i < W; i++) v[i] = 0.f;
    return v;
  }
  static KDQAT_INLINE T add(T a, T b) { return a + b; }
  static KDQAT_INLINE T sub(T a, T b) { return a - b; }
  static KDQAT_INLINE T mul(T a, T b) { return a * b; }
  static KDQAT_INLINE T div(T a, T b) { return a / b; }
  static KDQAT_INLINE T madd(T a, T b, T c) { return a * b + c; }
  // Exactly _mm*_min_ps / _mm*_max_ps: the second operand unless the first is smaller /
  // larger (±0 ties and NaN resolve alike on every ISA).
  static KDQAT_INLINE T min(T a, T b) { return a < b ? a : b; }
  static KDQAT_INLINE T max(T a, T b) { return a > b ? a : b; }
  static KDQAT_INLINE T abs(T a) { return (T)((M)a & M{0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff}); }
  static KDQAT_INLINE T sqrt(T a) {
    for (int i = 0; i < W; i++) a[i] = std::sqrt(a[i]);
    return a;
  }
  static KDQAT_INLINE T trunc(T a) {
    for (int i = 0; i < W; i++) a[i] = std::trunc(a[i]);
    return a;
  }
  static KDQAT_INLINE T exp(T a) {
    for (int i = 0; i < W; i++) a[i] = std::exp(a[i]);
    return a;
  }
  static KDQAT_INLINE T fnmadd(T a, T b, T c) { return c - a * b; }
  static KDQAT_INLINE T rint(T a) {
    for (int i = 0; i < W; i++) a[i] = std::nearbyint(a[i]);
    return a;
  }
  static KDQAT_INLINE T floor(T a) {
    for (int i = 0; i < W; i++) a[i] = std::floor(a[i]);
    return a;
  }
  static KDQAT_INLINE T band(T a, T b) { return (T)((M)a & (M)b); }
  static KDQAT_INLINE T bor(T a, T b) { return (T)((M)a | (M)b); }
  static KDQAT_INLINE T bxor(T a, T b) { return (T)((M)a ^ (M)b); }
  static KDQAT_INLINE T set1_bits(uint32_t u) { return (T)(M{} + static_cast<int32_t>(u)); }
  static KDQAT_INLINE T neg(T a) { return bxor(a, set1(-0.f)); }
  static KDQAT_INLINE M eq(T a, T b) { return a == b; }
  static KDQAT_INLINE M isnan(T a) { return a != a; }
  static KDQAT_INLINE T pow2n(T n) {
    M b;
    for (int i = 0; i < W; i++) b[i] = (static_cast<int32_t>(n[i]) + 127) << 23;
    return (T)b;
  }
  static KDQAT_INLINE T exponent(T x) {
    T e;
    for (int i = 0; i < W; i++) e[i] = static_cast<float>(static_cast<int32_t>(((M)x)[i] >> 23 & 0x1ff) - 127);
    return e;
  }
  static KDQAT_INLINE T mant1(T x) { return (T)(((M)x & 0x007fffff) | 0x3f800000); }
  static KDQAT_INLINE D dfrom(T x) { return D{{x[0], x[1], x[2], x[3]}}; }
  static KDQAT_INLINE T dround(D d) {
    return T{static_cast<float>(d.l[0]), static_cast<float>(d.l[1]), static_cast<float>(d.l[2]),
             static_cast<float>(d.l[3])};
  }
  static KDQAT_INLINE D dset1(double s) { return D{{s, s, s, s}}; }
  static KDQAT_INLINE D dsub(D a, D b) {
    for (int i = 0; i < 4; i++) a.l[i] -= b.l[i];
    return a;
  }
  static KDQAT_INLINE D dmul(D a, D b) {
    for (int i = 0; i < 4; i++) a.l[i] *= b.l[i];
    return a;
  }
  static KDQAT_INLINE D dmadd(D a, D b, D c) {
    for (int i = 0; i < 4; i++) a.l[i] = a.l[i] * b.l[i] + c.l[i];
    return a;
  }
  static KDQAT_INLINE float hsum(T a) { return (a[0] + a[2]) + (a[1] + a[3]); }
  static KDQAT_INLINE float hmax(T a) {
    const T h = max(a, T{a[2], a[3], a[2], a[3]});
    return h[0] > h[1] ? h[0] : h[1];
  }
  static KDQAT_INLINE float hmin(T a) {
    const T h = min(a, T{a[2], a[3], a[2], a[3]});
    return h[0] < h[1] ? h[0] : h[1];
  }

  static KDQAT_INLINE M gt(T a, T b) { return a > b; }
  static KDQAT_INLINE M ge(T a, T b) { return a >= b; }
  static KDQAT_INLINE M lt(T a, T b) { return a < b; }
  static KDQAT_INLINE M le(T a, T b) { return a <= b; }
  static KDQAT_INLINE M not_finite(T a) { return ~(abs(a) <= set1(kFltMax)); }
  static KDQAT_INLINE M mfalse() { return M{0, 0, 0, 0}; }
  static KDQAT_INLINE M mand(M a, M b) { return a & b; }
  static KDQAT_INLINE M mor(M a, M b) { return a | b; }
  static KDQAT_INLINE T select(M m, T yes, T no) { return m ? yes : no; }
  static KDQAT_INLINE bool any(M m) { return (m[0] | m[1] | m[2] | m[3]) != 0; }
  static KDQAT_INLINE int count(M m) { return (m[0] != 0) + (m[1] != 0) + (m[2] != 0) + (m[3] != 0); }

  static KDQAT_INLINE D dzero() { return D{{0, 0, 0, 0}}; }
  static KDQAT_INLINE void dstore(double* p, D d) { std::memcpy(p, d.l, sizeof d.l); }
  static KDQAT_INLINE D dadd(D a, D b) {
    for (int i = 0; i < 4; i++) a.l[i] += b.l[i];
    return a;
  }
  static KDQAT_INLINE D dsq(D acc, T x) {  // acc + x² (x² of a float is exact in double)
    for (int i = 0; i < 4; i++) acc.l[i] += static_cast<double>(x[i]) * x[i];
    return acc;
  }
  static KDQAT_INLINE D dsqdiff(D acc, T a, T b) {
    for (int i = 0; i < 4; i++) {
      const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
      acc.l[i] += d * d;
    }
    return acc;
  }
  static KDQAT_INLINE double dhsum(D a) { return (a.l[0] + a.l[2]) + (a.l[1] + a.l[3]); }

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

// ---- e^x for Avx2/Avx512 -------------------------------------------------------------------------
// Cephes expf scheme (Moshier 1992): x = n·ln2 + r with |r| ≤ ln2/2, e^r by 1 + r + r²·P5(r),
// 2^n through the exponent bits. Max relative error 8.2e-8 (measured against double exp over
// the whole finite range; the kernels' tests budget 2^-22 ≈ 2.4e-7 per exp).
// Edges without compares: x ≤ −88 gives n = −127, whose exponent bits are 0, so the result is
// +0 (also for −inf; results below FLT_MIN, x < −87.34, are flushed to 0 or slightly inexact);
// x ≥ 88.38 gives n = 128, the bits of +inf (finite results for x in (88.38, 88.72] are given
// up). NaN passes min/max (they return their second operand on NaN) and stays NaN.
// The Avx2 and Avx512 versions run the same operations lane for lane (same bits).
#define KDQAT_EXP_CONSTANTS                                                                   \
  constexpr float kLo = -88.0f, kHi = 88.5f, kLog2e = 1.44269504088896341f;                   \
  constexpr float kC1 = 0.693359375f, kC2 = -2.12194440e-4f;                                  \
  constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f;     \
  constexpr float kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

}  // namespace kdqat::simd

// The x86 instances, a file each; they use KDQAT_EXP_CONSTANTS (Avx512 also Avx2's reductions).
#include "simd_avx2.h"
#include "simd_avx512.h"

#undef KDQAT_EXP_CONSTANTS
