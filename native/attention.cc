// Kernel family 'attention' (see src/tensor/kernels.ts for the contract): Node-API wrappers,
// argument validation, work splitting and ISA dispatch. The compute lives in
// attention_impl.inc / attention_backward.inc, built for AVX2 and portable.
#include "attention_kernels.h"
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace kdqat {
namespace attn {

float* thread_scratch(size_t n) {
  struct Buf {
    float* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (buf.n < n) {
    std::free(buf.p);
    buf.p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
    buf.n = buf.p ? n : 0;
    if (!buf.p) throw std::bad_alloc();
  }
  return buf.p;
}

size_t forward_scratch(const Params& p) {
  const int64_t Tp = p.Tp(), Dp = p.Dp();
  return static_cast<size_t>(p.D * Tp + p.T * Dp + Tp + kRT * Tp + kRT * Dp);
}

size_t backward_scratch(const Params& p) {
  const int64_t Tp = p.Tp(), Dp = p.Dp();
  return static_cast<size_t>(p.D * Tp + p.T * Dp + Tp + 2 * kQB * Dp + 2 * kQB * Tp + kRT * Dp +
                             2 * p.T * Dp);
}

}  // namespace attn

namespace {

using attn::Params;

[[noreturn]] void range_error(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

int64_t dim_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min) {
  const Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= static_cast<double>(min)) || x > 2147483647.0 || x != std::floor(x))
    range_error(info.Env(), std::string(name) + " must be an integer >= " + std::to_string(min));
  return static_cast<int64_t>(x);
}

// A Float32Array argument of exactly n elements (or null when nullable).
float* f32_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t n,
               bool nullable) {
  const Napi::Value v = info[i];
  if (nullable && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array" +
                                               (nullable ? " or null" : ""));
  if (static_cast<int64_t>(f32_len(v)) != n)
    range_error(info.Env(), std::string(name) + " has length " + std::to_string(f32_len(v)) +
                                ", expected " + std::to_string(n));
  return f32(v);
}

const int32_t* mask_arg(const Napi::CallbackInfo& info, size_t i, int64_t n) {
  const Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "keyMask must be an Int32Array or null");
  if (static_cast<int64_t>(i32_len(v)) != n)
    range_error(info.Env(), "keyMask has length " + std::to_string(i32_len(v)) +
                                ", expected " + std::to_string(n));
  return i32(v);
}

int64_t mul(Napi::Env env, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (int64_t(1) << 50)) range_error(env, "attention: sizes too large");
  return r;
}

// Element counts of the buffers, checked against overflow: q/out (B,T,H,D), k/v (B,T,Hkv,D),
// probs/scores (B,H,T,T).
struct Sizes { int64_t nq, nkv, np; };

// Reads B, T, H, Hkv, D, scale, causal starting at argument `i`; returns the buffer sizes.
Sizes shape_args(const Napi::CallbackInfo& info, size_t i, Params& p) {
  p.B = dim_arg(info, i, "B", 0);
  p.T = dim_arg(info, i + 1, "T", 0);
  p.H = dim_arg(info, i + 2, "H", 1);
  p.Hkv = dim_arg(info, i + 3, "Hkv", 1);
  p.D = dim_arg(info, i + 4, "D", 1);
  if (p.H % p.Hkv != 0)
    range_error(info.Env(), "attention: H = " + std::to_string(p.H) +
                                " is not a multiple of Hkv = " + std::to_string(p.Hkv));
  if (!info[i + 5].IsNumber()) throw Napi::TypeError::New(info.Env(), "scale must be a number");
  p.scale = static_cast<float>(num(info[i + 5]));
  p.causal = flag(info[i + 6]);
  Napi::Env env = info.Env();
  return {mul(env, mul(env, mul(env, p.B, p.T), p.H), p.D),
          mul(env, mul(env, mul(env, p.B, p.T), p.Hkv), p.D),
          mul(env, mul(env, mul(env, p.B, p.H), p.T), p.T)};
}

bool use_avx2() { return cpu_isa() != Isa::Portable; }

// Optional sliding window (argument absent or undefined = 0 = none).
// The kernels mask keys below the window as −∞ before scaling, which needs scale > 0.
int64_t window_arg(const Napi::CallbackInfo& info, size_t i, float scale) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return 0;
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "attention: window must be a number");
  const double w = info[i].As<Napi::Number>().DoubleValue();
  if (!(w >= 0) || w != std::floor(w) || w > 9.0e15)
    range_error(info.Env(), "attention: window = " + std::to_string(w) + " must be an integer >= 0 (0 = none)");
  if (w > 0 && !(scale > 0)) range_error(info.Env(), "attention: a window needs scale > 0");
  return static_cast<int64_t>(w);
}

// attention(q, k, v, out, probs, scores, B, T, H, Hkv, D, scale, causal, keyMask[, window])
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Params p;
  const auto [nq, nkv, np] = shape_args(info, 6, p);
  p.q = f32_arg(info, 0, "q", nq, false);
  p.k = f32_arg(info, 1, "k", nkv, false);
  p.v = f32_arg(info, 2, "v", nkv, false);
  p.out = f32_arg(info, 3, "out", nq, false);
  p.probs = f32_arg(info, 4, "probs", np, true);
  p.scores = f32_arg(info, 5, "scores", np, true);
  p.key_mask = mask_arg(info, 13, p.B * p.T);
  p.window = window_arg(info, 14, p.scale);
  if (p.B == 0 || p.T == 0) return env.Undefined();
  // Tasks: (b, h, query block); a grain of ≥ ~64k multiply-adds keeps tiny calls serial.
  const int64_t ntasks = p.B * p.H * p.nqb();
  const double work = 2.0 * static_cast<double>(std::min(attn::kQB, p.T) * p.T) * p.D;
  const int64_t grain = static_cast<int64_t>(std::max(1.0, std::ceil(65536.0 / work)));
  const bool avx2 = use_avx2();
  parallel_for(ntasks, grain, [&](int64_t begin, int64_t end) {
    if (avx2) attn::avx2::forward_tasks(p, begin, end);
    else attn::portable::forward_tasks(p, begin, end);
  });
  return env.Undefined();
}

// attentionBackward(q, k, v, probs, gout, gProbs, gScores, gq, gk, gv,
//                   B, T, H, Hkv, D, scale, causal, keyMask[, window])
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Params p;
  const auto [nq, nkv, np] = shape_args(info, 10, p);
  p.q = f32_arg(info, 0, "q", nq, false);
  p.k = f32_arg(info, 1, "k", nkv, false);
  p.v = f32_arg(info, 2, "v", nkv, false);
  p.probs = f32_arg(info, 3, "probs", np, false);
  p.gout = f32_arg(info, 4, "gout", nq, false);
  p.gprobs = f32_arg(info, 5, "gProbs", np, true);
  p.gscores = f32_arg(info, 6, "gScores", np, true);
  p.gq = f32_arg(info, 7, "gq", nq, false);
  p.gk = f32_arg(info, 8, "gk", nkv, false);
  p.gv = f32_arg(info, 9, "gv", nkv, false);
  p.key_mask = mask_arg(info, 17, p.B * p.T);
  p.window = window_arg(info, 18, p.scale);
  if (p.B == 0 || p.T == 0) return env.Undefined();
  // A task owns (b, kv head), accumulating dK/dV itself. With fewer than 8 such pairs their
  // query blocks are dealt to `parts` tasks (≥ 2 blocks each) with private dK/dV buffers,
  // summed afterwards in part order. `parts` depends only on the shapes, so results do not
  // depend on the thread count.
  const int64_t pairs = p.B * p.Hkv;
  p.parts = pairs >= 8 ? 1 : std::max<int64_t>(1, std::min((p.nqb() + 1) / 2, (8 + pairs - 1) / pairs));
  thread_local std::vector<float> partials;  // reused across calls of this JS thread
  if (p.parts > 1) {
    partials.resize(static_cast<size_t>(pairs * p.parts * 2 * p.T * p.Dp()));
    p.partials = partials.data();
  }
  const double work = 4.0 * static_cast<double>(p.G() * p.T * p.T) * p.D / p.parts;
  const int64_t grain = static_cast<int64_t>(std::max(1.0, std::ceil(65536.0 / work)));
  const bool avx2 = use_avx2();
  parallel_for(pairs * p.parts, grain, [&](int64_t begin, int64_t end) {
    if (avx2) attn::avx2::backward_tasks(p, begin, end);
    else attn::portable::backward_tasks(p, begin, end);
  });
  if (p.parts > 1) {
    parallel_for(pairs * p.T, std::max<int64_t>(1, 16384 / p.D), [&](int64_t begin, int64_t end) {
      if (avx2) attn::avx2::reduce_partials(p, begin, end);
      else attn::portable::reduce_partials(p, begin, end);
    });
  }
  return env.Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
}

const char* attention_isa() { return use_avx2() ? "avx2" : "portable"; }

}  // namespace kdqat
