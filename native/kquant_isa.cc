// Instantiates the 'kquant' bodies (kquant_impl.inc) once per instruction set — 4 lanes on the
// portable path (baseline x86-64), 8 under AVX2, 16 under AVX-512 — and picks the table once
// (dispatch.h; KDQAT_ISA caps it). Every path gives the reference's bits: the lanes are independent
// sub-blocks, each computed in the reference's operation order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "dispatch.h"
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

static const Dispatch<KQuantOps>& dispatch() {
  static const Dispatch<KQuantOps> d(&portable::table, &avx2::table, &avx512::table);
  return d;
}
const KQuantOps& kquant_ops() { return dispatch().ops(); }
const char* kquant_path() { return dispatch().name(); }

}  // namespace kdqat::kquant

const char* kdqat::kquant_isa() { return kquant::kquant_path(); }
