// Fused attention, portable build of attention_impl.inc (plain C++, 8-lane arrays the
// compiler may map to SSE): same blocking as the AVX2 path, std::exp for e^x.
#include "attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace kdqat {
namespace attn {
namespace portable {

#define KT

struct Vec {
  float v[kW];
};
static inline Vec vload(const float* p) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = p[i];
  return r;
}
static inline void vstore(float* p, const Vec& a) {
  for (int i = 0; i < kW; i++) p[i] = a.v[i];
}
static inline Vec vset1(float x) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = x;
  return r;
}
static inline Vec vzero() { return vset1(0.f); }
static inline Vec vfma(const Vec& a, const Vec& b, const Vec& c) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = a.v[i] * b.v[i] + c.v[i];
  return r;
}
static inline Vec vadd(const Vec& a, const Vec& b) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = a.v[i] + b.v[i];
  return r;
}
static inline Vec vsub(const Vec& a, const Vec& b) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = a.v[i] - b.v[i];
  return r;
}
static inline Vec vmul(const Vec& a, const Vec& b) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = a.v[i] * b.v[i];
  return r;
}
// Like the AVX2 max: NaN in x wins, so NaN propagates.
static inline Vec vmax(const Vec& acc, const Vec& x) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = acc.v[i] > x.v[i] ? acc.v[i] : x.v[i];
  return r;
}
static inline Vec vexp(const Vec& a) {
  Vec r;
  for (int i = 0; i < kW; i++) r.v[i] = std::exp(a.v[i]);
  return r;
}
// x with the lanes ≥ k (0 < k ≤ kW) set to −∞.
static inline Vec vtail(Vec x, int64_t k) {
  for (int64_t i = k; i < kW; i++) x.v[i] = -std::numeric_limits<float>::infinity();
  return x;
}
static inline float hsum(const Vec& a) {
  const float* t = a.v;
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
static inline float hmax(const Vec& a) {
  float m = a.v[0];
  for (int i = 1; i < kW; i++) m = (a.v[i] > m || a.v[i] != a.v[i]) ? a.v[i] : m;
  return m;
}
static_assert(kW == 8, "hsum assumes 8 lanes");
// dst[i·ldd + r] = src[r][i] for an 8×8 block.
static inline void transposeW(const float* const* src, float* dst, int64_t ldd) {
  for (int i = 0; i < 8; i++)
    for (int r = 0; r < 8; r++) dst[i * ldd + r] = src[r][i];
}

#include "attention_impl.inc"

#undef KT

}  // namespace portable
}  // namespace attn
}  // namespace kdqat
