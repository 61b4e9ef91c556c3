// The top-K teacher KL (src/tensor/kernels.ts topkKl; TypeScript reference in
// src/backend/ref/topk-kl.ts): per row, the student's logsumexp over the row and over the tail
// (the ids excluded), the (K+1)-bucket KL and, when asked, the logit gradient (q − p̃)/τ. Plain
// C++ (one code path: the O(V) passes are exp-bound and small next to the head's GEMMs), float
// exponentials, sums in double; rows are split over the thread pool.
#include "common.h"

#include <cmath>
#include <string>
#include <vector>

namespace kdqat {

static void Need(Napi::Env env, bool ok, const std::string& msg) {
  if (!ok) throw Napi::RangeError::New(env, "topkKl: " + msg);
}

// topkKl(s, ids, tz, tlse, ttail, loss, gloss, gs, rows, V, K, tau)
static Napi::Value TopkKl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const float* s = f32(info[0]);
  const int32_t* ids = i32(info[1]);
  const float* tz = f32(info[2]);
  const float* tlse = f32(info[3]);
  const float* ttail = f32(info[4]);
  float* loss = f32(info[5]);
  const float* gloss = f32_or_null(info[6]);
  float* gs = f32_or_null(info[7]);
  const int64_t rows = i64(info[8]), V = i64(info[9]), K = i64(info[10]);
  const double tau = num(info[11]);
  Need(env, rows >= 0 && V >= 1 && K >= 1 && K <= V, "bad sizes");
  Need(env, tau > 0 && std::isfinite(tau), "tau must be a positive finite number");
  Need(env, static_cast<int64_t>(f32_len(info[0])) == rows * V, "s has the wrong length");
  Need(env, static_cast<int64_t>(i32_len(info[1])) == rows * K, "ids has the wrong length");
  Need(env, static_cast<int64_t>(f32_len(info[2])) == rows * K, "tz has the wrong length");
  Need(env, static_cast<int64_t>(f32_len(info[3])) == rows, "tlse has the wrong length");
  Need(env, static_cast<int64_t>(f32_len(info[4])) == rows, "ttail has the wrong length");
  Need(env, static_cast<int64_t>(f32_len(info[5])) == rows, "loss has the wrong length");
  if (gs) {
    Need(env, static_cast<int64_t>(f32_len(info[7])) == rows * V, "gs has the wrong length");
    Need(env, gloss && static_cast<int64_t>(f32_len(info[6])) == rows, "gloss has the wrong length");
  }
  for (int64_t i = 0; i < rows * K; i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw Napi::RangeError::New(env, "topkKl: row " + std::to_string(i / K) + ": token id " +
                                           std::to_string(ids[i]) + " outside [0, " + std::to_string(V) + ")");
    }
  }
  const float it = static_cast<float>(1.0 / tau);
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<uint8_t> top(V, 0);
    for (int64_t r = r0; r < r1; r++) {
      const float* sr = s + r * V;
      const int32_t* ir = ids + r * K;
      const float* zr = tz + r * K;
      for (int64_t i = 0; i < K; i++) top[ir[i]] = 1;
      float m = -INFINITY, mt = -INFINITY;
      for (int64_t j = 0; j < V; j++) {
        const float v = sr[j] * it;
        m = std::fmax(m, v);
        if (!top[j]) mt = std::fmax(mt, v);
      }
      double sum = 0, tail = 0;
      for (int64_t j = 0; j < V; j++) {
        const float v = sr[j] * it;
        sum += std::exp(v - m);
        if (!top[j]) tail += std::exp(v - mt);
      }
      const double lse = m + std::log(sum);
      const double logQ = mt == -INFINITY ? -INFINITY : mt + std::log(tail) - lse;
      const double logR = ttail[r];
      double kl = 0;
      for (int64_t i = 0; i < K; i++) {
        const double lp = static_cast<double>(zr[i] * it) - tlse[r];
        if (lp == -INFINITY) continue;
        kl += std::exp(lp) * (lp - (static_cast<double>(sr[ir[i]] * it) - lse));
      }
      if (logR != -INFINITY) kl += std::exp(logR) * (logR - logQ);
      loss[r] = static_cast<float>(kl);
      if (gs) {
        float* gr = gs + r * V;
        const double c = gloss[r] / tau;
        const float ct = static_cast<float>(c), cTail = static_cast<float>(logR == -INFINITY ? c : c * (1 - std::exp(logR - logQ)));
        const float l = static_cast<float>(lse);
        for (int64_t j = 0; j < V; j++) gr[j] = (top[j] ? ct : cTail) * std::exp(sr[j] * it - l);
        for (int64_t i = 0; i < K; i++) {
          const int32_t j = ir[i];
          gr[j] = static_cast<float>(c * (std::exp(static_cast<double>(sr[j] * it) - lse) - std::exp(static_cast<double>(zr[i] * it) - tlse[r])));
        }
      }
      for (int64_t i = 0; i < K; i++) top[ir[i]] = 0;
    }
  });
  return env.Undefined();
}

void InitKlFused(Napi::Env env, Napi::Object exports) {
  exports.Set("topkKl", Napi::Function::New(env, TopkKl));
}

}  // namespace kdqat
