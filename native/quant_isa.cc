// Instantiates the 'quant' bodies (quant_rows.inc) once per instruction set over the simd.h
// traits and picks the table once (dispatch.h; KDQAT_ISA=portable runs the portable code).
// The bodies use only IEEE-exact lane operations (no FMA, no exp), so every ISA gives the
// same bits as the TypeScript reference.
#include <cmath>
#include <cstdint>

#include "common.h"
#include "dispatch.h"
#include "quant_kernels.h"
#include "quant_util.h"
#include "simd.h"

namespace kdqat::quant {

#define KDQAT_PER_ISA_BODY "quant_rows.inc"
#include "per_isa.inc"

static const Dispatch<QuantOps>& dispatch() {
  static const Dispatch<QuantOps> d(&portable::table, &avx2::table, &avx512::table);
  return d;
}
const QuantOps& quant_ops() { return dispatch().ops(); }

}  // namespace kdqat::quant

const char* kdqat::quant_isa() { return kdqat::quant::dispatch().name(); }
