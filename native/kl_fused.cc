// The top-K teacher KL (src/tensor/kernels.ts topkKl; TypeScript reference in
// src/backend/ref/topk-kl.ts): per row, the student's logsumexp over the row and over the tail
// (the ids excluded), the (K+1)-bucket KL and, when asked, the logit gradient (q − p̃)/τ. Plain
// C++ (one code path: the O(V) passes are exp-bound and small next to the head's GEMMs), float
// exponentials, sums in double; rows are split over the thread pool.
#include "args.h"
#include "common.h"

#include <cmath>
#include <string>
#include <vector>

namespace kdqat {

// topkKl(s, ids, tz, tlse, ttail, loss, gloss, gs, rows, V, K, tau)
static Napi::Value TopkKl(const Napi::CallbackInfo& info) {
  const Args a(info, "topkKl", 12);
  const int64_t rows = a.dim(8, "rows"), V = a.dim(9, "V", 1), K = a.dim(10, "K", 1);
  a.need(K <= V, "K must be at most V, got K " + std::to_string(K) + ", V " + std::to_string(V));
  const double tau = a.positive(11, "tau");
  const int64_t rv = a.mul(rows, V), rk = a.mul(rows, K);
  const float* s = a.f32(0, "s", rv);
  const int32_t* ids = a.i32(1, "ids", rk);
  const float* tz = a.f32(2, "tz", rk);
  const float* tlse = a.f32(3, "tlse", rows);
  const float* ttail = a.f32(4, "ttail", rows);
  float* loss = a.f32(5, "loss", rows);
  float* gs = a.f32_opt(7, "gs", rv);
  const float* gloss = gs ? a.f32(6, "gloss", rows) : a.f32_opt(6, "gloss", rows);
  for (int64_t i = 0; i < rows * K; i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw a.range_error("row " + std::to_string(i / K) + ": token id " +
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
  return info.Env().Undefined();
}

void InitKlFused(Napi::Env env, Napi::Object exports) {
  exports.Set("topkKl", Napi::Function::New(env, TopkKl));
}

}  // namespace kdqat
