// Intel AMX (Advanced Matrix Extensions, Sapphire Rapids and later): eight tile registers of up
// to 16 rows × 64 bytes and tile multiply-adds on them — TDPBF16PS (bf16 pairs → fp32, for
// matmulBf16) and TDPBUSD (u8 × s8 quads → int32, for matmulQ8). Not a SIMD level of its own: an
// engine on top of the avx512 level, used by those two kernels when this is non-null.
//
// Linux keeps the 8 KiB of tile data out of a process's state until the process asks for it
// (arch_prctl ARCH_REQ_XCOMP_PERM, Documentation/arch/x86/xstate.rst); amx_unavailable() asks
// once, and a refusal is reported like a missing instruction set, never a crash.
#pragma once

namespace kdqat {

// Why the AMX kernels cannot run here (the CPU lacks amx_tile/amx_bf16/amx_int8, KDQAT_ISA
// caps below avx512, KDQAT_AMX=off, or the kernel refused tile data), or nullptr when they can.
const char* amx_unavailable();

// The one tile configuration every AMX kernel uses — all eight tiles 16 rows × 64 bytes —
// loaded on the calling thread the first time it runs one (tile configuration is per thread).
void amx_configure_thread();

}  // namespace kdqat
