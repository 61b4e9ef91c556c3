// Instantiates the 'nn'/'optim' kernel bodies (nn_rows.inc, nn_loss.inc, nn_elem.inc) once per
// instruction set over the simd.h traits and picks the table once (dispatch.h), so
// KDQAT_ISA=portable really runs the portable code.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common.h"
#include "dispatch.h"
#include "nn_kernels.h"
#include "simd.h"

namespace kdqat::nn {

#define KDQAT_PER_ISA_BODY "nn_rows.inc"
#define KDQAT_PER_ISA_BODY2 "nn_loss.inc"
#define KDQAT_PER_ISA_BODY3 "nn_elem.inc"
#include "per_isa.inc"

static const Dispatch<Ops>& dispatch() {
  static const Dispatch<Ops> d(&portable::table, &avx2::table, &avx512::table);
  return d;
}
const Ops& ops() { return dispatch().ops(); }

// The optim family (adamw, sgd, sumSquares) runs the same table.
const Ops& optim_ops() { return dispatch().ops(); }

}  // namespace kdqat::nn

const char* kdqat::nn_isa() { return nn::dispatch().name(); }
const char* kdqat::optim_isa() { return nn::dispatch().name(); }
