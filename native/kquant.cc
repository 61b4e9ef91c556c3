// Kernel family 'kquant' (contract: src/tensor/kernels.ts fakeQuantGrid; reference:
// src/backend/ref/kquant.ts over src/quant/formats.ts gridQuantRef): the Node-API wrapper. It
// checks the arguments with the reference's messages, splits the super-blocks over the thread
// pool (each block's fixed point depends on that block alone, so results do not depend on the
// thread count) and runs the per-ISA bodies of kquant_impl.inc.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.h"
#include "kquant_kernels.h"
#include "args.h"
#include "quant_util.h"

namespace kdqat {
namespace {

using quant::js_num;

constexpr int kRuleQ2_K = 6;  // QuantRule.q2_k; q3_k … q6_k follow
const char* const kNames[5] = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
constexpr int kSub[5] = {16, 16, 32, 32, 16};
constexpr bool kMins[5] = {true, false, true, true, false};

// A double as JavaScript's Number.prototype.toString prints it (ECMA-262 Number::toString:
// the shortest digits that round-trip, plain notation for exponents −7 < n ≤ 21).
std::string js_double(double v) {
  if (!std::isfinite(v) || (v == std::floor(v) && std::fabs(v) < 1e15)) return js_num(v);
  char buf[40];
  int p = 1;
  for (; p <= 17; p++) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf), sign;
  if (s[0] == '-') {
    sign = "-";
    s = s.substr(1);
  }
  const size_t epos = s.find('e');
  std::string digits = s.substr(0, 1) + (epos > 2 ? s.substr(2, epos - 2) : "");
  const int n = std::atoi(s.c_str() + epos + 1) + 1, k = static_cast<int>(digits.size());
  std::string out;
  if (k <= n && n <= 21) out = digits + std::string(n - k, '0');
  else if (0 < n && n <= 21) out = digits.substr(0, n) + "." + digits.substr(n);
  else if (-6 < n && n <= 0) out = "0." + std::string(-n, '0') + digits;
  else {
    const int e = n - 1;
    out = digits.substr(0, 1) + (k > 1 ? "." + digits.substr(1) : "") + "e" + (e < 0 ? "-" : "+") + std::to_string(std::abs(e));
  }
  return sign + out;
}

// fakeQuantGrid(w, out, codes, scales, mins, rows, cols, rule)
Napi::Value FakeQuantGrid(const Napi::CallbackInfo& info) {
  Args a(info, "fakeQuantGrid", 8);
  const double rule = a.number(7, "rule");
  const int fmt = static_cast<int>(rule) - kRuleQ2_K;
  if (!(rule == std::floor(rule) && fmt >= 0 && fmt < 5)) {
    throw a.range_error("rule " + js_num(rule) + " is not a K-quant (q2_k … q6_k)");
  }
  const int64_t rows = a.dim(5, "rows"), cols = a.dim(6, "cols"), n = a.mul(rows, cols);
  if (cols % 256 != 0) throw a.range_error(std::string(kNames[fmt]) + " needs cols a multiple of 256, got " + std::to_string(cols));
  const float* w = a.f32(0, "w", n);
  for (int64_t i = 0; i < n; i++) {
    if (!std::isfinite(w[i])) {
      throw a.range_error("non-finite weight " + js_num(w[i]) + " at row " + std::to_string(i / cols) +
                          ", column " + std::to_string(i % cols));
    }
  }
  float* out = a.f32_opt(1, "out", n);
  const bool want_codes = !a.absent(2);
  int32_t* codes = nullptr;
  float *scales = nullptr, *mins = nullptr;
  const int64_t G = n / kSub[fmt];
  if (want_codes) {
    codes = a.i32(2, "codes", n);
    if (a.absent(3)) throw a.range_error("codes need a scales buffer");
    scales = a.f32(3, "scales", G);
    if (kMins[fmt] && a.absent(4)) throw a.range_error(std::string(kNames[fmt]) + " needs a mins buffer");
    if (kMins[fmt]) mins = a.f32(4, "mins", G);
  }
  const int64_t nb = n / 256;
  const auto& ops = kquant::kquant_ops();
  // Rows hold whole super-blocks, so the matrix is one long row of blocks (as the reference).
  std::vector<float> y(n);
  const int64_t chunk = 8;  // blocks per task: enough for the AVX-512 lanes, small for balance
  const int64_t tasks = (nb + chunk - 1) / chunk;
  std::vector<int64_t> bad(tasks, -1);
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b0 = t * chunk, b1 = std::min(nb, b0 + chunk);
      const int64_t b = ops.grid(fmt, w + b0 * 256, b1 - b0, y.data() + b0 * 256);
      if (b >= 0) bad[t] = b0 + b;
    }
  });
  for (int64_t t = 0; t < tasks; t++) {
    if (bad[t] < 0) continue;
    const int64_t b = bad[t];
    float amax = 0.f;
    for (int64_t j = b * 256; j < (b + 1) * 256; j++) amax = std::max(amax, std::fabs(w[j]));
    throw Napi::RangeError::New(info.Env(), std::string(kNames[fmt]) + ": block " + std::to_string(b) + " (elements " +
      std::to_string(b * 256) + ".." + std::to_string((b + 1) * 256 - 1) + ", max |w| " + js_double(amax) +
      ") overflows the fp16 block scale; such weights cannot be stored in this format (rescale them or keep the tensor F32)");
  }
  if (out) std::copy(y.begin(), y.end(), out);
  if (codes) {
    const int64_t spb = 256 / kSub[fmt];  // sub-blocks per block
    parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t b0 = t * chunk, b1 = std::min(nb, b0 + chunk);
        ops.deploy(fmt, y.data() + b0 * 256, b1 - b0, codes + b0 * 256, scales + b0 * spb, mins ? mins + b0 * spb : nullptr);
      }
    });
  }
  return info.Env().Undefined();
}

}  // namespace

void InitKQuant(Napi::Env env, Napi::Object exports) {
  exports.Set("fakeQuantGrid", Napi::Function::New(env, FakeQuantGrid));
}

}  // namespace kdqat
