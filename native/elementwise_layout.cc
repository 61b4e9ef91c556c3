// stridedCopy, gather and scatterAdd.
//
// Accumulating kernels never let two threads add into the same element, and every element
// receives its contributions in the reference's order, so results are bitwise those of the
// reference and do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "elementwise.h"

namespace kdqat {
namespace ew {
namespace {

// True if the last two dims of d are a 2-D transpose (dst contiguous along the last, src along
// the one before) whose (i, j) ↦ dst map is injective, so that a tiled visiting order gives
// the same result as row-major order.
bool is_transpose(const Strided2& d) {
  const int r = d.r;
  return r >= 2 && d.s1[r - 1] == 1 && d.s0[r - 1] != 1 && d.s0[r - 2] == 1 &&
         d.s1[r - 2] >= d.n[r - 1] && d.n[r - 1] >= 8 && d.n[r - 2] >= 8;
}

// Copies over the coalesced dims d (s0: src strides, s1: dst strides) in row-major order.
void copy_dims(const Loops& L, const float* src, float* dst, const Strided2& dd, bool acc) {
  Strided2 d = dd;
  const int r = d.r;
  if (r >= 2 && !is_transpose(d)) {
    // The other orientation (src contiguous along the last dim, dst along the one before) is
    // the same transpose with the last two dims swapped.
    Strided2 e = d;
    std::swap(e.n[r - 1], e.n[r - 2]);
    std::swap(e.s0[r - 1], e.s0[r - 2]);
    std::swap(e.s1[r - 1], e.s1[r - 2]);
    if (is_transpose(e)) d = e;
  }
  if (is_transpose(d)) {
    Odometer it(r - 2, d.n, d.s0, d.s1);
    it.seek(0);
    int64_t count = 1;
    for (int i = 0; i < r - 2; i++) count *= d.n[i];
    for (int64_t k = 0; k < count; k++, it.next())
      L.transpose(src + it.o0, d.s0[r - 1], dst + it.o1, d.s1[r - 2], d.n[r - 2], d.n[r - 1], acc);
    return;
  }
  Odometer it(r - 1, d.n, d.s0, d.s1);
  it.seek(0);
  int64_t rows = 1;
  for (int i = 0; i < r - 1; i++) rows *= d.n[i];
  for (int64_t k = 0; k < rows; k++, it.next())
    L.copy_row(src + it.o0, d.s0[r - 1], dst + it.o1, d.s1[r - 1], d.n[r - 1], acc);
}

// A dim q whose dst ranges are disjoint for distinct indices (|stride| larger than the span of
// all other dims), so threads can split it; -1 if none. Prefers one with plenty of indices.
int parallel_dim(const Strided2& d) {
  const int64_t want = 4 * num_threads();
  int best = -1;
  for (int q = 0; q < d.r; q++) {
    if (d.n[q] < 2) continue;
    double span = 0;
    for (int e = 0; e < d.r; e++)
      if (e != q) span += std::fabs(static_cast<double>(d.s1[e])) * static_cast<double>(d.n[e] - 1);
    if (std::fabs(static_cast<double>(d.s1[q])) <= span) continue;
    if (d.n[q] >= want) return q;
    if (best < 0 || d.n[q] > d.n[best]) best = q;
  }
  return best;
}

// stridedCopy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate)
Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  Args A(info, "stridedCopy");
  auto src = A.f32_buf(0, "src");
  const int64_t src_off = A.count(1, "srcOffset");
  auto src_st = A.i32_buf(2, "srcStrides");
  auto dst = A.f32_buf(3, "dst");
  const int64_t dst_off = A.count(4, "dstOffset");
  auto dst_st = A.i32_buf(5, "dstStrides");
  auto shape = A.i32_buf(6, "shape");
  const bool acc = A.flag(7);
  Strided2 d;  // s0: src strides, s1: dst strides
  const int64_t total = read_shape(A, shape, src_st, dst_st, d);
  if (total == 0) return info.Env().Undefined();
  check_span(A, "src", src.n, src_off, d.r, d.n, d.s0);
  check_span(A, "dst", dst.n, dst_off, d.r, d.n, d.s1);
  d.coalesce();
  const Loops& L = loops();
  const float* s = src.p + src_off;
  float* t = dst.p + dst_off;
  const int q = total >= 65536 ? parallel_dim(d) : -1;
  if (q < 0 || num_threads() == 1) {
    copy_dims(L, s, t, d, acc);
    return info.Env().Undefined();
  }
  const int64_t per_index = total / d.n[q];
  parallel_for(d.n[q], std::max<int64_t>(1, 32768 / per_index), [&](int64_t i0, int64_t i1) {
    Strided2 part = d;
    part.n[q] = i1 - i0;
    copy_dims(L, s + i0 * d.s0[q], t + i0 * d.s1[q], part, acc);
  });
  return info.Env().Undefined();
}

struct Indexed {
  Buf<int32_t> idx;
  int64_t outer, n, inner;
};

// Reads idx, outer, n, inner and checks every index is in [0, n).
Indexed read_indexed(const Args& A) {
  Indexed r{A.i32_buf(1, "idx"), A.count(3, "outer"), A.count(4, "n"), A.count(5, "inner")};
  const double rows = static_cast<double>(std::max(r.n, r.idx.n));
  A.need(static_cast<double>(r.outer) * rows * r.inner < 9007199254740992.0, "size too large");
  for (int64_t j = 0; j < r.idx.n; j++) {
    const int32_t v = r.idx.p[j];
    if (v < 0 || v >= r.n)
      throw A.range_error("index " + std::to_string(v) + " at position " + std::to_string(j) +
                    " is out of range [0, " + std::to_string(r.n) + ")");
  }
  return r;
}

// gather(x, idx, out, outer, n, inner): out(o, j, :) = x(o, idx[j], :)
Napi::Value Gather(const Napi::CallbackInfo& info) {
  Args A(info, "gather");
  auto x = A.f32_buf(0, "x"), out = A.f32_buf(2, "out");
  const Indexed g = read_indexed(A);
  const int64_t m = g.idx.n, inner = g.inner;
  A.length("x", x.n, g.outer * g.n * inner);
  A.length("out", out.n, g.outer * m * inner);
  if (out.n == 0) return info.Env().Undefined();
  parallel_for(g.outer * m, std::max<int64_t>(1, 16384 / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t o = r / m, j = r % m;
      std::memcpy(out.p + r * inner, x.p + (o * g.n + g.idx.p[j]) * inner,
                  static_cast<size_t>(inner) * sizeof(float));
    }
  });
  return info.Env().Undefined();
}

// scatterAdd(gy, idx, gx, outer, n, inner): gx(o, idx[j], :) += gy(o, j, :), j in order.
// Tasks own whole outer slices or column ranges, never rows, so repeated indices are safe.
Napi::Value ScatterAdd(const Napi::CallbackInfo& info) {
  Args A(info, "scatterAdd");
  auto gy = A.f32_buf(0, "gy"), gx = A.f32_buf(2, "gx");
  const Indexed g = read_indexed(A);
  const int64_t m = g.idx.n, inner = g.inner, n = g.n;
  A.length("gy", gy.n, g.outer * m * inner);
  A.length("gx", gx.n, g.outer * n * inner);
  if (gy.n == 0) return info.Env().Undefined();
  const Loops& L = loops();
  const int64_t chunk = g.outer >= num_threads() ? inner : column_chunk(inner);
  const int64_t per = (inner + chunk - 1) / chunk;
  const int64_t grain = std::max<int64_t>(1, 32768 / (m * std::min(chunk, inner)));
  parallel_for(g.outer * per, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / per, c0 = (t % per) * chunk, w = std::min(inner, c0 + chunk) - c0;
      const float* from = gy.p + o * m * inner + c0;
      float* to = gx.p + o * n * inner + c0;
      for (int64_t j = 0; j < m; j++) L.copy_row(from + j * inner, 1, to + g.idx.p[j] * inner, 1, w, true);
    }
  });
  return info.Env().Undefined();
}

}  // namespace

void InitLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("stridedCopy", Napi::Function::New(env, StridedCopy));
  exports.Set("gather", Napi::Function::New(env, Gather));
  exports.Set("scatterAdd", Napi::Function::New(env, ScatterAdd));
}

}  // namespace ew
}  // namespace kdqat
