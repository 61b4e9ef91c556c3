// Instantiates the 'quant' bodies (quant_rows.inc) once per instruction set and picks the table
// at run time (KDQAT_ISA=portable runs the portable code). Both give identical bits.
#include <cmath>
#include <cstdint>

#include "common.h"
#include "quant_kernels.h"
#include "quant_simd.h"

namespace kdqat::quant {

namespace portable {
using V = QScalar;
#include "quant_rows.inc"
}  // namespace portable

#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
using V = QAvx2;
#include "quant_rows.inc"
}  // namespace avx2
#pragma GCC pop_options

const QuantOps& quant_ops() {
  static const QuantOps& t = cpu_isa() == Isa::Portable ? portable::table : avx2::table;
  return t;
}

}  // namespace kdqat::quant

const char* kdqat::quant_isa() {
  return &quant::quant_ops() == &quant::portable::table ? "portable" : "avx2";
}
