// Fused attention: the parameters shared by the N-API wrappers (attention.cc) and the compute
// code, which is compiled once per instruction set from attention_impl.inc
// (attention_portable.cc, attention_avx2.cc with AVX2+FMA, attention_avx512.cc) so every path
// runs the same blocking logic at its own vector width.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kdqat {
namespace attn {

// Vector width of the portable and AVX2 blocking (8 floats; the AVX-512 build uses 16: its
// own kW in attention_avx512.cc). Scratch rows are padded to multiples of the width in force
// (Params::w) so the micro-kernels never need masked loads.
constexpr int64_t kW = 8;
// Query rows per block: the unit of forward tasks and of the backward dK/dV reductions.
// A constant (not derived from the thread count) so results do not depend on threads.
constexpr int64_t kQB = 64;
// Rows per register tile of the micro-kernel (6 rows × 2 vectors = 12 accumulators).
constexpr int64_t kRT = 6;

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

struct Params {
  // forward
  const float* q = nullptr;       // (B,T,H,D)
  const float* k = nullptr;       // (B,T,Hkv,D)
  const float* v = nullptr;       // (B,T,Hkv,D)
  float* out = nullptr;           // (B,T,H,D)
  float* probs = nullptr;         // (B,H,T,T) or null; input of the backward
  float* scores = nullptr;        // (B,H,T,T) or null
  const int32_t* key_mask = nullptr;  // (B,T) or null
  // backward
  const float* gout = nullptr;    // (B,T,H,D)
  const float* gprobs = nullptr;  // (B,H,T,T) or null
  const float* gscores = nullptr; // (B,H,T,T) or null
  float* gq = nullptr;
  float* gk = nullptr;
  float* gv = nullptr;
  float* partials = nullptr;      // (B·Hkv, parts, 2, T, Dp) when parts > 1
  int64_t parts = 1;              // backward query-block groups per (b, kv head)

  int64_t B = 0, T = 0, H = 0, Hkv = 0, D = 0;
  float scale = 1.f;
  bool causal = false;
  int64_t window = 0;  // > 0: query i sees keys i − window < j only (sliding window)
  int64_t w = kW;      // vector width of the path that runs (Ops::lanes): the padding unit

  // First key row `row` may use under the window (0 without one).
  int64_t lo(int64_t row) const { return window > 0 && row - window + 1 > 0 ? row - window + 1 : 0; }

  int64_t G() const { return H / Hkv; }
  int64_t Tp() const { return round_up(T, w); }
  int64_t Dp() const { return round_up(D, w); }
  int64_t nqb() const { return (T + kQB - 1) / kQB; }
};

// Reusable per-thread scratch of at least n floats, 64-byte aligned (attention.cc). Contents
// are undefined on return; valid until the next call on the same thread.
float* thread_scratch(size_t n);

// Scratch floats one forward / backward task range needs.
size_t forward_scratch(const Params& p);
size_t backward_scratch(const Params& p);

#define KDQAT_ATTN_DECLARE(ns)                                                   \
  namespace ns {                                                                 \
  /* tasks t = (b·H + h)·nqb + qb: query block qb of head h in batch b */        \
  void forward_tasks(const Params& p, int64_t begin, int64_t end);               \
  /* tasks t = (b·Hkv + g)·parts + part */                                       \
  void backward_tasks(const Params& p, int64_t begin, int64_t end);              \
  /* rows r = (b·Hkv + g)·T + j: gk/gv row = Σ_part partials, in part order */   \
  void reduce_partials(const Params& p, int64_t begin, int64_t end);             \
  }

KDQAT_ATTN_DECLARE(avx512)
KDQAT_ATTN_DECLARE(avx2)
KDQAT_ATTN_DECLARE(portable)

// The family's table (one per ISA, chosen once by dispatch.h in attention.cc).
struct Ops {
  void (*forward_tasks)(const Params& p, int64_t begin, int64_t end);
  void (*backward_tasks)(const Params& p, int64_t begin, int64_t end);
  void (*reduce_partials)(const Params& p, int64_t begin, int64_t end);
  int64_t lanes;  // the body's vector width: Params::w must equal it
};

}  // namespace attn
}  // namespace kdqat
