// Per-element bounds on |native − ref| for fused attention, from the float32 operations of
// native/attention_impl.inc and attention_backward.inc (portable and AVX2 builds alike) against
// the float64 reference rounded once per output. Building blocks and notation: test/bounds.ts.
// σ = scale is passed to native as a float (rounded, u relatively). Each product is an FMA chain
// (the tile micro-kernel), so a k-term product has γ_k·Σ|terms| of summation error.
import { EXP_REL, SECOND_ORDER, U32 as u, gamma } from '../bounds.js';

interface Shape { B: number; T: number; H: number; Hkv: number; D: number; causal: boolean; window?: number }
type A = ArrayLike<number>;
const FLT_MIN = 2 ** -126;

/** Visits every (b, h, i) row with its offsets and visible keys. */
function rows(cs: Shape, km: Int32Array | null,
  fn: (b: number, h: number, i: number, g: number, visible: (j: number) => boolean) => void): void {
  const G = cs.H / cs.Hkv;
  for (let b = 0; b < cs.B; b++) {
    for (let h = 0; h < cs.H; h++) {
      for (let i = 0; i < cs.T; i++) {
        fn(b, h, i, Math.floor(h / G), (j) => (!cs.causal || j <= i) && (!cs.window || j > i - cs.window) && (!km || km[b * cs.T + j] !== 0));
      }
    }
  }
}

/** Forward. scores x_ij = fl(Σ̂_d q·k·σ̂): δx = σγ_D·Σ|q·k| + 2u|x| (native), + u|x| for ref.
 *  probs: softmax of x̂ (attention_impl.inc softmax_row): e_j = exp(fl(x̂_j − max x̂)) within
 *  ε_j = EXP_REL + δx_j + max δx + u|x_j − m|; Σe (positive) within max ε + γ_{n+5}; two
 *  roundings to p̂ (1/s and the product): |Δp_j| ≤ (ε_j + max ε + γ_{n+5} + 2u)·p_j, + u·p for ref.
 *  out = Σ_j p̂·v over ≤ T keys: γ_T·Σ|p·v| + Σ_j |Δp_j|·|v_jd|, + u|out| for ref. */
export function attentionBound(cs: Shape, q: A, k: A, v: A, km: Int32Array | null, scale: number,
  want: { out: A; probs: A; scores: A }): { out: Float64Array; probs: Float64Array; scores: Float64Array } {
  const { T, H, Hkv, D } = cs;
  const out = new Float64Array(want.out.length), probs = new Float64Array(want.probs.length);
  const scores = new Float64Array(want.scores.length);
  const x = new Float64Array(T), dx = new Float64Array(T), dp = new Float64Array(T), p = new Float64Array(T);
  rows(cs, km, (b, h, i, g, visible) => {
    const qo = ((b * T + i) * H + h) * D, po = ((b * H + h) * T + i) * T;
    let m = -Infinity, dxMax = 0, n = 0;
    for (let j = 0; j < T; j++) {
      if (!visible(j)) continue;
      n++;
      const ko = ((b * T + j) * Hkv + g) * D;
      let s = 0, a = 0;
      for (let d = 0; d < D; d++) {
        s += q[qo + d] * k[ko + d];
        a += Math.abs(q[qo + d] * k[ko + d]);
      }
      x[j] = s * scale;
      dx[j] = SECOND_ORDER * (scale * gamma(D) * a + 2 * u * Math.abs(x[j]));
      scores[po + j] = dx[j] + u * Math.abs(want.scores[po + j]);
      m = Math.max(m, x[j]);
      dxMax = Math.max(dxMax, dx[j]);
    }
    if (n === 0) return;  // no usable key: probs and out exactly 0
    let s = 0, epsMax = 0;
    for (let j = 0; j < T; j++) {
      if (!visible(j)) continue;
      s += Math.exp(x[j] - m);
      epsMax = Math.max(epsMax, EXP_REL + dx[j] + dxMax + u * Math.abs(x[j] - m));
    }
    for (let j = 0; j < T; j++) {
      p[j] = visible(j) ? Math.exp(x[j] - m) / s : 0;
      const eps = EXP_REL + dx[j] + dxMax + u * Math.abs(x[j] - m);
      dp[j] = visible(j) ? SECOND_ORDER * (eps + epsMax + gamma(n + 5) + 2 * u) * p[j] + FLT_MIN : 0;
      probs[po + j] = dp[j] + (visible(j) ? u * p[j] : 0);
    }
    for (let d = 0; d < D; d++) {
      let a = 0, e = 0;
      for (let j = 0; j < T; j++) {
        if (!visible(j)) continue;
        const vj = Math.abs(v[((b * T + j) * Hkv + g) * D + d]);
        a += p[j] * vj;
        e += dp[j] * vj;
      }
      out[qo + d] = SECOND_ORDER * (gamma(T) * a + e) + u * Math.abs(want.out[qo + d]);
    }
  });
  return { out, probs, scores };
}

/** Backward with the given probabilities P (an input of both), per visible (i, j):
 *  dP = fl(Σ̂_d dO·v) + gP: ΔdP ≤ γ_{D+1}·(Σ|dO·v| + |gP|); dot_i = Σ_j dP·P by FMAs:
 *  Δdot ≤ γ_{n+5}·Σ|dP·P| + Σ P·ΔdP; dS = fl(σ̂·fl(fl(P·fl(dP − dot)) + gS)):
 *  ΔdS ≤ σ·(P·(ΔdP + Δdot + u|dP − dot|) + u|P·(dP − dot)| + 3u|P·(dP − dot) + gS|).
 *  dQ = Σ_j dS·k (≤ T terms): γ_T·Σ|dS·k| + Σ ΔdS·|k|. dK, dV sum over the G heads of the kv
 *  group and every query row, through per-block tiles added into accumulators and per-part
 *  partials: ≤ T + 1 + G·T + T roundings on any path, γ_{3GT+2}; dK also carries Σ ΔdS·|q|.
 *  ref adds u per output. */
export function attentionBackwardBound(cs: Shape, q: A, k: A, v: A, km: Int32Array | null,
  scale: number, P: A, gout: A, gP: A | null, gS: A | null, want: { gq: A; gk: A; gv: A }):
  { gq: Float64Array; gk: Float64Array; gv: Float64Array } {
  const { T, H, Hkv, D } = cs, G = H / Hkv;
  const gq = new Float64Array(want.gq.length);
  const gkAbs = new Float64Array(want.gk.length), gkErr = new Float64Array(want.gk.length);
  const gvAbs = new Float64Array(want.gv.length);
  const dS = new Float64Array(T), ddS = new Float64Array(T);
  rows(cs, km, (b, h, i, g, visible) => {
    const qo = ((b * T + i) * H + h) * D, po = ((b * H + h) * T + i) * T;
    const dP = new Float64Array(T), ddP = new Float64Array(T);
    let dot = 0, dotAbs = 0, dotErr = 0, n = 0;
    for (let j = 0; j < T; j++) {
      dS[j] = ddS[j] = 0;
      if (!visible(j)) continue;
      n++;
      const vo = ((b * T + j) * Hkv + g) * D;
      let s = 0, a = 0;
      for (let d = 0; d < D; d++) {
        s += gout[qo + d] * v[vo + d];
        a += Math.abs(gout[qo + d] * v[vo + d]);
      }
      const gp = gP ? gP[po + j] : 0;
      dP[j] = s + gp;
      ddP[j] = gamma(D + 1) * (a + Math.abs(gp));
      dot += dP[j] * P[po + j];
      dotAbs += Math.abs(dP[j] * P[po + j]);
      dotErr += P[po + j] * ddP[j];
    }
    const ddot = gamma(n + 5) * dotAbs + dotErr;
    for (let j = 0; j < T; j++) {
      if (!visible(j)) continue;
      const pj = P[po + j], e1 = dP[j] - dot, t2 = pj * e1, t3 = t2 + (gS ? gS[po + j] : 0);
      dS[j] = scale * t3;
      ddS[j] = SECOND_ORDER * scale * (pj * (ddP[j] + ddot + u * Math.abs(e1)) + u * Math.abs(t2) +
        3 * u * Math.abs(t3));
    }
    for (let d = 0; d < D; d++) {
      let a = 0, e = 0;
      for (let j = 0; j < T; j++) {
        if (!visible(j)) continue;
        const ko = ((b * T + j) * Hkv + g) * D + d;
        a += Math.abs(dS[j] * k[ko]);
        e += ddS[j] * Math.abs(k[ko]);
        gkAbs[ko] += Math.abs(dS[j] * q[qo + d]);
        gkErr[ko] += ddS[j] * Math.abs(q[qo + d]);
        gvAbs[ko] += Math.abs(P[po + j] * gout[qo + d]);
      }
      gq[qo + d] = SECOND_ORDER * (gamma(T) * a + e) + u * Math.abs(want.gq[qo + d]);
    }
  });
  const acc = gamma(3 * G * T + 2);
  return {
    gq,
    gk: gkAbs.map((a, i) => SECOND_ORDER * (acc * a + gkErr[i]) + u * Math.abs(want.gk[i])),
    gv: gvAbs.map((a, i) => SECOND_ORDER * acc * a + u * Math.abs(want.gv[i])),
  };
}
