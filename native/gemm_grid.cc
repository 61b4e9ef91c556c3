// Kernel 'matmulOnGrid' (see src/tensor/kernels.ts for the contract): C = op(A)·op(B) where B
// lies on an integer grid — every stored row r of b is q·s_r with |q| ≤ 256 (one scale per row or
// one for all) — and A is any float32. These are a Linear's GEMMs with one operand on its grid
// (src/tensor/ops/matmul.ts): dX = dY·Ŵ with Ŵ TWN's α·{−1, 0, 1} or sym codes per tensor or
// output row, dW = dYᵀ·x̂ with x̂ fakeQuantInput's 8-bit codes times sa, and the forward x·Ŵᵀ of
// a weight-only Linear (transB: b = Ŵ stored (n, k), a step per output column). They run on
// AMX's bf16 tiles to float32 accuracy:
//
//   Without transB the scale of row p goes into A, a'_ip = fl(a_ip·s_p) (one rounding, as a
//   float32 product has one); with it the sums are scaled, c_ij = fl(s_j·Σ_p a_ip·q_jp). Then
//   a' (or a) is split into three bf16 pieces, a' = h1 + h2 + h3 exactly: h1 = bf16(a'),
//   h2 = bf16(a' − h1), h3 = a' − h1 − h2 (round to nearest even leaves each remainder at most
//   half a unit of the piece's 8 significant bits, so two pieces take 16 + 1 bits of float32's
//   24 and the third holds the rest; the subtractions are exact). The codes are bf16 exactly (|q| ≤ 256), and the
//   product of two bf16 values is exact in float32, so every term h_t·q is exact and c_ij is a
//   float32 sum of the 3k exact terms, one rounding per term in TDPBF16PS's order — a float32
//   GEMM's kind of error (which rounds each of its k products once and sums them), over 3k terms:
//   (2u + 1.01·γ_3k)·Σ|a·b| (the contract), measured ~10× below the float32 GEMM's actual error
//   at BERT-base's shapes — and bitwise the same for any thread count. What TDPBF16PS adds:
//   subnormal inputs and results are zero (DAZ/FTZ), so pieces below 2^-126 are lost (an
//   absolute error ≤ 2^-116 per term, see the contract's bound).
//
//   Cost: three bf16 products for one float32 product, but on tiles whose rate is ~5× the FMA
//   units' here, and per 2×2 tile step the two B tiles are loaded once for the three pieces
//   (amx.h, Pieces): 8 tile loads per 12 multiply-adds instead of 12 (the step is bound by its
//   loads). Measured on the Intel Xeon (AMX): a 2×2 tile step over the three pieces takes 2.1×
//   one product's (micro-benchmark), and the GEMM runs 2.3–3.0× as fast as the float32 GEMM at
//   BERT-base's backward shapes (2048 tokens; 500–670 GFLOP/s at 1 thread, 0.9–1.2 TFLOP/s at 2).
//
// A bias (optional) is added after the last K slice, one more rounding.
// B's codes are read back from its values as matmulQ8 reads them: q = roundHalfEven(clamp(fl(x·
// fl(1/s)), −256, 256)), and the call returns false (C then unspecified; the caller computes in
// float32) when a value is not exactly fl(q·s) — a NaN never is.
//
// Blocking: K in equal slices of at most KC (each C tile written once per slice, later slices
// adding to it), all of a slice's B packed first (the grid checked there), then row blocks of A
// (MC rows, packed and split by the thread that takes the block) × column ranges split over the
// threads when the rows are few — as matmulQ8 (gemm_q8.cc). Only with AMX (amx.h); elsewhere it
// throws, and src/backend/native registers it only where it runs.
#include "amx.h"
#include "args.h"
#include "common.h"
#include "gemm_bf16.h"
#include "gemm_driver.h"
#include "simd.h"

#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kdqat {
namespace {
using namespace bf16;

constexpr float kLim = 256;  // |q| ≤ 256: an integer of ≤ 8 significant bits, exact in bf16
constexpr int kPieces = 3;
constexpr int MR = 32, NR = 32;  // 2×2 C tiles of 16 × 16
constexpr int KB = 16;           // pairs per tile step (a tile row: 16 words)
// K slices of 1024 (a B panel, KC/2 × NR words, is 64 KiB) and A blocks of 128 rows ((MC, KC) × 3
// pieces of bf16: 768 KiB, in L2), as matmulBf16's AMX kernel. Measured at BERT-base's backward
// shapes (Intel Xeon, 1 thread, alternated): MC 128 against 64 +3–10%, against 32 and 256 more;
// KC 512 or 2048 no faster.
constexpr int KC = 1024;
constexpr int MC = 128;

// The first n of 16 lanes (none for n ≤ 0, all for n ≥ 16).
inline __mmask16 lanes(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1); }

// ---- B: codes -----------------------------------------------------------------------------------
// The codes of 16 values x on the grid of step s (inv = fl(1/s), 0 for s = 0):
// roundHalfEven(clamp(fl(x·inv), −256, 256)); ok loses the lanes where fl(q·s) ≠ x.
KDQAT_BF16 inline __m512 codes(__m512 x, float inv, float s, __mmask16& ok) {
  __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(inv));
  t = _mm512_max_ps(t, _mm512_set1_ps(-kLim));  // a NaN → −256 (MAXPS returns its second operand)
  t = _mm512_min_ps(t, _mm512_set1_ps(kLim));
  const __m512 q = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  ok &= _mm512_cmp_ps_mask(_mm512_mul_ps(q, _mm512_set1_ps(s)), x, _CMP_EQ_OQ);
  return q;
}

// B rows [0, kc) (row stride ldb, row p's step s[p] and inv[p]) × columns [0, nc) → one panel of
// kpa pair rows × NR words: word (r, j) = the codes (q(2r, j), q(2r+1, j)) as bf16, zero past nc,
// past kc and down to kpa. Whether every value read was on its grid.
KDQAT_BF16 bool pack_b(const float* b, int64_t ldb, const float* s, const float* inv, int kc, int nc,
                       int kpa, uint32_t* dst) {
  __mmask16 ok = 0xffff;
  const int kp = (kc + 1) / 2;
  for (int r = 0; r < kpa; r++) {
    for (int h = 0; h < NR; h += 16) {
      const __mmask16 m = r >= kp ? 0 : lanes(nc - h);
      __m512 lo = _mm512_setzero_ps(), hi = lo;
      if (m) {
        const int p = 2 * r;
        lo = codes(_mm512_maskz_loadu_ps(m, b + p * ldb + h), inv[p], s[p], ok);
        if (p + 1 < kc) hi = codes(_mm512_maskz_loadu_ps(m, b + (p + 1) * ldb + h), inv[p + 1], s[p + 1], ok);
      }
      _mm512_storeu_si512(dst + r * NR + h, interleave_pairs(lo, hi));
    }
  }
  return ok == 0xffff;
}

// B stored transposed, rows [0, nc) of b (n, k) row-major (a Linear's weight: op(B) = bᵀ), k
// [0, kc), row j's step s[j] and inv[j] → the same panel as pack_b: word (r, j) = the codes
// (q(j, 2r), q(j, 2r+1)). A row's k-run is contiguous: 32 values → 16 pair words, and 16 rows'
// words transposed in registers into 16 panel rows (as matmulBf16's pack_b). Whether every value
// read was on its grid.
KDQAT_BF16 bool pack_bt(const float* b, int64_t ldb, const float* s, const float* inv, int kc, int nc,
                        int kpa, uint32_t* dst) {
  __mmask16 ok = 0xffff;
  const int nblk = kpa / KB;
  for (int j = 0; j < NR; j += 16) {
    for (int blk = 0; blk < nblk; blk++) {
      __m512 v[16];
      for (int t = 0; t < 16; t++) {
        const int row = j + t, left = row < nc ? kc - 32 * blk : 0;  // values of this row in the block
        const __mmask16 lo = lanes(left), hi = lanes(left - 16);
        __m512 q0 = _mm512_setzero_ps(), q1 = q0;
        if (lo) {
          const float* r = b + row * ldb + 32 * blk;
          __mmask16 ok0 = 0xffff, ok1 = 0xffff;
          q0 = codes(_mm512_maskz_loadu_ps(lo, r), inv[row], s[row], ok0);
          if (hi) q1 = codes(_mm512_maskz_loadu_ps(hi, r + 16), inv[row], s[row], ok1);
          ok &= ok0 & ok1;  // masked-off lanes read 0: on every grid
        }
        v[t] = _mm512_castsi512_ps(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(q1, q0)));
      }
      simd::Avx512::transpose(v);
      for (int r = 0; r < 16; r++) _mm512_storeu_ps(dst + (blk * KB + r) * NR + j, v[r]);
    }
  }
  return ok == 0xffff;
}

// ---- A: pieces ----------------------------------------------------------------------------------
// x rounded to bf16 (VCVTNEPS2BF16: nearest even, subnormal → ±0), as float32.
KDQAT_BF16 inline __m512 bf16_round(__m512 x) {
  const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// x = p[0] + p[1] + p[2], each a bf16 value (as float32), for finite x below bf16's overflow
// threshold and outside the subnormal range (see the file comment). A non-finite first piece (x
// Inf or NaN, or rounding up to ±Inf) leaves the others 0, so C gets what a float32 GEMM gets.
KDQAT_BF16 inline void split(__m512 x, __m512 p[kPieces]) {
  for (int t = 0; t < kPieces; t++) {
    p[t] = bf16_round(x);
    const __mmask16 finite = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(p[t], 0x99));  // not NaN/±Inf
    x = _mm512_maskz_sub_ps(finite, x, p[t]);
  }
}

// op(A)(i, p) = x[i·rs + p·cs], rows [0, mc) × k [0, kc), times s[p] (s null: as they are; the
// steps of B stored transposed scale the sums instead) → ceil(mc/32) panels of kpa
// pair words per row and piece, by 16-pair block: block b holds piece 0, 1, 2 one after another,
// each rows 0..31 × 16 words (two 1 KiB tiles; word (r, w) = the pair (2q, 2q+1) of row r for
// q = 16b + w). Zero past mc, past kc and down to kpa. rs or cs is 1.
KDQAT_BF16 void pack_a(const float* x, int64_t rs, int64_t cs, const float* s, int mc, int kc, int kpa,
                       uint32_t* dst) {
  const int nblk = kpa / KB;
  const int64_t panel = static_cast<int64_t>(kpa) * MR * kPieces;  // words
  for (int i0 = 0; i0 < mc; i0 += MR, dst += panel) {
    const int mr = std::min(MR, mc - i0);
    if (cs == 1) {  // a row's k-run is contiguous: 32 values → one tile row of 16 pair words per piece
      for (int r = 0; r < MR; r++) {
        const float* row = x + (i0 + r) * rs;
        for (int b = 0; b < nblk; b++) {
          const int left = r < mr ? kc - 32 * b : 0;  // values of this row in the block
          const __mmask16 lo = lanes(left), hi = lanes(left - 16);
          __m512 v0 = _mm512_maskz_loadu_ps(lo, lo ? row + 32 * b : row);
          __m512 v1 = _mm512_maskz_loadu_ps(hi, hi ? row + 32 * b + 16 : row);
          if (s) {
            v0 = _mm512_mul_ps(v0, _mm512_maskz_loadu_ps(lo, lo ? s + 32 * b : s));
            v1 = _mm512_mul_ps(v1, _mm512_maskz_loadu_ps(hi, hi ? s + 32 * b + 16 : s));
          }
          __m512 p0[kPieces], p1[kPieces];
          split(v0, p0);
          split(v1, p1);
          for (int t = 0; t < kPieces; t++)
            _mm512_storeu_si512(dst + ((static_cast<int64_t>(b) * kPieces + t) * MR + r) * KB,
                                reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(p1[t], p0[t])));
        }
      }
      continue;
    }
    // rs == 1 (A stored transposed, e.g. dYᵀ of a weight gradient): a column's m-run is
    // contiguous. Per 16-pair block and 16 rows: each pair's 16 rows in one vector per piece,
    // then the 16 × 16 words transposed in registers so that a row's 16 pair words are one store
    // (a tile row) — rather than 16 scattered words per pair (the GEMM 2–5% faster at BERT-base's
    // dW shapes than with scatters, Intel Xeon; the same words).
    for (int b = 0; b < nblk; b++) {
      for (int h = 0; h < MR; h += 16) {
        const __mmask16 m = lanes(mr - h);
        __m512 v[kPieces][KB];
        for (int w = 0; w < KB; w++) {
          const int p = 2 * (b * KB + w);  // the pair's first k
          const __mmask16 mlo = p < kc ? m : 0, mhi = p + 1 < kc ? m : 0;
          const float* c0 = x + i0 + h + static_cast<int64_t>(p) * cs;
          __m512 lo = _mm512_maskz_loadu_ps(mlo, mlo ? c0 : x), hi = _mm512_maskz_loadu_ps(mhi, mhi ? c0 + cs : x);
          if (s) {
            lo = _mm512_mul_ps(lo, _mm512_set1_ps(mlo ? s[p] : 0.f));
            hi = _mm512_mul_ps(hi, _mm512_set1_ps(mhi ? s[p + 1] : 0.f));
          }
          __m512 p0[kPieces], p1[kPieces];
          split(lo, p0);
          split(hi, p1);
          for (int t = 0; t < kPieces; t++) v[t][w] = _mm512_castsi512_ps(interleave_pairs(p0[t], p1[t]));
        }
        for (int t = 0; t < kPieces; t++) {
          simd::Avx512::transpose(v[t]);
          for (int r = 0; r < 16; r++)
            _mm512_storeu_ps(dst + ((static_cast<int64_t>(b) * kPieces + t) * MR + h + r) * KB, v[t][r]);
        }
      }
    }
  }
}

// ---- blocks -------------------------------------------------------------------------------------
// C = acc + beta·C for a tile of acc (stride NR), then on the last K slice: with `scale` (B
// stored transposed) C = fl(C·scale_j), with a bias C = fl(C + bias_j) — one rounding each.
KDQAT_BF16 void store_c(const float* acc, float* c, int64_t ldc, int mr, int nr, float beta, const float* scale,
                        const float* bias) {
  const __m512 vb = _mm512_set1_ps(beta);
  for (int h = 0; h < nr; h += 16) {
    const __mmask16 m = lanes(nr - h);
    const __m512 sc = scale ? _mm512_maskz_loadu_ps(m, scale + h) : _mm512_setzero_ps();
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + h) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
      float* cp = c + r * ldc + h;
      __m512 x = _mm512_load_ps(acc + r * NR + h);
      if (beta != 0.f) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, cp), x);
      if (scale) x = _mm512_mul_ps(x, sc);
      if (bias) x = _mm512_add_ps(x, bv);
      _mm512_mask_storeu_ps(cp, m, x);
    }
  }
}

// C(mc, nc) (+)= Ap·Bp for an A block and nc columns of B panels: per 32 × 32 tile, the three
// pieces' tile steps into one set of C tiles (amx.h), then store_c.
KDQAT_BF16 void block(int mc, int nc, int kpa, const uint32_t* ap, const uint32_t* bp, float* c,
                      int64_t ldc, float beta, const float* scale, const float* bias) {
  amx_configure_thread();
  alignas(64) float acc[MR * NR];
  for (int j = 0; j < nc; j += NR) {
    const uint32_t* b = bp + static_cast<int64_t>(j / NR) * kpa * NR;
    for (int i = 0; i < mc; i += MR) {
      float* ct = c + i * ldc + j;
      amx_block_32x32<AmxBf16, kPieces>(kpa / KB,
                                        reinterpret_cast<const uint8_t*>(ap + static_cast<int64_t>(i / MR) * kpa * MR * kPieces),
                                        reinterpret_cast<const uint8_t*>(b), acc, ct, ldc * 4, std::min(MR, mc - i));
      store_c(acc, ct, ldc, std::min(MR, mc - i), std::min(NR, nc - j), beta, scale ? scale + j : nullptr,
              bias ? bias + j : nullptr);
    }
  }
}

using gemm_driver::ceil_div;
using gemm_driver::round_up;

// C (m, n) = op(A)·op(B) (+ bias), op(A)(i, p) = a[i·rsa + p·csa]; b (k, n) row-major with step
// sb[p] and inverse ib[p] per row p (folded into A), or with tb (n, k) row-major with sb[j], ib[j]
// per row j (scaling the sums). false (C unspecified) when B is off its grid.
bool run(const float* a, int64_t rsa, int64_t csa, const float* b, bool tb, const float* sb, const float* ib,
         float* c, int64_t m, int64_t k, int64_t n, const float* bias, int threads) {
  const int kcs = static_cast<int>(round_up(ceil_div(k, ceil_div(k, KC)), 32));
  const int64_t panels = ceil_div(n, NR);
  uint32_t* bp = gemm_driver::bpack<uint32_t>(static_cast<size_t>(panels) * (kcs / 2) * NR);
  // Row blocks of whole MR tiles dealt out evenly, and column ranges when the rows are few
  // (gemm_driver.h).
  const int64_t tiles = ceil_div(m, MR);
  const bool split_m = m >= static_cast<int64_t>(threads) * MR * 8;
  int64_t nb = ceil_div(tiles, MC / MR);
  if (split_m) nb = round_up(nb, threads);
  nb = std::min(nb, tiles);
  const int64_t nsplit = split_m ? 1 : std::min<int64_t>(threads, panels);
  const int64_t mcs = ceil_div(tiles, nb) * MR;
  auto row0 = [&](int64_t blk) { return std::min<int64_t>(m, tiles * blk / nb * MR); };
  auto pfor = [threads](int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (threads == 1) fn(0, count);
    else parallel_for_dynamic(count, grain, fn);
  };
  std::atomic<bool> on{true};
  for (int64_t p0 = 0; p0 < k; p0 += kcs) {
    const int kc = static_cast<int>(std::min<int64_t>(kcs, k - p0));
    const int kpa = static_cast<int>(round_up(ceil_div(kc, 2), KB));
    const bool last = p0 + kc == k;
    pfor(panels, 4, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; q++) {
        const int nc = static_cast<int>(std::min<int64_t>(NR, n - q * NR));
        uint32_t* dst = bp + q * kpa * NR;
        if (!(tb ? pack_bt(b + q * NR * k + p0, k, sb + q * NR, ib + q * NR, kc, nc, kpa, dst)
                 : pack_b(b + p0 * n + q * NR, n, sb + p0, ib + p0, kc, nc, kpa, dst)))
          on = false;
      }
    });
    if (!on) return false;
    const float beta = p0 == 0 ? 0.f : 1.f;
    pfor(nb * nsplit, 1, [&](int64_t t0, int64_t t1) {
      uint32_t* ap = gemm_driver::apack<uint32_t>(static_cast<size_t>(mcs) * kpa * kPieces);
      int64_t packed = -1;
      for (int64_t t = t0; t < t1; t++) {
        const int64_t blk = t % nb, js = t / nb, i0 = row0(blk);
        const int mc = static_cast<int>(row0(blk + 1) - i0);
        if (packed != blk) {
          pack_a(a + i0 * rsa + p0 * csa, rsa, csa, tb ? nullptr : sb + p0, mc, kc, kpa, ap);
          packed = blk;
        }
        const int64_t c0 = panels * js / nsplit * NR, c1 = std::min<int64_t>(panels * (js + 1) / nsplit * NR, n);
        if (c0 < c1)
          block(mc, static_cast<int>(c1 - c0), kpa, ap, bp + c0 / NR * kpa * NR, c + i0 * n + c0, n, beta,
                last && tb ? sb + c0 : nullptr, last && bias ? bias + c0 : nullptr);
      }
    });
  }
  return true;
}

const char* unavailable() {
  if (const char* why = amx_unavailable()) return why;
  return gemm_bf16_unavailable();
}

// matmulOnGrid(a, b, sb, c, m, k, n, transA, transB[, bias]) → whether B was on its grid
Napi::Value MatmulOnGrid(const Napi::CallbackInfo& info) {
  const Args g(info, "matmulOnGrid", 9);
  const int64_t m = g.dim(4, "m"), k = g.dim(5, "k"), n = g.dim(6, "n");
  const bool ta = g.flag(7), tb = g.flag(8);
  const Buf<float> sb = tb ? g.scales(2, "sb", n, "n") : g.scales(2, "sb", k, "k");
  const float* a = g.f32(0, "a", g.mul(m, k));
  const float* b = g.f32(1, "b", g.mul(k, n));
  float* c = g.f32(3, "c", g.mul(m, n));
  const float* bias = info.Length() > 9 ? g.f32_opt(9, "bias", n) : nullptr;
  if (const char* why = unavailable())
    throw Napi::Error::New(info.Env(), std::string("matmulOnGrid: needs AMX, unavailable: ") + why);
  if (m == 0 || n == 0) return Napi::Boolean::New(info.Env(), true);  // nothing read or written
  if (k == 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * n + j] = bias ? bias[j] : 0.f;
    return Napi::Boolean::New(info.Env(), true);
  }
  // One step (and its inverse) per row of b as stored: k rows, or n with transB.
  const int64_t rows = tb ? n : k;
  static thread_local std::vector<float> s, inv;  // reused: no allocation per call
  s.resize(rows);
  inv.resize(rows);
  for (int64_t p = 0; p < rows; p++) {
    s[p] = sb.p[sb.n == 1 ? 0 : p];
    inv[p] = s[p] > 0 ? 1.f / s[p] : 0.f;
  }
  const double flops = 2.0 * m * n * k;
  const bool on = run(a, ta ? 1 : k, ta ? m : 1, b, tb, s.data(), inv.data(), c, m, k, n, bias,
                      flops >= 3e5 ? num_threads() : 1);
  return Napi::Boolean::New(info.Env(), on);
}

}  // namespace

bool gemm_grid_available() { return unavailable() == nullptr; }

void InitGemmGrid(Napi::Env env, Napi::Object exports) {
  exports.Set("matmulOnGrid", Napi::Function::New(env, MatmulOnGrid));
}

}  // namespace kdqat
