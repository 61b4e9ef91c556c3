// Per-ISA compute bodies of the 'quant' family (quant_rows.inc, instantiated in quant_isa.cc);
// the Node-API wrappers in quant.cc validate arguments and split rows over the thread pool; the
// granule parameters (Seg) come from the helpers below, shared by both. Every entry runs on the
// calling thread.
#pragma once
#include <cmath>
#include <cstdint>

#include "quant_util.h"

namespace kdqat::quant {

struct Seg;

struct QuantOps {
  // Folds max|w|, min(w, 0), max(w, 0) of w[0, n) into amax/mn/mx; true if a non-finite was seen.
  bool (*stats)(const float* w, int64_t n, float& amax, float& mn, float& mx);
  // Σ_{|w| > thr} |w| over w[0, n) in the 16-lane order; *count (optional) = how many (thr ≥ 0).
  double (*abs_sum)(const float* w, int64_t n, float thr, int64_t* count);
  // Codes and ŵ of one segment of a sym, asym or TWN granule (out, codes optional).
  void (*quant)(const float* w, float* out, int32_t* codes, int64_t n, const Seg& p);
  // Rows whose granules are runs of seg (dividing cols): sym / asym, min-max or with LSQ steps
  // (step: one per granule, or null), or a ggml block (rules 0, 1, 3, 4, 5). Writes out/codes
  // (optional), scales and zeros (optional); true if a non-finite was seen.
  bool (*rows_direct)(const float* w, float* out, int32_t* codes, float* scales, int32_t* zeros,
                      const float* step, int64_t rows, int64_t cols, int64_t seg, int rule, int bits);
  // gw = gy·[|w| ≤ clip].
  void (*ste_bwd)(const float* w, const float* gy, float* gw, int64_t n, float clip);
  // LSQ backward of one segment (step s > 0): writes gw, returns Σ gy·t (16-lane order).
  double (*lsq_bwd)(const float* w, const float* gy, float* gw, int64_t n, float s, float qn,
                    float qp, float clip);
  // Activations: running max of min(|x|, clip); fake quantization with scale s; gx.
  bool (*act_amax)(const float* x, int64_t n, float clip, float& amax);
  void (*act_quant)(const float* x, float* out, int64_t n, float s, float clip, float qp);
  void (*act_bwd)(const float* x, const float* gy, float* gx, int64_t n, float clip);
};

// Per-segment parameters of the elementwise pass: code = clamp(f(w), lo, hi); ŵ = (code−off)·s.
struct Seg {
  int rule;     // QuantRule of src/tensor/kernels.ts
  float s;      // the scale multiplying (code − off)
  float off;    // asym: z; q4_0: 8; tq2_0: 1; else 0
  float lo, hi; // code clamp (sym, asym)
  float id;     // ggml rules: 1/d (0 when d = 0)
  float delta;  // twn: Δ
  bool zero;    // sym/asym with s = 0: codes 0, ŵ = 0
};

// Seg of a sym (rule 0) / asym (rule 1) granule with scale s (min-max or learned) and
// min(w, 0) = mn.
inline Seg uniform_seg(int rule, int bits, float s, float mn) {
  Seg p{};
  p.rule = rule;
  p.s = s;
  p.zero = s == 0.f;
  if (rule == 0) {
    p.lo = -static_cast<float>(1 << (bits - 1));
    p.hi = static_cast<float>((1 << (bits - 1)) - 1);
  } else {
    const float qmax = static_cast<float>((1 << bits) - 1);
    p.lo = 0.f;
    p.hi = qmax;
    // z = clamp(roundf(y), 0, qmax) for y = −mn/s ≥ 0 (mn ≤ 0 < s), without libm calls (a
    // call per granule was a sixth of a group-of-32 forward): y − trunc(y) is exact. 0 when s = 0.
    if (!p.zero) {
      const float y = -mn / s;
      if (!(y > 0.f)) p.off = 0.f;  // y = 0 (NaN only from a non-finite mn, which throws)
      else if (y >= qmax) p.off = qmax;
      else {
        const int i = static_cast<int>(y);
        p.off = static_cast<float>(i + (y - static_cast<float>(i) >= 0.5f ? 1 : 0));
      }
    }
  }
  return p;
}

// Seg of a min-max sym/asym granule from its statistics max|w|, min(w, 0), max(w, 0).
inline Seg minmax_uniform_seg(int rule, int bits, float amax, float mn, float mx) {
  if (rule == 0) return uniform_seg(rule, bits, amax / static_cast<float>((1 << (bits - 1)) - 1), mn);
  return uniform_seg(rule, bits, (mx - mn) / static_cast<float>((1 << bits) - 1), mn);
}

// Seg of a ggml block (rules q4_0 3, q8_0 4, tq2_0 5) from max|w| = amax and, for q4_0, the
// first element of that magnitude, signed (smax): ggml's d, 1/d and fp16(d).
inline Seg ggml_seg(int rule, float amax, float smax) {
  const float d = rule == 3 ? smax / -8.f : rule == 4 ? amax / 127.f : amax;
  Seg p{};
  p.rule = rule;
  p.id = d != 0.f ? 1.f / d : 0.f;
  p.s = fp16_round(d);
  p.off = rule == 3 ? 8.f : rule == 5 ? 1.f : 0.f;
  return p;
}

const QuantOps& quant_ops();  // the table for cpu_isa()

}  // namespace kdqat::quant
