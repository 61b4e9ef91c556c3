// Builds the three tables of the elementwise family (native/elementwise.h Loops): the loops of
// native/elementwise_loops.inc for each instruction set, the unary bodies (the portable f64 path
// of elementwise_unary.cc, or native/elementwise_unary_simd.inc over the simd.h traits) and the
// transpose tiles; dispatch.h picks one at load.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include <immintrin.h>

#include "dispatch.h"
#include "elementwise.h"
#include "simd.h"

namespace kdqat {
namespace ew {

namespace portable {
using V = simd::Portable;
#include "elementwise_loops.inc"
const Loops table = {binary_row, affine,  axpy,    copy_row,        transpose,
                     sum_f64,    add_f64, max_into, max_row,        count_nonfinite,
                     dropout,    &kUnaryPortable};
}  // namespace portable

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using V = simd::Avx2;
#include "elementwise_loops.inc"
#include "elementwise_unary_simd.inc"

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

const Loops table = {binary_row, affine,  axpy,    copy_row,        transpose_avx2,
                     sum_f64,    add_f64, max_into, max_row,        count_nonfinite,
                     dropout,    &unary};
}  // namespace avx2
#pragma GCC pop_options

// 512-bit loops: the compiler vectorizes elementwise_loops.inc at 16 lanes (prefer-vector-width
// overrides the generic tuning's 256-bit preference), the unary bodies run on simd::Avx512, and
// the transpose moves 16×16 tiles through Avx512::transpose.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,prefer-vector-width=512")
namespace avx512 {
using V = simd::Avx512;
#include "elementwise_loops.inc"
#include "elementwise_unary_simd.inc"

// dst[i·dr + j] (=|+=) src[i + j·sr] on one 16×16 tile.
inline void tile16(const float* src, int64_t sr, float* dst, int64_t dr, bool acc) {
  V::T r[16];
  for (int k = 0; k < 16; k++) r[k] = V::load(src + k * sr);
  V::transpose(r);
  for (int k = 0; k < 16; k++) {
    float* d = dst + k * dr;
    V::store(d, acc ? V::add(V::load(d), r[k]) : r[k]);
  }
}

// The 16×16 tiles, with the ragged edges done by the scalar tiled loop.
void transpose_avx512(const float* src, int64_t sr, float* dst, int64_t dr, int64_t ni,
                      int64_t nj, bool acc) {
  const int64_t ni16 = ni / 16 * 16, nj16 = nj / 16 * 16;
  for (int64_t i0 = 0; i0 < ni16; i0 += 16) {
    for (int64_t j0 = 0; j0 < nj16; j0 += 16) tile16(src + i0 + j0 * sr, sr, dst + i0 * dr + j0, dr, acc);
  }
  if (nj16 < nj) transpose(src + nj16 * sr, sr, dst + nj16, dr, ni16, nj - nj16, acc);
  if (ni16 < ni) transpose(src + ni16, sr, dst + ni16 * dr, dr, ni - ni16, nj, acc);
}

const Loops table = {binary_row, affine,  axpy,    copy_row,        transpose_avx512,
                     sum_f64,    add_f64, max_into, max_row,        count_nonfinite,
                     dropout,    &unary};
}  // namespace avx512
#pragma GCC pop_options

static const Dispatch<Loops>& dispatch() {
  static const Dispatch<Loops> d(&portable::table, &avx2::table, &avx512::table);
  return d;
}
const Loops& loops() { return dispatch().ops(); }

}  // namespace ew

// Every kernel of the family (binary, unary, reduce, layout, …) runs this one table.
const char* elementwise_isa() { return ew::dispatch().name(); }

}  // namespace kdqat
