// Internal header of the 'elementwise' family (native/elementwise*.cc): argument checks
// (args.h), the per-ISA loop table and the per-file Init functions.
#pragma once
#include "args.h"
#include "common.h"

#include <cmath>
#include <cstdint>
#include <string>

namespace kdqat {
namespace ew {

using kdqat::Args;  // args.h: the one validator
using kdqat::Buf;

// Largest rank the strided kernels (binary, stridedCopy) accept.
constexpr int kMaxRank = 32;

// Dimensions of a strided loop over two stride sets (binary: a and b; stridedCopy: src and
// dst), outermost first.
struct Strided2 {
  int r = 0;
  int64_t n[kMaxRank];
  int64_t s0[kMaxRank];
  int64_t s1[kMaxRank];

  // Drops size-1 dims and merges neighbours that are contiguous in both stride sets. The
  // row-major visiting order of the elements does not change.
  void coalesce() {
    int w = 0;
    for (int d = 0; d < r; d++) {
      if (n[d] == 1) continue;
      if (w > 0 && s0[w - 1] == s0[d] * n[d] && s1[w - 1] == s1[d] * n[d]) {
        n[w - 1] *= n[d];
        s0[w - 1] = s0[d];
        s1[w - 1] = s1[d];
      } else {
        n[w] = n[d];
        s0[w] = s0[d];
        s1[w] = s1[d];
        w++;
      }
    }
    if (w == 0) {  // a single element
      n[0] = 1;
      s0[0] = s1[0] = 0;
      w = 1;
    }
    r = w;
  }
};

// Reads shape and two stride arrays (checked: same rank ≤ kMaxRank, dims ≥ 0); returns the
// element count.
inline int64_t read_shape(const Args& A, const Buf<int32_t>& shape, const Buf<int32_t>& st0,
                          const Buf<int32_t>& st1, Strided2& d) {
  if (st0.n != shape.n || st1.n != shape.n)
    throw A.range_error("strides have rank " + std::to_string(st0.n) + " and " +
                  std::to_string(st1.n) + ", shape has rank " + std::to_string(shape.n));
  if (shape.n > kMaxRank)
    throw A.range_error("rank " + std::to_string(shape.n) + " exceeds " + std::to_string(kMaxRank));
  d.r = static_cast<int>(shape.n);
  double total = 1;  // in double: a product of int32 dims cannot overflow it
  for (int i = 0; i < d.r; i++) {
    if (shape.p[i] < 0) throw A.range_error("negative dimension " + std::to_string(shape.p[i]));
    d.n[i] = shape.p[i];
    d.s0[i] = st0.p[i];
    d.s1[i] = st1.p[i];
    total *= static_cast<double>(d.n[i]);
  }
  if (total > 281474976710656.0) throw A.range_error("shape has more than 2^48 elements");
  return static_cast<int64_t>(total);
}

// Checks that base + idx·s stays inside [0, len) over every index of n (total > 0).
inline void check_span(const Args& A, const char* what, int64_t len, int64_t base, int r,
                       const int64_t* n, const int64_t* s) {
  double lo = static_cast<double>(base), hi = lo;  // double: no overflow for any strides
  for (int i = 0; i < r; i++) {
    const double ext = static_cast<double>(s[i]) * static_cast<double>(n[i] - 1);
    if (ext < 0) lo += ext; else hi += ext;
  }
  if (lo < 0 || hi >= len)
    throw A.range_error(std::string(what) + " offsets [" + Args::fmt(lo) + ", " + Args::fmt(hi) +
                  "] fall outside its length " + std::to_string(len));
}

// Walks the multi-index of the first r dims of n in row-major order, tracking the offsets
// idx·s0 and idx·s1.
struct Odometer {
  int r;
  const int64_t* n;
  const int64_t* s0;
  const int64_t* s1;
  int64_t idx[kMaxRank];
  int64_t o0 = 0, o1 = 0;

  Odometer(int r_, const int64_t* n_, const int64_t* s0_, const int64_t* s1_)
      : r(r_), n(n_), s0(s0_), s1(s1_) {}

  void seek(int64_t flat) {
    o0 = o1 = 0;
    for (int d = r - 1; d >= 0; d--) {
      idx[d] = flat % n[d];
      flat /= n[d];
      o0 += idx[d] * s0[d];
      o1 += idx[d] * s1[d];
    }
  }
  void next() {
    for (int d = r - 1; d >= 0; d--) {
      o0 += s0[d];
      o1 += s1[d];
      if (++idx[d] < n[d]) return;
      o0 -= s0[d] * n[d];
      o1 -= s1[d] * n[d];
      idx[d] = 0;
    }
  }
};

// Width of the column ranges that column-parallel kernels (reduce over n with inner > 1,
// scatterAdd) hand to each task when outer alone cannot keep the threads busy: about two tasks
// per thread, a multiple of 16 floats, at least 64.
inline int64_t column_chunk(int64_t inner) {
  const int64_t t = num_threads();
  int64_t c = (inner + 2 * t - 1) / (2 * t);
  c = (c + 15) / 16 * 16;
  return c < 64 ? 64 : c;
}

// UnOp codes of src/tensor/kernels.ts.
enum UnaryOp { kExp, kLog, kSqrt, kRsqrt, kTanh, kGelu, kGeluTanh, kSilu, kNeg, kAbs, kSigmoid,
               kRelu, kSquare, kNumUnaryOps };

constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/√(2π)
constexpr double kGeluK = 0.79788456080286535588;       // √(2/π)
constexpr double kGeluC = 0.044715;

using UnaryFwd = void (*)(const float* x, float* out, int64_t n);
using UnaryBwd = void (*)(const float* x, const float* y, const float* gy, float* gx, int64_t n);

// gatedUnary: out = f(g)·u; its backward: gu = gy·f(g), gg = (gy·u)·f'(g) (f(g) recomputed).
using GatedFwd = void (*)(const float* g, const float* u, float* out, int64_t n);
using GatedBwd = void (*)(const float* g, const float* u, const float* gy, float* gg, float* gu,
                          int64_t n);

// The unary, unaryBackward, gatedUnary and gatedUnaryBackward bodies of one instruction set,
// indexed by UnaryOp.
struct UnaryKernels {
  UnaryFwd fwd[kNumUnaryOps];
  UnaryBwd bwd[kNumUnaryOps];
  GatedFwd gated_fwd[kNumUnaryOps];
  GatedBwd gated_bwd[kNumUnaryOps];
  int64_t grain_costly, grain_cheap;  // elements per thread chunk (costly: exp, log, tanh, …)
};
constexpr bool unary_costly(int op) {
  return op == kExp || op == kLog || op == kTanh || op == kGelu || op == kGeluTanh ||
         op == kSilu || op == kSigmoid;
}
// The portable path (elementwise_unary.cc): the reference formulas in double, rounded once.
extern const UnaryKernels kUnaryPortable;

// The family's table, one per instruction set (native/elementwise_loops.cc): the simple loops of
// native/elementwise_loops.inc, compiled for baseline x86-64 (SSE2, the portable path), avx2+fma
// and avx512 (the compiler vectorizes each at its width), plus the unary bodies (the portable
// f64 path, or native/elementwise_unary_simd.inc over the simd.h traits). The loops do the same
// float operations in the same order in every build, so they agree bit for bit across ISAs;
// the unary vector paths agree with each other lane for lane (not with the portable path).
struct Loops {
  // o[i] = a[i·sa] op b[i·sb], i < n.
  void (*binary_row)(int op, const float* a, int64_t sa, const float* b, int64_t sb, float* o,
                     int64_t n);
  void (*affine)(const float* x, float* o, int64_t n, float alpha, float beta);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // dst[i·ds] (=|+=) src[i·ss], i < n, in order (ds may be 0).
  void (*copy_row)(const float* src, int64_t ss, float* dst, int64_t ds, int64_t n, bool acc);
  // dst[i·dr + j] (=|+=) src[i + j·sr] for i < ni, j < nj (a 2-D transpose, tiled).
  void (*transpose)(const float* src, int64_t sr, float* dst, int64_t dr, int64_t ni,
                    int64_t nj, bool acc);
  // Σ x[i] in double: 16 interleaved partial sums combined in a fixed order.
  double (*sum_f64)(const float* x, int64_t n);
  // acc[i] += x[i] (double accumulators of a column reduce).
  void (*add_f64)(double* acc, const float* x, int64_t n);
  // m[i] = max(m[i], x[i]) where a NaN, once there, stays.
  void (*max_into)(float* m, const float* x, int64_t n);
  // max of x[0..n), n ≥ 1; NaN if any element is NaN.
  float (*max_row)(const float* x, int64_t n);
  int64_t (*count_nonfinite)(const float* x, int64_t n);
  // Dropout for elements [i0, i0+n): u < thr (as uint32 hashes) drops; thr ≤ 2^32 − 1.
  void (*dropout)(const float* x, float* out, float* mask, int64_t n, int64_t i0, uint32_t seed,
                  uint32_t thr, bool drop_all, float scale);
  const UnaryKernels* unary;
};

const Loops& loops();  // the table for cpu_isa(), chosen once (dispatch.h)

void InitUnary(Napi::Env env, Napi::Object exports);
void InitReduce(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);

}  // namespace ew
}  // namespace kdqat
