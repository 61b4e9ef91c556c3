// unary and unaryBackward (src/tensor/kernels.ts, UnOp codes): the N-API wrappers and the
// portable path, which evaluates the reference formulas in double with std:: functions and
// rounds once. The vector paths (AVX2, AVX-512) are native/elementwise_unary_simd.inc; the
// family's table (elementwise_loops.cc) picks one at load.
#include <cmath>
#include <cstring>
#include <utility>

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
// The same values as fwd_portable then a float product, and as the product's backward then
// bwd_portable (gy·u rounded to float first).
template <int OP>
void gated_fwd_portable(const float* g, const float* u, float* o, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = static_cast<float>(fwd_d<OP>(g[i])) * u[i];
}
template <int OP>
void gated_bwd_portable(const float* g, const float* u, const float* gy, float* gg, float* gu, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float y = static_cast<float>(fwd_d<OP>(g[i])), t = gy[i] * u[i];
    gu[i] = gy[i] * y;
    gg[i] = static_cast<float>(static_cast<double>(t) * grad_d<OP>(g[i], y));
  }
}

template <int... I>
constexpr UnaryKernels portable_table(std::integer_sequence<int, I...>) {
  return {{fwd_portable<I>...}, {bwd_portable<I>...}, {gated_fwd_portable<I>...},
          {gated_bwd_portable<I>...}, 1024, 32768};
}


int read_op(const Args& A) {
  const double op = A.number(0, "op");
  A.need(op >= 0 && op < kNumUnaryOps && op == std::floor(op), "unknown op " + Args::fmt(op));
  return static_cast<int>(op);
}

// Buffers 1… of the call (names in order): each as long as the first; runs body(i0, i1) over
// chunks of [0, n) sized for op. The four wrappers below differ only in their buffers.
template <size_t N, class Body>
void run_elementwise(const Args& A, int op, const char* const (&names)[N], Body body) {
  Buf<float> b[N];
  for (size_t i = 0; i < N; i++) b[i] = A.f32_buf(i + 1, names[i]);
  for (size_t i = 1; i < N; i++) A.length(names[i], b[i].n, b[0].n);
  const UnaryKernels& k = *loops().unary;
  parallel_for(b[0].n, unary_costly(op) ? k.grain_costly : k.grain_cheap,
               [&](int64_t i0, int64_t i1) { body(b, i0, i1); });
}

// unary(op, x, out)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args A(info, "unary");
  const int op = read_op(A);
  const UnaryFwd f = loops().unary->fwd[op];
  run_elementwise(A, op, {"x", "out"}, [&](Buf<float>* b, int64_t i0, int64_t i1) {
    f(b[0].p + i0, b[1].p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

// unaryBackward(op, x, y, gy, gx)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  Args A(info, "unaryBackward");
  const int op = read_op(A);
  const UnaryBwd f = loops().unary->bwd[op];
  run_elementwise(A, op, {"x", "y", "gy", "gx"}, [&](Buf<float>* b, int64_t i0, int64_t i1) {
    f(b[0].p + i0, b[1].p + i0, b[2].p + i0, b[3].p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

// gatedUnary(op, g, u, out)
Napi::Value GatedUnary(const Napi::CallbackInfo& info) {
  Args A(info, "gatedUnary");
  const int op = read_op(A);
  const GatedFwd f = loops().unary->gated_fwd[op];
  run_elementwise(A, op, {"g", "u", "out"}, [&](Buf<float>* b, int64_t i0, int64_t i1) {
    f(b[0].p + i0, b[1].p + i0, b[2].p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

// gatedUnaryBackward(op, g, u, gy, gg, gu)
Napi::Value GatedUnaryBackward(const Napi::CallbackInfo& info) {
  Args A(info, "gatedUnaryBackward");
  const int op = read_op(A);
  const GatedBwd f = loops().unary->gated_bwd[op];
  run_elementwise(A, op, {"g", "u", "gy", "gg", "gu"}, [&](Buf<float>* b, int64_t i0, int64_t i1) {
    f(b[0].p + i0, b[1].p + i0, b[2].p + i0, b[3].p + i0, b[4].p + i0, i1 - i0);
  });
  return info.Env().Undefined();
}

}  // namespace

const UnaryKernels kUnaryPortable = portable_table(std::make_integer_sequence<int, kNumUnaryOps>{});

void InitUnary(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward));
  exports.Set("gatedUnary", Napi::Function::New(env, GatedUnary));
  exports.Set("gatedUnaryBackward", Napi::Function::New(env, GatedUnaryBackward));
}

}  // namespace ew
}  // namespace kdqat
