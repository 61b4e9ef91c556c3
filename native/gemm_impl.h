// Per-ISA SGEMM code: packing routines, the MR×NR micro-kernel and the macro-kernel.
// Included once per ISA by gemm.cc inside its own namespace, after defining
//   using V = simd::<Isa>;      (vector traits, simd.h)
//   constexpr int MR = ...;     (rows of the register tile)
//   GEMM_TARGET                 (the function attribute enabling that ISA, or nothing)
//   constexpr bool kPrefetch = ...;  (software prefetch of the packed panels and C, below)
// so that all ISAs share this text. The register tile is MR × NR with NR = 2 vectors:
// 2·MR accumulators + 2 B vectors + 1 broadcast must fit in the register file
// (AVX2: 6×16 → 15 of 16 ymm; AVX-512: 14×32 → 31 of 32 zmm; portable: 6×8 in xmm).

constexpr int W = V::W;
constexpr int NR = 2 * W;
using VT = typename V::T;

// ---- packing ----------------------------------------------------------------------------------
// W elements (or one) of an operand's storage as floats: float32, or bf16 bits widened exactly
// (simd.h load_bf16, widen_bf16).
GEMM_TARGET static KDQAT_INLINE VT load_src(const float* p) { return V::load(p); }
GEMM_TARGET static KDQAT_INLINE VT load_src(const uint16_t* p) { return V::load_bf16(p); }
static KDQAT_INLINE float src_value(float x) { return x; }
static KDQAT_INLINE float src_value(uint16_t h) { return simd::widen_bf16(h); }

// Reads nrows (≤ 0 allowed) rows of W elements, row r at src + r·ld, with zero rows after them,
// and transposes: afterwards v[q] holds element q of every row.
template <class S>
GEMM_TARGET static KDQAT_INLINE void load_transposed(const S* src, int64_t ld, int nrows, VT* v) {
#pragma GCC unroll 16
  for (int r = 0; r < W; r++) v[r] = r < nrows ? load_src(src + r * ld) : V::zero();
  V::transpose(v);
}

// X(i, p) = x[i·rs + p·cs] → panels (kc, MR). cs == 1 is A stored (m,k): W×W blocks are
// transposed in registers; the panel row of MR floats is written with whole vectors, the
// overhang past MR landing where the next row (or the next panel, or the buffer's slack of W
// floats) is written afterwards. rs == 1 is A stored (k,m): MR contiguous floats per p.
GEMM_TARGET static void pack_a(const float* x, int64_t rs, int64_t cs, int mc, int kc,
                               float* dst) {
  constexpr int G = (MR + W - 1) / W;  // W-row groups per panel
  for (int i0 = 0; i0 < mc; i0 += MR, dst += static_cast<int64_t>(kc) * MR) {
    const int mr = mc - i0 < MR ? mc - i0 : MR;
    const float* src = x + i0 * rs;
    int p = 0;
    if (cs == 1) {
      for (; p + W <= kc; p += W) {
        VT v[G][W];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) load_transposed(src + g * W * rs + p, rs, mr - g * W, v[g]);
#pragma GCC unroll 16
        for (int q = 0; q < W; q++) {
#pragma GCC unroll 4
          for (int g = 0; g < G; g++) V::store(dst + (p + q) * MR + g * W, v[g][q]);
        }
      }
    } else if (rs == 1) {
      // Masked loads (never past the mr rows: A may end there); the zero rows up to MR come
      // from the mask.
      for (; p < kc; p++) {
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
          const int n = mr - g * W < 0 ? 0 : (mr - g * W > W ? W : mr - g * W);
          V::store(dst + p * MR + g * W, V::load_n(src + p * cs + g * W, n, 0.f));
        }
      }
    }
    for (; p < kc; p++) {
      for (int r = 0; r < mr; r++) dst[p * MR + r] = src[r * rs + p * cs];
      for (int r = mr; r < MR; r++) dst[p * MR + r] = 0.f;
    }
  }
}

// X(p, j) = x[p·rs + j·cs] → panels (kc, NR), NR = 2W. cs == 1 is B stored (k,n): row p's
// run of nc floats is cut into the whole panels' rows, row after row (read in order, rather than
// down each panel's column of rows nc floats apart: 25% less time for a 1024 × 1536 slice of a
// 3072-wide B, Intel Xeon), a last partial panel as below; rs == 1 is B stored (n,k): W×W
// blocks transposed in registers. S: float, or uint16_t for bf16 bits (gemm.h BOperand), widened
// exactly as they are read, so both give the same packed floats for the same values.
template <class S>
GEMM_TARGET static void pack_b(const S* x, int64_t rs, int64_t cs, int kc, int nc, float* dst) {
  int j0 = 0;
  if (cs == 1) {
    const int full = nc / NR;
    for (int p = 0; p < kc; p++) {
      const S* src = x + p * rs;
      float* d = dst + p * NR;
      for (int q = 0; q < full; q++, src += NR, d += static_cast<int64_t>(kc) * NR) {
        V::store(d, load_src(src));
        V::store(d + W, load_src(src + W));
      }
    }
    j0 = full * NR;
    dst += static_cast<int64_t>(full) * kc * NR;
  }
  for (; j0 < nc; j0 += NR, dst += static_cast<int64_t>(kc) * NR) {
    const int nr = nc - j0 < NR ? nc - j0 : NR;
    const S* src = x + j0 * cs;
    int p = 0;
    if (rs == 1) {
      for (; p + W <= kc; p += W) {
        VT v0[W], v1[W];
        load_transposed(src + p, cs, nr, v0);
        load_transposed(src + W * cs + p, cs, nr - W, v1);
#pragma GCC unroll 16
        for (int q = 0; q < W; q++) {
          V::store(dst + (p + q) * NR, v0[q]);
          V::store(dst + (p + q) * NR + W, v1[q]);
        }
      }
    }
    for (; p < kc; p++) {
      for (int j = 0; j < nr; j++) dst[p * NR + j] = src_value(src[p * rs + j * cs]);
      for (int j = nr; j < NR; j++) dst[p * NR + j] = 0.f;
    }
  }
}

// ---- micro-kernel -----------------------------------------------------------------------------
// With kPrefetch, each step prefetches the panels' lines kPrefetchSteps steps ahead (at this KC
// both panels stream from L2, the B panel from L3 for the first A panel: 2 + 7/8 lines a step),
// and every 4 steps one row of the C tile (rows 0, 1, …: all of them early in the loop; the last
// row again after that, an L1 hit that keeps the loop free of a branch) instead of all of C's
// rows in one burst before it. Prefetches change no arithmetic. Measured on an
// Intel Xeon (Emerald Rapids, AVX-512): accumulate() over 10 A panels at KC 1024 went from 96%
// to 99.8% of the FMA peak; the C prefetch burst had held ~2% of the time (samples on its
// prefetcht0s); 32 steps ahead ran 1–4% faster than 16, 48–64 no faster than 32. The GEMM as a
// whole (bench/gemm.ts's shapes, interleaved with the kernel without them): +2–10% at 1 and 2
// threads. Not measured on AMD, whose AVX-512 instance runs without them.
constexpr int kPrefetchSteps = 32;

// acc(MR, NR) = Ap(kc, MR)ᵀ·Bp(kc, NR). Every accumulator is a chain of multiply-adds over
// p = 0..kc-1 in order, the same for every tile position, so the value of an element does not
// depend on how the caller tiled C (hence not on the thread count). Kept out of line and
// separate from the C update: with both in one function GCC spills accumulators inside the
// unrolled loop (measured 35.5 → 37.8 GFLOP/s on Zen 1). c, ldc, mr, nr: the C tile, for the
// prefetches only.
template <int R>
GEMM_TARGET __attribute__((noinline)) static void accumulate(int kc, const float* ap,
                                                             const float* bp, float* acc,
                                                             const float* c, int64_t ldc, int mr,
                                                             int nr) {
  VT c0[R], c1[R];
#pragma GCC unroll 32
  for (int r = 0; r < R; r++) c0[r] = c1[r] = V::zero();
  // Unrolled 4× over p: one pointer bump per 4 steps.
  int p = 0;
  for (; p + 4 <= kc; p += 4, ap += 4 * MR, bp += 4 * NR) {
    if constexpr (kPrefetch) {
      const float* crow = c + std::min(p / 4, mr - 1) * ldc;
      V::prefetch(crow);
      V::prefetch(crow + nr - 1);
    }
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
      if constexpr (kPrefetch) {
        V::prefetch(bp + (u + kPrefetchSteps) * NR);
        V::prefetch(bp + (u + kPrefetchSteps) * NR + NR - 1);
        V::prefetch(ap + (u + kPrefetchSteps) * MR);
      }
      VT b0 = V::load(bp + u * NR), b1 = V::load(bp + u * NR + W);
      // Pins the B loads to their step; otherwise GCC hoists them and runs out of registers.
      __asm__("" : "+v"(b0), "+v"(b1));
#pragma GCC unroll 32
      for (int r = 0; r < R; r++) {
        const VT a = V::bcast(ap + u * MR + r);
        c0[r] = V::madd(a, b0, c0[r]);
        c1[r] = V::madd(a, b1, c1[r]);
      }
    }
  }
  for (; p < kc; p++, ap += MR, bp += NR) {
    const VT b0 = V::load(bp), b1 = V::load(bp + W);
#pragma GCC unroll 32
    for (int r = 0; r < R; r++) {
      const VT a = V::bcast(ap + r);
      c0[r] = V::madd(a, b0, c0[r]);
      c1[r] = V::madd(a, b1, c1[r]);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < R; r++) {
    V::store(acc + r * NR, c0[r]);
    V::store(acc + r * NR + W, c1[r]);
  }
}

// A tile of mr < MR rows (the last of a block whose height is not a multiple of MR) runs
// accumulate for its rows rounded up to even, not all MR: acc's rows from there are not written.
// The rows' chains are the ones accumulate<MR> computes, so the bits do not change. The last
// tile of 1024 rows has 2 of 14: 1.2% of a 1024-row product's work was on zero rows.
template <int R = 2>
GEMM_TARGET static void accumulate_rows(int mr, int kc, const float* ap, const float* bp,
                                        float* acc, const float* c, int64_t ldc, int nr) {
  if constexpr (R >= MR) accumulate<MR>(kc, ap, bp, acc, c, ldc, mr, nr);
  else if (mr <= R) accumulate<R>(kc, ap, bp, acc, c, ldc, mr, nr);
  else accumulate_rows<R + 2>(mr, kc, ap, bp, acc, c, ldc, nr);
}

// C(mr, nr) = Ap·Bp + beta·C; beta = 0 never reads C. C' = beta·C + acc is one vector
// multiply-add for every element (edge tiles go through a scratch tile), so its rounding does
// not depend on the tile shape either. With a bias (nr floats; beta 0): C' = acc + bias_j, one
// rounding, the same as beta 1 on a C holding the bias (1·b + acc is exact before rounding).
GEMM_TARGET static void micro(int kc, const float* ap, const float* bp, float* c, int64_t ldc,
                              int mr, int nr, float beta, const float* bias) {
  // Start pulling the C tile in now; accumulate() takes thousands of cycles (with kPrefetch it
  // fetches rows 0 … kc/4 − 1 itself, spread over its loop).
  for (int r = kPrefetch ? kc / 4 : 0; r < mr; r++) {
    V::prefetch(c + r * ldc);
    V::prefetch(c + r * ldc + nr - 1);
  }
  alignas(64) float acc[MR * NR];
  if (mr == MR) accumulate<MR>(kc, ap, bp, acc, c, ldc, mr, nr);
  else accumulate_rows(mr, kc, ap, bp, acc, c, ldc, nr);
  const VT vb = V::set1(beta);
  if (bias) {
    if (mr == MR && nr == NR) {
      const VT b0 = V::load(bias), b1 = V::load(bias + W);
#pragma GCC unroll 32
      for (int r = 0; r < MR; r++) {
        V::store(c + r * ldc, V::add(V::load(acc + r * NR), b0));
        V::store(c + r * ldc + W, V::add(V::load(acc + r * NR + W), b1));
      }
    } else {
      for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] = acc[r * NR + j] + bias[j];
    }
  } else if (mr == MR && nr == NR) {
#pragma GCC unroll 32
    for (int r = 0; r < MR; r++) {
#pragma GCC unroll 2
      for (int h = 0; h < NR; h += W) {
        const VT x = V::load(acc + r * NR + h);
        V::store(c + r * ldc + h, beta == 0.f ? x : V::madd(vb, V::load(c + r * ldc + h), x));
      }
    }
  } else if (beta == 0.f) {
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < nr; j++) c[r * ldc + j] = acc[r * NR + j];
  } else {
    alignas(64) float t[MR * NR] = {};
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < nr; j++) t[r * NR + j] = c[r * ldc + j];
    for (int i = 0; i < mr * NR; i += W)
      V::store(t + i, V::madd(vb, V::load(t + i), V::load(acc + i)));
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < nr; j++) c[r * ldc + j] = t[r * NR + j];
  }
}

// ---- macro-kernel -----------------------------------------------------------------------------
// C(mc, nc) = Ap·Bp + beta·C over the packed block: B panels outer (the (kc, NR) panel stays in
// L1 while all A panels of the L2-resident block stream past it), A panels inner.
GEMM_TARGET static void macro(int mc, int nc, int kc, const float* ap, const float* bp, float* c,
                              int64_t ldc, float beta, const float* bias) {
  for (int j = 0; j < nc; j += NR) {
    const int nr = nc - j < NR ? nc - j : NR;
    const float* b = bp + static_cast<int64_t>(j / NR) * kc * NR;
    for (int i = 0; i < mc; i += MR) {
      const int mr = mc - i < MR ? mc - i : MR;
      micro(kc, ap + static_cast<int64_t>(i / MR) * kc * MR, b, c + i * ldc + j, ldc, mr, nr,
            beta, bias ? bias + j : nullptr);
    }
  }
}
