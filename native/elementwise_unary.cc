// unary and unaryBackward (src/tensor/kernels.ts, UnOp codes). Two paths:
// - AVX2+FMA: 8 floats at a time with polynomial exp/expm1/log and an erfc-based Φ written for
//   this file, each within ~3e-7 relative of the exact function (tested against the f64
//   reference). The tail is padded into one more vector so every element takes the same path.
// - portable: the reference formulas in double with std:: functions, rounded once.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "elementwise.h"

namespace kdqat {
namespace ew {
namespace {

enum Op { kExp, kLog, kSqrt, kRsqrt, kTanh, kGelu, kGeluTanh, kSilu, kNeg, kAbs, kSigmoid, kRelu,
          kSquare, kNumOps };

constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/√(2π)
constexpr double kGeluK = 0.79788456080286535588;       // √(2/π)
constexpr double kGeluC = 0.044715;

// ---- portable path: f64 scalar, the same formulas as src/backend/ref/elementwise.ts --------

double sigmoid_d(double x) {
  if (x >= 0) return 1 / (1 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1 + e);
}
double cdf_d(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752440); }
double gelu_tanh_z(double x) { return 2 * kGeluK * (x + kGeluC * x * x * x); }

template <int OP>
double fwd_d(double x) {
  switch (OP) {
    case kExp: return std::exp(x);
    case kLog: return std::log(x);
    case kSqrt: return std::sqrt(x);
    case kRsqrt: return 1 / std::sqrt(x);
    case kTanh: return std::tanh(x);
    case kGelu: return x * cdf_d(x);
    case kGeluTanh: return x * sigmoid_d(gelu_tanh_z(x));
    case kSilu: return x * sigmoid_d(x);
    case kNeg: return -x;
    case kAbs: return std::fabs(x);
    case kSigmoid: return sigmoid_d(x);
    case kRelu: return x > 0 ? x : (x != x ? x : 0.0);
    default: return x * x;
  }
}

template <int OP>
double grad_d(double x, double y) {
  switch (OP) {
    case kExp: return y;
    case kLog: return 1 / x;
    case kSqrt: return 0.5 / y;
    case kRsqrt: return -0.5 * y * y * y;
    case kTanh: return 1 - y * y;
    case kGelu: return cdf_d(x) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
    case kGeluTanh: {
      const double s = sigmoid_d(gelu_tanh_z(x));
      return s + 2 * x * s * (1 - s) * kGeluK * (1 + 3 * kGeluC * x * x);
    }
    case kSilu: {
      const double s = sigmoid_d(x);
      return s * (1 + x * (1 - s));
    }
    case kNeg: return -1;
    case kAbs: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case kSigmoid: return y * (1 - y);
    case kRelu: return x > 0 ? 1 : 0;
    default: return 2 * x;
  }
}

template <int OP>
void fwd_portable(const float* x, float* o, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = static_cast<float>(fwd_d<OP>(x[i]));
}
template <int OP>
void bwd_portable(const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    gx[i] = static_cast<float>(static_cast<double>(gy[i]) * grad_d<OP>(x[i], y[i]));
}

// ---- AVX2 path ----------------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx2,fma")

using V = __m256;
inline V set1(float v) { return _mm256_set1_ps(v); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V div(V a, V b) { return _mm256_div_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V select(V mask, V yes, V no) { return _mm256_blendv_ps(no, yes, mask); }
inline V sign_bit() { return set1(-0.f); }
inline V vabs(V x) { return _mm256_andnot_ps(sign_bit(), x); }
inline V lt0(V x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ); }
// min/max return their second operand when either is NaN; these orders keep x's NaN.
inline V clamp(V x, float lo, float hi) {
  return _mm256_min_ps(set1(hi), _mm256_max_ps(set1(lo), x));
}

constexpr float kLn2Hi = 0.693147182464599609375f;  // float(ln 2)
constexpr float kLn2Lo = -1.904654323148236e-09f;   // ln 2 − kLn2Hi
constexpr float kLog2e = 1.44269504088896341f;

// 2^n for integer n in [−126, 127], built in the exponent field.
inline V pow2i(__m256i n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// n = round(x/ln 2), r = x − n·ln 2 ∈ [−0.347, 0.347] (Cody–Waite with FMA).
inline V reduce_ln2(V x, V& n) {
  n = _mm256_round_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_fnmadd_ps(n, set1(kLn2Lo), _mm256_fnmadd_ps(n, set1(kLn2Hi), x));
}

// e^r − 1 − r − r²/2... as Taylor to r⁸ (truncation |r|⁹/9! < 6e-10·|r|): returns expm1(r).
inline V expm1_small(V r) {
  V p = set1(1.f / 40320);
  p = fma(p, r, set1(1.f / 5040));
  p = fma(p, r, set1(1.f / 720));
  p = fma(p, r, set1(1.f / 120));
  p = fma(p, r, set1(1.f / 24));
  p = fma(p, r, set1(1.f / 6));
  p = fma(p, r, set1(0.5f));
  return fma(mul(r, r), p, r);
}

// e^x, ~1 ulp; overflows to inf, goes through the subnormals to 0, keeps NaN.
inline V exp_ps(V x) {
  x = clamp(x, -104.f, 89.f);  // keeps n in [−150, 128]
  V n;
  const V r = reduce_ln2(x, n);
  const V p = add(expm1_small(r), set1(1.f));
  // Scale by 2^n in two halves so that 2^−150..2^128 are reachable without a bad exponent.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  return mul(mul(p, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
}

// e^a − 1 for a in [0, 20]: 2^n·expm1(r) + (2^n − 1), exact-ish even for small a.
inline V expm1_pos(V a) {
  V n;
  const V r = reduce_ln2(a, n);
  const V s = pow2i(_mm256_cvtps_epi32(n));
  return fma(s, expm1_small(r), sub(s, set1(1.f)));
}

// ln x = k·ln 2 + 2·atanh(s), s = (m−1)/(m+1), m ∈ [√½, √2] (atanh series to s⁹; |s| ≤ 0.172).
inline V log_ps(V x) {
  const V den = _mm256_cmp_ps(x, set1(1.17549435e-38f), _CMP_LT_OQ);  // subnormal (or ≤ 0)
  const V xs = select(den, mul(x, set1(8388608.f)), x);                 // ×2^23
  const __m256i bits = _mm256_castps_si256(xs);
  __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  k = _mm256_sub_epi32(k, _mm256_and_si256(_mm256_castps_si256(den), _mm256_set1_epi32(23)));
  V m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
  const V big = _mm256_cmp_ps(m, set1(1.41421356f), _CMP_GT_OQ);
  m = select(big, mul(m, set1(0.5f)), m);
  k = _mm256_sub_epi32(k, _mm256_castps_si256(big));  // big lanes are −1: k += 1
  const V f = sub(m, set1(1.f));                      // exact (Sterbenz)
  const V s = div(f, add(f, set1(2.f)));
  const V s2 = mul(s, s);
  V R = fma(s2, set1(2.f / 9), set1(2.f / 7));
  R = fma(R, s2, set1(2.f / 5));
  R = fma(R, s2, set1(2.f / 3));
  R = mul(R, s2);
  const V lm = fma(s, R, add(s, s));
  const V kf = _mm256_cvtepi32_ps(k);
  V r = fma(kf, set1(kLn2Hi), fma(kf, set1(kLn2Lo), lm));
  r = select(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ), set1(-INFINITY), r);
  r = select(_mm256_cmp_ps(x, set1(INFINITY), _CMP_EQ_OQ), set1(INFINITY), r);
  return select(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ), set1(NAN), r);  // x<0, NaN
}

// tanh x = sign(x)·E/(E+2), E = expm1(2|x|); |x| ≥ 10 rounds to ±1.
inline V tanh_ps(V x) {
  const V ax = _mm256_min_ps(set1(10.f), vabs(x));
  const V em = expm1_pos(add(ax, ax));
  return _mm256_or_ps(div(em, add(em, set1(2.f))), _mm256_and_ps(x, sign_bit()));
}

// σ(z) and 1 − σ(z) from e = e^{−|z|} and neg = (z < 0): no overflow, no cancellation.
inline void sigmoid_from_e(V e, V neg, V& s, V& oms) {
  const V d = div(set1(1.f), add(set1(1.f), e));
  const V ed = mul(e, d);
  s = select(neg, ed, d);
  oms = select(neg, d, ed);
}
inline void sigmoid_pair(V z, V& s, V& oms) {
  sigmoid_from_e(exp_ps(_mm256_or_ps(z, sign_bit())), lt0(z), s, oms);
}

// Φ(x) for GELU and e^{−x²/2}. Φ(−t) = e^{−t²/2}·s·P(s), s = 1/(1+0.3t), t = |x|: P is a
// degree-9 least-squares fit (made for this kernel) of the Mills ratio R(t)/√(2π)/s, relative
// error < 4e-9 on t ∈ [0, 15]. e^{−t²/2} is split as e^{−h²/2}·e^{−l(t+h)/2} with h = t
// rounded to 12 bits, so h² is exact and the large exponent carries no rounding error.
inline V normal_cdf_ps(V x, V& gauss) {
  const V t = _mm256_min_ps(set1(20.f), vabs(x));
  const V h = _mm256_and_ps(t, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0xfffff000u))));
  const V l = sub(t, h);
  const V e1 = exp_ps(mul(mul(h, h), set1(-0.5f)));
  const V a = mul(mul(l, add(t, h)), set1(-0.5f));  // |a| < 0.05
  V e2 = fma(a, set1(1.f / 24), set1(1.f / 6));
  e2 = fma(e2, a, set1(0.5f));
  e2 = fma(e2, a, set1(1.f));
  e2 = fma(e2, a, set1(1.f));
  gauss = mul(e1, e2);
  const V s = div(set1(1.f), fma(t, set1(0.3f), set1(1.f)));
  V p = set1(-2.062866278e-02f);
  p = fma(p, s, set1(1.124648079e-01f));
  p = fma(p, s, set1(-2.282848209e-01f));
  p = fma(p, s, set1(1.918833554e-01f));
  p = fma(p, s, set1(-7.950922102e-02f));
  p = fma(p, s, set1(9.620496631e-02f));
  p = fma(p, s, set1(7.837220281e-02f));
  p = fma(p, s, set1(1.102393493e-01f));
  p = fma(p, s, set1(1.195713133e-01f));
  p = fma(p, s, set1(1.196867153e-01f));
  const V q = mul(gauss, mul(s, p));  // Φ(−t)
  return select(lt0(x), q, sub(set1(1.f), q));
}

// σ(z), 1 − σ(z) for the tanh GELU x·σ(z), z = 2u = 2√(2/π)·x·(1 + 0.044715x²). |z| reaches
// ~90 before σ underflows, where a float z would carry ~4e-6 of rounding into e^{−|z|}, so z
// is formed in double and e^{−|z|} = e^{−|z_f|}·(1 − sign(z)·(z − z_f)) with z_f = float(z).
inline __m256d gelu_z_pd(__m128 x) {
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d w = _mm256_fmadd_pd(_mm256_mul_pd(xd, xd), _mm256_set1_pd(kGeluC),
                                    _mm256_set1_pd(1.0));
  return _mm256_mul_pd(_mm256_mul_pd(xd, _mm256_set1_pd(2 * kGeluK)), w);
}
inline void gelu_tanh_sigmoid(V x, V& s, V& oms) {
  x = clamp(x, -30.f, 30.f);  // |z| ≤ 2000: σ is exactly 0 or 1 in float beyond that
  const __m256d z0 = gelu_z_pd(_mm256_castps256_ps128(x));
  const __m256d z1 = gelu_z_pd(_mm256_extractf128_ps(x, 1));
  const __m128 f0 = _mm256_cvtpd_ps(z0), f1 = _mm256_cvtpd_ps(z1);
  const __m128 r0 = _mm256_cvtpd_ps(_mm256_sub_pd(z0, _mm256_cvtps_pd(f0)));
  const __m128 r1 = _mm256_cvtpd_ps(_mm256_sub_pd(z1, _mm256_cvtps_pd(f1)));
  const V zf = _mm256_insertf128_ps(_mm256_castps128_ps256(f0), f1, 1);
  const V r = _mm256_insertf128_ps(_mm256_castps128_ps256(r0), r1, 1);
  const V e0 = exp_ps(_mm256_or_ps(zf, sign_bit()));
  const V rs = _mm256_xor_ps(r, _mm256_and_ps(zf, sign_bit()));  // sign(z)·(z − z_f)
  sigmoid_from_e(_mm256_fnmadd_ps(e0, rs, e0), lt0(zf), s, oms);
}

template <int OP>
inline V fwd8(V x) {
  switch (OP) {
    case kExp: return exp_ps(x);
    case kLog: return log_ps(x);
    case kSqrt: return _mm256_sqrt_ps(x);
    case kRsqrt: return div(set1(1.f), _mm256_sqrt_ps(x));
    case kTanh: return tanh_ps(x);
    case kGelu: {
      V g;
      return mul(x, normal_cdf_ps(x, g));
    }
    case kGeluTanh: {
      V s, oms;
      gelu_tanh_sigmoid(x, s, oms);
      return mul(x, s);
    }
    case kSilu:
    case kSigmoid: {
      V s, oms;
      sigmoid_pair(x, s, oms);
      return OP == kSigmoid ? s : mul(x, s);
    }
    case kNeg: return _mm256_xor_ps(x, sign_bit());
    case kAbs: return vabs(x);
    case kRelu: {
      const V r = _mm256_max_ps(x, _mm256_setzero_ps());  // −0 → +0
      return select(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), x, r);
    }
    default: return mul(x, x);
  }
}

// f'(x) (the factor gy is multiplied by), from x or y.
template <int OP>
inline V grad8(V x, V y) {
  const V one = set1(1.f);
  switch (OP) {
    case kExp: return y;
    case kLog: return div(one, x);
    case kSqrt: return div(set1(0.5f), y);
    case kRsqrt: return mul(mul(y, mul(y, y)), set1(-0.5f));
    case kTanh: return _mm256_fnmadd_ps(y, y, one);  // 1 − y² in one rounding
    case kGelu: {
      V g;
      const V cdf = normal_cdf_ps(x, g);
      return fma(mul(x, g), set1(static_cast<float>(kInvSqrt2Pi)), cdf);
    }
    case kGeluTanh: {  // s + x·s(1−s)·2u'; u' from the clamped x (s(1−s) is 0 beyond it)
      V s, oms;
      gelu_tanh_sigmoid(x, s, oms);
      const V xc = clamp(x, -30.f, 30.f);
      const V du2 = mul(set1(static_cast<float>(2 * kGeluK)),
                        fma(mul(xc, xc), set1(static_cast<float>(3 * kGeluC)), one));
      return fma(mul(x, mul(s, oms)), du2, s);
    }
    case kSilu: {
      V s, oms;
      sigmoid_pair(x, s, oms);
      return mul(s, fma(x, oms, one));
    }
    case kNeg: return set1(-1.f);
    case kAbs: {  // ±1, or 0 at 0 and NaN
      const V nz = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_OQ);
      return _mm256_and_ps(nz, _mm256_or_ps(one, _mm256_and_ps(x, sign_bit())));
    }
    case kSigmoid: return mul(y, sub(one, y));
    case kRelu: return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), one);
    default: return add(x, x);
  }
}

// gx = gy·f'(x). rsqrt multiplies gy·(−y/2) by y twice: y³ alone overflows for tiny x.
template <int OP>
inline V bwd8(V x, V y, V gy) {
  if (OP == kRsqrt) return mul(mul(mul(gy, mul(y, set1(-0.5f))), y), y);
  return mul(gy, grad8<OP>(x, y));
}

template <int OP>
void fwd_avx2(const float* x, float* o, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // two independent vectors per step for more overlap
    const V a = fwd8<OP>(_mm256_loadu_ps(x + i)), b = fwd8<OP>(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(o + i, a);
    _mm256_storeu_ps(o + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, fwd8<OP>(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(buf, fwd8<OP>(_mm256_loadu_ps(buf)));
    std::memcpy(o + i, buf, (n - i) * sizeof(float));
  }
}

template <int OP>
void bwd_avx2(const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V a = bwd8<OP>(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), _mm256_loadu_ps(gy + i));
    const V b = bwd8<OP>(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8),
                         _mm256_loadu_ps(gy + i + 8));
    _mm256_storeu_ps(gx + i, a);
    _mm256_storeu_ps(gx + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(gx + i, bwd8<OP>(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i),
                                      _mm256_loadu_ps(gy + i)));
  }
  if (i < n) {
    float bx[8] = {1, 1, 1, 1, 1, 1, 1, 1}, by[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float bg[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const size_t bytes = (n - i) * sizeof(float);
    std::memcpy(bx, x + i, bytes);
    std::memcpy(by, y + i, bytes);
    std::memcpy(bg, gy + i, bytes);
    _mm256_storeu_ps(bg, bwd8<OP>(_mm256_loadu_ps(bx), _mm256_loadu_ps(by), _mm256_loadu_ps(bg)));
    std::memcpy(gx + i, bg, bytes);
  }
}

#pragma GCC pop_options

// ---- dispatch ---------------------------------------------------------------------------------

using FwdFn = void (*)(const float*, float*, int64_t);
using BwdFn = void (*)(const float*, const float*, const float*, float*, int64_t);

struct Impl {
  FwdFn fwd;
  BwdFn bwd;
  int64_t grain;  // elements per thread chunk: smaller for the costly ops
};

template <int OP>
Impl impl(bool avx2) {
  const bool costly = OP == kExp || OP == kLog || OP == kTanh || OP == kGelu ||
                      OP == kGeluTanh || OP == kSilu || OP == kSigmoid;
  if (avx2) return {fwd_avx2<OP>, bwd_avx2<OP>, costly ? 4096 : 32768};
  return {fwd_portable<OP>, bwd_portable<OP>, costly ? 1024 : 32768};
}

Impl lookup(int op, bool avx2) {
  switch (op) {
    case kExp: return impl<kExp>(avx2);
    case kLog: return impl<kLog>(avx2);
    case kSqrt: return impl<kSqrt>(avx2);
    case kRsqrt: return impl<kRsqrt>(avx2);
    case kTanh: return impl<kTanh>(avx2);
    case kGelu: return impl<kGelu>(avx2);
    case kGeluTanh: return impl<kGeluTanh>(avx2);
    case kSilu: return impl<kSilu>(avx2);
    case kNeg: return impl<kNeg>(avx2);
    case kAbs: return impl<kAbs>(avx2);
    case kSigmoid: return impl<kSigmoid>(avx2);
    case kRelu: return impl<kRelu>(avx2);
    default: return impl<kSquare>(avx2);
  }
}

int read_op(const Args& A) {
  const double op = A.number(0, "op");
  A.need(op >= 0 && op < kNumOps && op == std::floor(op), "unknown op " + Args::fmt(op));
  return static_cast<int>(op);
}

// unary(op, x, out)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args A(info, "unary");
  const int op = read_op(A);
  auto x = A.f32(1, "x"), out = A.f32(2, "out");
  A.length("out", out.n, x.n);
  const Impl f = lookup(op, cpu_isa() != Isa::Portable);
  parallel_for(x.n, f.grain, [&](int64_t i0, int64_t i1) { f.fwd(x.p + i0, out.p + i0, i1 - i0); });
  return info.Env().Undefined();
}

// unaryBackward(op, x, y, gy, gx)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Args A(info, "unaryBackward");
  const int op = read_op(A);
  auto x = A.f32(1, "x"), y = A.f32(2, "y"), gy = A.f32(3, "gy"), gx = A.f32(4, "gx");
  A.length("y", y.n, x.n);
  A.length("gy", gy.n, x.n);
  A.length("gx", gx.n, x.n);
  const Impl f = lookup(op, cpu_isa() != Isa::Portable);
  parallel_for(x.n, f.grain, [&](int64_t i0, int64_t i1) {
    f.bwd(x.p + i0, y.p + i0, gy.p + i0, gx.p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

}  // namespace

void InitUnary(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward));
}

}  // namespace ew
}  // namespace kdqat
