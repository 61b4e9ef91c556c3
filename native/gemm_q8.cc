// Kernel 'matmulQ8' (see src/tensor/kernels.ts for the contract): the forward of a Linear whose
// input and weight both lie on integer grids — x̂ = qa·sa (fakeQuantInput: one scale per tensor,
// |qa| ≤ 127) and ŵ = qb·sb_j (TWN's ±1, or sym codes of ≤ 7 bits: |qb| ≤ 64; one scale per
// tensor or per output row) — as an integer GEMM: y_ij = sa·sb_j·Σ_k qa_ik·qb_jk, the sum exact
// in int32 (K ≤ 131072), then scaled in float32. So the result is the exact product of the
// fake-quantized operands up to three float32 roundings, whatever the ISA, tiling or thread count.
// Packing reads each code back from its value and checks that the value is the code times the
// scale; if any is not, the call returns false and the caller computes in float32 (so a tensor
// wrongly taken for a grid, e.g. a weight changed in place, can never give a different product).
//
// Multiply-adds on bytes: u8 × s8 products summed four at a time into int32 lanes, VPDPBUSD
// (AVX512_VNNI: 64 multiply-adds per instruction against 16 for an fp32 FMA) or, on AVX2,
// VPMADDUBSW + VPMADDWD (the s16 pair sums cannot saturate: 2·255·64 < 2^15; where a B panel's
// codes are small, as TWN's ±1, the s16 pair sums of several k-groups are added as s16 before one
// VPMADDWD: see accumulate_avx2). The unsigned operand
// is A shifted by 128 (qa + 128 ∈ 1..255): Σ(qa+128)·qb − 128·Σqb = Σ qa·qb, the column sums
// Σ_k qb_jk taken when B is packed.
//
// On a CPU with AMX (amx.h) TDPBUSD does the same u8 × s8 quad sums on tiles: a (16 rows × 64 k)
// A tile times a (16 k-quads × 16 columns) B tile, 16·16·64 multiply-adds per instruction, in
// a 2×2 tile step (MR = NR = 32). Integer sums are exact in any order, so every path gives the
// same bits. Its B panels are the VNNI layout 16 k-words deeper at most; its A panels hold each
// 16-word block of 32 rows contiguously (two 1 KiB tiles).
//
// Kernel 'matmulQ8Grad' (kernels.ts) is the same machinery for a Linear's input gradient dX =
// dY·Ŵ (`kdqat qat --int8-grad`): Ŵ (k, n) is B read in place of Bᵀ (pack_b_kn), its row steps
// are folded into A's columns, and each row of that A is rounded to 8-bit codes on its own step
// (row_grid: max|·|/127), which the store multiplies back in. Not exact: half a step per code.
//
// Blocking as in gemm.h, specialized to this one use: the whole K in one slice (a Linear's
// in_features; K bytes per A row and B column), all of B packed up front into NR-wide panels of
// 4-byte k-groups (one weight matrix: ≤ a few MiB), then row blocks of A (MC rows, packed by the
// thread that takes the block) × column ranges split over the threads.
#include "args.h"
#include "common.h"
#include "gemm_q8_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

namespace kdqat {
namespace {
using namespace q8;

constexpr float kLimA = 127;        // |qa| ≤ 127 (fakeQuantInput's codes: never −128, see kernels.ts)
constexpr float kLimB = 64;         // |qb| ≤ 64: TWN, sym ≤ 7 bits; keeps VPMADDUBSW's s16 sums exact
constexpr int64_t kMaxK = 131072;   // K·255·64 < 2^31: the shifted int32 sums never overflow


// ---- packing (a pass over m·k or n·k values against m·n·k multiply-adds) ----------------------
// A rows [0, mc) (row stride k) → panels of kw words per row, byte t of word (g, r) =
// qa(r, 4g + t) + 128, at g·MR + r (or, tiled, (g/16·MR + r)·16 + g%16); rows past mc and k past
// the end hold 128 (qa = 0; B's bytes there are 0 as well). The codes of row r are those of a on
// the grid of step s (fl(1/s) = inv), or, with rows (matmulQ8Grad), those of the row a·fold on the
// row's own step (rows->s[r], rows->inv[r]), which it is not checked to lie on.
struct RowGrids {
  const float* fold;  // k factors, one per column of A
  const float* s;     // per row of the block
  const float* inv;
  float* tmp;         // k floats of scratch
};
bool pack_a(const Q8Kernel& K, const float* a, int64_t k, int kw, int mc, float inv, float s,
            const RowGrids* rows, uint32_t* dst, int8_t* line) {
  const int MR = K.mr;
  bool on = true;
  for (int i0 = 0; i0 < mc; i0 += MR, dst += static_cast<int64_t>(kw) * MR) {
    for (int r = 0; r < MR; r++) {
      std::memset(line, 0, 4 * static_cast<size_t>(kw));
      const float* row = a + (i0 + r) * k;
      if (i0 + r < mc && rows) {
        for (int64_t p = 0; p < k; p++) rows->tmp[p] = row[p] * rows->fold[p];
        K.quantize(rows->tmp, k, rows->inv[i0 + r], rows->s[i0 + r], kLimA, line);
      } else if (i0 + r < mc) {
        on &= K.quantize(row, k, inv, s, kLimA, line);
      }
      for (int g = 0; g < kw; g++) {
        uint32_t w;
        std::memcpy(&w, line + 4 * g, 4);
        dst[K.tiled_a ? (g / 16 * MR + r) * 16 + g % 16 : g * MR + r] = w ^ 0x80808080u;  // s8 q → u8 q + 128
      }
    }
  }
  return on;
}

// How many k-groups' VPMADDUBSW results (s16 lanes, each a pair of u8 A bytes ≤ 255 times s8 B
// codes |qb| ≤ max_code) can be summed in s16 lanes: g·2·255·max_code ≤ 2^15 − 1. At least 1 (one
// pair sum alone never saturates: max_code ≤ 64); all of them for an all-zero panel.
int s16_groups(int max_code, int kw) {
  return max_code == 0 ? std::max(kw, 1) : std::max(1, 32767 / (2 * 255 * max_code));
}

// B (n, k) row-major (a Linear weight; op(B) = Bᵀ) rows [0, nc) → one panel of (kw, NR) words,
// byte t of word (g, j) = qb(j, 4g + t) as s8, zero past nc and k; sum[j] = Σ_k qb(j, k);
// *max_code = max |qb| over the panel.
bool pack_b(const Q8Kernel& K, const float* b, int64_t k, int kw, int nc, const float* inv,
            const float* s, uint32_t* dst, int32_t* sum, int* max_code, int8_t* line) {
  const int NR = K.nr;
  bool on = true;
  int mx = 0;
  for (int j = 0; j < NR; j++) {
    std::memset(line, 0, 4 * static_cast<size_t>(kw));
    if (j < nc) {
      on &= K.quantize(b + j * k, k, inv[j], s[j], kLimB, line);
      int32_t s = 0;
      for (int64_t p = 0; p < k; p++) {
        s += line[p];
        mx = std::max(mx, std::abs(static_cast<int>(line[p])));
      }
      sum[j] = s;
    }
    for (int g = 0; g < kw; g++) std::memcpy(dst + g * NR + j, line + 4 * g, 4);
  }
  *max_code = mx;
  return on;
}

// The same panel from B stored (k, n) row-major (matmulQ8Grad's Ŵ; op(B) = B): columns [j0,
// j0 + nc), row p on the grid of step s[p] (inv[p] = fl(1/s[p])), read NR values at a time.
bool pack_b_kn(const Q8Kernel& K, const float* b, int64_t k, int64_t n, int kw, int64_t j0, int nc,
               const float* inv, const float* s, uint32_t* dst, int32_t* sum, int* max_code, int8_t* line) {
  const int NR = K.nr;
  bool on = true;
  int mx = 0;
  std::memset(dst, 0, static_cast<size_t>(kw) * NR * 4);
  std::fill(sum, sum + NR, 0);
  int8_t* bytes = reinterpret_cast<int8_t*>(dst);
  for (int64_t p = 0; p < k; p++) {
    on &= K.quantize(b + p * n + j0, nc, inv[p], s[p], kLimB, line);
    int8_t* w = bytes + (p / 4) * NR * 4 + p % 4;
    for (int j = 0; j < nc; j++) {
      w[4 * j] = line[j];
      sum[j] += line[j];
      mx = std::max(mx, std::abs(static_cast<int>(line[j])));
    }
  }
  *max_code = mx;
  return on;
}

template <class T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The operands of one call. The forward (matmulQ8): y (m, n) = fl(fl(sa·sb_j)·fl(Σ_k qa_ik·qb_jk))
// (+ bias_j, one more rounding), b (n, k) with sb per row j when per_row. The input gradient
// (matmulQ8Grad, grad): c (m, n) = fl(fl(Σ_p qa_ip·qb_pj)·sa_i), b (k, n) with sb per row p when
// per_row, folded into A's columns, and A's rows rounded each on its own step (row_grid).
struct Q8Call {
  const float* a;
  float sa;
  const float* b;
  const float* sb;
  bool per_row, grad;
  float* c;
  int64_t m, k, n;
  const float* bias;
};

// The step of a row of a' = a·fold (fl(a_p·fold_p)): r = max_p |a'_p| (K.row_max), s = fl(r/127)
// and inv = fl(127/r), both 0 when r < 2^-100 (a row that small is taken as zeros). False when
// some a'_p is not finite (the caller computes in float32).
bool row_grid(const Q8Kernel& K, const float* a, const float* fold, int64_t k, float* s, float* inv) {
  float r = 0;
  const bool finite = K.row_max(a, fold, k, &r);
  const bool tiny = !(r >= 0x1p-100f);
  *s = tiny ? 0.f : r / 127.f;
  *inv = tiny ? 0.f : 127.f / r;
  return finite;
}

// False (c then unspecified) when an operand is off its grid or, for grad, A has a non-finite
// value: B is checked before any block runs, A as its blocks are packed (or, for grad, in its row
// pass), the blocks after a failed one skipped.
bool run(const Q8Kernel& K, const Q8Call& q, int threads) {
  const int MR = K.mr, NR = K.nr;
  const int64_t m = q.m, k = q.k, n = q.n;
  const int kw = static_cast<int>(((k + 3) / 4 + K.kalign - 1) / K.kalign * K.kalign);
  const int64_t panels = (n + NR - 1) / NR;
  // Per column: 1/sb_j (0 for a zero scale: every code 0) and sb_j (the forward's B rows; for grad
  // the same per row p of B, and A's column factors), the output scale and 128·Σqb.
  static thread_local std::vector<float> inv_b, step_b, scale, row_s, row_inv;
  static thread_local std::vector<int32_t> comp;
  static thread_local std::vector<int> groups;
  static thread_local std::vector<uint32_t> bpack;
  const int64_t nb_steps = q.grad ? k : panels * NR;
  float* ib = scratch(inv_b, nb_steps);
  float* sbj = scratch(step_b, nb_steps);
  float* sc = scratch(scale, n);
  int32_t* cs = scratch(comp, panels * NR);
  int* s16 = scratch(groups, panels);  // per panel: s16_groups of its codes
  for (int64_t j = 0; j < nb_steps; j++) {
    const float s = q.grad || j < n ? q.sb[q.per_row ? j : 0] : 0.f;
    sbj[j] = s;
    ib[j] = s > 0 ? 1.f / s : 0.f;
  }
  for (int64_t j = 0; j < n; j++) sc[j] = q.grad ? 1.f : q.sa * sbj[j];
  const float ia = q.sa > 0 ? 1.f / q.sa : 0.f;
  uint32_t* bp = scratch(bpack, static_cast<size_t>(panels) * kw * NR);
  auto pfor = [threads](int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (threads == 1) fn(0, count);
    else parallel_for_dynamic(count, grain, fn);
  };
  std::atomic<bool> on{true};
  pfor(panels, 4, [&](int64_t q0, int64_t q1) {
    static thread_local std::vector<int8_t> line;
    int8_t* l = scratch(line, 4 * static_cast<size_t>(kw) + 64);
    for (int64_t p = q0; p < q1; p++) {
      int max_code = 0;
      const int nc = static_cast<int>(std::min<int64_t>(NR, n - p * NR));
      if (!(q.grad ? pack_b_kn(K, q.b, k, n, kw, p * NR, nc, ib, sbj, bp + p * kw * NR, cs + p * NR, &max_code, l)
                   : pack_b(K, q.b + p * NR * k, k, kw, nc, ib + p * NR, sbj + p * NR, bp + p * kw * NR, cs + p * NR,
                            &max_code, l)))
        on = false;
      s16[p] = s16_groups(max_code, kw);
    }
  });
  if (!on) return false;
  for (int64_t j = 0; j < n; j++) cs[j] *= 128;
  float* rs = q.grad ? scratch(row_s, m) : nullptr;
  float* ri = q.grad ? scratch(row_inv, m) : nullptr;
  if (q.grad) {
    pfor(m, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        if (!row_grid(K, q.a + i * k, sbj, k, rs + i, ri + i)) on = false;
    });
    if (!on) return false;
  }
  // Row blocks (MC rows, tiles dealt evenly as in gemm_driver.h) × column ranges when rows are few.
  const int64_t tiles = (m + MR - 1) / MR;
  const bool split_m = m >= static_cast<int64_t>(threads) * MR * 8;
  int64_t nb = std::max<int64_t>(1, (tiles + K.mc / MR - 1) / (K.mc / MR));
  if (split_m) nb = (nb + threads - 1) / threads * threads;
  nb = std::min(nb, tiles);
  const int64_t nsplit = split_m ? 1 : std::min<int64_t>(threads, panels);
  const int64_t mcs = (tiles + nb - 1) / nb * MR;
  auto row0 = [&](int64_t blk) { return std::min<int64_t>(m, tiles * blk / nb * MR); };
  pfor(nb * nsplit, 1, [&](int64_t t0, int64_t t1) {
    static thread_local std::vector<uint32_t> apack;
    static thread_local std::vector<int8_t> line;
    static thread_local std::vector<float> folded;
    uint32_t* ap = scratch(apack, static_cast<size_t>(mcs) * kw);
    int8_t* l = scratch(line, 4 * static_cast<size_t>(kw) + 64);
    alignas(64) int32_t acc[kMaxTile];
    int64_t packed = -1;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t blk = t % nb, js = t / nb, i0 = row0(blk);
      const int mc = static_cast<int>(row0(blk + 1) - i0);
      if (!on.load(std::memory_order_relaxed)) return;
      if (packed != blk) {
        const RowGrids rows{sbj, rs ? rs + i0 : nullptr, ri ? ri + i0 : nullptr, q.grad ? scratch(folded, k) : nullptr};
        if (!pack_a(K, q.a + i0 * k, k, kw, mc, ia, q.sa, q.grad ? &rows : nullptr, ap, l)) {
          on = false;
          return;
        }
        packed = blk;
      }
      for (int64_t p = panels * js / nsplit; p < panels * (js + 1) / nsplit; p++) {
        const int64_t j0 = p * NR;
        const int nr = static_cast<int>(std::min<int64_t>(NR, n - j0));
        for (int i = 0; i < mc; i += MR) {
          K.accumulate(kw, s16[p], ap + static_cast<int64_t>(i / MR) * kw * MR, bp + p * kw * NR, acc);
          K.store(acc, std::min(MR, mc - i), nr, NR, cs + j0, sc + j0, q.bias ? q.bias + j0 : nullptr,
                  rs ? rs + i0 + i : nullptr, q.c + (i0 + i) * n + j0, n);
        }
      }
    }
  });
  return on;
}

// matmulQ8(a, sa, b, sb, c, m, k, n, bias) → whether both operands were on their grids
Napi::Value MatmulQ8(const Napi::CallbackInfo& info) {
  const Args g(info, "matmulQ8", 8);
  const int64_t m = g.dim(5, "m"), k = g.dim(6, "k"), n = g.dim(7, "n");
  g.need(k <= kMaxK, "k " + std::to_string(k) + " exceeds " + std::to_string(kMaxK) +
                         " (the int32 sums could overflow): use matmul");
  const double sa = g.number(1, "sa");
  g.need(std::isfinite(sa) && sa >= 0, "sa must be a finite scale ≥ 0, got " + Args::fmt(sa));
  const Buf<float> sb = g.scales(3, "sb", n, "n");
  const float* a = g.f32(0, "a", g.mul(m, k));
  const float* b = g.f32(2, "b", g.mul(n, k));
  float* c = g.f32(4, "c", g.mul(m, n));
  const float* bias = info.Length() > 8 ? g.f32_opt(8, "bias", n) : nullptr;
  if (m == 0 || n == 0) return Napi::Boolean::New(info.Env(), true);  // nothing read or written
  const double flops = 2.0 * m * n * k;
  const Q8Call q{a, static_cast<float>(sa), b, sb.p, sb.n == n && n > 1, false, c, m, k, n, bias};
  return Napi::Boolean::New(info.Env(), run(kernel(), q, flops >= 3e5 ? num_threads() : 1));
}

// matmulQ8Grad(a, b, sb, c, m, k, n) → whether B was on its grid and A finite
Napi::Value MatmulQ8Grad(const Napi::CallbackInfo& info) {
  const Args g(info, "matmulQ8Grad", 7);
  const int64_t m = g.dim(4, "m"), k = g.dim(5, "k"), n = g.dim(6, "n");
  g.need(k <= kMaxK, "k " + std::to_string(k) + " exceeds " + std::to_string(kMaxK) +
                         " (the int32 sums could overflow): use matmul");
  const Buf<float> sb = g.scales(2, "sb", k, "k");
  const float* a = g.f32(0, "a", g.mul(m, k));
  const float* b = g.f32(1, "b", g.mul(k, n));
  float* c = g.f32(3, "c", g.mul(m, n));
  if (m == 0 || n == 0) return Napi::Boolean::New(info.Env(), true);
  const double flops = 2.0 * m * n * k;
  const Q8Call q{a, 0.f, b, sb.p, sb.n == k && k > 1, true, c, m, k, n, nullptr};
  return Napi::Boolean::New(info.Env(), run(kernel(), q, flops >= 3e5 ? num_threads() : 1));
}

}  // namespace

void InitGemmQ8(Napi::Env env, Napi::Object exports) {
  exports.Set("matmulQ8", Napi::Function::New(env, MatmulQ8));
  exports.Set("matmulQ8Grad", Napi::Function::New(env, MatmulQ8Grad));
}

}  // namespace kdqat
