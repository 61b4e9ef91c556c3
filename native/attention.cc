// Kernel family 'attention' (see src/tensor/kernels.ts for the contract): Node-API wrappers,
// argument validation, work splitting and ISA dispatch. The compute lives in
// attention_impl.inc / attention_backward.inc, built for portable, AVX2 and AVX-512.
#include "attention_kernels.h"
#include "args.h"
#include "common.h"
#include "dispatch.h"

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

const attn::Ops kPortable = {attn::portable::forward_tasks, attn::portable::backward_tasks,
                             attn::portable::reduce_partials, 8};
const attn::Ops kAvx2 = {attn::avx2::forward_tasks, attn::avx2::backward_tasks,
                         attn::avx2::reduce_partials, 8};
const attn::Ops kAvx512 = {attn::avx512::forward_tasks, attn::avx512::backward_tasks,
                           attn::avx512::reduce_partials, 16};
const Dispatch<attn::Ops>& dispatch() {
  static const Dispatch<attn::Ops> d(&kPortable, &kAvx2, &kAvx512);
  return d;
}

// Element counts of the buffers, checked against overflow: q/out (B,T,H,D), k/v (B,T,Hkv,D),
// probs/scores (B,H,T,T).
struct Sizes { int64_t nq, nkv, np; };

// Reads B, T, H, Hkv, D, scale, causal starting at argument `i`; returns the buffer sizes.
Sizes shape_args(const Args& a, size_t i, Params& p) {
  p.B = a.dim(i, "B");
  p.T = a.dim(i + 1, "T");
  p.H = a.dim(i + 2, "H", 1);
  p.Hkv = a.dim(i + 3, "Hkv", 1);
  p.D = a.dim(i + 4, "D", 1);
  a.need(p.H % p.Hkv == 0, "H = " + std::to_string(p.H) + " is not a multiple of Hkv = " +
                               std::to_string(p.Hkv));
  p.scale = static_cast<float>(a.number(i + 5, "scale"));
  p.causal = a.flag(i + 6);
  const int64_t bt = a.mul(p.B, p.T);
  return {a.mul(a.mul(bt, p.H), p.D), a.mul(a.mul(bt, p.Hkv), p.D),
          a.mul(a.mul(a.mul(p.B, p.H), p.T), p.T)};
}

// Optional sliding window (argument absent, null or undefined = 0 = none).
// The kernels mask keys below the window as −∞ before scaling, which needs scale > 0.
int64_t window_arg(const Args& a, size_t i, float scale) {
  if (a.absent(i)) return 0;
  const int64_t w = a.count(i, "window");
  a.need(w == 0 || scale > 0, "a window needs scale > 0");
  return w;
}

// attention(q, k, v, out, probs, scores, B, T, H, Hkv, D, scale, causal, keyMask[, window])
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args a(info, "attention", 13);
  Params p;
  const auto [nq, nkv, np] = shape_args(a, 6, p);
  p.q = a.f32(0, "q", nq);
  p.k = a.f32(1, "k", nkv);
  p.v = a.f32(2, "v", nkv);
  p.out = a.f32(3, "out", nq);
  p.probs = a.f32_opt(4, "probs", np);
  p.scores = a.f32_opt(5, "scores", np);
  p.key_mask = a.i32_opt(13, "keyMask", p.B * p.T);
  p.window = window_arg(a, 14, p.scale);
  const attn::Ops& ops = dispatch().ops();
  p.w = ops.lanes;
  if (p.B == 0 || p.T == 0) return env.Undefined();
  // Tasks: (b, h, query block); a grain of ≥ ~64k multiply-adds keeps tiny calls serial.
  const int64_t ntasks = p.B * p.H * p.nqb();
  const double work = 2.0 * static_cast<double>(std::min(attn::kQB, p.T) * p.T) * p.D;
  const int64_t grain = static_cast<int64_t>(std::max(1.0, std::ceil(65536.0 / work)));
  parallel_for(ntasks, grain, [&](int64_t begin, int64_t end) { ops.forward_tasks(p, begin, end); });
  return env.Undefined();
}

// attentionBackward(q, k, v, probs, gout, gProbs, gScores, gq, gk, gv,
//                   B, T, H, Hkv, D, scale, causal, keyMask[, window])
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args a(info, "attentionBackward", 17);
  Params p;
  const auto [nq, nkv, np] = shape_args(a, 10, p);
  p.q = a.f32(0, "q", nq);
  p.k = a.f32(1, "k", nkv);
  p.v = a.f32(2, "v", nkv);
  p.probs = a.f32(3, "probs", np);
  p.gout = a.f32(4, "gout", nq);
  p.gprobs = a.f32_opt(5, "gProbs", np);
  p.gscores = a.f32_opt(6, "gScores", np);
  p.gq = a.f32(7, "gq", nq);
  p.gk = a.f32(8, "gk", nkv);
  p.gv = a.f32(9, "gv", nkv);
  p.key_mask = a.i32_opt(17, "keyMask", p.B * p.T);
  p.window = window_arg(a, 18, p.scale);
  const attn::Ops& ops = dispatch().ops();
  p.w = ops.lanes;
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
  parallel_for(pairs * p.parts, grain,
               [&](int64_t begin, int64_t end) { ops.backward_tasks(p, begin, end); });
  if (p.parts > 1) {
    parallel_for(pairs * p.T, std::max<int64_t>(1, 16384 / p.D), [&](int64_t begin, int64_t end) {
      ops.reduce_partials(p, begin, end);
    });
  }
  return env.Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
}

const char* attention_isa() { return dispatch().name(); }

}  // namespace kdqat
