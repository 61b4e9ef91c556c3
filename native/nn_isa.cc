// Instantiates the 'nn'/'optim' kernel bodies (nn_rows.inc, nn_loss.inc, nn_elem.inc) once per
// instruction set and picks the table at run time, so KDQAT_ISA=portable really runs the
// portable code.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.h"
#include "nn_kernels.h"
#include "nn_simd.h"

namespace kdqat::nn {

namespace portable {
using V = simd::Scalar;
#include "nn_rows.inc"
#include "nn_loss.inc"
#include "nn_elem.inc"
}  // namespace portable

// Everything defined in this region (including lambdas) may use AVX2 and FMA.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using V = simd::Avx2;
#include "nn_rows.inc"
#include "nn_loss.inc"
#include "nn_elem.inc"
}  // namespace avx2
#pragma GCC pop_options

const Ops& ops() {
  static const Ops& t = cpu_isa() == Isa::Portable ? portable::table : avx2::table;
  return t;
}

}  // namespace kdqat::nn

const char* kdqat::nn_isa() { return &nn::ops() == &nn::portable::table ? "portable" : "avx2"; }
