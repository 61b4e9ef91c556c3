// matmulQ8's and matmulQ8Grad's per-ISA pieces, which gemm_q8.cc's packing and driver run: the
// micro-kernels and their tables (gemm_q8_kernels.cc) and the row functions (gemm_q8_rows.h).
#pragma once
#include "gemm_q8_rows.h"

#include <cstdint>

namespace kdqat::q8 {

// One ISA's pieces: the register tile and the accumulation over kw 4-byte k-groups.
struct Q8Kernel {
  const char* isa;
  int mr, nr, mc;  // register tile; rows per A block (multiple of mr)
  // acc(mr, nr) int32 = Σ over kw words of the u8 A bytes × s8 B bytes (ap: (kw, mr) words, or
  // with tiled_a kw/16 blocks of (mr, 16) words; bp: (kw, nr) words). s16_groups (≥ 1): how many
  // k-groups' s16 pair sums can be added in s16 without overflow, given B's codes (s16_groups());
  // paths without s16 sums ignore it.
  void (*accumulate)(int kw, int s16_groups, const uint32_t* ap, const uint32_t* bp, int32_t* acc);
  // q[i] = code(x[i], inv, lim) (gemm_q8_rows.cc) for i < n, on the grid or not; whether every
  // x[i] is on the grid, i.e. equals fl(q[i]·s) (a NaN never is).
  bool (*quantize)(const float* x, int64_t n, float inv, float s, float lim, int8_t* q);
  // The tile's output: y = fl(fl(acc − cs_j)·sc_j) (+ bias_j, or ·rs_r) (gemm_q8_rows.h).
  void (*store)(const int32_t* acc, int mr, int nr, int acc_stride, const int32_t* cs, const float* sc,
                const float* bias, const float* rs, float* y, int64_t ldy);
  // matmulQ8Grad's row maxima: max_i |fl(a_i·fold_i)| and whether every product is finite.
  bool (*row_max)(const float* a, const float* fold, int64_t n, float* r);
  int kalign = 1;        // panels are ceil(k/4) words deep rounded up to a multiple of this
  bool tiled_a = false;  // A panels by 16-word blocks of mr rows (AMX tiles)
};
constexpr int kMaxTile = 32 * 32;  // the largest mr·nr (AMX)

// The pieces both kernels run: AMX's where amx.h allows it (an engine on top of the avx512 level,
// whose quantizer it uses), else the dispatched SIMD level's.
const Q8Kernel& kernel();

}  // namespace kdqat::q8
