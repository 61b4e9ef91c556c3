// Reference kernels, family 'attention': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
//
// Layouts: q (B,T,H,D), k and v (B,T,Hkv,D), out (B,T,H,D), probs and scores (B,H,T,T),
// keyMask (B,T) with nonzero = attend. Query i may use key j when j ≤ i (if causal),
// j > i − window (if window > 0: sliding-window attention) and keyMask[b,j] ≠ 0; rows without any usable key get zero probabilities, output and gradient.
import type { Kernels } from '../../tensor/kernels.js';

type F = Float32Array;
type I = Int32Array;

function dim(name: string, x: number, min: number): void {
  if (!Number.isInteger(x) || x < min || x > 0x7fffffff) {
    throw new RangeError(`attention: ${name} = ${x} must be an integer ≥ ${min}`);
  }
}

function len(name: string, buf: ArrayLike<number> | null, n: number): void {
  if (buf && buf.length !== n) {
    throw new RangeError(`attention: ${name} has length ${buf.length}, expected ${n}`);
  }
}

/** Validates the sizes shared by the forward and the backward. */
export function checkAttentionShapes(B: number, T: number, H: number, Hkv: number, D: number,
  keyMask: I | null): void {
  dim('B', B, 0);
  dim('T', T, 0);
  dim('H', H, 1);
  dim('Hkv', Hkv, 1);
  dim('D', D, 1);
  if (H % Hkv !== 0) throw new RangeError(`attention: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  len('keyMask', keyMask, B * T);
}

/** Usable keys of query row i in batch b: j < limit with keep(j). */
function rowMask(b: number, i: number, T: number, causal: boolean, keyMask: I | null, window: number) {
  const limit = causal ? i + 1 : T;
  const lo = window > 0 ? i - window + 1 : 0;
  const keep = (j: number): boolean => j >= lo && (keyMask === null || keyMask[b * T + j] !== 0);
  return { limit, keep };
}

function checkWindow(window: number, scale: number): void {
  if (!Number.isInteger(window) || window < 0) throw new RangeError(`attention: window = ${window} must be an integer >= 0 (0 = none)`);
  // As the native kernels, which mask keys below the window as −∞ before scaling.
  if (window > 0 && !(scale > 0)) throw new RangeError('attention: a window needs scale > 0');
}

function attention(q: F, k: F, v: F, out: F, probs: F | null, scores: F | null, B: number,
  T: number, H: number, Hkv: number, D: number, scale: number, causal: boolean,
  keyMask: I | null, window = 0): void {
  checkAttentionShapes(B, T, H, Hkv, D, keyMask);
  checkWindow(window, scale);
  len('q', q, B * T * H * D);
  len('k', k, B * T * Hkv * D);
  len('v', v, B * T * Hkv * D);
  len('out', out, B * T * H * D);
  len('probs', probs, B * H * T * T);
  len('scores', scores, B * H * T * T);
  const G = H / Hkv;
  const s = new Float64Array(T);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        const { limit, keep } = rowMask(b, i, T, causal, keyMask, window);
        const qo = ((b * T + i) * H + h) * D;
        // s_j = scale·q_i·k_j over the usable keys; softmax over them (max-shifted).
        let max = -Infinity;
        for (let j = 0; j < limit; j++) {
          if (!keep(j)) continue;
          const ko = ((b * T + j) * Hkv + g) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          s[j] = scale * dot;
          if (s[j] > max) max = s[j];
        }
        p.fill(0);
        if (max !== -Infinity) {
          let sum = 0;
          for (let j = 0; j < limit; j++) {
            if (keep(j)) {
              p[j] = Math.exp(s[j] - max);
              sum += p[j];
            }
          }
          for (let j = 0; j < limit; j++) p[j] /= sum;
        }
        const row = ((b * H + h) * T + i) * T;
        for (let j = 0; j < T; j++) {
          const used = j < limit && keep(j);
          if (probs) probs[row + j] = p[j];
          if (scores) scores[row + j] = used ? s[j] : 0;
        }
        // out_i = Σ_j p_j v_j (p is 0 at excluded keys).
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < limit; j++) acc += p[j] * v[((b * T + j) * Hkv + g) * D + d];
          out[qo + d] = acc;
        }
      }
    }
  }
}

function attentionBackward(q: F, k: F, v: F, probs: F, gout: F, gProbs: F | null,
  gScores: F | null, gq: F, gk: F, gv: F, B: number, T: number, H: number, Hkv: number,
  D: number, scale: number, causal: boolean, keyMask: I | null, window = 0): void {
  checkAttentionShapes(B, T, H, Hkv, D, keyMask);
  checkWindow(window, scale);
  if (!probs) throw new TypeError('attentionBackward: probs is required');
  len('q', q, B * T * H * D);
  len('k', k, B * T * Hkv * D);
  len('v', v, B * T * Hkv * D);
  len('probs', probs, B * H * T * T);
  len('gout', gout, B * T * H * D);
  len('gProbs', gProbs, B * H * T * T);
  len('gScores', gScores, B * H * T * T);
  len('gq', gq, B * T * H * D);
  len('gk', gk, B * T * Hkv * D);
  len('gv', gv, B * T * Hkv * D);
  const G = H / Hkv;
  // gk/gv accumulate over heads and queries in double, then are written once (overwrite).
  const dk = new Float64Array(gk.length);
  const dv = new Float64Array(gv.length);
  const dS = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        const { limit, keep } = rowMask(b, i, T, causal, keyMask, window);
        const qo = ((b * T + i) * H + h) * D;
        const row = ((b * H + h) * T + i) * T;
        // dP_j = dO_i·v_j (+ gProbs); dS = P ⊙ (dP − Σ_j dP_j P_j) (+ gScores), usable j only.
        let dot = 0;
        dS.fill(0);
        for (let j = 0; j < limit; j++) {
          if (!keep(j)) continue;
          const vo = ((b * T + j) * Hkv + g) * D;
          let dp = gProbs ? gProbs[row + j] : 0;
          for (let d = 0; d < D; d++) dp += gout[qo + d] * v[vo + d];
          dS[j] = dp;
          dot += dp * probs[row + j];
        }
        for (let j = 0; j < limit; j++) {
          if (!keep(j)) continue;
          const pj = probs[row + j];
          dS[j] = pj * (dS[j] - dot) + (gScores ? gScores[row + j] : 0);
        }
        // dQ_i = scale·Σ_j dS_j k_j;  dK_j += scale·dS_j q_i;  dV_j += P_j dO_i.
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < limit; j++) {
            if (keep(j)) acc += dS[j] * k[((b * T + j) * Hkv + g) * D + d];
          }
          gq[qo + d] = scale * acc;
        }
        for (let j = 0; j < limit; j++) {
          if (!keep(j)) continue;
          const ko = ((b * T + j) * Hkv + g) * D;
          const pj = probs[row + j];
          for (let d = 0; d < D; d++) {
            dk[ko + d] += scale * dS[j] * q[qo + d];
            dv[ko + d] += pj * gout[qo + d];
          }
        }
      }
    }
  }
  gk.set(dk);
  gv.set(dv);
}

export const attentionKernels: Partial<Kernels> = { attention, attentionBackward };
