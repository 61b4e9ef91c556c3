// Instantiates the 'kquant' bodies (kquant_impl.inc) once per instruction set over the simd.h
// traits — 4 lanes on the portable path (baseline x86-64), 8 under AVX2, 16 under AVX-512 — and
// picks the table once
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
#include "simd.h"

namespace kdqat::kquant {

namespace portable {
using V = simd::Portable;
#include "kquant_impl.inc"
}  // namespace portable

#pragma GCC push_options
#pragma GCC target("avx2,fma")  // simd::Avx2's region (no FMA is emitted: -ffp-contract=off)
namespace avx2 {
using V = simd::Avx2;
#include "kquant_impl.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace avx512 {
using V = simd::Avx512;
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
