// unary and unaryBackward (src/tensor/kernels.ts, UnOp codes): the N-API wrappers, the
// dispatch and the portable path, which evaluates the reference formulas in double with std::
// functions and rounds once. The AVX2 path is in elementwise_unary_avx2.cc.
#include <cmath>
#include <cstring>

#include "elementwise.h"

namespace kdqat {
namespace ew {
namespace {

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
  if (avx2) {
    Impl f{nullptr, nullptr, costly ? 4096 : 32768};
    unary_avx2(OP, f.fwd, f.bwd);
    return f;
  }
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
  A.need(op >= 0 && op < kNumUnaryOps && op == std::floor(op), "unknown op " + Args::fmt(op));
  return static_cast<int>(op);
}

// unary(op, x, out)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args A(info, "unary");
  const int op = read_op(A);
  auto x = A.f32_buf(1, "x"), out = A.f32_buf(2, "out");
  A.length("out", out.n, x.n);
  const Impl f = lookup(op, &loops() != &portable_loops());
  parallel_for(x.n, f.grain, [&](int64_t i0, int64_t i1) { f.fwd(x.p + i0, out.p + i0, i1 - i0); });
  return info.Env().Undefined();
}

// unaryBackward(op, x, y, gy, gx)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Args A(info, "unaryBackward");
  const int op = read_op(A);
  auto x = A.f32_buf(1, "x"), y = A.f32_buf(2, "y"), gy = A.f32_buf(3, "gy"), gx = A.f32_buf(4, "gx");
  A.length("y", y.n, x.n);
  A.length("gy", gy.n, x.n);
  A.length("gx", gx.n, x.n);
  const Impl f = lookup(op, &loops() != &portable_loops());
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
