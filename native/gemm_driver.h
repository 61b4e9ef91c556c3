// The GEMM driver shared by every packed kernel (gemm.h PackedGemm: the fp32 kernels of gemm.cc,
// the bf16 kernel of gemm_bf16.cc): it cuts a call into blocks, picks the parallel
// decomposition and owns the reusable pack buffers.
//
// Threading: a batch of GEMMs is split across threads by batch item when there are enough
// items; otherwise each GEMM is split by row blocks (threads share the packed B slice) or, for
// short wide products, by column panels, or (kernels that take the B-major order, gemm_bmajor)
// by chunks of columns. The threads claim items, blocks and B panels one
// chunk at a time (parallel_for_dynamic), so when one core is slowed by other work on the
// machine the other takes more of the blocks instead of waiting for it. The K slicing never
// depends on the thread count, and the micro-kernel sums each element in the same order
// wherever its tile lies, so results are bitwise identical for any thread count, any M/N
// blocking and whichever thread runs a block.
#pragma once
#include "common.h"
#include "gemm.h"
#include "gemm_args.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>

namespace kdqat {
namespace gemm_driver {

// A 64-byte aligned scratch buffer that only grows; one per thread, role and element type, so
// steady-state calls allocate nothing.
template <class E>
struct PackBuf {
  E* p = nullptr;
  size_t cap = 0;
  ~PackBuf() { std::free(p); }
  E* get(size_t n) {
    n += 64;  // slack: pack_a's whole-vector stores may run up to one vector past the end
    if (n > cap) {
      std::free(p);
      p = static_cast<E*>(std::aligned_alloc(64, (n * sizeof(E) + 63) / 64 * 64));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
template <class E>
E* apack(size_t n) {
  thread_local PackBuf<E> b;
  return b.get(n);
}
template <class E>
E* bpack(size_t n) {
  thread_local PackBuf<E> b;
  return b.get(n);
}

// The whole packed op(A) of gemm_bmajor, one per thread.
template <class E>
E* apack_all(size_t n) {
  thread_local PackBuf<E> b;
  return b.get(n);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// One GEMM: C(m,n) = op(A)·op(B) + beta·C with op(A)(i,p) = a[i·rsa + p·csa] and
// op(B)(p,j) = b[p·rsb + j·csb], C(i,j) = c[i·ldc + j]; with a bias (n floats, beta 0), + bias
// in every row instead.
struct Problem {
  const float* a;
  BOperand b;
  float* c;
  int64_t m, k, n, rsa, csa, rsb, csb;
  float beta;
  const float* bias;
  int64_t ldc;
};

// Packs X(p, j) = op(B) at b (gemm.h PackedGemm::pack_b) from float32 or bf16 bits.
template <class E>
void pack_b(const PackedGemm<E>& K, BOperand b, int64_t rs, int64_t cs, int kc, int nc, E* dst) {
  if (b.bf16) K.pack_b_bf16(b.bf16, rs, cs, kc, nc, dst);
  else K.pack_b(b.f32, rs, cs, kc, nc, dst);
}

// The B-major order (kernels with bchunk_kib, gemm.h): each thread packs all of op(A) once, every
// K slice of it (at most 16 MiB), then takes chunks of op(B)'s columns, each chunk's K slice
// packing into bchunk_kib (half of L2): it packs the chunk's slice and runs every A panel against
// it, A panels outer (from L3), the chunk's B panels inner (from L2). B is packed once and read
// back from L2, where the row-block order writes each (KC, NC) slice to L3 and reads it back
// from there, and A is packed once per thread instead of once per NC block; a thread's chunks
// need no barrier. Used on one thread whenever op(A) fits, on more for products at least as wide
// as tall (every thread packs op(A)), with the chunks narrowed to give 4 a thread. Each tile sums
// its K slices in order as in the row-block order, so the bits are the same. Returns false when
// the order does not apply. Measured (Intel Xeon, Emerald Rapids; medians of 3 runs against the
// row-block order): 1 thread, 1024×576×49152 tb (the LM head) +14%, 2048×768×3072 tb +3%,
// 768×2048×3072 ta +2%, none of the 11 bench shapes slower by more than 0.6%; 2 threads, the LM
// head +12%, 768×2048×3072 ta +5%, 2048×512×2048 +3%, 512×256×1024 and 1024×576×1536 tb −1%
// (noise level); products taller than wide lost up to 25% with every thread packing op(A).
// The AMX bf16 kernel with it (chunks of 1 MiB, two runs of bench/gemm_bf16.ts): the LM head
// +4–32% at 1 thread and +14–26% at 2, but 1024×1536×576 −3 to −13% at 1 thread and
// 1024×576×1536 −2 to −6% at 2; not adopted there.
template <class E>
bool gemm_bmajor(const PackedGemm<E>& K, const Problem& P, int threads, int kcs) {
  if (K.bchunk_kib <= 0 || (threads > 1 && P.n < P.m)) return false;
  const int64_t tiles = ceil_div(P.m, K.mr);
  const int64_t slices = ceil_div(P.k, kcs);
  const int64_t kpf = round_up(ceil_div(kcs, K.kpack), K.kalign);  // packed depth of a full slice
  const int64_t slice_elems = tiles * kpf * K.mr;                   // one packed K slice of op(A)
  if (static_cast<int64_t>(sizeof(E)) * slices * slice_elems > (int64_t{16} << 20)) return false;
  int64_t chunk = std::max<int64_t>(
      K.nr, int64_t{K.bchunk_kib} * 1024 / (kpf * static_cast<int64_t>(sizeof(E))) / K.nr * K.nr);
  if (threads > 1) chunk = std::max<int64_t>(K.nr, std::min(chunk, round_up(ceil_div(P.n, 4 * threads), K.nr)));
  // A thread packs op(A) on its first chunk of the call (a thread that gets none never does).
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = ++calls;
  auto run_chunks = [&](int64_t c0, int64_t c1) {
    E* ap = apack_all<E>(static_cast<size_t>(slices * slice_elems));
    thread_local uint64_t packed = 0;
    if (packed != call) {
      for (int64_t s = 0; s < slices; s++) {
        const int64_t p0 = s * kcs;
        const int kc = static_cast<int>(std::min<int64_t>(kcs, P.k - p0));
        K.pack_a(P.a + p0 * P.csa, P.rsa, P.csa, static_cast<int>(P.m), kc, ap + s * slice_elems);
      }
      packed = call;
    }
    E* bp = bpack<E>(static_cast<size_t>(kpf * chunk));
    for (int64_t ch = c0; ch < c1; ch++) {
      const int64_t j0 = ch * chunk;
      const int nc = static_cast<int>(std::min<int64_t>(chunk, P.n - j0));
      for (int64_t s = 0; s < slices; s++) {
        const int64_t p0 = s * kcs;
        const int kc = static_cast<int>(std::min<int64_t>(kcs, P.k - p0));
        const int64_t kp = round_up(ceil_div(kc, K.kpack), K.kalign);
        const float beta = p0 == 0 ? P.beta : 1.f;
        const float* bias = p0 == 0 && P.bias ? P.bias + j0 : nullptr;
        pack_b(K, P.b + (p0 * P.rsb + j0 * P.csb), P.rsb, P.csb, kc, nc, bp);
        for (int64_t i = 0; i < tiles; i++) {
          const int mr = static_cast<int>(std::min<int64_t>(K.mr, P.m - i * K.mr));
          K.macro(mr, nc, kc, ap + s * slice_elems + i * kp * K.mr, bp, P.c + i * K.mr * P.ldc + j0,
                  P.ldc, beta, bias);
        }
      }
    }
  };
  const int64_t chunks = ceil_div(P.n, chunk);
  if (threads == 1) run_chunks(0, chunks);
  else parallel_for_dynamic(chunks, 1, run_chunks);
  return true;
}

// One GEMM on `threads` threads (1: on the caller, e.g. inside a batch-parallel loop). Per
// (NC, KC) slice: pack B (cooperatively), then run tasks = row blocks × column-panel ranges;
// each task packs its own A block.
template <class E>
void gemm_item(const PackedGemm<E>& K, const Problem& P, int threads) {
  if (P.k == 0) {  // C = beta·C (beta 0 clears, ignoring NaN), or the bias in every row
    for (int64_t i = 0; i < P.m; i++)
      for (int64_t j = 0; j < P.n; j++) {
        float* c = P.c + i * P.ldc + j;
        *c = P.bias ? P.bias[j] : P.beta == 0.f ? 0.f : P.beta * *c;
      }
    return;
  }
  // K slices depend only on k: equal lengths of at most KC, multiples of kpack·kalign (but the
  // last).
  const int kcs = static_cast<int>(round_up(ceil_div(P.k, ceil_div(P.k, K.kc)), K.kpack * K.kalign));
  if (gemm_bmajor(K, P, threads, kcs)) return;
  const int ncs = static_cast<int>(round_up(ceil_div(P.n, ceil_div(P.n, K.nc)), K.nr));
  // Wide products (a decoder's LM head): whole NC-wide column blocks, claimed one at a time, each
  // run by one thread from packing its own B slices to the end — no barrier per slice, and a
  // thread slowed by other work on the machine just takes fewer blocks. (Shared B slices with
  // the rows split cost up to a tenth here: 1024×576×49152 at 2 threads.)
  if (threads > 1 && ceil_div(P.n, ncs) >= 4 * threads) {
    parallel_for_dynamic(ceil_div(P.n, ncs), 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; blk++) {
        const int64_t j0 = blk * ncs;
        Problem S = P;
        S.b = P.b + j0 * P.csb;
        S.c = P.c + j0;
        S.n = std::min<int64_t>(ncs, P.n - j0);
        S.bias = P.bias ? P.bias + j0 : nullptr;
        gemm_item(K, S, 1);
      }
    });
    return;
  }
  // Row blocks of whole MR tiles, at most MC rows each, the tiles dealt out as evenly as they go
  // (block b holds tiles [bulk·b/nb, bulk·(b+1)/nb)); with enough rows nb is a multiple of the
  // thread count, so each thread's contiguous run of blocks has bulk/threads tiles, give or take
  // one. (Rounding one block height up to MR instead left the last block short: 1024 rows on 2
  // threads at MC 140 were 560 + 464 rows, the second thread idle 17% of the time.) The
  // tiles (mod threads) tiles left over form one last block whose column panels are shared out,
  // each thread's run ending with its share, so every thread has the same work: 768 rows (55
  // tiles) on 2 threads were 28 + 27 tiles, the second thread idle 1/28 of the time. Too few
  // rows: the column panels are split for every block.
  const bool split_m = P.m >= static_cast<int64_t>(threads) * K.mr * 8;
  const int64_t tiles = ceil_div(P.m, K.mr);
  const int64_t rest = split_m ? tiles % threads : 0;  // tiles of the shared last block
  const int64_t bulk = tiles - rest;
  int64_t nb = ceil_div(bulk, std::max(1, K.mc / K.mr));
  if (split_m) nb = round_up(nb, threads);
  nb = std::min(nb, bulk);  // still a multiple of the threads when split_m: so is bulk
  const int mcs = static_cast<int>(std::max(ceil_div(bulk, nb), rest) * K.mr);  // the tallest block
  // Block nb is the shared last one (rows [bulk·MR, m)).
  auto row0 = [&](int64_t b) { return b > nb ? P.m : std::min<int64_t>(P.m, bulk * b / nb * K.mr); };
  const int64_t run = split_m ? nb / threads + (rest ? 1 : 0) : 0;  // tasks per thread (split_m)
  E* bp = bpack<E>(static_cast<size_t>(round_up(ceil_div(kcs, K.kpack), K.kalign)) * ncs);
  auto pfor = [threads](int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (threads == 1) fn(0, n);
    else parallel_for_dynamic(n, grain, fn);
  };
  for (int64_t j0 = 0; j0 < P.n; j0 += ncs) {
    const int nc = static_cast<int>(std::min<int64_t>(ncs, P.n - j0));
    const int64_t panels = ceil_div(nc, K.nr);
    const int64_t nsplit = split_m ? 1 : std::min<int64_t>(threads, panels);
    // Task t → its row block and its part (of `parts`) of the column panels.
    struct Task {
      int64_t ib, js, parts;
    };
    auto task = [&](int64_t t) -> Task {
      if (!split_m) return {t % nb, t / nb, nsplit};
      const int64_t th = t / run, pos = t % run;
      if (pos < nb / threads) return {th * (nb / threads) + pos, 0, 1};
      return {nb, th, threads};
    };
    const int64_t ntasks = split_m ? run * threads : nb * nsplit;
    for (int64_t p0 = 0; p0 < P.k; p0 += kcs) {
      const int kc = static_cast<int>(std::min<int64_t>(kcs, P.k - p0));
      const int64_t kp = round_up(ceil_div(kc, K.kpack), K.kalign);  // packed depth of this slice
      const float beta = p0 == 0 ? P.beta : 1.f;
      const float* bias = p0 == 0 ? P.bias : nullptr;  // the first slice starts C at the bias
      const BOperand bsrc = P.b + (p0 * P.rsb + j0 * P.csb);
      // Pack B panels [q0, q1) of this slice; ~16 KiB per panel, so a few panels per thread.
      pfor(panels, 8, [&](int64_t q0, int64_t q1) {
        const int64_t c0 = q0 * K.nr, c1 = std::min<int64_t>(q1 * K.nr, nc);
        pack_b(K, bsrc + c0 * P.csb, P.rsb, P.csb, kc, static_cast<int>(c1 - c0), bp + q0 * kp * K.nr);
      });
      pfor(ntasks, 1, [&](int64_t t0, int64_t t1) {
        E* ap = apack<E>(static_cast<size_t>(kp) * mcs);
        int64_t packed = -1;
        for (int64_t t = t0; t < t1; t++) {
          const Task tk = task(t);
          const int64_t ib = tk.ib, i0 = row0(ib);
          const int mc = static_cast<int>(row0(ib + 1) - i0);
          if (packed != ib) {
            K.pack_a(P.a + i0 * P.rsa + p0 * P.csa, P.rsa, P.csa, mc, kc, ap);
            packed = ib;
          }
          const int64_t q0 = panels * tk.js / tk.parts, q1 = panels * (tk.js + 1) / tk.parts;
          const int64_t c0 = q0 * K.nr, c1 = std::min<int64_t>(q1 * K.nr, nc);
          if (c0 < c1)
            K.macro(mc, static_cast<int>(c1 - c0), kc, ap, bp + q0 * kp * K.nr,
                    P.c + i0 * P.ldc + j0 + c0, P.ldc, beta, bias ? bias + j0 + c0 : nullptr);
        }
      });
    }
  }
}

// A checked call (gemm_args.h): its items, by batch item across threads when they divide well
// or are small, else each item split over the threads.
template <class E>
void run(const PackedGemm<E>& K, GemmArgs g) {
  // A (batch, m, k) stack times one shared B is one (batch·m, k) GEMM: C's rows are contiguous.
  if (g.batch > 1 && g.stride_b == 0 && !g.ta && g.stride_a == g.m * g.k) {
    g.m *= g.batch;
    g.batch = 1;
  }
  auto item = [&g](int64_t i) {
    return Problem{g.a + i * g.stride_a, g.b + i * g.stride_b, g.c + i * g.m * g.n, g.m, g.k, g.n,
                   g.ta ? 1 : g.k, g.ta ? g.m : 1, g.tb ? 1 : g.n, g.tb ? g.k : 1, g.beta, g.bias, g.n};
  };
  const int threads = num_threads();
  const double flops = 2.0 * g.m * g.n * g.k;  // per item
  const double tiny = 3e5;  // ~10 µs of work: not worth waking the pool
  if (threads > 1 && g.batch >= threads && flops * g.batch >= tiny &&
      (g.batch % threads == 0 || g.batch >= 4 * threads || flops < 4e6)) {
    parallel_for_dynamic(g.batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) gemm_item(K, item(i), 1);
    });
    return;
  }
  for (int64_t i = 0; i < g.batch; i++) gemm_item(K, item(i), flops >= tiny ? threads : 1);
}

}  // namespace gemm_driver
}  // namespace kdqat
