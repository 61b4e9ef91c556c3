// Reference kernels of the top-K teacher KL (kernels.ts topkLogits, topkKl): plain loops in
// float64.
import type { Kernels } from '../../tensor/kernels.js';
import { expectLength } from './nn.js';

/** a ranks before b in topkLogits' order: larger first, NaN above everything, ties (NaNs
 *  among themselves) by lower id. A strict total order, so any selection gives the same ids. */
function before(z: Float32Array, o: number, a: number, b: number): boolean {
  const x = z[o + a], y = z[o + b];
  if (x !== x) return y !== y ? a < b : true;
  return x > y || (x === y && a < b);
}

/** The ids of the K largest z[o + ·] first in `order` (quickselect over `before`). */
function partialTop(z: Float32Array, o: number, order: Int32Array, K: number): void {
  let lo = 0, hi = order.length - 1;
  while (lo < hi) {
    const pivot = order[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (before(z, o, order[i], pivot)) i++;
      while (before(z, o, pivot, order[j])) j--;
      if (i <= j) {
        const t = order[i]; order[i] = order[j]; order[j] = t;
        i++; j--;
      }
    }
    if (K - 1 <= j) hi = j;
    else if (K - 1 >= i) lo = i;
    else break;
  }
}

export const topkKlKernels: Partial<Kernels> = {
  topkLogits(z, ids, vals, lse, logTail, rows, V, K, tau) {
    const fn = 'topkLogits';
    if (!(Number.isInteger(K) && K >= 1 && K <= V)) throw new RangeError(`${fn}: K must be an integer from 1 to V = ${V}, got ${K}`);
    if (!(tau > 0 && Number.isFinite(tau))) throw new RangeError(`${fn}: temperature must be a positive number, got ${tau}`);
    expectLength(fn, 'z', z, rows * V);
    expectLength(fn, 'ids', ids, rows * K);
    expectLength(fn, 'vals', vals, rows * K);
    expectLength(fn, 'lse', lse, rows);
    expectLength(fn, 'logTail', logTail, rows);
    const order = new Int32Array(V), inTop = new Uint8Array(V);
    for (let r = 0; r < rows; r++) {
      const o = r * V;
      for (let j = 0; j < V; j++) order[j] = j;
      if (K < V) partialTop(z, o, order, K);
      const top = order.subarray(0, K).sort((a, b) => (before(z, o, a, b) ? -1 : 1));
      for (let i = 0; i < K; i++) {
        ids[r * K + i] = top[i];
        vals[r * K + i] = z[o + top[i]];
      }
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, z[o + j] / tau);  // NaN if any is NaN
      if (!(m > -Infinity && m < Infinity)) {  // NaN, +Infinity or all −Infinity: no distribution
        lse[r] = logTail[r] = NaN;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(z[o + j] / tau - m);
      lse[r] = m + Math.log(sum);
      // The tail's mass summed directly (not 1 − Σ top, which cancels when the teacher is sure).
      let tail = 0;
      if (K < V) {
        for (let i = 0; i < K; i++) inTop[top[i]] = 1;
        for (let j = 0; j < V; j++) if (!inTop[j]) tail += Math.exp(z[o + j] / tau - m);
        for (let i = 0; i < K; i++) inTop[top[i]] = 0;
      }
      logTail[r] = tail > 0 ? Math.log(tail) - Math.log(sum) : -Infinity;
    }
  },

  topkKl(s, ids, tz, tlse, ttail, loss, gloss, gs, rows, V, K, tau) {
    const fn = 'topkKl';
    if (!(tau > 0 && Number.isFinite(tau))) throw new RangeError(`${fn}: tau must be a positive finite number, got ${tau}`);
    expectLength(fn, 's', s, rows * V);
    expectLength(fn, 'ids', ids, rows * K);
    expectLength(fn, 'tz', tz, rows * K);
    expectLength(fn, 'tlse', tlse, rows);
    expectLength(fn, 'ttail', ttail, rows);
    expectLength(fn, 'loss', loss, rows);
    if (gs) {
      expectLength(fn, 'gs', gs, rows * V);
      expectLength(fn, 'gloss', gloss ?? new Float32Array(0), rows);
    }
    const inTop = new Uint8Array(V);
    for (let r = 0; r < rows; r++) {
      const o = r * V, ok = r * K;
      for (let i = 0; i < K; i++) {
        const id = ids[ok + i];
        if (!(id >= 0 && id < V)) throw new RangeError(`${fn}: row ${r}: token id ${id} outside [0, ${V})`);
        inTop[id] = 1;
      }
      // Student: lse over the row and over the tail (ids excluded), in float64.
      let m = -Infinity, mt = -Infinity;
      for (let j = 0; j < V; j++) {
        const v = s[o + j] / tau;
        m = Math.max(m, v);
        if (!inTop[j]) mt = Math.max(mt, v);
      }
      let sum = 0, tail = 0;
      for (let j = 0; j < V; j++) {
        const v = s[o + j] / tau;
        sum += Math.exp(v - m);
        if (!inTop[j]) tail += Math.exp(v - mt);
      }
      const lse = m + Math.log(sum);
      const logQ = mt === -Infinity ? -Infinity : mt + Math.log(tail) - lse;
      const logR = ttail[r];
      let kl = 0;
      for (let i = 0; i < K; i++) {
        const lp = tz[ok + i] / tau - tlse[r];
        if (lp === -Infinity) continue;
        kl += Math.exp(lp) * (lp - (s[o + ids[ok + i]] / tau - lse));
      }
      if (logR !== -Infinity) kl += Math.exp(logR) * (logR - logQ);
      loss[r] = kl;
      if (gs) {
        const c = gloss![r] / tau;
        // Tail: q_j − R·q_j/Q = q_j·(1 − R/Q).
        const tailFactor = logR === -Infinity ? 1 : 1 - Math.exp(logR - logQ);
        for (let j = 0; j < V; j++) gs[o + j] = c * Math.exp(s[o + j] / tau - lse) * (inTop[j] ? 1 : tailFactor);
        for (let i = 0; i < K; i++) {
          const j = ids[ok + i];
          gs[o + j] = c * (Math.exp(s[o + j] / tau - lse) - Math.exp(tz[ok + i] / tau - tlse[r]));
        }
      }
      for (let i = 0; i < K; i++) inTop[ids[ok + i]] = 0;
    }
  },
};
