// Instantiates the 'kquant' bodies (kquant_impl.inc) once per instruction set over the simd.h
// traits — 4 lanes on the portable path (baseline x86-64), 8 under AVX2, 16 under AVX-512 — and
// picks the table once
// (dispatch.h; KDQAT_ISA caps it). Every path gives the reference's bits: the lanes are independent
// sub-blocks, each computed in the reference's operation order (no FMA is emitted in the AVX2
// and AVX-512 regions: -ffp-contract=off).
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

#define KDQAT_PER_ISA_BODY "kquant_impl.inc"
#include "per_isa.inc"

static const Dispatch<KQuantOps>& dispatch() {
  static const Dispatch<KQuantOps> d(&portable::table, &avx2::table, &avx512::table);
  return d;
}
const KQuantOps& kquant_ops() { return dispatch().ops(); }
const char* kquant_path() { return dispatch().name(); }

}  // namespace kdqat::kquant

const char* kdqat::kquant_isa() { return kquant::kquant_path(); }
