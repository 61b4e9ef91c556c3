// Kernel family 'quant' (contract: src/tensor/kernels.ts; reference: src/backend/ref/quant.ts):
// Node-API wrappers that validate arguments and run the per-ISA bodies (quant_rows.inc) over the
// thread pool, one row per task. Granules inside a row (per channel / per group / ggml blocks)
// are done in one pass: the row loop `rows_direct` derives min-max, LSQ and ggml parameters
// itself (quant_kernels.h), TWN's threshold and α are derived here; a per-tensor granule takes
// a statistics pass first. Reductions that
// are not exact (TWN sums, the LSQ step gradient) are summed per segment in the contract's
// fixed lane order and then in row order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "args.h"
#include "nn_kernels.h"
#include "quant_kernels.h"
#include "quant_util.h"

namespace kdqat {
namespace {

using quant::quant_ops;
using quant::Seg;
using quant::js_num;
using quant::uniform_seg;
using quant::minmax_uniform_seg;

enum Rule { kSym = 0, kAsym = 1, kTwn = 2, kQ4_0 = 3, kQ8_0 = 4, kTq2_0 = 5 };

int block_of(int rule) { return rule == kQ4_0 || rule == kQ8_0 ? 32 : rule == kTq2_0 ? 256 : 0; }

// Granule layout: segment length, segments per row, granule count, elements per granule.
struct Geo {
  int64_t seg, spr, granules, size;
};

struct Common {
  int rule, bits;
  Geo g;
};

// Validates rule/bits/group/shape exactly as the reference does (same messages).
Common parse_common(const Args& a, size_t i_rows, bool lsq) {
  const int64_t rows = a.dim(i_rows, "rows"), cols = a.dim(i_rows + 1, "cols");
  const double rule_d = a.number(i_rows + 2, "rule"), bits_d = a.number(i_rows + 3, "bits");
  const int64_t group = a.dim(i_rows + 4, "group");
  if (!(rule_d >= 0 && rule_d <= 5 && rule_d == std::floor(rule_d))) {
    throw a.range_error("unknown rule " + js_num(rule_d));
  }
  const int rule = static_cast<int>(rule_d);
  const bool uniform = rule == kSym || rule == kAsym;
  if (uniform && !(bits_d >= 2 && bits_d <= 8 && bits_d == std::floor(bits_d))) {
    throw a.range_error("bits " + js_num(bits_d) + " outside 2..8");
  }
  if (lsq && !uniform) throw a.range_error("an LSQ step needs rule sym or asym, got rule " + std::to_string(rule));
  const int block = block_of(rule);
  if (block && group != block) {
    throw a.range_error("rule " + std::to_string(rule) + " needs group " + std::to_string(block) +
                        ", got " + std::to_string(group));
  }
  Common c{rule, uniform ? static_cast<int>(bits_d) : 0, {}};
  if (group == 0) c.g = {cols, 1, 1, a.mul(rows, cols)};
  else if (cols % group != 0) {
    throw a.range_error("group " + std::to_string(group) + " does not divide cols " + std::to_string(cols));
  } else c.g = {group, cols / group, a.mul(rows, cols / group), group};
  return c;
}

void throw_first_nonfinite(const Args& a, const float* w, int64_t n, int64_t cols) {
  for (int64_t i = 0; i < n; i++) {
    if (!std::isfinite(w[i])) {
      throw a.range_error("non-finite weight " + js_num(w[i]) + " at row " + std::to_string(i / cols) +
                          ", column " + std::to_string(i % cols));
    }
  }
}

// TWN: Δ = float(0.7)·float(S1/N); α = float(S2/count) (0 if none) is set by twn_alpha.
Seg twn_seg(double s1, int64_t size) {
  Seg p{};
  p.rule = kTwn;
  p.delta = 0.7f * static_cast<float>(s1 / static_cast<double>(size));
  return p;
}
void twn_alpha(Seg& p, double s2, int64_t count) {
  p.s = count > 0 ? static_cast<float>(s2 / static_cast<double>(count)) : 0.f;
}

// Rows per parallel_for chunk.
int64_t grain(int64_t cols) { return nn::row_grain(cols); }

// fakeQuant(w, out, codes, scales, zeros, step, rows, cols, rule, bits, group)
Napi::Value FakeQuant(const Napi::CallbackInfo& info) {
  Args a(info, "fakeQuant", 11);
  const bool lsq = !a.absent(5);
  const Common c = parse_common(a, 6, lsq);
  const int64_t rows = a.dim(6, "rows"), cols = a.dim(7, "cols"), n = a.mul(rows, cols);
  const Geo g = c.g;
  const float* w = a.f32(0, "w", n);
  float* out = a.f32_opt(1, "out", n);
  int32_t* codes = a.i32_opt(2, "codes", n);
  float* scales = a.f32(3, "scales", g.granules);
  int32_t* zeros = a.i32_opt(4, "zeros", g.granules);
  if (c.rule == kAsym && a.absent(4)) throw a.range_error("asym needs a zeros buffer");
  const float* step = a.f32_opt(5, "step", g.granules);
  if (step) {
    for (int64_t k = 0; k < g.granules; k++) {
      if (!(step[k] >= 0.f && step[k] < INFINITY)) {
        throw a.range_error("LSQ step " + js_num(step[k]) + " of granule " + std::to_string(k) +
                            " must be finite and ≥ 0");
      }
    }
  }
  if (g.granules == 0) return info.Env().Undefined();  // no rows, or groups of no columns: nothing
  const auto& ops = quant_ops();
  std::vector<uint8_t> bad(rows, 0);
  const int rule = c.rule, bits = c.bits;
  auto emit = [&](int64_t o, int64_t k, const Seg& p) {
    scales[k] = p.s;
    if (zeros) zeros[k] = static_cast<int32_t>(p.off);
    ops.quant(w + o, out ? out + o : nullptr, codes ? codes + o : nullptr, g.seg, p);
  };
  if ((g.granules > 1 || rows == 1) && rule != kTwn) {
    // Granules within rows (min-max, LSQ, ggml blocks): the per-ISA row loop, one pass per segment.
    parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
      if (ops.rows_direct(w + r0 * cols, out ? out + r0 * cols : nullptr, codes ? codes + r0 * cols : nullptr,
                          scales + r0 * g.spr, zeros ? zeros + r0 * g.spr : nullptr,
                          step ? step + r0 * g.spr : nullptr, r1 - r0, cols, g.seg, rule, bits)) {
        bad[r0] = 1;
      }
    });
  } else if (g.granules > 1 || rows == 1) {
    // TWN granules within rows (two sums each): one pass per segment.
    parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        for (int64_t j = 0; j < g.spr; j++) {
          const int64_t o = r * cols + j * g.seg, k = r * g.spr + j;
          float amax = 0.f, mn = 0.f, mx = 0.f;
          if (ops.stats(w + o, g.seg, amax, mn, mx)) bad[r] = 1;
          Seg p = twn_seg(ops.abs_sum(w + o, g.seg, -1.f, nullptr), g.size);
          int64_t count = 0;
          const double s2 = ops.abs_sum(w + o, g.seg, p.delta, &count);
          twn_alpha(p, s2, count);
          emit(o, k, p);
        }
      }
    });
  } else {
    // One granule over all rows: per-row statistics, combined in row order, then quantization.
    std::vector<float> amax(rows, 0.f), mn(rows, 0.f), mx(rows, 0.f);
    std::vector<double> sum(rows, 0.0);
    std::vector<int64_t> count(rows, 0);
    parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        if (ops.stats(w + r * cols, cols, amax[r], mn[r], mx[r])) bad[r] = 1;
        if (rule == kTwn) sum[r] = ops.abs_sum(w + r * cols, cols, -1.f, nullptr);
      }
    });
    for (int64_t r = 0; r < rows; r++) {
      if (bad[r]) throw_first_nonfinite(a, w, n, cols);
    }
    float A = 0.f, MN = 0.f, MX = 0.f;
    double S = 0.0;
    for (int64_t r = 0; r < rows; r++) {
      A = std::fmax(A, amax[r]);
      MN = std::fmin(MN, mn[r]);
      MX = std::fmax(MX, mx[r]);
      S += sum[r];
    }
    Seg p;
    if (step) p = uniform_seg(rule, bits, step[0], MN);
    else if (rule == kTwn) {
      p = twn_seg(S, g.size);
      parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) sum[r] = ops.abs_sum(w + r * cols, cols, p.delta, &count[r]);
      });
      double S2 = 0.0;
      int64_t C = 0;
      for (int64_t r = 0; r < rows; r++) {
        S2 += sum[r];
        C += count[r];
      }
      twn_alpha(p, S2, C);
    } else p = minmax_uniform_seg(rule, bits, A, MN, MX);  // ggml rules: blocks, never one granule
    scales[0] = p.s;
    if (zeros) zeros[0] = static_cast<int32_t>(p.off);
    parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
      ops.quant(w + r0 * cols, out ? out + r0 * cols : nullptr, codes ? codes + r0 * cols : nullptr,
                (r1 - r0) * cols, p);
    });
  }
  for (int64_t r = 0; r < rows; r++) {
    if (bad[r]) throw_first_nonfinite(a, w, n, cols);
  }
  return info.Env().Undefined();
}

// fakeQuantBackward(w, gy, gw, step, zeros, gstep, rows, cols, rule, bits, group, clip)
Napi::Value FakeQuantBackward(const Napi::CallbackInfo& info) {
  Args a(info, "fakeQuantBackward", 12);
  const bool lsq = !a.absent(3);
  const Common c = parse_common(a, 6, lsq);
  const int64_t rows = a.dim(6, "rows"), cols = a.dim(7, "cols"), n = a.mul(rows, cols);
  const Geo g = c.g;
  const float* w = a.f32(0, "w", n);
  const float* gy = a.f32(1, "gy", n);
  float* gw = a.f32(2, "gw", n);
  const float clip = static_cast<float>(a.number(11, "clip"));
  const auto& ops = quant_ops();
  if (!lsq) {
    parallel_for(n, 32768, [&](int64_t i0, int64_t i1) { ops.ste_bwd(w + i0, gy + i0, gw + i0, i1 - i0, clip); });
    return info.Env().Undefined();
  }
  const float* step = a.f32(3, "step", g.granules);
  if (a.absent(5)) throw a.range_error("an LSQ step needs a gstep buffer");
  float* gstep = a.f32(5, "gstep", g.granules);
  const int32_t* zeros = nullptr;
  if (c.rule == kAsym) {
    if (a.absent(4)) throw a.range_error("asym LSQ needs the forward's zeros");
    zeros = a.i32(4, "zeros", g.granules);
  }
  const bool sym = c.rule == kSym;
  const int levels = sym ? (1 << (c.bits - 1)) - 1 : (1 << c.bits) - 1;
  std::vector<double> segsum(static_cast<size_t>(rows * g.spr), 0.0);
  parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      for (int64_t j = 0; j < g.spr; j++) {
        const int64_t o = r * cols + j * g.seg, k = g.granules == 1 ? 0 : r * g.spr + j;
        const float s = step[k];
        if (s == 0.f) {  // every element inside, t = 0
          ops.ste_bwd(w + o, gy + o, gw + o, g.seg, clip);
          continue;
        }
        const float qn = sym ? -static_cast<float>(1 << (c.bits - 1)) : -static_cast<float>(zeros[k]);
        const float qp = sym ? static_cast<float>(levels) : static_cast<float>(levels - zeros[k]);
        segsum[r * g.spr + j] = ops.lsq_bwd(w + o, gy + o, gw + o, g.seg, s, qn, qp, clip);
      }
    }
  });
  const double gscale = 1.0 / std::sqrt(static_cast<double>(g.size) * levels);
  if (g.granules == 1) {
    double acc = 0.0;
    for (int64_t r = 0; r < rows; r++) acc += segsum[r];
    gstep[0] = static_cast<float>(acc * gscale);
  } else {
    for (int64_t k = 0; k < g.granules; k++) gstep[k] = static_cast<float>((0.0 + segsum[k]) * gscale);
  }
  return info.Env().Undefined();
}

// fakeQuantInput(x, out, bits, clip) → s
Napi::Value FakeQuantInput(const Napi::CallbackInfo& info) {
  Args a(info, "fakeQuantInput", 4);
  const int64_t n = a.f32_length(0, "x");
  const float* x = a.f32(0, "x", n);
  const double bits = a.number(2, "bits"), clip_d = a.number(3, "clip");
  if (!(bits >= 2 && bits <= 8 && bits == std::floor(bits))) throw a.range_error("bits " + js_num(bits) + " outside 2..8");
  if (!(clip_d > 0)) throw a.range_error("clip " + js_num(clip_d) + " must be > 0 (Infinity: none)");
  float* out = a.f32(1, "out", n);
  const float clip = static_cast<float>(clip_d);
  const float qp = static_cast<float>((1 << (static_cast<int>(bits) - 1)) - 1);
  const auto& ops = quant_ops();
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<float> cmax(chunks, 0.f);
  std::vector<uint8_t> cbad(chunks, 0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ch++) {
      const int64_t i0 = ch * kChunk, len = std::min(kChunk, n - i0);
      cbad[ch] = ops.act_amax(x + i0, len, clip, cmax[ch]);
    }
  });
  float amax = 0.f;
  for (int64_t ch = 0; ch < chunks; ch++) {
    if (cbad[ch]) {
      for (int64_t i = 0; i < n; i++) {
        if (!std::isfinite(x[i])) throw a.range_error("non-finite input " + js_num(x[i]) + " at index " + std::to_string(i));
      }
    }
    amax = std::fmax(amax, cmax[ch]);
  }
  const float s = amax / qp;
  parallel_for(n, 32768, [&](int64_t i0, int64_t i1) {
    if (s == 0.f) std::fill(out + i0, out + i1, 0.f);
    else ops.act_quant(x + i0, out + i0, i1 - i0, s, clip, qp);
  });
  return Napi::Number::New(info.Env(), s);
}

// fakeQuantInputBackward(x, gy, gx, clip)
Napi::Value FakeQuantInputBackward(const Napi::CallbackInfo& info) {
  Args a(info, "fakeQuantInputBackward", 4);
  const int64_t n = a.f32_length(0, "x");
  const float* x = a.f32(0, "x", n);
  const float* gy = a.f32(1, "gy", n);
  float* gx = a.f32(2, "gx", n);
  const float clip = static_cast<float>(a.number(3, "clip"));
  const auto& ops = quant_ops();
  parallel_for(n, 32768, [&](int64_t i0, int64_t i1) { ops.act_bwd(x + i0, gy + i0, gx + i0, i1 - i0, clip); });
  return info.Env().Undefined();
}

}  // namespace

void InitQuant(Napi::Env env, Napi::Object exports) {
  exports.Set("fakeQuant", Napi::Function::New(env, FakeQuant));
  exports.Set("fakeQuantBackward", Napi::Function::New(env, FakeQuantBackward));
  exports.Set("fakeQuantInput", Napi::Function::New(env, FakeQuantInput));
  exports.Set("fakeQuantInputBackward", Napi::Function::New(env, FakeQuantInputBackward));
}

}  // namespace kdqat
