// SGEMM building blocks shared by the driver (gemm.cc) and the per-ISA code (gemm_impl.h).
//
// Design (Goto & van de Geijn 2008, "Anatomy of high-performance matrix multiplication";
// the BLIS five-loop form): C(m,n) += op(A)(m,k)·op(B)(k,n) is cut into NC-wide column blocks
// and KC-deep slices; each (KC, NC) slice of op(B) is packed into NR-wide panels (the panel the
// micro-kernel streams stays in L1), each (MC, KC) block of op(A) into MR-tall panels (the block
// stays in L2), and an MR×NR register-tiled micro-kernel does the FMAs. Transposed operands are
// handled entirely by the packing routines (they read through row/column strides), so every
// trans combination runs the same micro-kernel.
#pragma once
#include <cstdint>

namespace kdqat {

// op(B)'s storage: float32, or bf16 bit patterns (a frozen model's weights that are bf16 values,
// src/tensor/bf16.ts narrowBf16), which packing widens exactly (value = bits << 16), so the
// product is bit for bit the one of the float32 copy. Exactly one pointer is set.
struct BOperand {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
  BOperand operator+(int64_t d) const { return {f32 ? f32 + d : nullptr, bf16 ? bf16 + d : nullptr}; }
};

// A packed GEMM: its blocking and its three routines over packed elements E — float (the fp32
// kernels of gemm_impl.h) or uint32_t (gemm_bf16.cc: a pair of bf16 values along k per word).
// One driver (gemm_driver.h) runs every instance.
template <class E>
struct PackedGemm {
  const char* isa;  // the code path (isa_name spelling), for isaInfo()
  int mr, nr;      // register tile
  int kc, mc, nc;  // cache blocking (kc: L1 panel depth, mc: L2 block rows, nc: L3 block cols)
  int kpack;       // k values per packed element (1: float; 2: bf16 pairs): K slices are
                   // multiples of it (but the last), panels ceil(kc/kpack) elements deep
  // Packs the (mc, kc) block X(i, p) = x[i·rs + p·cs] into ceil(mc/mr) panels, each
  // (ceil(kc/kpack), mr) row-major with rows past mc zero-filled (the macro-kernel's layout:
  // the AMX one orders a panel's elements otherwise, the panel size being the same). May store
  // up to 64 elements
  // past the last panel (whole-vector stores).
  void (*pack_a)(const float* x, int64_t rs, int64_t cs, int mc, int kc, E* dst);
  // Packs the (kc, nc) block X(p, j) = x[p·rs + j·cs] into ceil(nc/nr) panels, each
  // (ceil(kc/kpack), nr) row-major with columns past nc zero-filled.
  void (*pack_b)(const float* x, int64_t rs, int64_t cs, int kc, int nc, E* dst);
  // C(mc, nc) = packedA·packedB + beta·C, C with row stride ldc; beta = 0 never reads C. A bias
  // (nc floats, or nullptr; beta is then 0) gives C = packedA·packedB + bias in every row, with
  // the rounding of beta 1 on a C that held the bias.
  void (*macro)(int mc, int nc, int kc, const E* ap, const E* bp, float* c, int64_t ldc,
                float beta, const float* bias);
  // Panels are ceil(ceil(kc/kpack)/kalign)·kalign elements deep: AMX tiles take k in blocks of
  // 16 elements, the pack routines zero-filling the rest of the last one.
  int kalign = 1;
  // pack_b from bf16 bits (widened exactly, so the same packed values as pack_b of the float32
  // copy), or nullptr where the kernel takes float32 B only.
  void (*pack_b_bf16)(const uint16_t* x, int64_t rs, int64_t cs, int kc, int nc, E* dst) = nullptr;
  // > 0: the B-major order (gemm_driver.h gemm_bmajor) where it applies, with chunks of op(B)
  // whose K slice packs into this many KiB (half of L2); 0: the row-block order only.
  int bchunk_kib = 0;
};
using GemmKernel = PackedGemm<float>;

const GemmKernel& gemm_kernel_portable();
const GemmKernel& gemm_kernel_avx2();
const GemmKernel& gemm_kernel_avx512();

}  // namespace kdqat
