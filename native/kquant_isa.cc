// Instantiates the 'kquant' bodies (kquant_impl.inc) once per instruction set — 4 lanes on the
// portable path (baseline x86-64), 8 under AVX2, 16 under AVX-512 — and picks the table at run
// time (KDQAT_ISA caps it). Every path gives the reference's bits: the lanes are independent
// sub-blocks, each computed in the reference's operation order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "kquant_kernels.h"

namespace kdqat::kquant {

namespace portable {
constexpr int N = 4;
#include "kquant_impl.inc"
}  // namespace portable

#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
constexpr int N = 8;
#include "kquant_impl.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
namespace avx512 {
constexpr int N = 16;
#include "kquant_impl.inc"
}  // namespace avx512
#pragma GCC pop_options

const KQuantOps& kquant_ops() {
  static const KQuantOps& t = cpu_isa() == Isa::Portable ? portable::table
                              : cpu_isa() == Isa::Avx2   ? avx2::table
                                                         : avx512::table;
  return t;
}

const char* kquant_path() {
  const KQuantOps& t = kquant_ops();
  return &t == &portable::table ? "portable" : &t == &avx2::table ? "avx2" : "avx512";
}

}  // namespace kdqat::kquant

const char* kdqat::kquant_isa() { return kquant::kquant_path(); }
