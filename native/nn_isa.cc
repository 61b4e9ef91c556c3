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

namespace portable {
using V = simd::Portable;
#include "nn_rows.inc"
#include "nn_loss.inc"
#include "nn_elem.inc"
}  // namespace portable

// Everything defined in these regions (including lambdas) may use the region's instructions.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using V = simd::Avx2;
#include "nn_rows.inc"
#include "nn_loss.inc"
#include "nn_elem.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace avx512 {
using V = simd::Avx512;
#include "nn_rows.inc"
#include "nn_loss.inc"
#include "nn_elem.inc"
}  // namespace avx512
#pragma GCC pop_options

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
