// An independent float64 attention for checking the reference kernels: explicit loops, the
// full scores matrix with −∞ at excluded entries, a textbook softmax per row.

export interface NaiveCase {
  B: number; T: number; H: number; Hkv: number; D: number; causal: boolean; window?: number;
}

/** q (B,T,H,D), k/v (B,T,Hkv,D), scale 1/√D; returns out (B,T,H,D), probs and scores
 *  (B,H,T,T) with excluded scores 0. */
export function naiveAttention(cs: NaiveCase, q: ArrayLike<number>, k: ArrayLike<number>,
  v: ArrayLike<number>, km: Int32Array | null) {
  const { B, T, H, Hkv, D } = cs;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(B * T * H * D);
  const probs = new Float64Array(B * H * T * T);
  const scores = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h * Hkv / H);  // = floor(h / (H/Hkv))
      const S: number[][] = [];
      for (let i = 0; i < T; i++) {
        S.push([]);
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[((b * T + i) * H + h) * D + d] * k[((b * T + j) * Hkv + g) * D + d];
          const excluded = (cs.causal && j > i) || (!!cs.window && j <= i - cs.window) || (km !== null && km[b * T + j] === 0);
          S[i].push(excluded ? -Infinity : scale * dot);
        }
      }
      for (let i = 0; i < T; i++) {
        const row = ((b * H + h) * T + i) * T;
        const m = Math.max(...S[i]);
        const e = S[i].map((s) => (m === -Infinity ? 0 : Math.exp(s - m)));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < T; j++) {
          probs[row + j] = z === 0 ? 0 : e[j] / z;
          scores[row + j] = S[i][j] === -Infinity ? 0 : S[i][j];
        }
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += probs[row + j] * v[((b * T + j) * Hkv + g) * D + d];
          out[((b * T + i) * H + h) * D + d] = acc;
        }
      }
    }
  }
  return { out, probs, scores };
}
