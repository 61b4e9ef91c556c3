// RoPE frequencies with the scalings Hugging Face configs name in `rope_scaling`
// (transformers' modeling_rope_utils.py, facts only): the inverse frequencies inv_freq[i] of the
// D/2 rotated pairs, and the factor that multiplies cos and sin ("attention_factor", YaRN).
//   default: inv_freq[i] = θ^(−2i/D)
//   linear:  inv_freq[i] / factor (position interpolation, kaiokendev / Chen et al. 2023)
//   llama3:  Llama 3.1's piecewise rule: wavelength λ = 2π / inv_freq; λ < L/high_freq_factor
//            keeps inv_freq, λ > L/low_freq_factor divides it by factor, in between a linear
//            mix (1 − s)·inv/factor + s·inv with s = (L/λ − low)/(high − low), L =
//            original_max_position_embeddings
//   yarn:    Peng et al. 2023 ("YaRN", arXiv 2309.00071) §3: interpolation inv/factor and
//            extrapolation inv mixed by a ramp over the pair index between the correction dims
//            of beta_fast and beta_slow rotations at L = original_max_position_embeddings;
//            cos/sin × attention_factor (default 0.1·ln(factor) + 1, or the mscale ratio).
//   longrope: LongRoPE (Ding et al. 2024, arXiv 2402.13753; Phi-3-*-128k, Phi-3.5): inv_freq[i]
//            / ext[i], ext the per-pair `short_factor` while the sequence (its largest position
//            + 1) fits L = original_max_position_embeddings and `long_factor` beyond, for every
//            position of that forward (transformers' dynamic longrope update); cos/sin ×
//            attention_factor (default √(1 + ln(factor) / ln L), factor = max_position_embeddings
//            / L; 1 when factor ≤ 1).
import { ropeTables } from '../tensor/ops/nn.js';

export type RopeScaling = (
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | {
    type: 'yarn'; factor: number; originalMaxPositionEmbeddings: number; betaFast: number; betaSlow: number;
    /** The cos/sin multiplier, resolved at parse time (attention_factor or its default). */
    attentionFactor: number;
    /** Whether the correction dims are floored/ceiled (transformers' `truncate`, default true). */
    truncate: boolean;
  }
  | {
    type: 'longrope'; shortFactor: number[]; longFactor: number[]; originalMaxPositionEmbeddings: number;
    /** The cos/sin multiplier, resolved at parse time (attention_factor or its default). */
    attentionFactor: number;
  }) & {
  /** The rope_scaling object of the source config.json, written back as it was. */
  json?: Record<string, unknown>;
};

/** LongRoPE's per-pair divisors for a forward whose sequence is `seqLen` positions long. */
const longropeFactors = (s: Extract<RopeScaling, { type: 'longrope' }>, seqLen: number): number[] =>
  (seqLen > s.originalMaxPositionEmbeddings ? s.longFactor : s.shortFactor);

/** inv_freq of the D/2 pairs (float64) for base θ and an optional scaling; `seqLen` (the
 *  forward's largest position + 1) matters to longrope only. */
export function inverseFrequencies(D: number, theta: number, s: RopeScaling | null | undefined, seqLen = 0): Float64Array {
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / theta ** ((2 * i) / D);
  if (!s) return inv;
  switch (s.type) {
    case 'linear':
      return inv.map((f) => f / s.factor);
    case 'llama3': {
      const L = s.originalMaxPositionEmbeddings;
      const lowWave = L / s.lowFreqFactor, highWave = L / s.highFreqFactor;
      return inv.map((f) => {
        const wave = (2 * Math.PI) / f;
        if (wave < highWave) return f;
        if (wave > lowWave) return f / s.factor;
        const smooth = (L / wave - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return (1 - smooth) * (f / s.factor) + smooth * f;
      });
    }
    case 'yarn': {
      const L = s.originalMaxPositionEmbeddings;
      const corr = (rot: number): number => (D * Math.log(L / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
      let lo = corr(s.betaFast), hi = corr(s.betaSlow);
      if (s.truncate) { lo = Math.floor(lo); hi = Math.ceil(hi); }
      lo = Math.max(lo, 0); hi = Math.min(hi, D - 1);
      if (lo === hi) hi += 0.001; // as transformers: no zero-width ramp
      return inv.map((f, i) => {
        const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
        const extrap = 1 - ramp; // weight of the unscaled frequency
        return (f / s.factor) * (1 - extrap) + f * extrap;
      });
    }
    case 'longrope': {
      const ext = longropeFactors(s, seqLen);
      return inv.map((f, i) => f / ext[i]);
    }
  }
}

/** The cos/sin multiplier of a scaling (1 but for YaRN and LongRoPE). */
export const attentionFactor = (s: RopeScaling | null | undefined): number =>
  (s?.type === 'yarn' || s?.type === 'longrope' ? s.attentionFactor : 1);

/** cos/sin tables (T, D) for positions offset … offset + T − 1 in HF's rotate_half layout, for a
 *  forward over `seqLen` positions (LongRoPE picks its factors by that length). Plain
 *  RoPE takes ropeTables (inv_freq in float32, as HF computes it); a scaled one is computed in
 *  float64 from the formulas above and rounded once. */
export function scaledRopeTables(T: number, D: number, theta: number, s: RopeScaling | null | undefined, offset = 0, seqLen = offset + T): { cos: Float32Array; sin: Float32Array } {
  if (!s) return ropeTables(T, D, theta, offset);
  const inv = inverseFrequencies(D, theta, s, seqLen), a = attentionFactor(s), half = D / 2;
  const cos = new Float32Array(T * D), sin = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const f = (t + offset) * inv[i];
      cos[t * D + i] = cos[t * D + i + half] = a * Math.cos(f);
      sin[t * D + i] = sin[t * D + i + half] = a * Math.sin(f);
    }
  }
  return { cos, sin };
}
