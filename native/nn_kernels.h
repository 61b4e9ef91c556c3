// Compute bodies of the 'nn' and 'optim' families, one table per instruction set (nn_isa.cc).
// Every entry works on a range of rows (or elements) on the calling thread; the Node-API
// wrappers (nn.cc, optim.cc) validate arguments and split the work with parallel_for.
// Row r of an (rows, n) buffer starts at r·n. Nullable pointers are marked /*opt*/.
#pragma once
#include <cstdint>

namespace kdqat::nn {

struct Ops {
  // (rows, n) row-wise ops over rows [r0, r1).
  void (*softmax)(const float* x, float* y, int64_t r0, int64_t r1, int64_t n);
  void (*softmax_bwd)(const float* y, const float* gy, float* gx, int64_t r0, int64_t r1,
                      int64_t n);
  void (*log_softmax)(const float* x, float* y, int64_t r0, int64_t r1, int64_t n);
  void (*log_softmax_bwd)(const float* y, const float* gy, float* gx, int64_t r0, int64_t r1,
                          int64_t n);
  void (*layer_norm)(const float* x, const float* w /*opt*/, const float* b /*opt*/, float* y,
                     float* mean, float* rstd, int64_t r0, int64_t r1, int64_t n, double eps);
  // Writes gx; adds Σ_rows gy·x̂ to pw and Σ_rows gy to pb (each (n), /*opt*/).
  void (*layer_norm_bwd)(const float* x, const float* w /*opt*/, const float* mean,
                         const float* rstd, const float* gy, float* gx, float* pw /*opt*/,
                         float* pb /*opt*/, int64_t r0, int64_t r1, int64_t n);
  void (*rms_norm)(const float* x, const float* w, float* y, float* rstd, int64_t r0,
                   int64_t r1, int64_t n, double eps);
  // Writes gx; adds Σ_rows gy·x·rstd to pw (n).
  void (*rms_norm_bwd)(const float* x, const float* w, const float* rstd, const float* gy,
                       float* gx, float* pw, int64_t r0, int64_t r1, int64_t n);
  // Rows are the (b, t, h) triples in order, each of length D; t = (row / H) % T.
  void (*rope)(const float* x, float* y, const float* cos, const float* sin, int64_t r0,
               int64_t r1, int64_t T, int64_t H, int64_t D, bool inverse);
  void (*cross_entropy)(const float* z, const int32_t* tgt, float* loss, float* lse, int64_t r0,
                        int64_t r1, int64_t V, int32_t ignore);
  void (*cross_entropy_bwd)(const float* z, const int32_t* tgt, const float* lse,
                            const float* gloss, float* gz, int64_t r0, int64_t r1, int64_t V,
                            int32_t ignore);
  void (*kl_div)(const float* t, const float* s, float* loss, int64_t r0, int64_t r1, int64_t V,
                 double tau);
  void (*kl_div_bwd)(const float* t, const float* s, const float* gloss, float* gs,
                     float* gt /*opt*/, int64_t r0, int64_t r1, int64_t V, double tau);
  // One row of the attention-map KL (probKl): Σ_j p_j·ln(max(p_j, fe)/max(q_j, fe)) over
  // p_j ≠ 0, in double; and its gradient g_j = c·p_j/q_j where q_j ≥ fe, else 0.
  double (*prob_kl_row)(const float* p, const float* q, int64_t n, float fe);
  void (*prob_kl_bwd_row)(const float* p, const float* q, float* g, int64_t n, float c, float fe);
  // dst[j] += Σ_{p < nparts} parts[p·n + j] for j in [c0, c1), summed in order p = 0, 1, ...
  void (*add_partials)(const float* parts, int64_t nparts, float* dst, int64_t c0, int64_t c1,
                       int64_t n);
  // Σ (a_i − b_i)² (b /*opt*/: Σ a_i²) over [0, n), in double.
  double (*sum_sq)(const float* a, const float* b, int64_t n);

  // ---- optim, elementwise over [i0, i1) ----
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1,
                float decay, float beta1, float one_minus_beta1, float beta2,
                float one_minus_beta2, float sqrt_bc2, float eps, float step);
  void (*sgd)(float* p, const float* g, float* buf /*opt*/, int64_t i0, int64_t i1, float lr,
              float momentum, float wd);
};

// Rows per parallel_for chunk so that one chunk holds about `work` elements of n each.
inline int64_t row_grain(int64_t n, int64_t work = 16384) {
  return n >= work ? 1 : work / (n > 0 ? n : 1);
}

// The table chosen once for cpu_isa() (dispatch.h): avx512, avx2 or portable.
const Ops& ops();
// The table the 'optim' family (adamw, sgd, sumSquares) runs: the same as ops().
const Ops& optim_ops();

// Σ (a_i − b_i)² (b /*opt*/: Σ a_i²) in double over the thread pool; fixed 16384-element chunks
// summed in order, so the result does not depend on the thread count (nn.cc).
double sum_sq_parallel(const Ops& ops, const float* a, const float* b, int64_t n);

}  // namespace kdqat::nn
