// AMX availability and tile configuration (amx.h).
#include "amx.h"

#include "common.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace kdqat {
namespace {

// CPUID.(EAX=7, ECX=0):EDX bits 22 (AMX-BF16), 24 (AMX-TILE), 25 (AMX-INT8) (Intel SDM vol. 2,
// CPUID). GCC 12's __builtin_cpu_supports does not know these names.
bool cpu_has_amx() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const unsigned need = (1u << 22) | (1u << 24) | (1u << 25);
  return (d & need) == need;
}

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl code (asm/prctl.h)
constexpr long kXfeatureXtiledata = 18;     // XSAVE feature number of the tile data

// LDTILECFG's 64-byte operand: byte 0 palette 1, bytes 16 + 2t the bytes per row of tile t
// (64), byte 48 + t its rows (16), tiles 8–15 unused (0). A constant in memory: GCC 12 drops
// stores to a local operand as dead (it does not see LDTILECFG read past the first 16 bytes).
alignas(64) const uint8_t kTileConfig[64] = {
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,            // palette, start_row, reserved
    64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0, 64, 0,    // colsb[0..7] (little endian)
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,            // colsb[8..15]
    16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0};  // rows[0..15]

}  // namespace

const char* amx_unavailable() {
  static const std::string why = []() -> std::string {
    if (!cpu_has_amx()) return "this CPU lacks the amx_tile, amx_bf16 and amx_int8 instructions";
    if (cpu_isa() != Isa::Avx512) return "KDQAT_ISA caps the SIMD level below avx512";
    if (!env_on_off("KDQAT_AMX", true, "AMX on")) return "KDQAT_AMX=off";
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
      return std::string("the Linux kernel refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: ") +
             std::strerror(errno) + ")";
    return "";
  }();
  return why.empty() ? nullptr : why.c_str();
}

__attribute__((target("amx-tile"))) void amx_configure_thread() {
  thread_local bool done = false;
  if (done) return;
  _tile_loadconfig(kTileConfig);
  done = true;
}

}  // namespace kdqat
