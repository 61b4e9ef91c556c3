// Reference kernel of the top-K teacher KL (kernels.ts topkKl): plain loops in float64.
import type { Kernels } from '../../tensor/kernels.js';
import { expectLength } from './nn.js';

export const topkKlKernels: Partial<Kernels> = {
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
