// Intel AMX (Advanced Matrix Extensions, Sapphire Rapids and later): eight tile registers of up
// to 16 rows × 64 bytes and tile multiply-adds on them — TDPBF16PS (bf16 pairs → fp32, for
// matmulBf16) and TDPBUSD (u8 × s8 quads → int32, for matmulQ8). Not a SIMD level of its own: an
// engine on top of the avx512 level, used by those two kernels when this is non-null.
//
// Linux keeps the 8 KiB of tile data out of a process's state until the process asks for it
// (arch_prctl ARCH_REQ_XCOMP_PERM, Documentation/arch/x86/xstate.rst); amx_unavailable() asks
// once, and a refusal is reported like a missing instruction set, never a crash.
#pragma once
#include <immintrin.h>
#include <cstdint>

#define KDQAT_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,amx-int8")))

namespace kdqat {

// Why the AMX kernels cannot run here (the CPU lacks amx_tile/amx_bf16/amx_int8, KDQAT_ISA
// caps below avx512, KDQAT_AMX=off, or the kernel refused tile data), or nullptr when they can.
const char* amx_unavailable();

// The one tile configuration every AMX kernel uses — all eight tiles 16 rows × 64 bytes —
// loaded on the calling thread the first time it runs one (tile configuration is per thread).
void amx_configure_thread();

// The micro-kernel both AMX kernels run, a 32 × 32 block of C in the four C tiles 0–3 (rows
// 0–15 / 16–31 × columns 0–15 / 16–31): per step, A tiles 4–5 (rows 0–15 at a, 16–31 1 KiB
// further; 64-byte rows) and B tiles 6–7 (columns 0–15 at b, 16–31 64 bytes further; 128-byte
// rows), Dp::step() their four tile multiply-adds; then a and b move on 2 KiB. acc gets the C
// tiles as 32 rows of 32 four-byte lanes (fp32 or int32). Needs amx_configure_thread().
// c (optional): the first `rows` rows of the C block the caller updates next (128 bytes each,
// `ldc` bytes apart), prefetched a few rows per step so that the update finds them in cache.
// Pieces > 1 (matmulOnGrid: A as a sum of bf16 pieces times one B): per step the B tiles are
// loaded once and each piece's two A tiles (the pieces' 2 KiB one after another, a moving on
// 2 KiB·Pieces) are multiplied into the same C tiles in turn — 2 + 2·Pieces tile loads per
// 4·Pieces multiply-adds, where Pieces separate products would load 4·Pieces.
template <class Dp, int Pieces = 1>
KDQAT_AMX_TARGET inline void amx_block_32x32(int steps, const uint8_t* a, const uint8_t* b, void* acc,
                                             const void* c = nullptr, int64_t ldc = 0, int rows = 0) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const char* crow = static_cast<const char*>(c);
  const int per = steps > 0 ? (rows + steps - 1) / steps : rows;  // C rows prefetched per step
  int row = 0;
  for (int s = 0; s < steps; s++, a += 2048 * Pieces, b += 2048) {
    if (Pieces == 1) {
      _tile_loadd(4, a, 64);
      _tile_loadd(5, a + 1024, 64);
    }
    _tile_loadd(6, b, 128);
    _tile_loadd(7, b + 64, 128);
    for (int q = 0; q < per && row < rows; q++, row++, crow += ldc) {
      _mm_prefetch(crow, _MM_HINT_T0);
      _mm_prefetch(crow + 64, _MM_HINT_T0);
    }
    if (Pieces == 1) {
      Dp::step();
      continue;
    }
    for (int j = 0; j < Pieces; j++) {
      _tile_loadd(4, a + 2048 * j, 64);
      _tile_loadd(5, a + 2048 * j + 1024, 64);
      Dp::step();
    }
  }
  uint8_t* out = static_cast<uint8_t*>(acc);
  _tile_stored(0, out, 128);
  _tile_stored(1, out + 64, 128);
  _tile_stored(2, out + 2048, 128);
  _tile_stored(3, out + 2048 + 64, 128);
}
// C tiles 0–3 += A tiles 4–5 × B tiles 6–7 (row 4 with column 6 into tile 0, …).
struct AmxBf16 {  // bf16 pairs → fp32 (TDPBF16PS)
  KDQAT_AMX_TARGET static void step() {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
};
struct AmxU8S8 {  // u8 (A) × s8 (B) quads → int32 (TDPBUSD)
  KDQAT_AMX_TARGET static void step() {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
};

}  // namespace kdqat
