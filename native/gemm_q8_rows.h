// matmulQ8's per-path row functions (gemm_q8_rows.cc), which gemm_q8.cc's Q8Kernel tables point
// to: the quantizer that reads A's and B's codes back from their values, and the output of a
// tile's int32 sums as floats. Each path (portable, AVX2, AVX-512) gives the same bits.
#pragma once
#include <cstdint>

#define KDQAT_Q8_AVX2 __attribute__((target("avx2,fma")))
#define KDQAT_Q8_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))

namespace kdqat::q8 {

// q[i] = code(x[i], inv, lim) for i < n (code: gemm_q8_rows.cc), every code written whether or
// not x is on the grid (matmulQ8Grad's rows are not); whether every x[i] is on the grid, i.e.
// equals fl(q[i]·s) (a NaN never is).
bool quantize_portable(const float* x, int64_t n, float inv, float s, float lim, int8_t* q);
bool quantize_avx2(const float* x, int64_t n, float inv, float s, float lim, int8_t* q);
bool quantize_avx512(const float* x, int64_t n, float inv, float s, float lim, int8_t* q);

// *r = max_i |fl(a[i]·fold[i])| for i < n (exact in any order: every path gives the same value);
// whether every product is finite (when not, *r is unspecified).
bool row_max_portable(const float* a, const float* fold, int64_t n, float* r);
bool row_max_avx2(const float* a, const float* fold, int64_t n, float* r);
bool row_max_avx512(const float* a, const float* fold, int64_t n, float* r);

// y(r, j) = fl(fl(acc(r, j) − cs_j)·sc_j) (+ bias_j, one more rounding; or, with row scales rs,
// times rs_r instead: one more rounding) for r < mr, j < nr (acc rows acc_stride apart, y rows ldy
// apart; bias and rs may be null, not both given).
void store_portable(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs, const float* sc,
                    const float* bias, const float* rs, float* y, int64_t ldy);
void store_avx2(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs, const float* sc,
                const float* bias, const float* rs, float* y, int64_t ldy);
void store_avx512(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs, const float* sc,
                  const float* bias, const float* rs, float* y, int64_t ldy);

}  // namespace kdqat::q8
