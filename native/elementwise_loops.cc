// Builds the two loop tables of native/elementwise.h from native/elementwise_loops.inc.
#include <cstdint>
#include <cstring>
#include <limits>

#include <immintrin.h>

#include "dispatch.h"
#include "elementwise.h"

namespace kdqat {
namespace ew {

namespace portable {
#include "elementwise_loops.inc"
const Loops table = {binary_row, affine,   axpy,    copy_row,        transpose, sum_f64,
                     add_f64,    max_into, max_row, count_nonfinite, dropout};
}  // namespace portable

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "elementwise_loops.inc"

// dst[i·dr + j] (=|+=) src[i + j·sr] on one 8×8 tile: 8 loads along i, an in-register
// transpose (unpack, shuffle, 128-bit permute), 8 stores along j.
inline void tile8(const float* src, int64_t sr, float* dst, int64_t dr, bool acc) {
  __m256 r[8], t[8];
  for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(src + k * sr);
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; k++) {
    t[k] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
    t[k + 4] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
  }
  for (int k = 0; k < 8; k++) {
    float* d = dst + k * dr;
    _mm256_storeu_ps(d, acc ? _mm256_add_ps(_mm256_loadu_ps(d), t[k]) : t[k]);
  }
}

// The 8×8 tiles, with the ragged edges done by the scalar tiled loop.
void transpose_avx2(const float* src, int64_t sr, float* dst, int64_t dr, int64_t ni,
                    int64_t nj, bool acc) {
  const int64_t ni8 = ni / 8 * 8, nj8 = nj / 8 * 8;
  // Pairs of tiles along i use whole 64-byte lines of src.
  for (int64_t i0 = 0; i0 < ni8; i0 += 16) {
    for (int64_t j0 = 0; j0 < nj8; j0 += 8) {
      tile8(src + i0 + j0 * sr, sr, dst + i0 * dr + j0, dr, acc);
      if (i0 + 8 < ni8) tile8(src + i0 + 8 + j0 * sr, sr, dst + (i0 + 8) * dr + j0, dr, acc);
    }
  }
  if (nj8 < nj) transpose(src + nj8 * sr, sr, dst + nj8, dr, ni8, nj - nj8, acc);
  if (ni8 < ni) transpose(src + ni8, sr, dst + ni8 * dr, dr, ni - ni8, nj, acc);
}

const Loops table = {binary_row, affine,   axpy,    copy_row,        transpose_avx2, sum_f64,
                     add_f64,    max_into, max_row, count_nonfinite, dropout};
}  // namespace avx2
#pragma GCC pop_options

// No AVX-512 table: these loops are memory-bound and the unary kernels
// (elementwise_unary_avx2.cc) have no 512-bit body yet, so an AVX-512 CPU runs the AVX2 table.
static const Dispatch<Loops>& dispatch() {
  static const Dispatch<Loops> d(&portable::table, &avx2::table, nullptr);
  return d;
}
const Loops& portable_loops() { return portable::table; }
const Loops& avx2_loops() { return avx2::table; }
const Loops& loops() { return dispatch().ops(); }

}  // namespace ew

// The unary kernels (elementwise_unary.cc) pick their build from the same table.
const char* elementwise_isa() { return ew::dispatch().name(); }

}  // namespace kdqat
