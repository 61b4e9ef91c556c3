// Kernel family 'optim' (see src/tensor/kernels.ts for the contract): Node-API wrappers; the
// elementwise compute is in nn_rows.inc (shared vector code with the 'nn' family).
#include <cmath>

#include "common.h"
#include "args.h"
#include "nn_kernels.h"

namespace kdqat {
namespace {

using nn::optim_ops;
constexpr int64_t kGrain = 32768;  // elements per chunk: small tensors stay single-threaded

// adamw(p, g, m, v, lr, beta1, beta2, eps, wd, bc1, bc2)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Args a(info, "adamw", 11);
  const int64_t n = a.f32_length(0, "p");
  float* p = a.f32(0, "p", n);
  const float* g = a.f32(1, "g", n);
  float* m = a.f32(2, "m", n);
  float* v = a.f32(3, "v", n);
  const double lr = a.number(4, "lr"), beta1 = a.number(5, "beta1");
  const double beta2 = a.number(6, "beta2"), eps = a.number(7, "eps");
  const double wd = a.number(8, "wd"), bc1 = a.number(9, "bc1"), bc2 = a.number(10, "bc2");
  if (!(bc1 > 0) || !(bc2 > 0)) throw a.range_error("bias corrections bc1, bc2 must be > 0");
  // Scalars rounded to float once, as PyTorch does when it applies a Python float to a
  // float32 tensor.
  const float decay = static_cast<float>(1.0 - lr * wd);
  const float b1 = static_cast<float>(beta1), c1 = static_cast<float>(1.0 - beta1);
  const float b2 = static_cast<float>(beta2), c2 = static_cast<float>(1.0 - beta2);
  const float sbc2 = static_cast<float>(std::sqrt(bc2));
  const float step = static_cast<float>(lr / bc1);
  const float e = static_cast<float>(eps);
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
    optim_ops().adamw(p, g, m, v, i0, i1, decay, b1, c1, b2, c2, sbc2, e, step);
  });
  return info.Env().Undefined();
}

// sgd(p, g, buf, lr, momentum, wd)
Napi::Value Sgd(const Napi::CallbackInfo& info) {
  Args a(info, "sgd", 6);
  const int64_t n = a.f32_length(0, "p");
  float* p = a.f32(0, "p", n);
  const float* g = a.f32(1, "g", n);
  float* buf = a.f32_opt(2, "buf", n);
  const float lr = static_cast<float>(a.number(3, "lr"));
  const float momentum = static_cast<float>(a.number(4, "momentum"));
  const float wd = static_cast<float>(a.number(5, "wd"));
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
    optim_ops().sgd(p, g, buf, i0, i1, lr, momentum, wd);
  });
  return info.Env().Undefined();
}

// sumSquares(x) → number
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquares", 1);
  const int64_t n = a.f32_length(0, "x");
  return Napi::Number::New(info.Env(), nn::sum_sq_parallel(optim_ops(), a.f32(0, "x", n), nullptr, n));
}

}  // namespace

void InitOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("sgd", Napi::Function::New(env, Sgd));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
}

}  // namespace kdqat
