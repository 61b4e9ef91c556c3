// Kernel family 'gemm' (see src/tensor/kernels.ts for the contract): batched SGEMM.
//
// gemm.h describes the blocking; gemm_impl.h holds the per-ISA packing and micro-kernel code,
// compiled here three times (portable, AVX2+FMA, AVX-512). This file is the driver: it cuts a
// call into blocks, picks the parallel decomposition and owns the reusable pack buffers.
//
// Threading: a batch of GEMMs is split across threads by batch item when there are enough
// items; otherwise each GEMM is split by row blocks (threads share the packed B slice) or, for
// short wide products, by column panels. The K slicing never depends on the thread count, and
// the micro-kernel sums each element in the same order wherever its tile lies, so results are
// bitwise identical for any thread count.
#include "common.h"
#include "dispatch.h"
#include "gemm.h"
#include "gemm_args.h"
#include "simd.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace kdqat {

namespace gemm_portable {
using V = simd::Portable;
constexpr int MR = 6;
#define GEMM_TARGET
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_portable

namespace gemm_avx2 {
using V = simd::Avx2;
constexpr int MR = 6;
#define GEMM_TARGET KDQAT_AVX2
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_avx2

namespace gemm_avx512 {
using V = simd::Avx512;
constexpr int MR = 14;  // 28 zmm accumulators; GCC spills in the loop at MR = 12, not at 14
#define GEMM_TARGET KDQAT_AVX512
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_avx512

// Blocking: MC is a multiple of MR. KC is far deeper than "the B panel fits L1" would give:
// every micro-tile ends with an out-of-line store of its accumulators and a pass over its C
// tile, and that fixed cost per tile is only amortized over a long K loop; a K as large as the
// hidden size also makes the projections one K slice, so C is written once and never re-read.
// The B panel then sits in L2 and the A panels stream from L2/L3, which Zen 4's prefetchers
// keep up with. Tuned on Zen 4 (single thread, CPU time, best of 5; GFLOP/s at 1024×576×576 tb
// / 1024×576×1536 tb / 768×2048×3072 ta / 2048×768×3072 tb / 512×576×8192 tb):
//   AVX-512 KC 160 MC 280 (the old guess): 86 88 89 89 86; KC 1024 MC 140: 105 102 103 104 ~98;
//   AVX2 KC 256 MC 144 (tuned on Zen 1): 104 104 98 94 93; KC 768 MC 192: 103 103 101 103 100.
// NC 1536 rather than 4096: the packed B slice (KC × NC, up to 6 MiB) then leaves room in L3
// for the A blocks and C; at 1024×576×49152 tb (the LM head) and 256×576×16384 tb AVX-512
// goes 98 → 101 and 87 → 96, AVX2 is flat. The portable values are the Zen 1 AVX2 ones.
const GemmKernel& gemm_kernel_portable() {
  namespace g = gemm_portable;
  static const GemmKernel k{"portable", g::MR, g::NR, 256, 120, 4096, g::pack_a, g::pack_b, g::macro};
  return k;
}
const GemmKernel& gemm_kernel_avx2() {
  namespace g = gemm_avx2;
  static const GemmKernel k{"avx2", g::MR, g::NR, 768, 192, 1536, g::pack_a, g::pack_b, g::macro};
  return k;
}
const GemmKernel& gemm_kernel_avx512() {
  namespace g = gemm_avx512;
  static const GemmKernel k{"avx512", g::MR, g::NR, 1024, 140, 1536, g::pack_a, g::pack_b, g::macro};
  return k;
}

namespace {

const Dispatch<GemmKernel>& dispatch() {
  static const Dispatch<GemmKernel> d(&gemm_kernel_portable(), &gemm_kernel_avx2(),
                                      &gemm_kernel_avx512());
  return d;
}
const GemmKernel& kernel_for_cpu() { return dispatch().ops(); }

// A 64-byte aligned scratch buffer that only grows; one per thread and role, so steady-state
// calls allocate nothing.
struct PackBuf {
  float* p = nullptr;
  size_t cap = 0;
  ~PackBuf() { std::free(p); }
  float* get(size_t n) {
    n += 64;  // slack: pack_a's whole-vector stores may run up to one vector past the end
    if (n > cap) {
      std::free(p);
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
thread_local PackBuf tl_apack, tl_bpack;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One GEMM: C(m,n) = op(A)·op(B) + beta·C with op(A)(i,p) = a[i·rsa + p·csa] and
// op(B)(p,j) = b[p·rsb + j·csb].
struct Problem {
  const float* a;
  const float* b;
  float* c;
  int64_t m, k, n, rsa, csa, rsb, csb;
  float beta;
};

// K slices depend only on k (never on threads): equal slices of at most KC.
int slice_k(const GemmKernel& K, int64_t k) {
  return static_cast<int>(ceil_div(k, ceil_div(k, K.kc)));
}
int slice_n(const GemmKernel& K, int64_t n) {
  return static_cast<int>(round_up(ceil_div(n, ceil_div(n, K.nc)), K.nr));
}

void scale_c(const Problem& P) {  // k == 0: C = beta·C (beta 0 clears, ignoring NaN)
  const int64_t len = P.m * P.n;
  for (int64_t i = 0; i < len; i++) P.c[i] = P.beta == 0.f ? 0.f : P.beta * P.c[i];
}

// The whole GEMM on the calling thread with its own pack buffers.
void gemm_serial(const GemmKernel& K, const Problem& P) {
  if (P.k == 0) return scale_c(P);
  const int kcs = slice_k(K, P.k), ncs = slice_n(K, P.n);
  const int mcs = static_cast<int>(std::min<int64_t>(round_up(P.m, K.mr), K.mc));
  float* bp = tl_bpack.get(static_cast<size_t>(kcs) * ncs);
  float* ap = tl_apack.get(static_cast<size_t>(kcs) * mcs);
  for (int64_t j0 = 0; j0 < P.n; j0 += ncs) {
    const int nc = static_cast<int>(std::min<int64_t>(ncs, P.n - j0));
    for (int64_t p0 = 0; p0 < P.k; p0 += kcs) {
      const int kc = static_cast<int>(std::min<int64_t>(kcs, P.k - p0));
      const float beta = p0 == 0 ? P.beta : 1.f;
      K.pack_b(P.b + p0 * P.rsb + j0 * P.csb, P.rsb, P.csb, kc, nc, bp);
      for (int64_t i0 = 0; i0 < P.m; i0 += mcs) {
        const int mc = static_cast<int>(std::min<int64_t>(mcs, P.m - i0));
        K.pack_a(P.a + i0 * P.rsa + p0 * P.csa, P.rsa, P.csa, mc, kc, ap);
        K.macro(mc, nc, kc, ap, bp, P.c + i0 * P.n + j0, P.n, beta);
      }
    }
  }
}

// One GEMM split over the pool. Per (NC, KC) slice: pack B cooperatively into the caller's
// buffer, then run tasks = row blocks × column-panel ranges; each task packs its own A block.
void gemm_parallel(const GemmKernel& K, const Problem& P, int threads) {
  if (P.k == 0) return scale_c(P);
  const int kcs = slice_k(K, P.k), ncs = slice_n(K, P.n);
  // Row split when there are enough rows for every thread (balanced block count), else split
  // the column panels of each slice across threads (js-major so a thread keeps its columns).
  const bool split_m = P.m >= static_cast<int64_t>(threads) * K.mr * 8;
  int64_t nb = ceil_div(P.m, K.mc);
  if (split_m) nb = round_up(nb, threads);
  const int mcs = static_cast<int>(round_up(ceil_div(P.m, nb), K.mr));
  nb = ceil_div(P.m, mcs);
  float* bp = tl_bpack.get(static_cast<size_t>(kcs) * ncs);

  struct Ctx {
    const GemmKernel& K;
    const Problem& P;
    float* bp;
    int64_t j0, p0, nb, nsplit, panels;
    int nc, kc, mcs;
    float beta;
  } x{K, P, bp, 0, 0, nb, 1, 0, 0, 0, mcs, 0.f};
  for (x.j0 = 0; x.j0 < P.n; x.j0 += ncs) {
    x.nc = static_cast<int>(std::min<int64_t>(ncs, P.n - x.j0));
    x.panels = ceil_div(x.nc, K.nr);
    x.nsplit = split_m ? 1 : std::min<int64_t>(threads, x.panels);
    for (x.p0 = 0; x.p0 < P.k; x.p0 += kcs) {
      x.kc = static_cast<int>(std::min<int64_t>(kcs, P.k - x.p0));
      x.beta = x.p0 == 0 ? P.beta : 1.f;
      // Pack B panels [q0, q1) of this slice; ~16 KiB per panel, so a few panels per thread.
      parallel_for(x.panels, 8, [&x](int64_t q0, int64_t q1) {
        const int64_t c0 = q0 * x.K.nr, c1 = std::min<int64_t>(q1 * x.K.nr, x.nc);
        x.K.pack_b(x.P.b + x.p0 * x.P.rsb + (x.j0 + c0) * x.P.csb, x.P.rsb, x.P.csb, x.kc,
                   static_cast<int>(c1 - c0), x.bp + q0 * x.kc * x.K.nr);
      });
      parallel_for(x.nb * x.nsplit, 1, [&x](int64_t t0, int64_t t1) {
        float* ap = tl_apack.get(static_cast<size_t>(x.kc) * x.mcs);
        int64_t packed = -1;
        for (int64_t t = t0; t < t1; t++) {
          const int64_t ib = t % x.nb, js = t / x.nb;
          const int64_t i0 = ib * x.mcs;
          const int mc = static_cast<int>(std::min<int64_t>(x.mcs, x.P.m - i0));
          if (packed != ib) {
            x.K.pack_a(x.P.a + i0 * x.P.rsa + x.p0 * x.P.csa, x.P.rsa, x.P.csa, mc, x.kc, ap);
            packed = ib;
          }
          const int64_t q0 = x.panels * js / x.nsplit, q1 = x.panels * (js + 1) / x.nsplit;
          const int64_t c0 = q0 * x.K.nr, c1 = std::min<int64_t>(q1 * x.K.nr, x.nc);
          if (c0 >= c1) continue;
          x.K.macro(mc, static_cast<int>(c1 - c0), x.kc, ap, x.bp + q0 * x.kc * x.K.nr,
                    x.P.c + i0 * x.P.n + x.j0 + c0, x.P.n, x.beta);
        }
      });
    }
  }
}

// A checked call (gemm_args.h) and its items.
struct Batch : GemmArgs {
  Problem item(int64_t i) const {
    return Problem{a + i * stride_a, b + i * stride_b, c + i * m * n, m, k, n,
                   ta ? 1 : k, ta ? m : 1, tb ? 1 : n, tb ? k : 1, beta};
  }
};

void run_batch(const GemmKernel& K, Batch B) {
  // A (batch, m, k) stack times one shared B is one (batch·m, k) GEMM: C's rows are contiguous.
  if (B.batch > 1 && B.stride_b == 0 && !B.ta && B.stride_a == B.m * B.k) {
    B.m *= B.batch;
    B.batch = 1;
  }
  const int threads = num_threads();
  const double flops = 2.0 * B.m * B.n * B.k;  // per item
  const double tiny = 3e5;  // ~10 µs of work: not worth waking the pool
  // Whole items per thread when they divide well or are small; else split each item.
  if (threads > 1 && B.batch >= threads && flops * B.batch >= tiny &&
      (B.batch % threads == 0 || B.batch >= 4 * threads || flops < 4e6)) {
    parallel_for(B.batch, 1, [&B, &K](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) gemm_serial(K, B.item(i));
    });
    return;
  }
  for (int64_t i = 0; i < B.batch; i++) {
    if (threads > 1 && flops >= tiny) gemm_parallel(K, B.item(i), threads);
    else gemm_serial(K, B.item(i));
  }
}

// ---- Node-API wrapper ---------------------------------------------------------------------------

// matmul(a, b, c, batch, m, k, n, transA, transB, strideA, strideB, beta): arguments checked by
// gemm_args.cc (shared with matmulBf16).
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const GemmArgs g = gemm_args(info, "matmul");
  if (!g.empty)
    run_batch(kernel_for_cpu(), Batch{g});
  return info.Env().Undefined();
}

}  // namespace

const char* gemm_isa() { return kernel_for_cpu().isa; }

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, Matmul));
}

}  // namespace kdqat
