// Kernel family 'elementwise' (see src/tensor/kernels.ts for the contract): binary, affine,
// axpy, dropout and countNonFinite here; unary in elementwise_unary.cc, reductions in
// elementwise_reduce.cc, copies and indexing in elementwise_layout.cc, and the vectorized
// loops they share in elementwise_loops.inc.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "elementwise.h"

namespace kdqat {

namespace {

using ew::Args;

// Elementwise work is memory-bound: split only when each thread gets ≥ 128 KB of output.
constexpr int64_t kGrain = 32768;

// binary(op, a, b, out, shape, aStrides, bStrides)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args A(info, "binary");
  const double opd = A.number(0, "op");
  A.need(opd == 0 || opd == 1 || opd == 2 || opd == 3, "unknown op " + Args::fmt(opd));
  const int op = static_cast<int>(opd);
  auto a = A.f32_buf(1, "a"), b = A.f32_buf(2, "b"), out = A.f32_buf(3, "out");
  ew::Strided2 d;  // s0: a strides, s1: b strides
  const int64_t total =
      ew::read_shape(A, A.i32_buf(4, "shape"), A.i32_buf(5, "aStrides"), A.i32_buf(6, "bStrides"), d);
  A.length("out", out.n, total);
  if (total == 0) return info.Env().Undefined();
  ew::check_span(A, "a", a.n, 0, d.r, d.n, d.s0);
  ew::check_span(A, "b", b.n, 0, d.r, d.n, d.s1);

  // After coalescing, the common cases reach binary_row's fast paths: same-shape contiguous
  // (one dim, strides 1/1), scalar b (1/0), bias row (inner 1/1, outer b stride 0), column
  // broadcast (inner 1/0); anything else runs row by row over the outer dims.
  d.coalesce();
  const ew::Loops& L = ew::loops();
  const int64_t inner = d.n[d.r - 1], sa = d.s0[d.r - 1], sb = d.s1[d.r - 1];
  const float* pa = a.p;
  const float* pb = b.p;
  float* po = out.p;
  if (d.r == 1) {
    parallel_for(inner, kGrain, [&](int64_t i0, int64_t i1) {
      L.binary_row(op, pa + i0 * sa, sa, pb + i0 * sb, sb, po + i0, i1 - i0);
    });
    return info.Env().Undefined();
  }
  const int64_t rows = total / inner;
  parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    ew::Odometer it(d.r - 1, d.n, d.s0, d.s1);
    it.seek(r0);
    for (int64_t row = r0; row < r1; row++, it.next())
      L.binary_row(op, pa + it.o0, sa, pb + it.o1, sb, po + row * inner, inner);
  });
  return info.Env().Undefined();
}

// affine(x, out, alpha, beta): out = alpha·x + beta in float32.
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Args A(info, "affine");
  auto x = A.f32_buf(0, "x"), out = A.f32_buf(1, "out");
  const float alpha = static_cast<float>(A.number(2, "alpha"));
  const float beta = static_cast<float>(A.number(3, "beta"));
  A.length("out", out.n, x.n);
  const ew::Loops& L = ew::loops();
  parallel_for(x.n, kGrain, [&](int64_t i0, int64_t i1) {
    L.affine(x.p + i0, out.p + i0, i1 - i0, alpha, beta);
  });
  return info.Env().Undefined();
}

// axpy(alpha, x, y): y += alpha·x in float32.
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Args A(info, "axpy");
  const float alpha = static_cast<float>(A.number(0, "alpha"));
  auto x = A.f32_buf(1, "x"), y = A.f32_buf(2, "y");
  A.length("y", y.n, x.n);
  const ew::Loops& L = ew::loops();
  parallel_for(x.n, kGrain, [&](int64_t i0, int64_t i1) {
    L.axpy(alpha, x.p + i0, y.p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

// dropout(x, out, mask, p, seed). Each element's mask depends only on (seed, i), so any split
// across threads gives the same bits.
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Args A(info, "dropout");
  auto x = A.f32_buf(0, "x"), out = A.f32_buf(1, "out"), mask = A.f32_buf(2, "mask");
  const double p = A.number(3, "p");
  const uint32_t seed = static_cast<uint32_t>(A.int32(4, "seed"));
  A.length("out", out.n, x.n);
  A.length("mask", mask.n, x.n);
  A.need(p >= 0 && p < 1, "p must be in [0, 1), got " + std::to_string(p));
  // u < p ⇔ hash < ⌈p·2^32⌉ (p·2^32 is exact in double). At 2^32 everything is dropped.
  const double t = std::ceil(p * 4294967296.0);
  const bool drop_all = t >= 4294967296.0;
  const uint32_t thr = drop_all ? 0u : static_cast<uint32_t>(t);
  const float scale = static_cast<float>(1.0 / (1.0 - p));  // = Math.fround(1 / (1 - p))
  const ew::Loops& L = ew::loops();
  parallel_for(x.n, 16384, [&](int64_t i0, int64_t i1) {
    L.dropout(x.p + i0, out.p + i0, mask.p + i0, i1 - i0, i0, seed, thr, drop_all, scale);
  });
  return info.Env().Undefined();
}

// countNonFinite(x) → number of NaN/±Inf entries (an integer sum, so order does not matter).
Napi::Value CountNonFinite(const Napi::CallbackInfo& info) {
  Args A(info, "countNonFinite");
  auto x = A.f32_buf(0, "x");
  const ew::Loops& L = ew::loops();
  std::atomic<int64_t> count{0};
  parallel_for(x.n, 65536, [&](int64_t i0, int64_t i1) {
    count.fetch_add(L.count_nonfinite(x.p + i0, i1 - i0), std::memory_order_relaxed);
  });
  return Napi::Number::New(info.Env(), static_cast<double>(count.load()));
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("affine", Napi::Function::New(env, Affine));
  exports.Set("axpy", Napi::Function::New(env, Axpy));
  exports.Set("dropout", Napi::Function::New(env, Dropout));
  exports.Set("countNonFinite", Napi::Function::New(env, CountNonFinite));
  ew::InitUnary(env, exports);
  ew::InitReduce(env, exports);
  ew::InitLayout(env, exports);
}

}  // namespace kdqat
