// Argument checking of the GEMM entry points (gemm_args.h), through the one validator (args.h).
#include "gemm_args.h"

#include "args.h"

namespace kdqat {

GemmArgs gemm_args(const Napi::CallbackInfo& info, const char* fn, bool bf16_b) {
  const Args a(info, fn, 12);
  GemmArgs g{};
  g.batch = a.count(3, "batch");
  g.m = a.dim(4, "m");
  g.k = a.dim(5, "k");
  g.n = a.dim(6, "n");
  g.ta = a.flag(7);
  g.tb = a.flag(8);
  g.stride_a = a.count(9, "strideA");
  g.stride_b = a.count(10, "strideB");
  g.beta = static_cast<float>(a.number(11, "beta"));
  g.bias = a.f32_opt(12, "bias", g.n);
  if (g.bias && g.beta != 0.f) throw a.range_error("a bias needs beta 0, got beta " + std::to_string(g.beta));
  g.empty = g.batch == 0 || g.m == 0 || g.n == 0;
  const bool reads = !g.empty && g.k > 0;
  // What each operand must hold: the last batch item's offset plus one item (overflow-safe).
  auto need = [&](int64_t stride, int64_t rows, int64_t cols) {
    return reads ? a.mul(g.batch - 1, stride) + a.mul(rows, cols) : 0;
  };
  g.a = a.f32(0, "a", need(g.stride_a, g.m, g.k), true);
  const int64_t nb = need(g.stride_b, g.k, g.n);
  if (bf16_b && a.is_u16(1)) g.b.bf16 = a.u16(1, "b", nb, true);
  else g.b.f32 = a.f32(1, "b", nb, true);
  g.c = a.f32(2, "c", g.empty ? 0 : a.mul(a.mul(g.batch, g.m), g.n), true);
  return g;
}

}  // namespace kdqat
