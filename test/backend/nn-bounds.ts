// Per-element bounds on |native − ref| for the 'nn' family (softmax family, norms, rope, losses),
// from the float32 operations of native/nn_rows.inc and nn_loss.inc (every path: the scalar
// portable build and the AVX2 build do the same operations, FMA or not) against the float64
// reference rounded once (u per output). Notation and building blocks: test/bounds.ts.
// First-order error analysis: SECOND_ORDER covers the dropped products of relative errors.
// Terms like u·|x_j − m| are the rounding of a float32 subtraction feeding exp: an absolute
// error δ in the argument is a relative error e^δ − 1 ≈ δ of the result.
import { EXP_REL, SECOND_ORDER, U32 as u, gamma, sumErr } from '../bounds.js';

type A = ArrayLike<number>;
const FLT_MIN = 2 ** -126;  // the vector exp flushes results below this to 0

function rowMax(x: A, o: number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, x[o + j]);
  return m;
}

/** softmax: y_j = fl(e_j·fl(1/s)), e_j = exp(fl(x_j − m)), s = Σ e_j (positive terms, so
 *  relative error ≤ sumErr(n) + max_i ε_i): |Δy_j| ≤ (ε_j + max ε + sumErr(n) + 3u)·y_j. */
export function softmaxBound(x: A, want: A, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const m = rowMax(x, o, n);
    let emax = 0;
    for (let j = 0; j < n; j++) emax = Math.max(emax, EXP_REL + u * Math.abs(x[o + j] - m));
    for (let j = 0; j < n; j++) {
      const ej = EXP_REL + u * Math.abs(x[o + j] - m);
      out[o + j] = SECOND_ORDER * (ej + emax + sumErr(n) + 3 * u) * Math.abs(want[o + j]) + FLT_MIN;
    }
  }
  return out;
}

/** logsumexp as native forms it, fl(m + logf(ŝ)): ŝ within (max ε + sumErr(n)) relatively,
 *  so log ŝ within that absolutely; logf within 1 ulp (2u·|L|); the add u·|m + L|. Returns the
 *  bound on |lse_native − lse| and lse itself, per row. */
function lseBound(x: A, rows: number, n: number): { bound: Float64Array; lse: Float64Array } {
  const bound = new Float64Array(rows), lse = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const m = rowMax(x, o, n);
    let s = 0, emax = 0;
    for (let j = 0; j < n; j++) {
      s += Math.exp(x[o + j] - m);
      emax = Math.max(emax, EXP_REL + u * Math.abs(x[o + j] - m));
    }
    const L = Math.log(s);
    lse[r] = m + L;
    bound[r] = SECOND_ORDER * (emax + sumErr(n)) + 2 * u * L + u * Math.abs(m + L);
  }
  return { bound, lse };
}

/** logSoftmax: out_j = fl(x_j − lse): the lse bound plus the subtraction and ref (2u|out_j|). */
export function logSoftmaxBound(x: A, want: A, rows: number, n: number): Float64Array {
  const { bound } = lseBound(x, rows, n);
  return Float64Array.from(want, (w, i) => bound[Math.floor(i / n)] + 2 * u * Math.abs(w));
}

/** softmaxBackward: gx_j = fl(y_j·fl(gy_j − d̂)), d̂ = Σ gy_i·y_i by multiply-adds within
 *  sumErr(n)·Σ|gy_i·y_i|: |Δ| ≤ |y_j|·(sumErr(n)·Σ|gy·y| + u·|gy_j − d|) + 2u·|gx_j|. */
export function softmaxBackwardBound(y: A, gy: A, want: A, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    let d = 0, a = 0;
    for (let j = 0; j < n; j++) {
      d += gy[o + j] * y[o + j];
      a += Math.abs(gy[o + j] * y[o + j]);
    }
    for (let j = 0; j < n; j++) {
      out[o + j] = SECOND_ORDER * (Math.abs(y[o + j]) * (sumErr(n) * a + u * Math.abs(gy[o + j] - d)) +
        2 * u * Math.abs(want[o + j]));
    }
  }
  return out;
}

/** logSoftmaxBackward: gx_j = fma(exp(y_j), −Ĝ, gy_j), Ĝ = Σ gy within sumErr(n)·Σ|gy|:
 *  |Δ| ≤ e^{y_j}·(EXP_REL·|G| + sumErr(n)·Σ|gy|) + 2u·|gx_j|. */
export function logSoftmaxBackwardBound(y: A, gy: A, want: A, rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    let g = 0, a = 0;
    for (let j = 0; j < n; j++) {
      g += gy[o + j];
      a += Math.abs(gy[o + j]);
    }
    for (let j = 0; j < n; j++) {
      out[o + j] = SECOND_ORDER * (Math.exp(y[o + j]) * (EXP_REL * Math.abs(g) + sumErr(n) * a) +
        2 * u * Math.abs(want[o + j])) + FLT_MIN * Math.abs(g);
    }
  }
  return out;
}

/** rope: each output is a two-term dot product x₁·c − x₂·s (products and the add rounded):
 *  γ_2·(|x₁c| + |x₂s|), plus ref's rounding u·|y|. */
export function ropeBound(x: A, cos: A, sin: A, want: A, B: number, T: number, H: number,
  D: number): Float64Array {
  const out = new Float64Array(B * T * H * D), h = D / 2;
  for (let row = 0; row < B * T * H; row++) {
    const t = Math.floor(row / H) % T, o = row * D;
    for (let j = 0; j < D; j++) {
      const partner = j < h ? j + h : j - h;
      const terms = Math.abs(x[o + j] * cos[t * D + j]) + Math.abs(x[o + partner] * sin[t * D + j]);
      out[o + j] = gamma(2) * terms + u * Math.abs(want[o + j]);
    }
  }
  return out;
}

/** layerNorm forward, per row (μ, σ² the exact mean and biased variance):
 *  μ̂ = fl(Σ̂x / n): |μ̂ − μ| ≤ δμ = sumErr(n)·Σ|x|/n + u·|μ|;
 *  σ̂² = Σ fl(x − μ̂)²/n = (σ² + (μ̂ − μ)²)(1 + 2u + sumErr(n)): ε_v = δμ²/σ² + 2u + sumErr(n);
 *  rstd = fl(1/√(σ̂² + eps)) (double, one cast): ε_rs = ½ε_v + u, ref adds u;
 *  out_j = fl(fl(fl(x_j − μ̂)·rs)·w_j + b_j): |w_j|·rs·(|x_j − μ|·(ε_rs + 3u) + δμ) + 2u|out_j|. */
export function layerNormBound(x: A, w: A | null, eps: number, want: { out: A; mean: A; rstd: A },
  rows: number, n: number): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * n), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    let s = 0, a = 0;
    for (let j = 0; j < n; j++) {
      s += x[o + j];
      a += Math.abs(x[o + j]);
    }
    const mu = s / n;
    let v = 0;
    for (let j = 0; j < n; j++) v += (x[o + j] - mu) ** 2;
    v /= n;
    const rs = 1 / Math.sqrt(v + eps);
    const dmu = sumErr(n) * (a / n) + u * Math.abs(mu);
    const ev = (v > 0 ? dmu * dmu / v : 0) + 2 * u + sumErr(n);
    const ers = 0.5 * ev * (v / (v + eps)) + u;
    mean[r] = SECOND_ORDER * dmu + u * Math.abs(want.mean[r]);
    rstd[r] = SECOND_ORDER * (ers + u) * rs;
    for (let j = 0; j < n; j++) {
      const wj = w ? Math.abs(w[j]) : 1;
      out[o + j] = SECOND_ORDER * (wj * rs * (Math.abs(x[o + j] - mu) * (ers + 3 * u) + dmu) +
        2 * u * Math.abs(want.out[o + j]));
    }
  }
  return { out, mean, rstd };
}

/** A weight-gradient accumulation g_j += Σ_r t_rj over `rows` rows through per-block partial
 *  rows (native/nn.cc blocked_rows): each term passes ≤ rows + blocks + 1 ≤ 2·rows + 1 roundings;
 *  `rel` is the relative error each term already carries. */
function accBound(g0: A | null, terms: (r: number, j: number) => number, rel: number, want: A,
  rows: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let t = 0;
    for (let r = 0; r < rows; r++) t += Math.abs(terms(r, j));
    out[j] = SECOND_ORDER * (gamma(2 * rows + 2) * ((g0 ? Math.abs(g0[j]) : 0) + t) + rel * t) +
      u * Math.abs(want[j]);
  }
  return out;
}

/** layerNormBackward with the given mean μ and rstd rs (float inputs of both):
 *  x̂ = fl(fl(x − μ)·rs) (2u), g = fl(gy·w) (u); ĉ1 = fl(−rs·Σ̂g/n):
 *  |Δc1| ≤ rs·(sumErr(n) + u)·Σ|g|/n + u|c1|; ĉ2 = fl(−rs·Σ̂ g·x̂/n): |Δc2| ≤
 *  rs·(sumErr(n) + 3u)·Σ|g·x̂|/n + u|c2|; gx = fma(x̂, c2, fma(g, rs, c1)):
 *  |Δgx| ≤ u·rs|g| + |Δc1| + u·|g·rs + c1| + 2u·|x̂·c2| + |x̂|·|Δc2| + 2u·|gx|.
 *  gw += Σ gy·x̂ (2u per term), gb += Σ gy: accBound. */
export function layerNormBackwardBound(x: A, w: A | null, mean: A, rstd: A, gy: A,
  gw0: A | null, gb0: A | null, want: { gx: A; gw: A | null; gb: A | null }, rows: number,
  n: number): { gx: Float64Array; gw: Float64Array | null; gb: Float64Array | null } {
  const gx = new Float64Array(rows * n);
  const xh = (r: number, j: number): number => (x[r * n + j] - mean[r]) * rstd[r];
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const rs = rstd[r];
    let sa = 0, aa = 0, sb = 0, ab = 0;
    for (let j = 0; j < n; j++) {
      const g = gy[o + j] * (w ? w[j] : 1);
      sa += g;
      aa += Math.abs(g);
      sb += g * xh(r, j);
      ab += Math.abs(g * xh(r, j));
    }
    const c1 = -rs * sa / n, c2 = -rs * sb / n;
    const dc1 = rs * (sumErr(n) + u) * aa / n + u * Math.abs(c1);
    const dc2 = rs * (sumErr(n) + 3 * u) * ab / n + u * Math.abs(c2);
    for (let j = 0; j < n; j++) {
      const g = gy[o + j] * (w ? w[j] : 1), xj = xh(r, j);
      gx[o + j] = SECOND_ORDER * (u * rs * Math.abs(g) + dc1 + u * Math.abs(g * rs + c1) +
        2 * u * Math.abs(xj * c2) + Math.abs(xj) * dc2 + 2 * u * Math.abs(want.gx[o + j]));
    }
  }
  return {
    gx,
    gw: want.gw && accBound(gw0, (r, j) => gy[r * n + j] * xh(r, j), 2 * u, want.gw, rows, n),
    gb: want.gb && accBound(gb0, (r, j) => gy[r * n + j], 0, want.gb, rows, n),
  };
}

/** rmsNorm forward: ms = Σ̂x²/n within sumErr(n) relatively, rs = fl(1/√(ms + eps)):
 *  ε_rs = ½·sumErr(n) + u, ref u; out_j = fl(fl(x_j·rs)·w_j): |x_j·rs·w_j|·(ε_rs + 2u) + u|out_j|. */
export function rmsNormBound(x: A, w: A, eps: number, want: { out: A; rstd: A }, rows: number,
  n: number): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * n), rstd = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    let ss = 0;
    for (let j = 0; j < n; j++) ss += x[o + j] ** 2;
    const ms = ss / n, rs = 1 / Math.sqrt(ms + eps);
    const ers = 0.5 * sumErr(n) * (ms / (ms + eps)) + u;
    rstd[r] = SECOND_ORDER * (ers + u) * rs;
    for (let j = 0; j < n; j++) {
      out[o + j] = SECOND_ORDER * (Math.abs(x[o + j] * rs * w[j]) * (ers + 2 * u) +
        u * Math.abs(want.out[o + j]));
    }
  }
  return { out, rstd };
}

/** rmsNormBackward with the given rstd rs: ĉ = fl(−rs³·Σ̂ fl(gy·w)·x/n):
 *  |Δc| ≤ rs³·(sumErr(n) + u)·Σ|gy·w·x|/n + u|c|; gx = fma(x, c, fl(fl(gy·w)·rs)):
 *  |Δgx| ≤ |x|·|Δc| + 2u·|gy·w·rs| + 2u·|gx|; gw += Σ fl(x·rs)·gy (u per term): accBound. */
export function rmsNormBackwardBound(x: A, w: A, rstd: A, gy: A, gw0: A,
  want: { gx: A; gw: A }, rows: number, n: number): { gx: Float64Array; gw: Float64Array } {
  const gx = new Float64Array(rows * n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const rs = rstd[r];
    let d = 0, a = 0;
    for (let j = 0; j < n; j++) {
      d += gy[o + j] * w[j] * x[o + j];
      a += Math.abs(gy[o + j] * w[j] * x[o + j]);
    }
    const c = -(rs ** 3) * d / n, dc = rs ** 3 * (sumErr(n) + u) * a / n + u * Math.abs(c);
    for (let j = 0; j < n; j++) {
      gx[o + j] = SECOND_ORDER * (Math.abs(x[o + j]) * dc + 2 * u * Math.abs(gy[o + j] * w[j] * rs) +
        2 * u * Math.abs(want.gx[o + j]));
    }
  }
  return { gx, gw: accBound(gw0, (r, j) => x[r * n + j] * rstd[r] * gy[r * n + j], u, want.gw, rows, n) };
}

/** crossEntropy: lse as logSoftmax (lseBound, plus ref's u|lse|); loss = fl(lse − z_t): the lse
 *  bound plus 2u|loss| (0 exactly on ignored rows). */
export function crossEntropyBound(z: A, tg: A, ignore: number, want: { loss: A; lse: A },
  rows: number, n: number): { loss: Float64Array; lse: Float64Array } {
  const { bound } = lseBound(z, rows, n);
  return {
    lse: Float64Array.from(bound, (b, r) => b + u * Math.abs(want.lse[r])),
    loss: Float64Array.from(bound, (b, r) => tg[r] === ignore ? 0 : b + 2 * u * Math.abs(want.loss[r])),
  };
}

/** crossEntropyBackward with the given lse: gz_j = fl(g·exp(fl(z_j − lse))):
 *  |Δ| ≤ |gz_j|·(EXP_REL + u|z_j − lse| + u) + u|gz_j|; the target entry fl(g·fl(p_t − 1)):
 *  |g|·(p_t·(EXP_REL + u|z_t − lse|) + u|p_t − 1|) + 2u|gz_t|. */
export function crossEntropyBackwardBound(z: A, tg: A, lse: A, gl: A, ignore: number, want: A,
  rows: number, n: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    if (tg[r] === ignore) continue;  // exactly 0
    for (let j = 0; j < n; j++) {
      const d = Math.abs(z[o + j] - lse[r]), p = Math.exp(z[o + j] - lse[r]);
      out[o + j] = j === tg[r]
        ? SECOND_ORDER * (Math.abs(gl[r]) * (p * (EXP_REL + u * d) + u * Math.abs(p - 1)) +
          2 * u * Math.abs(want[o + j]))
        : SECOND_ORDER * Math.abs(gl[r]) * p * (EXP_REL + u * d + 2 * u) + FLT_MIN * Math.abs(gl[r]);
    }
  }
  return out;
}

/** The per-row error terms of native kl_stats (nn_loss.inc) for t, s at temperature τ.
 *  â_j = fl(t_j·fl(1/τ)) is IEEE-deterministic, so its error against a_j = t_j/τ is computed
 *  here exactly; da_j = fl(â_j − max â) is off by δa_j ≤ |â_j − a_j| + |max â − max a| + u|da_j|,
 *  which is also the relative error it puts on e^{da_j}, plus EXP_REL: ε_a,j. Sa = Σ e^{da}
 *  within εSa = sumErr(n) + max ε_a relatively (log Sa within εSa absolutely). KL = Σ e^{da}·
 *  (da − db)/Sa − (log Sa − log Sb): per term, |t_j|·ε_a,j + e^{da_j}(δa_j + δb_j + u|da_j − db_j|),
 *  the sum's sumErr(n)·Σ|t|, over Sa, plus |KL₁|·εSa + εSa + εSb. */
function klStats(t: A, s: A, o: number, n: number, tau: number) {
  const it = Math.fround(1 / tau);
  const side = (x: A) => {
    const a = Array.from({ length: n }, (_, j) => x[o + j] / tau);
    const ah = Array.from({ length: n }, (_, j) => Math.fround(x[o + j] * it));
    const m = Math.max(...a), mh = Math.max(...ah);
    const d = a.map((v) => v - m);
    const delta = d.map((dj, j) => Math.abs(ah[j] - a[j]) + Math.abs(mh - m) + u * Math.abs(dj));
    const eps = delta.map((dl) => EXP_REL + dl);
    const e = d.map(Math.exp);
    const S = e.reduce((x1, x2) => x1 + x2, 0);
    return { d, delta, eps, e, S, eS: sumErr(n) + Math.max(...eps) };
  };
  const A = side(t), B = side(s);
  let sw = 0, errTerms = 0, absTerms = 0;
  for (let j = 0; j < n; j++) {
    const dd = A.d[j] - B.d[j], term = A.e[j] * dd;
    sw += term;
    absTerms += Math.abs(term);
    errTerms += Math.abs(term) * A.eps[j] + A.e[j] * (A.delta[j] + B.delta[j] + u * Math.abs(dd));
  }
  const kl1 = sw / A.S;
  const kl = kl1 - Math.log(A.S) + Math.log(B.S);
  const dkl = SECOND_ORDER * ((errTerms + sumErr(n) * absTerms) / A.S + Math.abs(kl1) * A.eS + A.eS + B.eS);
  return { A, B, kl, dkl };
}

/** klDiv: the kl_stats error, the float cast u|KL| and ref's u|KL|. */
export function klDivBound(t: A, s: A, want: A, rows: number, n: number, tau: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, r) => klStats(t, s, r * n, n, tau).dkl + 2 * u * Math.abs(want[r]));
}

/** klDivBackward: p_j = fl(e^{da_j}·fl(1/Sa)) within ε_p,j = ε_a,j + εSa + 2u (q likewise);
 *  c = fl(g/τ) (u); gs_j = fl(c·fl(q_j − p_j)): |c|(p·ε_p + q·ε_q + u|q − p|) + 3u|gs_j|.
 *  off = fl(log Sa − log Sb + KL): |Δoff| ≤ εSa + εSb + ΔKL + u|off|; inner = fl(fl(da − db) − off):
 *  δa + δb + u|da − db| + |Δoff| + u|inner|; gt_j = fl(fl(c·p)·inner): |c·p|·|Δinner| +
 *  |gt|·(ε_p + 3u) + u|gt| (ref). */
export function klDivBackwardBound(t: A, s: A, gl: A, want: { gs: A; gt: A | null }, rows: number,
  n: number, tau: number): { gs: Float64Array; gt: Float64Array | null } {
  const gs = new Float64Array(rows * n), gt = want.gt ? new Float64Array(rows * n) : null;
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const { A, B, kl, dkl } = klStats(t, s, o, n, tau);
    const c = Math.abs(gl[r] / tau);
    const off = Math.log(A.S) - Math.log(B.S) + kl;
    const doff = A.eS + B.eS + dkl + u * Math.abs(off);
    for (let j = 0; j < n; j++) {
      const p = A.e[j] / A.S, q = B.e[j] / B.S;
      const ep = A.eps[j] + A.eS + 2 * u, eq = B.eps[j] + B.eS + 2 * u;
      gs[o + j] = SECOND_ORDER * (c * (p * ep + q * eq + u * Math.abs(q - p)) + 3 * u * Math.abs(want.gs[o + j])) +
        FLT_MIN * c;
      if (gt) {
        const dd = A.d[j] - B.d[j], inner = dd - off;
        const dinner = A.delta[j] + B.delta[j] + u * Math.abs(dd) + doff + u * Math.abs(inner);
        gt[o + j] = SECOND_ORDER * (c * p * dinner + Math.abs(want.gt![o + j]) * (ep + 4 * u)) + FLT_MIN * c;
      }
    }
  }
  return { gs, gt };
}
