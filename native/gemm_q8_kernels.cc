// matmulQ8's micro-kernels (the accumulation of a register tile over the k-groups: portable,
// AVX2, AVX512_VNNI, AMX) and the table of each ISA's pieces (gemm_q8_kernels.h); gemm_q8.cc
// describes the arithmetic and runs them.
#include "amx.h"
#include "common.h"
#include "dispatch.h"
#include "gemm_q8_kernels.h"

#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace kdqat::q8 {
namespace {

// ---- micro-kernels ----------------------------------------------------------------------------
template <int MR, int NR>
void accumulate_portable(int kw, int, const uint32_t* ap, const uint32_t* bp, int32_t* acc) {
  int32_t c[MR][NR] = {};
  for (int g = 0; g < kw; g++, ap += MR, bp += NR) {
    const uint8_t* a = reinterpret_cast<const uint8_t*>(ap);
    const int8_t* b = reinterpret_cast<const int8_t*>(bp);
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++)
        for (int t = 0; t < 4; t++) c[r][j] += a[4 * r + t] * b[4 * j + t];
  }
  std::memcpy(acc, c, sizeof c);
}

// AVX2: per k-group and row, VPMADDUBSW (u8·s8 pairs → s16, exact: |pair| ≤ 2·255·64) then
// VPMADDWD by ones (s16 pairs → s32). With s16_groups ≥ 2 (B's codes small: TWN's ±1 allows 64
// k-groups) the VPMADDUBSW results are added in s16 (VPADDW) over s16_groups k-groups, then
// widened by one VPMADDWD: per k-group and row two multiply-port instructions instead of four.
// Exact either way. MR 6 × NR 16: the s16 loop holds 12 accumulators + 2 B + 1 A + 1 product in
// the 16 ymm registers (the s32 sums wait on the stack until a run of k-groups ends); the
// s32-only loop (s16_groups 1) takes the rows three at a time. Measured on an AMD EPYC Zen 3
// (the kernel alone, TWN codes): 283 GOP/s at 4 × 16 before, 313 now (its bound there is the
// four vector pipes: 12 VPMADDUBSW + 12 VPADDW + 6 broadcasts per k-group).
constexpr int kMrAvx2 = 6, kNrAvx2 = 16;

// h += VPMADDUBSW(a, b), the add in place: written as an intrinsic, GCC adds into the product's
// register and copies it back (a move per product), or with the rows as arrays spills them.
#define KDQAT_Q8_MAC(h, a, b)                                        \
  do {                                                               \
    const __m256i prod_ = _mm256_maddubs_epi16(a, b);                \
    __asm__("vpaddw %1, %0, %0" : "+x"(h) : "x"(prod_));            \
  } while (0)

// acc rows [r0, r0 + R) of the MR-row panel, s32 sums only (each product widened at once).
template <int R>
KDQAT_Q8_AVX2 void accumulate_avx2_s32(int kw, int r0, const uint32_t* ap, const uint32_t* bp, int32_t* acc) {
  constexpr int MR = kMrAvx2;
  __m256i c0[R], c1[R];
  for (int r = 0; r < R; r++) c0[r] = c1[r] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int g = 0; g < kw; g++, ap += MR, bp += kNrAvx2) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 8));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m256i a = _mm256_set1_epi32(static_cast<int>(ap[r0 + r]));
      c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b0), ones));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b1), ones));
    }
  }
  for (int r = 0; r < R; r++) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + (r0 + r) * kNrAvx2), c0[r]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + (r0 + r) * kNrAvx2 + 8), c1[r]);
  }
}

KDQAT_Q8_AVX2 void accumulate_avx2(int kw, int s16_groups, const uint32_t* ap, const uint32_t* bp,
                                   int32_t* acc) {
  constexpr int MR = kMrAvx2, NR = kNrAvx2;
  static_assert(MR == 6, "the s16 loop below names six rows");
  if (s16_groups < 2) {
    accumulate_avx2_s32<3>(kw, 0, ap, bp, acc);
    accumulate_avx2_s32<3>(kw, 3, ap, bp, acc);
    return;
  }
  __m256i c[2 * MR];
  for (int i = 0; i < 2 * MR; i++) c[i] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int g0 = 0; g0 < kw; g0 += s16_groups) {
    const int g1 = std::min(kw, g0 + s16_groups);
    __m256i h00 = _mm256_setzero_si256(), h01 = h00, h10 = h00, h11 = h00, h20 = h00, h21 = h00,
            h30 = h00, h31 = h00, h40 = h00, h41 = h00, h50 = h00, h51 = h00;
    for (int g = g0; g < g1; g++, ap += MR, bp += NR) {
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 8));
      // Row r: broadcast its A word, then its two 16-column accumulators.
#define KDQAT_Q8_ROW(r)                                   \
  a = _mm256_set1_epi32(static_cast<int>(ap[r]));         \
  KDQAT_Q8_MAC(h##r##0, a, b0);                           \
  KDQAT_Q8_MAC(h##r##1, a, b1)
      __m256i a;
      KDQAT_Q8_ROW(0);
      KDQAT_Q8_ROW(1);
      KDQAT_Q8_ROW(2);
      KDQAT_Q8_ROW(3);
      KDQAT_Q8_ROW(4);
      KDQAT_Q8_ROW(5);
#undef KDQAT_Q8_ROW
    }
    const __m256i h[2 * MR] = {h00, h01, h10, h11, h20, h21, h30, h31, h40, h41, h50, h51};
    for (int i = 0; i < 2 * MR; i++) c[i] = _mm256_add_epi32(c[i], _mm256_madd_epi16(h[i], ones));
  }
  for (int i = 0; i < 2 * MR; i++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + i * 8), c[i]);
}
#undef KDQAT_Q8_MAC

// AVX512_VNNI: one VPDPBUSD per k-group, row and 16 columns. MR 14 × NR 32 as the fp32 kernel
// (28 accumulators + 2 B + 1 broadcast A of 32 zmm).
constexpr int kMrVnni = 14, kNrVnni = 32;
KDQAT_Q8_VNNI __attribute__((noinline)) void accumulate_vnni(int kw, int, const uint32_t* ap,
                                                             const uint32_t* bp, int32_t* acc) {
  constexpr int MR = kMrVnni;
  __m512i c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_si512();
  for (int g = 0; g < kw; g++, ap += MR, bp += kNrVnni) {
    __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 16);
    __asm__("" : "+v"(b0), "+v"(b1));  // keep the B loads at their step (see gemm_impl.h)
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(ap[r]));
      c0[r] = _mm512_dpbusd_epi32(c0[r], a, b0);
      c1[r] = _mm512_dpbusd_epi32(c1[r], a, b1);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++) {
    _mm512_storeu_si512(acc + r * kNrVnni, c0[r]);
    _mm512_storeu_si512(acc + r * kNrVnni + 16, c1[r]);
  }
}

// AMX: per 16-word block, two A tiles (rows 0–15, 16–31), two B tiles (columns 0–15, 16–31) and
// four TDPBUSD into the C tiles 0–3 (amx.h).
void accumulate_amx(int kw, int, const uint32_t* ap, const uint32_t* bp, int32_t* acc) {
  amx_configure_thread();
  amx_block_32x32<AmxU8S8>(kw / 16, reinterpret_cast<const uint8_t*>(ap), reinterpret_cast<const uint8_t*>(bp), acc);
}

const Q8Kernel kPortable{"portable", 4, 8, 128, accumulate_portable<4, 8>, quantize_portable, store_portable, row_max_portable};
const Q8Kernel kAvx2{"avx2", kMrAvx2, kNrAvx2, 126, accumulate_avx2, quantize_avx2, store_avx2, row_max_avx2};
const Q8Kernel kVnni{"avx512", kMrVnni, kNrVnni, 140, accumulate_vnni, quantize_avx512, store_avx512, row_max_avx512};
const Q8Kernel kAmx{"amx", 32, 32, 128, accumulate_amx, quantize_avx512, store_avx512, row_max_avx512, 16, true};

const Dispatch<Q8Kernel>& dispatch() {
  // The avx512 path needs AVX512_VNNI on top of the avx512 level (Skylake-SP lacks it): without
  // it the AVX2 code runs.
  static const Dispatch<Q8Kernel> d(&kPortable, &kAvx2, cpu_has("avx512vnni") ? &kVnni : nullptr);
  return d;
}
}  // namespace

const Q8Kernel& kernel() {
  static const Q8Kernel& k = amx_unavailable() ? dispatch().ops() : kAmx;
  return k;
}

}  // namespace kdqat::q8

namespace kdqat {
const char* gemm_q8_isa() { return q8::dispatch().ops().isa; }
bool gemm_q8_uses_amx() { return &q8::kernel() == &q8::kAmx; }
}  // namespace kdqat
