// Kernel 'matmulBf16' (see src/tensor/kernels.ts for the contract): batched GEMM with bf16
// inputs and fp32 accumulation, on AVX512_BF16's VDPBF16PS (Zen 4, Intel Cooper Lake and
// Sapphire Rapids). The same driver as the fp32 SGEMM (gemm_driver.h: Goto/BLIS five loops,
// transposes handled by the packing, K slicing independent of the thread count so results are
// bitwise equal for any thread count); what differs is the packed element (kpack 2):
//
//   Packing rounds each float32 to bf16 (bf16_bits: round to nearest even, zero and subnormal
//   inputs to a signed zero, NaN kept NaN (quieted), overflow to ±Inf: VCVTNEPS2BF16's
//   definition, Intel SDM vol. 2) and stores k-pairs: element (i, 2q) in the low half of a
//   32-bit word, (i, 2q+1) in the high half; an odd k gets a zero partner. A panels are
//   (ceil(kc/2), MR) words, B panels (ceil(kc/2), NR) words.
//
//   The micro-kernel's VDPBF16PS c += a₀·b₀ + a₁·b₁ per fp32 lane is, per the SDM, two fp32
//   multiply-adds in a fixed order, each rounded to nearest even, with subnormal inputs read as
//   zero and subnormal results flushed to zero (DAZ/FTZ regardless of MXCSR). Products of two
//   bf16 values (8-bit significands) are exact in fp32 outside the under/overflow range, so a
//   K slice is a chain of one rounding per k-term, as in the fp32 kernel.
//
// On a CPU with AMX (amx.h; Sapphire Rapids and later) a second kernel runs over the same pair
// words: TDPBF16PS multiplies a (16 rows × 16 pairs) A tile by a (16 pairs × 16 columns) B tile
// into a 16×16 fp32 tile, four such products per 2×2 tile step (MR = NR = 32). Its B
// panels are this file's, 16 pair rows deeper at most; its A panels hold each 16-pair block of
// 32 rows contiguously (two 1 KiB tiles). Per the SDM TDPBF16PS is the same two rounded fp32
// multiply-adds per pair with DAZ/FTZ, but the hardware's order of the adds within a tile step
// is not VDPBF16PS's sequence (measured: ~10% of 16×32 dot products differ in the last bit from
// the sequential sum), so the results are bounded, not bitwise equal, against the reference —
// the same float32 summation bound as VDPBF16PS's (any order). KDQAT_AMX=off runs the AVX-512
// kernel instead.
//
// matmulBf16 throws (naming the reason) on a CPU without avx512_bf16 or with KDQAT_ISA below
// avx512.
#include "amx.h"
#include "common.h"
#include "gemm_args.h"
#include "gemm_bf16.h"
#include "gemm_driver.h"
#include "simd.h"

#include <immintrin.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kdqat {

const char* gemm_bf16_unavailable() {
  static const char* why = []() -> const char* {
    if (!cpu_has("avx512bf16")) return "this CPU lacks the avx512_bf16 instructions";
    if (cpu_isa() != Isa::Avx512) return "KDQAT_ISA caps the SIMD level below avx512";
    return nullptr;
  }();
  return why;
}

namespace {
using namespace bf16;

constexpr int MR = 14;   // 28 zmm accumulators + 2 B vectors + 1 broadcast (as the fp32 kernel)
constexpr int NR = 32;   // two zmm of 16 fp32 lanes
// Tuned on Zen 4 (1 thread, SmolLM2 projection shapes; GFLOP/s at KC/MC/NC 320/280/4096 →
// 1536/140/1536: 1024×576×576 181 → 206, 1024×576×1536 156 → 206, 1024×1536×576 138 → 185,
// LM head 1024×576×49152 142 → 183): each K slice costs every micro-tile a store and a reload
// of its C tile, so a slice as deep as the model's widths does that once. The B panel
// (KC/2 × NR words, 96 KiB) then lives in L2 rather than L1, which measured no slower.
constexpr int KC = 1536;  // k per slice, even
constexpr int MC = 140;   // A block rows (multiple of MR): (MC, KC) bf16 = 420 KiB in L2
constexpr int NC = 1536;  // B block columns (multiple of NR)

// float32 → bf16 bits (VCVTNEPS2BF16's conversion; the reference in src/backend/ref/gemm.ts
// bf16Round is the same function).
inline uint32_t bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7f800000u) == 0) return (x >> 16) & 0x8000u;       // zero, subnormal → ±0
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;  // NaN → quiet NaN
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;                  // RNE; Inf stays Inf
}
inline uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }

// ---- packing ----------------------------------------------------------------------------------
// One row of an A panel or column of a B panel: the kc values v[p·step] as pair words
// dst[q·Width] (q < ceil(kc/2)), 32 floats per conversion where they are contiguous (step 1).
template <int Width>
KDQAT_BF16 inline void pack_line(const float* v, int64_t step, int kc, uint32_t* dst, int q0 = 0) {
  const int kf = kc / 2;
  int q = q0;
  if (step == 1) {
    for (; 2 * q + 32 <= kc; q += 16) {
      alignas(64) uint32_t w[16];
      convert32(v + 2 * q, w);
#pragma GCC unroll 16
      for (int t = 0; t < 16; t++) dst[(q + t) * Width] = w[t];
    }
  }
  for (; q < kf; q++) dst[q * Width] = bf16_pair(v[2 * q * step], v[(2 * q + 1) * step]);
  if (kc & 1) dst[kf * Width] = bf16_pair(v[(kc - 1) * step], 0.f);
}

// X(i, p) = x[i·rs + p·cs] (mc, kc) → ceil(mc/MR) panels of (ceil(kc/2), MR) pair words, rows
// past mc and the partner of an odd last k zero. rs == 1 (A stored transposed, e.g. gᵀ of a
// weight gradient): the panel's column pair p, p+1 is two runs of MR contiguous floats,
// converted and interleaved in registers. cs == 1 (A stored (m,k)): a row's pairs are adjacent
// floats, 16 pairs per conversion. The words are bf16_bits of each element either way.
KDQAT_BF16 void pack_a(const float* x, int64_t rs, int64_t cs, int mc, int kc, uint32_t* dst) {
  static_assert(MR <= 16, "a panel column must fit one zmm");
  const int kp = (kc + 1) / 2;
  for (int i0 = 0; i0 < mc; i0 += MR, dst += static_cast<int64_t>(kp) * MR) {
    const int mr = std::min(MR, mc - i0);
    if (rs == 1) {
      const __mmask16 m = static_cast<__mmask16>((1u << mr) - 1);  // rows past mc load as 0
      const float* col = x + i0;
      for (int q = 0; q < kp; q++) {
        const float* c0 = col + 2 * q * cs;
        const __m512 lo = _mm512_maskz_loadu_ps(m, c0);
        const __m512 hi = 2 * q + 1 == kc ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, c0 + cs);
        _mm512_mask_storeu_epi32(dst + q * MR, static_cast<__mmask16>((1u << MR) - 1), interleave_pairs(lo, hi));
      }
      continue;
    }
    for (int r = 0; r < mr; r++) pack_line<MR>(x + (i0 + r) * rs, cs, kc, dst + r);
    for (int r = mr; r < MR; r++)
      for (int q = 0; q < kp; q++) dst[q * MR + r] = 0;
  }
}

// X(p, j) = x[p·rs + j·cs] (kc, nc) → ceil(nc/NR) panels of (ceil(kc/2), NR) pair words.
// cs == 1 (B stored (k,n)): rows p and p+1 are converted 16 columns at a time with
// VCVTNE2PS2BF16 and interleaved. rs == 1 (B stored (n,k), a Linear weight): each column's
// k-run is contiguous, so a pair is two adjacent floats: 16 pairs per conversion, 16 columns'
// conversions transposed in registers into 16 panel rows (the AMX GEMM 4–9% faster at SmolLM2's
// and BERT-base's x·Wᵀ shapes than with single-word stores, Intel Xeon; the same words).
// KAlign > 1 (the AMX kernel): panels round_up(ceil(kc/2), KAlign) pair rows deep, the rows past
// ceil(kc/2) zero.
template <int KAlign>
KDQAT_BF16 void pack_b(const float* x, int64_t rs, int64_t cs, int kc, int nc, uint32_t* dst) {
  const int kp = (kc + 1) / 2, kpa = (kp + KAlign - 1) / KAlign * KAlign;
  for (int j0 = 0; j0 < nc; j0 += NR, dst += static_cast<int64_t>(kpa) * NR) {
    if (kpa > kp) std::memset(dst + static_cast<int64_t>(kp) * NR, 0, sizeof(uint32_t) * NR * (kpa - kp));
    const int nr = std::min(NR, nc - j0);
    const float* src = x + j0 * cs;
    if (cs == 1) {
      for (int q = 0; q < kp; q++) {
        const float* r0 = src + 2 * q * rs;
        const float* r1 = r0 + rs;
        const bool odd = 2 * q + 1 == kc;
        for (int h = 0; h < NR; h += 16) {
          const __mmask16 m = nr - h >= 16 ? 0xffff : nr - h <= 0 ? 0 : (1u << (nr - h)) - 1;
          const __m512 lo = _mm512_maskz_loadu_ps(m, r0 + h);
          const __m512 hi = odd ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, r1 + h);
          _mm512_storeu_si512(dst + q * NR + h, interleave_pairs(lo, hi));
        }
      }
      continue;
    }
    // 16 columns × 16 pairs at a time, over whole 32-float runs: each column's 32 floats become
    // 16 pair words, and the 16 × 16 words are transposed in registers so that a panel row's 16
    // columns are one store (rather than 16 single-word stores a row apart); then the pairs
    // after the whole runs, and columns past a multiple of 16, one column at a time.
    const int kq = kc / 32 * 16;
    int j = 0;
    for (; j + 16 <= nr; j += 16) {
      for (int q = 0; q < kq; q += 16) {
        __m512 v[16];
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++) {
          const float* run = src + (j + t) * cs + 2 * q;
          v[t] = _mm512_castsi512_ps(reinterpret_cast<__m512i>(
              _mm512_cvtne2ps_pbh(_mm512_loadu_ps(run + 16), _mm512_loadu_ps(run))));
        }
        simd::Avx512::transpose(v);
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++) _mm512_storeu_ps(dst + (q + t) * NR + j, v[t]);
      }
      for (int t = 0; t < 16; t++) pack_line<NR>(src + (j + t) * cs, rs, kc, dst + j + t, kq);
    }
    for (; j < nr; j++) pack_line<NR>(src + j * cs, rs, kc, dst + j);
    for (int j = nr; j < NR; j++)
      for (int q = 0; q < kp; q++) dst[q * NR + j] = 0;
  }
}

// ---- micro-kernel -----------------------------------------------------------------------------
// acc(MR, NR) = Ap·Bp over kp pair steps; every accumulator is one VDPBF16PS chain in order q =
// 0..kp-1, the same wherever its tile lies (thread-count independence). Out of line, apart from
// the C update, for the register-allocation reason given in gemm_impl.h accumulate().
KDQAT_BF16 __attribute__((noinline)) void accumulate(int kp, const uint32_t* ap,
                                                     const uint32_t* bp, float* acc) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 32
  for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int q = 0; q < kp; q++, ap += MR, bp += NR) {
    __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 16);
    __asm__("" : "+v"(b0), "+v"(b1));  // keep the B loads at their step (see gemm_impl.h)
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
      const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(ap[r])));
      c0[r] = _mm512_dpbf16_ps(c0[r], a, reinterpret_cast<__m512bh>(b0));
      c1[r] = _mm512_dpbf16_ps(c1[r], a, reinterpret_cast<__m512bh>(b1));
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < MR; r++) {
    _mm512_storeu_ps(acc + r * NR, c0[r]);
    _mm512_storeu_ps(acc + r * NR + 16, c1[r]);
  }
}

KDQAT_BF16 void micro(int kp, const uint32_t* ap, const uint32_t* bp, float* c, int64_t ldc,
                      int mr, int nr, float beta, const float* bias) {
  alignas(64) float acc[MR * NR];
  accumulate(kp, ap, bp, acc);
  update_c(acc, NR, c, ldc, mr, nr, beta, bias);
}

KDQAT_BF16 void macro(int mc, int nc, int kc, const uint32_t* ap, const uint32_t* bp, float* c,
                      int64_t ldc, float beta, const float* bias) {
  const int kp = (kc + 1) / 2;
  for (int j = 0; j < nc; j += NR) {
    const uint32_t* b = bp + static_cast<int64_t>(j / NR) * kp * NR;
    for (int i = 0; i < mc; i += MR)
      micro(kp, ap + static_cast<int64_t>(i / MR) * kp * MR, b, c + i * ldc + j, ldc,
            std::min(MR, mc - i), std::min(NR, nc - j), beta, bias ? bias + j : nullptr);
  }
}

const PackedGemm<uint32_t> kKernel{"avx512_bf16", MR, NR, KC, MC, NC, 2, pack_a, pack_b<1>, macro};

// ---- AMX ----------------------------------------------------------------------------------------
// Tiles (amx_configure_thread: all 16 rows × 64 bytes): C 0–3 (rows 0–15 / 16–31 × columns
// 0–15 / 16–31), A 4–5 (rows 0–15 / 16–31 of a 16-pair block), B 6–7 (columns 0–15 / 16–31).
namespace amx {

constexpr int MR = 32, NR = 32;  // 2×2 C tiles
constexpr int KB = 16;           // pairs per tile step (a tile row: 16 words)
// KC 1024: an A and a B panel are 64 KiB each, streaming from L2 (MC 128 rows × KC: 256 KiB),
// and K up to 1024 is one slice, so C is written once. Measured on the Intel Xeon (AMX) with
// the variants alternated call by call (SmolLM2's and BERT-base's projections, 1 thread): KC
// 1024 against 512 +1–30% (most where 512 cut K = 576 or 768 in two), 2048 no faster than 1024;
// MC 256 mixed (−19% to +10%); prefetching the next step's A or B tiles no faster.
constexpr int KC = 1024, MC = 128, NC = 1536;

// X(i, p) = x[i·rs + p·cs] (mc, kc) → ceil(mc/32) panels of kpa = round_up(ceil(kc/2), 16) pair
// words per row, stored by 16-pair block: block b is rows 0..31 × 16 words, word (r, t) = the pair
// (2q, 2q+1) of row r for q = 16b + t; zero past mc, past ceil(kc/2) and for an odd k's partner.
// The words are bf16_bits of each element, as in the AVX-512 kernel's pack_a. rs or cs is 1.
KDQAT_BF16 void pack_a(const float* x, int64_t rs, int64_t cs, int mc, int kc, uint32_t* dst) {
  const int kp = (kc + 1) / 2, kpa = (kp + KB - 1) / KB * KB, nblk = kpa / KB;
  for (int i0 = 0; i0 < mc; i0 += MR, dst += static_cast<int64_t>(kpa) * MR) {
    const int mr = std::min(MR, mc - i0);
    if (cs == 1) {  // a row's k-run is contiguous: 32 floats → one tile row of 16 pair words
      for (int r = 0; r < MR; r++) {
        const float* row = x + (i0 + r) * rs;
        for (int b = 0; b < nblk; b++) {
          uint32_t* w = dst + (static_cast<int64_t>(b) * MR + r) * KB;
          const int left = r < mr ? kc - 32 * b : 0;  // floats of this row in the block
          if (left >= 32) {
            convert32(row + 32 * b, w);
            continue;
          }
          const __mmask16 lo = left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1;
          const __mmask16 hi = left <= 16 ? 0 : (1u << (left - 16)) - 1;
          const __m512 vlo = _mm512_maskz_loadu_ps(lo, left > 0 ? row + 32 * b : row);
          const __m512 vhi = _mm512_maskz_loadu_ps(hi, left > 16 ? row + 32 * b + 16 : row);
          _mm512_storeu_si512(w, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(vhi, vlo)));
        }
      }
      continue;
    }
    // Otherwise rs == 1 (A stored transposed: op(A) is A or Aᵀ of a dense matrix, so one of the
    // strides is 1): a column's m-run is contiguous; per pair, 16 rows at a time, scattered to
    // their tile rows.
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(KB));
    for (int q = 0; q < kpa; q++) {
      for (int h = 0; h < MR; h += 16) {
        const int rows = std::min(16, mr - h);
        const __mmask16 m = q >= kp || rows <= 0 ? 0 : rows >= 16 ? 0xffff : (1u << rows) - 1;
        const float* c0 = x + i0 + h + 2 * static_cast<int64_t>(q) * cs;
        const __m512 lo = _mm512_maskz_loadu_ps(m, m ? c0 : x);
        const __m512 hi = 2 * q + 1 >= kc ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, m ? c0 + cs : x);
        uint32_t* w = dst + (static_cast<int64_t>(q / KB) * MR + h) * KB + q % KB;
        _mm512_i32scatter_epi32(w, idx, interleave_pairs(lo, hi), 4);
      }
    }
  }
}

KDQAT_BF16 void macro(int mc, int nc, int kc, const uint32_t* ap, const uint32_t* bp, float* c,
                      int64_t ldc, float beta, const float* bias) {
  amx_configure_thread();
  const int kpa = ((kc + 1) / 2 + KB - 1) / KB * KB;
  alignas(64) float acc[MR * NR];
  for (int j = 0; j < nc; j += NR) {
    const uint32_t* b = bp + static_cast<int64_t>(j / NR) * kpa * NR;
    for (int i = 0; i < mc; i += MR) {
      // acc(32, 32) = Ap·Bp over kpa pairs, one 2×2 tile step per 16-pair block, C's rows
      // prefetched meanwhile (without it update_c took 23% of the time at 1024×576×1536; the
      // GEMM 3–16% faster with it at SmolLM2's and BERT-base's projections, Intel Xeon).
      float* ct = c + i * ldc + j;
      amx_block_32x32<AmxBf16>(kpa / KB, reinterpret_cast<const uint8_t*>(ap + static_cast<int64_t>(i / MR) * kpa * MR),
                               reinterpret_cast<const uint8_t*>(b), acc, ct, ldc * 4, std::min(MR, mc - i));
      update_c(acc, NR, ct, ldc, std::min(MR, mc - i), std::min(NR, nc - j), beta,
               bias ? bias + j : nullptr);
    }
  }
}

}  // namespace amx

// The kernel matmulBf16 runs: AMX's where amx.h allows it, else AVX512_BF16's.
const PackedGemm<uint32_t>& kernel() {
  static const PackedGemm<uint32_t> kAmx{"amx_bf16", amx::MR, amx::NR, amx::KC, amx::MC, amx::NC, 2,
                                         amx::pack_a, pack_b<amx::KB>, amx::macro, amx::KB};
  return amx_unavailable() ? kKernel : kAmx;
}

// matmulBf16(a, b, c, batch, m, k, n, transA, transB, strideA, strideB, beta)
Napi::Value MatmulBf16(const Napi::CallbackInfo& info) {
  const GemmArgs g = gemm_args(info, "matmulBf16");
  if (const char* why = gemm_bf16_unavailable())
    throw Napi::Error::New(info.Env(), std::string("matmulBf16: bf16 compute is unavailable: ") + why);
  if (!g.empty) gemm_driver::run(kernel(), g);
  return info.Env().Undefined();
}

Napi::Value Bf16Available(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), gemm_bf16_unavailable() == nullptr);
}

}  // namespace

bool gemm_bf16_uses_amx() { return kernel().macro == amx::macro; }

void InitGemmBf16(Napi::Env env, Napi::Object exports) {
  exports.Set("matmulBf16", Napi::Function::New(env, MatmulBf16));
  exports.Set("bf16Available", Napi::Function::New(env, Bf16Available));
}

}  // namespace kdqat
