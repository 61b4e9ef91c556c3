// The top-K teacher (src/tensor/kernels.ts topkLogits, topkKl; TypeScript reference in
// src/backend/ref/topk-kl.ts). topkLogits: per row, the K largest logits by a selection over
// packed (value, id) keys and the row's logsumexp and tail mass. topkKl: per row, the student's
// logsumexp over the row and over the tail (the ids excluded), the (K+1)-bucket KL and, when
// asked, the logit gradient (q − p̃)/τ. Plain C++ (one code path: the O(V) passes are exp-bound
// and small next to the head's GEMMs), sums in double; rows are split over the thread pool, each
// row computed whole by one thread, so the results do not depend on the thread count.
#include "args.h"
#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace kdqat {

// A key whose descending unsigned order is topkLogits' order: larger value first (NaN above
// +Infinity, −0 equal to +0), then lower id. High 32 bits: the float's bits made monotone
// (sign-magnitude → offset binary); low 32 bits: ~id, so that among equal values the lower id
// is the larger key. Distinct ids make the keys distinct: a strict total order.
static inline uint64_t rank_key(float v, int64_t id) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if (v != v) u = 0xffffffffu;                        // every NaN: above +Infinity (0xff800000)
  else if (u == 0x80000000u) u = 0x80000000u;         // −0 → the key of +0
  else u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(u) << 32) | (0xffffffffu - static_cast<uint32_t>(id));
}

// topkLogits(z, ids, vals, lse, logTail, rows, V, K, tau)
static Napi::Value TopkLogits(const Napi::CallbackInfo& info) {
  const Args a(info, "topkLogits", 9);
  const int64_t rows = a.dim(5, "rows"), V = a.dim(6, "V", 1);
  const double kd = a.number(7, "K");
  a.need(kd >= 1 && kd <= static_cast<double>(V) && kd == std::floor(kd),
         "K must be an integer from 1 to V = " + std::to_string(V) + ", got " + Args::fmt(kd));
  const int64_t K = static_cast<int64_t>(kd);
  const double tau = a.number(8, "tau");
  a.need(tau > 0 && std::isfinite(tau), "temperature must be a positive number, got " + Args::fmt(tau));
  const int64_t rv = a.mul(rows, V), rk = a.mul(rows, K);
  const float* z = a.f32(0, "z", rv);
  int32_t* ids = a.i32(1, "ids", rk);
  float* vals = a.f32(2, "vals", rk);
  float* lse = a.f32(3, "lse", rows);
  float* logTail = a.f32(4, "logTail", rows);
  parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> keys(V);
    std::vector<uint8_t> top(V, 0);
    for (int64_t r = r0; r < r1; r++) {
      const float* zr = z + r * V;
      for (int64_t j = 0; j < V; j++) keys[j] = rank_key(zr[j], j);
      if (K < V) std::nth_element(keys.begin(), keys.begin() + (K - 1), keys.end(), std::greater<uint64_t>());
      std::sort(keys.begin(), keys.begin() + K, std::greater<uint64_t>());
      for (int64_t i = 0; i < K; i++) {
        const int64_t id = 0xffffffffu - static_cast<uint32_t>(keys[i]);
        ids[r * K + i] = static_cast<int32_t>(id);
        vals[r * K + i] = zr[id];
      }
      // The reference's float64 arithmetic: m = max z/τ, then Σ e^{z/τ − m} over the row and
      // over the tail in index order (one pass computing both; the same additions in the same
      // order as the reference's two passes).
      double m = -INFINITY;
      bool nan = false;
      for (int64_t j = 0; j < V; j++) {
        const double x = static_cast<double>(zr[j]) / tau;
        nan |= x != x;
        m = x > m ? x : m;
      }
      if (nan || !(m > -INFINITY && m < INFINITY)) {  // no distribution
        lse[r] = logTail[r] = NAN;
        continue;
      }
      for (int64_t i = 0; i < K; i++) top[ids[r * K + i]] = 1;
      double sum = 0, tail = 0;
      for (int64_t j = 0; j < V; j++) {
        const double e = std::exp(static_cast<double>(zr[j]) / tau - m);
        sum += e;
        if (!top[j]) tail += e;
      }
      for (int64_t i = 0; i < K; i++) top[ids[r * K + i]] = 0;
      lse[r] = static_cast<float>(m + std::log(sum));
      logTail[r] = static_cast<float>(tail > 0 ? std::log(tail) - std::log(sum) : -INFINITY);
    }
  });
  return info.Env().Undefined();
}

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

// One code path (plain C++ for baseline x86-64): isaInfo reports the family as portable only.
const char* topk_isa() { return isa_name(Isa::Portable); }

void InitKlFused(Napi::Env env, Napi::Object exports) {
  exports.Set("topkLogits", Napi::Function::New(env, TopkLogits));
  exports.Set("topkKl", Napi::Function::New(env, TopkKl));
}

}  // namespace kdqat
