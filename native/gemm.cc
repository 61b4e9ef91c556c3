// Kernel family 'gemm' (see src/tensor/kernels.ts for the contract): batched SGEMM.
//
// gemm.h describes the blocking; gemm_impl.h holds the per-ISA packing and micro-kernel code,
// compiled here three times (portable, AVX2+FMA, AVX-512); gemm_driver.h (shared with the bf16
// GEMM) cuts a call into blocks and threads, with results bitwise independent of the threads.
#include "common.h"
#include "dispatch.h"
#include "gemm.h"
#include "gemm_args.h"
#include "gemm_driver.h"
#include "simd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kdqat {

namespace gemm_portable {
using V = simd::Portable;
constexpr int MR = 6;
constexpr bool kPrefetch = false;
#define GEMM_TARGET
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_portable

namespace gemm_avx2 {
using V = simd::Avx2;
constexpr int MR = 6;
constexpr bool kPrefetch = false;
#define GEMM_TARGET KDQAT_AVX2
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_avx2

namespace gemm_avx512 {
using V = simd::Avx512;
constexpr int MR = 14;  // 28 zmm accumulators; GCC spills in the loop at MR = 12, not at 14
constexpr bool kPrefetch = false;
#define GEMM_TARGET KDQAT_AVX512
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_avx512

// The same kernel with software prefetches (gemm_impl.h), for Intel CPUs: same arithmetic, so
// bit for bit the results of gemm_avx512.
namespace gemm_avx512_prefetch {
using V = simd::Avx512;
constexpr int MR = 14;
constexpr bool kPrefetch = true;
#define GEMM_TARGET KDQAT_AVX512
#include "gemm_impl.h"
#undef GEMM_TARGET
}  // namespace gemm_avx512_prefetch

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
  static const GemmKernel k{"portable", g::MR, g::NR, 256, 120, 4096, 1, g::pack_a, g::pack_b<float>, g::macro,
                            1, g::pack_b<uint16_t>};
  return k;
}
const GemmKernel& gemm_kernel_avx2() {
  namespace g = gemm_avx2;
  static const GemmKernel k{"avx2", g::MR, g::NR, 768, 192, 1536, 1, g::pack_a, g::pack_b<float>, g::macro,
                            1, g::pack_b<uint16_t>};
  return k;
}
// On Intel the micro-kernel prefetches its panels and C (the AMD tuning above was without), and
// the driver takes the B-major order where it applies (bchunk_kib 1024: half of this Xeon's 2
// MiB L2; gemm_driver.h gemm_bmajor, with the figures). Neither measured on AMD.
// KDQAT_GEMM_PREFETCH=on|off overrides the vendor rule (scripts/test.mjs tests both instances).
static bool gemm_prefetch() {
  static const bool on = [] {
    const bool intel = !std::strcmp(cpu_vendor(), "GenuineIntel");
    return env_on_off("KDQAT_GEMM_PREFETCH", intel, intel ? "on: an Intel CPU" : "off: not an Intel CPU");
  }();
  return on;
}
const GemmKernel& gemm_kernel_avx512() {
  namespace g = gemm_avx512;
  namespace gp = gemm_avx512_prefetch;
  static const GemmKernel k{"avx512", g::MR, g::NR, 1024, 140, 1536, 1, g::pack_a, g::pack_b<float>, g::macro,
                            1, g::pack_b<uint16_t>};
  static const GemmKernel kp{"avx512", gp::MR, gp::NR, 1024, 140, 1536, 1, gp::pack_a, gp::pack_b<float>,
                             gp::macro, 1, gp::pack_b<uint16_t>, 1024};
  return gemm_prefetch() ? kp : k;
}

namespace {

const Dispatch<GemmKernel>& dispatch() {
  static const Dispatch<GemmKernel> d(&gemm_kernel_portable(), &gemm_kernel_avx2(),
                                      &gemm_kernel_avx512());
  return d;
}
const GemmKernel& kernel_for_cpu() { return dispatch().ops(); }

// ---- Node-API wrapper ---------------------------------------------------------------------------

// matmul(a, b, c, batch, m, k, n, transA, transB, strideA, strideB, beta): arguments checked by
// gemm_args.cc (shared with matmulBf16); b float32 or bf16 bits.
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const GemmArgs g = gemm_args(info, "matmul", true);
  if (!g.empty) gemm_driver::run(kernel_for_cpu(), g);
  return info.Env().Undefined();
}

}  // namespace

const char* gemm_isa() { return kernel_for_cpu().isa; }
bool gemm_uses_prefetch() { return kernel_for_cpu().macro == gemm_avx512_prefetch::macro; }

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, Matmul));
}

}  // namespace kdqat
