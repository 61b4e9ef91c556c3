// Kernel family 'nn' (see src/tensor/kernels.ts for the contract): Node-API wrappers that
// check arguments and split rows over the thread pool. The compute is in nn_rows.inc.
//
// Determinism: row-wise results never depend on the thread count. Weight gradients (gw, gb)
// are summed per fixed block of rows (the block size depends only on `rows`) and the block
// partials are added in block order, so they do not depend on the thread count either.
#include <algorithm>
#include <string>
#include <vector>

#include "common.h"
#include "args.h"
#include "nn_kernels.h"

namespace kdqat {
namespace nn {

double sum_sq_parallel(const Ops& ops, const float* a, const float* b, int64_t n) {
  constexpr int64_t kChunk = 16384;  // fixed: the partial sums do not depend on thread count
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(chunks);
  parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i = c * kChunk;
      part[c] = ops.sum_sq(a + i, b ? b + i : nullptr, std::min(kChunk, n - i));
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

namespace {

using Info = const Napi::CallbackInfo&;

// (rows, n) → (rows, n) kernels: softmax, logSoftmax.
template <void (*Ops::*F)(const float*, float*, int64_t, int64_t, int64_t)>
Napi::Value RowMap(Info info, const char* fn) {
  Args a(info, fn, 4);
  const int64_t rows = a.dim(2, "rows"), n = a.dim(3, "n"), len = a.mul(rows, n);
  const float* x = a.f32(0, "x", len);
  float* y = a.f32(1, "out", len);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) { (ops().*F)(x, y, r0, r1, n); });
  return info.Env().Undefined();
}

// (y, gy) → gx kernels: softmaxBackward, logSoftmaxBackward.
template <void (*Ops::*F)(const float*, const float*, float*, int64_t, int64_t, int64_t)>
Napi::Value RowBackward(Info info, const char* fn) {
  Args a(info, fn, 5);
  const int64_t rows = a.dim(3, "rows"), n = a.dim(4, "n"), len = a.mul(rows, n);
  const float* y = a.f32(0, "y", len);
  const float* gy = a.f32(1, "gy", len);
  float* gx = a.f32(2, "gx", len);
  parallel_for(rows, row_grain(n),
               [&](int64_t r0, int64_t r1) { (ops().*F)(y, gy, gx, r0, r1, n); });
  return info.Env().Undefined();
}

Napi::Value Softmax(Info info) { return RowMap<&Ops::softmax>(info, "softmax"); }
Napi::Value LogSoftmax(Info info) { return RowMap<&Ops::log_softmax>(info, "logSoftmax"); }
Napi::Value SoftmaxBackward(Info info) {
  return RowBackward<&Ops::softmax_bwd>(info, "softmaxBackward");
}
Napi::Value LogSoftmaxBackward(Info info) {
  return RowBackward<&Ops::log_softmax_bwd>(info, "logSoftmaxBackward");
}

// Runs fn(r0, r1, part) over fixed blocks of rows, part = the block's (n) partial-sum row in
// each of `bufs` (zeroed), then adds the partials of every block, in block order, to dst.
// Fixed blocks make the weight gradients independent of the thread count.
void blocked_rows(int64_t rows, int64_t n, std::vector<float*> dst,
                  const std::function<void(int64_t, int64_t, std::vector<float*>&)>& fn) {
  const int64_t rb = std::max<int64_t>(32, (rows + 255) / 256);  // ≤ 256 blocks
  const int64_t blocks = (rows + rb - 1) / rb;
  std::vector<std::vector<float>> parts;
  for (float* d : dst) parts.emplace_back(d ? blocks * n : 0, 0.0f);
  parallel_for(blocks, std::max<int64_t>(1, row_grain(n) / rb), [&](int64_t b0, int64_t b1) {
    std::vector<float*> p(dst.size());
    for (int64_t blk = b0; blk < b1; blk++) {
      for (size_t i = 0; i < dst.size(); i++) p[i] = dst[i] ? parts[i].data() + blk * n : nullptr;
      fn(blk * rb, std::min(rows, (blk + 1) * rb), p);
    }
  });
  for (size_t i = 0; i < dst.size(); i++) {
    if (!dst[i]) continue;
    parallel_for(n, 4096, [&](int64_t c0, int64_t c1) {
      ops().add_partials(parts[i].data(), blocks, dst[i], c0, c1, n);
    });
  }
}

// layerNorm(x, w, b, out, mean, rstd, rows, n, eps)
Napi::Value LayerNorm(Info info) {
  Args a(info, "layerNorm", 9);
  const int64_t rows = a.dim(6, "rows"), n = a.dim(7, "n"), len = a.mul(rows, n);
  const double eps = a.number(8, "eps");
  const float* x = a.f32(0, "x", len);
  const float* w = a.f32_opt(1, "w", n);
  const float* b = a.f32_opt(2, "b", n);
  float* out = a.f32(3, "out", len);
  float* mean = a.f32(4, "mean", rows);
  float* rstd = a.f32(5, "rstd", rows);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    ops().layer_norm(x, w, b, out, mean, rstd, r0, r1, n, eps);
  });
  return info.Env().Undefined();
}

// layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, n)
Napi::Value LayerNormBackward(Info info) {
  Args a(info, "layerNormBackward", 10);
  const int64_t rows = a.dim(8, "rows"), n = a.dim(9, "n"), len = a.mul(rows, n);
  const float* x = a.f32(0, "x", len);
  const float* w = a.f32_opt(1, "w", n);
  const float* mean = a.f32(2, "mean", rows);
  const float* rstd = a.f32(3, "rstd", rows);
  const float* gy = a.f32(4, "gy", len);
  float* gx = a.f32(5, "gx", len);
  float* gw = a.f32_opt(6, "gw", n);
  float* gb = a.f32_opt(7, "gb", n);
  blocked_rows(rows, n, {gw, gb}, [&](int64_t r0, int64_t r1, std::vector<float*>& p) {
    ops().layer_norm_bwd(x, w, mean, rstd, gy, gx, p[0], p[1], r0, r1, n);
  });
  return info.Env().Undefined();
}

// rmsNorm(x, w, out, rstd, rows, n, eps)
Napi::Value RmsNorm(Info info) {
  Args a(info, "rmsNorm", 7);
  const int64_t rows = a.dim(4, "rows"), n = a.dim(5, "n"), len = a.mul(rows, n);
  const double eps = a.number(6, "eps");
  const float* x = a.f32(0, "x", len);
  const float* w = a.f32(1, "w", n);
  float* out = a.f32(2, "out", len);
  float* rstd = a.f32(3, "rstd", rows);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    ops().rms_norm(x, w, out, rstd, r0, r1, n, eps);
  });
  return info.Env().Undefined();
}

// rmsNormBackward(x, w, rstd, gy, gx, gw, rows, n)
Napi::Value RmsNormBackward(Info info) {
  Args a(info, "rmsNormBackward", 8);
  const int64_t rows = a.dim(6, "rows"), n = a.dim(7, "n"), len = a.mul(rows, n);
  const float* x = a.f32(0, "x", len);
  const float* w = a.f32(1, "w", n);
  const float* rstd = a.f32(2, "rstd", rows);
  const float* gy = a.f32(3, "gy", len);
  float* gx = a.f32(4, "gx", len);
  float* gw = a.f32(5, "gw", n);
  blocked_rows(rows, n, {gw}, [&](int64_t r0, int64_t r1, std::vector<float*>& p) {
    ops().rms_norm_bwd(x, w, rstd, gy, gx, p[0], r0, r1, n);
  });
  return info.Env().Undefined();
}

// rope(x, out, cos, sin, B, T, H, D, inverse)
Napi::Value Rope(Info info) {
  Args a(info, "rope", 9);
  const int64_t B = a.dim(4, "B"), T = a.dim(5, "T"), H = a.dim(6, "H"), D = a.dim(7, "D");
  if (D % 2 != 0) throw a.range_error("D must be even, got " + std::to_string(D));
  const int64_t rows = a.mul(a.mul(B, T), H), len = a.mul(rows, D);
  const float* x = a.f32(0, "x", len);
  float* out = a.f32(1, "out", len);
  // The tables may be longer (a precomputed (maxT, D) table); rows [0, T) are used.
  const float* cs = a.f32(2, "cos", a.mul(T, D), true);
  const float* sn = a.f32(3, "sin", a.mul(T, D), true);
  const bool inverse = a.flag(8);
  parallel_for(rows, row_grain(D, 32768), [&](int64_t r0, int64_t r1) {
    ops().rope(x, out, cs, sn, r0, r1, T, H, D, inverse);
  });
  return info.Env().Undefined();
}

void check_targets(const Args& a, const int32_t* tgt, int64_t rows, int64_t V, int32_t ignore) {
  for (int64_t r = 0; r < rows; r++) {
    const int32_t t = tgt[r];
    if (t != ignore && (t < 0 || t >= V)) {
      throw a.range_error("target " + std::to_string(t) + " at row " + std::to_string(r) +
                          " is outside [0, " + std::to_string(V) + ") and is not ignoreIndex " +
                          std::to_string(ignore));
    }
  }
}

int32_t ignore_index(const Args& a, size_t i) {
  const double d = a.number(i, "ignoreIndex");
  if (d != std::floor(d) || d < -2147483648.0 || d > 2147483647.0) {
    throw a.range_error("ignoreIndex must be a 32-bit integer");
  }
  return static_cast<int32_t>(d);
}

// crossEntropy(logits, targets, loss, lse, rows, V, ignoreIndex)
Napi::Value CrossEntropy(Info info) {
  Args a(info, "crossEntropy", 7);
  const int64_t rows = a.dim(4, "rows"), V = a.dim(5, "V"), len = a.mul(rows, V);
  const int32_t ignore = ignore_index(a, 6);
  const float* z = a.f32(0, "logits", len);
  const int32_t* tgt = a.i32(1, "targets", rows);
  float* loss = a.f32(2, "loss", rows);
  float* lse = a.f32(3, "lse", rows);
  check_targets(a, tgt, rows, V, ignore);
  parallel_for(rows, row_grain(V), [&](int64_t r0, int64_t r1) {
    ops().cross_entropy(z, tgt, loss, lse, r0, r1, V, ignore);
  });
  return info.Env().Undefined();
}

// crossEntropyBackward(logits, targets, lse, gloss, glogits, rows, V, ignoreIndex)
Napi::Value CrossEntropyBackward(Info info) {
  Args a(info, "crossEntropyBackward", 8);
  const int64_t rows = a.dim(5, "rows"), V = a.dim(6, "V"), len = a.mul(rows, V);
  const int32_t ignore = ignore_index(a, 7);
  const float* z = a.f32(0, "logits", len);
  const int32_t* tgt = a.i32(1, "targets", rows);
  const float* lse = a.f32(2, "lse", rows);
  const float* gloss = a.f32(3, "gloss", rows);
  float* gz = a.f32(4, "glogits", len);
  check_targets(a, tgt, rows, V, ignore);
  parallel_for(rows, row_grain(V), [&](int64_t r0, int64_t r1) {
    ops().cross_entropy_bwd(z, tgt, lse, gloss, gz, r0, r1, V, ignore);
  });
  return info.Env().Undefined();
}

// klDiv(t, s, loss, rows, V, tau)
Napi::Value KlDiv(Info info) {
  Args a(info, "klDiv", 6);
  const int64_t rows = a.dim(3, "rows"), V = a.dim(4, "V"), len = a.mul(rows, V);
  const double tau = a.positive(5, "tau");
  const float* t = a.f32(0, "t", len);
  const float* s = a.f32(1, "s", len);
  float* loss = a.f32(2, "loss", rows);
  parallel_for(rows, row_grain(V, 8192),
               [&](int64_t r0, int64_t r1) { ops().kl_div(t, s, loss, r0, r1, V, tau); });
  return info.Env().Undefined();
}

// klDivBackward(t, s, gloss, gs, gt, rows, V, tau)
Napi::Value KlDivBackward(Info info) {
  Args a(info, "klDivBackward", 8);
  const int64_t rows = a.dim(5, "rows"), V = a.dim(6, "V"), len = a.mul(rows, V);
  const double tau = a.positive(7, "tau");
  const float* t = a.f32(0, "t", len);
  const float* s = a.f32(1, "s", len);
  const float* gloss = a.f32(2, "gloss", rows);
  float* gs = a.f32(3, "gs", len);
  float* gt = a.f32_opt(4, "gt", len);
  parallel_for(rows, row_grain(V, 8192), [&](int64_t r0, int64_t r1) {
    ops().kl_div_bwd(t, s, gloss, gs, gt, r0, r1, V, tau);
  });
  return info.Env().Undefined();
}

// sumSquaredDiff(a, b) → number
Napi::Value SumSquaredDiff(Info info) {
  Args a(info, "sumSquaredDiff", 2);
  const int64_t n = a.f32_length(0, "a");
  const float* x = a.f32(0, "a", n);
  const float* y = a.f32(1, "b", n);
  return Napi::Number::New(info.Env(), sum_sq_parallel(ops(), x, y, n));
}

// countNotEqual(a, b) → number of i with a[i] != b[i] (NaN != anything)
Napi::Value CountNotEqual(Info info) {
  Args a(info, "countNotEqual", 2);
  const int64_t n = a.f32_length(0, "a");
  const float* x = a.f32(0, "a", n);
  const float* y = a.f32(1, "b", n);
  constexpr int64_t kChunk = 65536;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> part(chunks);
  parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i0 = c * kChunk, i1 = std::min(n, i0 + kChunk);
      int64_t k = 0;
      for (int64_t i = i0; i < i1; i++) k += !(x[i] == y[i]);
      part[c] = k;
    }
  });
  int64_t k = 0;
  for (int64_t p : part) k += p;
  return Napi::Number::New(info.Env(), static_cast<double>(k));
}

// probKl(p, q, w, rows, n, eps) → Σ_r w_r Σ_j p_j (log max(p_j, eps) − log max(q_j, eps)).
// One vector log per target entry (of the clamped ratio; ops().prob_kl_row); zero targets
// (masked attention entries, the upper triangle of a causal map) add 0. Rows are summed per
// fixed block of kRows and the block partials added in order: the result does not depend on
// the thread count.
Napi::Value ProbKl(Info info) {
  Args a(info, "probKl", 6);
  const int64_t rows = a.dim(3, "rows"), n = a.dim(4, "n"), len = a.mul(rows, n);
  const double eps = a.positive(5, "eps");
  const float* p = a.f32(0, "p", len);
  const float* q = a.f32(1, "q", len);
  const float* w = a.f32(2, "w", rows);
  constexpr int64_t kRows = 32;
  const int64_t blocks = (rows + kRows - 1) / kRows;
  std::vector<double> part(blocks);
  const float fe = static_cast<float>(eps);
  const Ops& o = ops();
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      double s = 0;
      for (int64_t r = b * kRows; r < std::min(rows, (b + 1) * kRows); r++) {
        if (w[r] == 0.0f) continue;
        s += static_cast<double>(w[r]) * o.prob_kl_row(p + r * n, q + r * n, n, fe);
      }
      part[b] = s;
    }
  });
  double total = 0;
  for (double x : part) total += x;
  return Napi::Number::New(info.Env(), total);
}

// probKlBackward(p, q, w, g, gq, rows, n, eps): gq = −g·w_r·p/q where q ≥ eps, else 0.
Napi::Value ProbKlBackward(Info info) {
  Args a(info, "probKlBackward", 8);
  const int64_t rows = a.dim(5, "rows"), n = a.dim(6, "n"), len = a.mul(rows, n);
  const double eps = a.positive(7, "eps");
  const double g = a.number(3, "g");
  const float* p = a.f32(0, "p", len);
  const float* q = a.f32(1, "q", len);
  const float* w = a.f32(2, "w", rows);
  float* gq = a.f32(4, "gq", len);
  const float fe = static_cast<float>(eps);
  const Ops& o = ops();
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float c = static_cast<float>(-g * w[r]);
      float* gr = gq + r * n;
      if (c == 0.0f) std::fill(gr, gr + n, 0.0f);
      else o.prob_kl_bwd_row(p + r * n, q + r * n, gr, n, c, fe);
    }
  });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace nn

void InitNN(Napi::Env env, Napi::Object exports) {
  using namespace nn;
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward));
  exports.Set("logSoftmax", Napi::Function::New(env, LogSoftmax));
  exports.Set("logSoftmaxBackward", Napi::Function::New(env, LogSoftmaxBackward));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward));
  exports.Set("klDiv", Napi::Function::New(env, KlDiv));
  exports.Set("klDivBackward", Napi::Function::New(env, KlDivBackward));
  exports.Set("sumSquaredDiff", Napi::Function::New(env, SumSquaredDiff));
  exports.Set("countNotEqual", Napi::Function::New(env, CountNotEqual));
  exports.Set("probKl", Napi::Function::New(env, ProbKl));
  exports.Set("probKlBackward", Napi::Function::New(env, ProbKlBackward));
}

}  // namespace kdqat
