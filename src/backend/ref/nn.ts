// Reference kernels, family 'nn': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
// Arithmetic is in double precision (JS numbers) and rounded to float32 only when stored, so
// these are at least as accurate as any float32 implementation. Bad sizes throw RangeError,
// as the native kernels do.
import type { Kernels } from '../../tensor/kernels.js';

type F = Float32Array;

/** Throws a RangeError unless buf has exactly `len` elements (at least, if atLeast). */
export function expectLength(fn: string, name: string, buf: ArrayLike<number>, len: number,
  atLeast = false): void {
  if (atLeast ? buf.length < len : buf.length !== len) {
    throw new RangeError(`${fn}: ${name} has length ${buf.length}, expected ` +
      `${atLeast ? 'at least ' : ''}${len}`);
  }
}

function expectDims(fn: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** 31) {
      throw new RangeError(`${fn}: ${name} must be an integer in [0, 2^31), got ${v}`);
    }
  }
}

function rowMax(x: F, o: number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, x[o + j]);
  return m;
}

/** logsumexp of x[o .. o+n) · scale, max-subtracted. */
function logSumExp(x: F, o: number, n: number, scale = 1): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, x[o + j] * scale);
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(x[o + j] * scale - m);
  return m + Math.log(s);
}

function checkEps(fn: string, eps: number): void {
  if (!(eps > 0 && Number.isFinite(eps))) throw new RangeError(`${fn}: eps must be a positive finite number, got ${eps}`);
}

function rowWise(fn: string, bufs: Record<string, F>, rows: number, n: number): void {
  expectDims(fn, { rows, n });
  for (const [name, b] of Object.entries(bufs)) expectLength(fn, name, b, rows * n);
}

function checkTargets(fn: string, targets: Int32Array, rows: number, V: number,
  ignoreIndex: number): void {
  expectLength(fn, 'targets', targets, rows);
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t !== ignoreIndex && (t < 0 || t >= V)) {
      throw new RangeError(`${fn}: target ${t} at row ${r} is outside [0, ${V}) and is not ` +
        `ignoreIndex ${ignoreIndex}`);
    }
  }
}

function checkTau(fn: string, tau: number): void {
  if (!(tau > 0 && Number.isFinite(tau))) {
    throw new RangeError(`${fn}: tau must be a positive finite number, got ${tau}`);
  }
}

export const nnKernels: Partial<Kernels> = {
  softmax(x, out, rows, n) {
    rowWise('softmax', { x, out }, rows, n);
    for (let r = 0; r < rows; r++) {
      const o = r * n, m = rowMax(x, o, n);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x[o + j] - m);
      for (let j = 0; j < n; j++) out[o + j] = Math.exp(x[o + j] - m) / s;
    }
  },

  softmaxBackward(y, gy, gx, rows, n) {
    rowWise('softmaxBackward', { y, gy, gx }, rows, n);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let dot = 0;
      for (let j = 0; j < n; j++) dot += gy[o + j] * y[o + j];
      for (let j = 0; j < n; j++) gx[o + j] = y[o + j] * (gy[o + j] - dot);
    }
  },

  logSoftmax(x, out, rows, n) {
    rowWise('logSoftmax', { x, out }, rows, n);
    for (let r = 0; r < rows; r++) {
      const o = r * n, lse = logSumExp(x, o, n);
      for (let j = 0; j < n; j++) out[o + j] = x[o + j] - lse;
    }
  },

  logSoftmaxBackward(y, gy, gx, rows, n) {
    rowWise('logSoftmaxBackward', { y, gy, gx }, rows, n);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let s = 0;
      for (let j = 0; j < n; j++) s += gy[o + j];
      for (let j = 0; j < n; j++) gx[o + j] = gy[o + j] - Math.exp(y[o + j]) * s;
    }
  },

  layerNorm(x, w, b, out, mean, rstd, rows, n, eps) {
    rowWise('layerNorm', { x, out }, rows, n);
    if (w) expectLength('layerNorm', 'w', w, n);
    if (b) expectLength('layerNorm', 'b', b, n);
    expectLength('layerNorm', 'mean', mean, rows);
    expectLength('layerNorm', 'rstd', rstd, rows);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let mu = 0;
      for (let j = 0; j < n; j++) mu += x[o + j];
      mu /= n;
      let v = 0;
      for (let j = 0; j < n; j++) v += (x[o + j] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / n + eps); // biased variance, eps inside the sqrt
      mean[r] = mu;
      rstd[r] = rs;
      for (let j = 0; j < n; j++) {
        out[o + j] = (x[o + j] - mu) * rs * (w ? w[j] : 1) + (b ? b[j] : 0);
      }
    }
  },

  layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, n) {
    rowWise('layerNormBackward', { x, gy, gx }, rows, n);
    for (const [name, buf] of [['w', w], ['gw', gw], ['gb', gb]] as const) {
      if (buf) expectLength('layerNormBackward', name, buf, n);
    }
    expectLength('layerNormBackward', 'mean', mean, rows);
    expectLength('layerNormBackward', 'rstd', rstd, rows);
    const sw = new Float64Array(n), sb = new Float64Array(n);
    const xh = new Float64Array(n), g = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let a = 0, c = 0; // Σ g, Σ g·x̂
      for (let j = 0; j < n; j++) {
        xh[j] = (x[o + j] - mean[r]) * rstd[r];
        g[j] = gy[o + j] * (w ? w[j] : 1);
        a += g[j];
        c += g[j] * xh[j];
        sw[j] += gy[o + j] * xh[j];
        sb[j] += gy[o + j];
      }
      // d/dx of (x − μ)·rstd: rstd·(g − mean(g) − x̂·mean(g·x̂))
      for (let j = 0; j < n; j++) gx[o + j] = rstd[r] * (g[j] - a / n - xh[j] * (c / n));
    }
    for (let j = 0; j < n; j++) {
      if (gw) gw[j] += sw[j];
      if (gb) gb[j] += sb[j];
    }
  },

  rmsNorm(x, w, out, rstd, rows, n, eps) {
    rowWise('rmsNorm', { x, out }, rows, n);
    expectLength('rmsNorm', 'w', w, n);
    expectLength('rmsNorm', 'rstd', rstd, rows);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let ss = 0;
      for (let j = 0; j < n; j++) ss += x[o + j] * x[o + j];
      const rs = 1 / Math.sqrt(ss / n + eps);
      rstd[r] = rs;
      for (let j = 0; j < n; j++) out[o + j] = x[o + j] * rs * w[j];
    }
  },

  rmsNormBackward(x, w, rstd, gy, gx, gw, rows, n) {
    rowWise('rmsNormBackward', { x, gy, gx }, rows, n);
    expectLength('rmsNormBackward', 'w', w, n);
    expectLength('rmsNormBackward', 'gw', gw, n);
    expectLength('rmsNormBackward', 'rstd', rstd, rows);
    const sw = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      const o = r * n, rs = rstd[r];
      let d = 0; // Σ gy·w·x
      for (let j = 0; j < n; j++) {
        d += gy[o + j] * w[j] * x[o + j];
        sw[j] += gy[o + j] * x[o + j] * rs;
      }
      // d rstd / d x_j = −rstd³·x_j/n
      for (let j = 0; j < n; j++) gx[o + j] = rs * w[j] * gy[o + j] - x[o + j] * rs ** 3 * d / n;
    }
    for (let j = 0; j < n; j++) gw[j] += sw[j];
  },

  rope(x, out, cos, sin, B, T, H, D, inverse) {
    expectDims('rope', { B, T, H, D });
    if (D % 2 !== 0) throw new RangeError(`rope: D must be even, got ${D}`);
    const len = B * T * H * D;
    expectLength('rope', 'x', x, len);
    expectLength('rope', 'out', out, len);
    expectLength('rope', 'cos', cos, T * D, true);
    expectLength('rope', 'sin', sin, T * D, true);
    const h = D / 2, sg = inverse ? -1 : 1;
    for (let row = 0; row < B * T * H; row++) {
      const o = row * D, t = Math.floor(row / H) % T, c = t * D;
      for (let i = 0; i < h; i++) {
        const x1 = x[o + i], x2 = x[o + h + i]; // read both before writing (out may be x)
        out[o + i] = x1 * cos[c + i] - x2 * sg * sin[c + i];
        out[o + h + i] = x2 * cos[c + h + i] + x1 * sg * sin[c + h + i];
      }
    }
  },

  crossEntropy(logits, targets, loss, lse, rows, V, ignoreIndex) {
    rowWise('crossEntropy', { logits }, rows, V);
    expectLength('crossEntropy', 'loss', loss, rows);
    expectLength('crossEntropy', 'lse', lse, rows);
    checkTargets('crossEntropy', targets, rows, V, ignoreIndex);
    for (let r = 0; r < rows; r++) {
      const l = logSumExp(logits, r * V, V);
      lse[r] = l;
      loss[r] = targets[r] === ignoreIndex ? 0 : l - logits[r * V + targets[r]];
    }
  },

  crossEntropyBackward(logits, targets, lse, gloss, glogits, rows, V, ignoreIndex) {
    rowWise('crossEntropyBackward', { logits, glogits }, rows, V);
    expectLength('crossEntropyBackward', 'lse', lse, rows);
    expectLength('crossEntropyBackward', 'gloss', gloss, rows);
    checkTargets('crossEntropyBackward', targets, rows, V, ignoreIndex);
    for (let r = 0; r < rows; r++) {
      const o = r * V, t = targets[r];
      for (let j = 0; j < V; j++) {
        glogits[o + j] = t === ignoreIndex
          ? 0 : gloss[r] * (Math.exp(logits[o + j] - lse[r]) - (j === t ? 1 : 0));
      }
    }
  },

  klDiv(t, s, loss, rows, V, tau) {
    rowWise('klDiv', { t, s }, rows, V);
    expectLength('klDiv', 'loss', loss, rows);
    checkTau('klDiv', tau);
    for (let r = 0; r < rows; r++) {
      const o = r * V, la = logSumExp(t, o, V, 1 / tau), lb = logSumExp(s, o, V, 1 / tau);
      let kl = 0;
      for (let j = 0; j < V; j++) {
        const lp = t[o + j] / tau - la, lq = s[o + j] / tau - lb;
        kl += Math.exp(lp) * (lp - lq);
      }
      loss[r] = kl;
    }
  },

  klDivBackward(t, s, gloss, gs, gt, rows, V, tau) {
    rowWise('klDivBackward', { t, s, gs }, rows, V);
    if (gt) expectLength('klDivBackward', 'gt', gt, rows * V);
    expectLength('klDivBackward', 'gloss', gloss, rows);
    checkTau('klDivBackward', tau);
    const lp = new Float64Array(V), lq = new Float64Array(V);
    for (let r = 0; r < rows; r++) {
      const o = r * V, la = logSumExp(t, o, V, 1 / tau), lb = logSumExp(s, o, V, 1 / tau);
      let kl = 0;
      for (let j = 0; j < V; j++) {
        lp[j] = t[o + j] / tau - la;
        lq[j] = s[o + j] / tau - lb;
        kl += Math.exp(lp[j]) * (lp[j] - lq[j]);
      }
      const c = gloss[r] / tau;
      for (let j = 0; j < V; j++) {
        const p = Math.exp(lp[j]);
        gs[o + j] = c * (Math.exp(lq[j]) - p);
        if (gt) gt[o + j] = c * p * (lp[j] - lq[j] - kl);
      }
    }
  },

  sumSquaredDiff(a, b) {
    expectLength('sumSquaredDiff', 'b', b, a.length);
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
    return s;
  },

  countNotEqual(a, b) {
    expectLength('countNotEqual', 'b', b, a.length);
    let n = 0;
    for (let i = 0; i < a.length; i++) if (!(a[i] === b[i])) n++;
    return n;
  },

  probKl(p, q, w, rows, n, eps) {
    rowWise('probKl', { p, q }, rows, n);
    expectLength('probKl', 'w', w, rows);
    checkEps('probKl', eps);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      if (w[r] === 0) continue;
      let kl = 0;
      for (let j = r * n; j < (r + 1) * n; j++) {
        if (p[j] !== 0) kl += p[j] * (Math.log(Math.max(p[j], eps)) - Math.log(Math.max(q[j], eps)));
      }
      total += w[r] * kl;
    }
    return total;
  },

  probKlBackward(p, q, w, g, gq, rows, n, eps) {
    rowWise('probKlBackward', { p, q, gq }, rows, n);
    expectLength('probKlBackward', 'w', w, rows);
    checkEps('probKlBackward', eps);
    for (let r = 0; r < rows; r++) {
      const c = -g * w[r];
      for (let j = r * n; j < (r + 1) * n; j++) gq[j] = c !== 0 && q[j] >= eps ? (c * p[j]) / q[j] : 0;
    }
  },
};
