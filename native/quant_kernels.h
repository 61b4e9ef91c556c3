// Per-ISA compute bodies of the 'quant' family (quant_rows.inc, instantiated in quant_isa.cc);
// the Node-API wrappers in quant.cc validate arguments, compute per-granule parameters and
// split rows over the thread pool. Every entry runs on the calling thread.
#pragma once
#include <cstdint>

namespace kdqat::quant {

struct Seg;

struct QuantOps {
  // Folds max|w|, min(w, 0), max(w, 0) of w[0, n) into amax/mn/mx; true if a non-finite was seen.
  bool (*stats)(const float* w, int64_t n, float& amax, float& mn, float& mx);
  // Σ_{|w| > thr} |w| over w[0, n) in the 16-lane order; *count (optional) = how many (thr ≥ 0).
  double (*abs_sum)(const float* w, int64_t n, float thr, int64_t* count);
  // Codes and ŵ of one segment (out, codes optional).
  void (*quant)(const float* w, float* out, int32_t* codes, int64_t n, const Seg& p);
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

const QuantOps& quant_ops();  // the table for cpu_isa()

}  // namespace kdqat::quant
