// reduce (sum, max) and reduceMaxBackward over the middle axis of x viewed as (outer, n, inner).
//
// Sums accumulate in double. Each output is always computed by one fixed sequence of operations
// whatever the thread count (threads split outputs, or fixed-size blocks of a long row whose
// partial sums are then added in block order), so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "elementwise.h"

namespace kdqat {
namespace ew {
namespace {

constexpr int64_t kRowBlock = 16384;  // a row sum is Σ over blocks of sum_f64(block)

struct Shape3 {
  int64_t outer, n, inner;
};

Shape3 read_shape3(const Args& A, size_t i) {
  const Shape3 s{A.count(i, "outer"), A.count(i + 1, "n"), A.count(i + 2, "inner")};
  A.need(static_cast<double>(s.outer) * s.n * s.inner < 9007199254740992.0, "size too large");
  return s;
}

// Sum of one row (inner == 1) as block partials added in order.
double row_sum(const Loops& L, const float* x, int64_t n) {
  double s = 0;
  for (int64_t b = 0; b < n; b += kRowBlock) s += L.sum_f64(x + b, std::min(kRowBlock, n - b));
  return s;
}

void reduce_rows(const Loops& L, bool is_max, const float* x, float* out, int64_t outer,
                 int64_t n) {
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  if (!is_max && outer < num_threads() && blocks > 1) {
    // Few long rows: split each row into its blocks, then add the partials in order.
    std::vector<double> part(outer * blocks);
    parallel_for(outer * blocks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t o = t / blocks, b = (t % blocks) * kRowBlock;
        part[t] = L.sum_f64(x + o * n + b, std::min(kRowBlock, n - b));
      }
    });
    for (int64_t o = 0; o < outer; o++) {
      double s = 0;
      for (int64_t b = 0; b < blocks; b++) s += part[o * blocks + b];
      out[o] = static_cast<float>(s);
    }
    return;
  }
  parallel_for(outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t o = o0; o < o1; o++) {
                   const float* r = x + o * n;
                   out[o] = is_max ? L.max_row(r, n) : static_cast<float>(row_sum(L, r, n));
                 }
               });
}

// Splits (outer, inner) into tasks of (o, column chunk): whole rows when outer alone keeps
// the threads busy, else column chunks. Each output column is still reduced in order of j.
template <typename Fn>
void for_column_tasks(int64_t outer, int64_t n, int64_t inner, Fn fn) {
  const int64_t chunk = outer >= num_threads() ? inner : column_chunk(inner);
  const int64_t per = (inner + chunk - 1) / chunk;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(n * std::min(chunk, inner), 1));
  parallel_for(outer * per, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / per, c0 = (t % per) * chunk;
      fn(o, c0, std::min(inner, c0 + chunk));
    }
  });
}

void reduce_cols(const Loops& L, bool is_max, const float* x, float* out, int64_t outer,
                 int64_t n, int64_t inner) {
  for_column_tasks(outer, n, inner, [&](int64_t o, int64_t c0, int64_t c1) {
    const float* base = x + o * n * inner;
    float* dst = out + o * inner + c0;
    const int64_t w = c1 - c0;
    if (is_max) {
      std::copy(base + c0, base + c1, dst);
      for (int64_t j = 1; j < n; j++) L.max_into(dst, base + j * inner + c0, w);
      return;
    }
    thread_local std::vector<double> acc;
    acc.assign(w, 0.0);
    for (int64_t j = 0; j < n; j++) L.add_f64(acc.data(), base + j * inner + c0, w);
    for (int64_t c = 0; c < w; c++) dst[c] = static_cast<float>(acc[c]);
  });
}

// reduce(op, x, out, outer, n, inner)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Args A(info, "reduce");
  const double op = A.number(0, "op");
  A.need(op == 0 || op == 1, "unknown op " + Args::fmt(op));
  const bool is_max = op == 1;
  auto x = A.f32_buf(1, "x"), out = A.f32_buf(2, "out");
  const Shape3 s = read_shape3(A, 3);
  A.need(!is_max || s.n > 0 || s.outer * s.inner == 0, "max over an empty axis");
  A.length("x", x.n, s.outer * s.n * s.inner);
  A.length("out", out.n, s.outer * s.inner);
  if (s.outer * s.inner == 0) return info.Env().Undefined();
  const Loops& L = loops();
  if (s.n == 0) {
    std::fill(out.p, out.p + out.n, 0.f);
  } else if (s.inner == 1) {
    reduce_rows(L, is_max, x.p, out.p, s.outer, s.n);
  } else {
    reduce_cols(L, is_max, x.p, out.p, s.outer, s.n, s.inner);
  }
  return info.Env().Undefined();
}

// reduceMaxBackward(x, gy, gx, outer, n, inner): gy goes to the first index attaining the max
// (or the first NaN), the same rule as the reference's argmax.
Napi::Value ReduceMaxBackward(const Napi::CallbackInfo& info) {
  Args A(info, "reduceMaxBackward");
  auto x = A.f32_buf(0, "x"), gy = A.f32_buf(1, "gy"), gx = A.f32_buf(2, "gx");
  const Shape3 s = read_shape3(A, 3);
  A.length("x", x.n, s.outer * s.n * s.inner);
  A.length("gx", gx.n, s.outer * s.n * s.inner);
  A.length("gy", gy.n, s.outer * s.inner);
  std::fill(gx.p, gx.p + gx.n, 0.f);
  if (s.n == 0 || s.outer * s.inner == 0) return info.Env().Undefined();
  const int64_t n = s.n, inner = s.inner;
  for_column_tasks(s.outer, n, inner, [&](int64_t o, int64_t c0, int64_t c1) {
    const float* base = x.p + o * n * inner;
    thread_local std::vector<float> m;
    thread_local std::vector<int64_t> k;
    const int64_t w = c1 - c0;
    m.assign(base + c0, base + c1);
    k.assign(w, 0);
    for (int64_t j = 1; j < n; j++) {
      const float* row = base + j * inner + c0;
      for (int64_t c = 0; c < w; c++) {
        const float v = row[c], cur = m[c];
        if (v > cur || (v != v && cur == cur)) {
          m[c] = v;
          k[c] = j;
        }
      }
    }
    float* g = gx.p + o * n * inner;
    for (int64_t c = 0; c < w; c++) g[k[c] * inner + c0 + c] = gy.p[o * inner + c0 + c];
  });
  return info.Env().Undefined();
}

}  // namespace

void InitReduce(Napi::Env env, Napi::Object exports) {
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("reduceMaxBackward", Napi::Function::New(env, ReduceMaxBackward));
}

}  // namespace ew
}  // namespace kdqat
