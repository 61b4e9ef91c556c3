// Argument checking of the GEMM entry points (gemm_args.h).
#include "gemm_args.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace kdqat {

namespace {

const float* checked_f32(const Napi::CallbackInfo& info, const char* fn, int idx, const char* name,
                         int64_t need) {
  const Napi::Value v = info[idx];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a Float32Array");
  const size_t len = f32_len(v);
  if (static_cast<int64_t>(len) < need)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name + " has " +
                                                std::to_string(len) + " elements, needs at least " +
                                                std::to_string(need));
  return f32(v);
}

int64_t checked_size(const Napi::CallbackInfo& info, const char* fn, int idx, const char* name) {
  const Napi::Value v = info[idx];
  if (!v.IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a number");
  const double d = num(v);
  if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 4e15)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name +
                                                " must be a non-negative integer, got " +
                                                v.ToString().Utf8Value());
  return static_cast<int64_t>(d);
}

}  // namespace

GemmArgs gemm_args(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 12)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected 12 arguments");
  GemmArgs g{};
  g.batch = checked_size(info, fn, 3, "batch");
  g.m = checked_size(info, fn, 4, "m");
  g.k = checked_size(info, fn, 5, "k");
  g.n = checked_size(info, fn, 6, "n");
  g.ta = flag(info[7]);
  g.tb = flag(info[8]);
  g.stride_a = checked_size(info, fn, 9, "strideA");
  g.stride_b = checked_size(info, fn, 10, "strideB");
  if (!info[11].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": beta must be a number");
  g.beta = static_cast<float>(num(info[11]));
  g.empty = g.batch == 0 || g.m == 0 || g.n == 0;
  const bool reads = !g.empty && g.k > 0;
  // Sizes are < 2^52 each; products are formed in double and capped so that no int64 overflows
  // (a need beyond any possible buffer simply fails the length check).
  auto need = [](double v) { return static_cast<int64_t>(std::min(v, 9e15)); };
  const double batch = static_cast<double>(g.batch), m = static_cast<double>(g.m);
  const double k = static_cast<double>(g.k), n = static_cast<double>(g.n);
  g.a = checked_f32(info, fn, 0, "a", reads ? need((batch - 1) * g.stride_a + m * k) : 0);
  g.b = checked_f32(info, fn, 1, "b", reads ? need((batch - 1) * g.stride_b + k * n) : 0);
  g.c = const_cast<float*>(checked_f32(info, fn, 2, "c", g.empty ? 0 : need(batch * m * n)));
  if (g.m > INT32_MAX || g.k > INT32_MAX || g.n > INT32_MAX)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": m, k and n must be below 2^31");
  return g;
}

}  // namespace kdqat
