// Fused attention, AVX-512 build of attention_impl.inc: 16-float vectors over the simd.h Avx512
// traits, so the blocking pads to 16 (Params::w = 16, set by attention.cc from this table's
// lanes). The same operations as the AVX2 build lane for lane (FMA, simd.h e^x), with twice the
// lanes per vector, hence other partial sums: results differ from the AVX2 path's within the
// same bounds (test/backend/attention-bounds.ts), and are fixed for this path.
#include "attention_kernels.h"
#include "simd.h"

#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <limits>

namespace kdqat {
namespace attn {
namespace avx512 {

#define KT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

using A = simd::Avx512;
constexpr int64_t kW = A::W;  // shadows attn::kW inside this build
struct Vec {
  __m512 v;
};
KT static inline Vec vload(const float* p) { return {A::load(p)}; }
KT static inline void vstore(float* p, Vec a) { A::store(p, a.v); }
KT static inline Vec vzero() { return {A::zero()}; }
KT static inline Vec vset1(float x) { return {A::set1(x)}; }
KT static inline Vec vfma(Vec a, Vec b, Vec c) { return {A::madd(a.v, b.v, c.v)}; }
KT static inline Vec vadd(Vec a, Vec b) { return {A::add(a.v, b.v)}; }
KT static inline Vec vsub(Vec a, Vec b) { return {A::sub(a.v, b.v)}; }
KT static inline Vec vmul(Vec a, Vec b) { return {A::mul(a.v, b.v)}; }
// max_ps returns its second operand when either is NaN: keep the data second so NaN propagates.
KT static inline Vec vmax(Vec acc, Vec x) { return {A::max(acc.v, x.v)}; }
KT static inline Vec vexp(Vec a) { return {A::exp(a.v)}; }  // simd.h e^x, its error bound
// x with the lanes ≥ k (0 < k ≤ kW) set to −∞.
KT static inline Vec vtail(Vec x, int64_t k) {
  return {_mm512_mask_mov_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()),
                             static_cast<__mmask16>((1u << k) - 1), x.v)};
}

KT static inline float hsum(Vec a) { return A::hsum(a.v); }  // simd.h's fixed halving tree
KT static inline float hmax(Vec a) {
  alignas(64) float t[16];
  _mm512_store_ps(t, a.v);
  float m = t[0];
  for (int i = 1; i < 16; i++) m = (t[i] > m || t[i] != t[i]) ? t[i] : m;
  return m;
}

// dst[i·ldd + r] = src[r][i] for a 16×16 block (Avx512::transpose in registers).
KT static inline void transposeW(const float* const* src, float* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src[i]);
  A::transpose(r);
  for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}

#include "attention_impl.inc"

#undef KT

}  // namespace avx512
}  // namespace attn
}  // namespace kdqat
