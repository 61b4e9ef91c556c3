// llama.cpp's K-quants (Q2_K … Q6_K): super-blocks of QK_K = 256 along the row, split into 16
// or 8 sub-blocks whose scales (and mins) are themselves quantized to 4-8 bits against fp16
// super-block scales d (and dmin). Reference quantize/dequantize reproducing ggml-quants.c's
// quantize_row_q{2..6}_K_ref and dequantize_row_q{2..6}_K bit for bit (block layouts from
// ggml-common.h; the reference quantizers are the no-importance-matrix path of llama-quantize).
//
// Exactness: every C `float` intermediate is rounded with f32 (a binary64 result rounded to
// binary32 equals the binary32 operation for + − × ÷ √), in C's evaluation order (no FMA: the
// shipped libggml-base.so has none in these functions). nearest_int is emulated on the bits, as
// C does it, so out-of-range and NaN inputs give the same (garbage) codes as llama.cpp.
import { f32, writeF16, readF16, blocksInRow, blocksInBytes, checkFinite } from './blocks.js';

export const QK_K = 256;
/** ggml-quants.c: groups with max |x| below this are all-zero. */
export const GROUP_MAX_EPS = f32(1e-15);

// nearest_int(fval): adds 1.5·2^23 in float and reads the low mantissa bits, i.e. rounds half to
// even for |fval| < 2^22 (the C assert, compiled out in release builds).
const nf = new Float32Array(1);
const ni = new Int32Array(nf.buffer);
export function nearestInt(fval: number): number {
  nf[0] = fval + 12582912;
  return (ni[0] & 0x007fffff) - 0x00400000;
}

export const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));

/** make_qkx2_quants: an asymmetric n-element group on codes 0..nmax, searching the scale over
 *  iscale = (rmin + rdelta·is + nmax)/(max − min), is = 0..nstep, with a weighted least-squares
 *  fit of (scale, min) per candidate. Writes L[lo..lo+n), returns [scale, −min]. */
function makeQkx2(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number,
  rmin: number, rdelta: number, nstep: number, useMad: boolean): [number, number] {
  let min = x[xo], max = x[xo];
  let sumW = w[0];
  let sumX = f32(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f32(sumW + w[i]);
    sumX = f32(sumX + f32(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  const err = (s: number, m: number, codes: Uint8Array, co: number): number => {
    let e = 0;
    for (let i = 0; i < n; i++) {
      let diff = f32(f32(f32(s * codes[co + i]) + m) - x[xo + i]);
      diff = useMad ? Math.abs(diff) : f32(diff * diff);
      e = f32(e + f32(w[i] * diff));
    }
    return e;
  };
  for (let i = 0; i < n; i++) L[lo + i] = clamp(nearestInt(f32(iscale * f32(x[xo + i] - min))), 0, nmax);
  let best = err(scale, min, L, lo);
  if (nstep < 1) return [scale, -min];
  const Laux = new Uint8Array(n);
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far (C reuses the variable), not the group minimum.
    iscale = f32(f32(f32(rmin + f32(rdelta * is)) + nmax) / f32(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f32(iscale * f32(x[xo + i] - min))), 0, nmax);
      Laux[i] = l;
      const wl = f32(w[i] * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * x[xo + i]));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (D > 0) {
      let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
      let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f32(sumXL / sumL2);
      }
      const cur = err(thisScale, thisMin, Laux, 0);
      if (cur < best) {
        L.set(Laux, lo);
        best = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at s[o]. */
export function scaleMinK4(j: number, s: Uint8Array, o: number): [number, number] {
  if (j < 4) return [s[o + j] & 63, s[o + j + 4] & 63];
  return [(s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4), (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4)];
}

// Q2_K: block_q2_K { u8 scales[16] (scale | min<<4); u8 qs[64]; half d; half dmin } = 84 bytes.
// Q4_K: block_q4_K { half d; half dmin; u8 scales[12]; u8 qs[128] } = 144 bytes.
// Q5_K: block_q5_K { half d; half dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] } = 176 bytes.
interface AsymSpec { name: string; sub: number; nmax: number; scaleMax: number; rmin: number; rdelta: number; nstep: number; mad: boolean; bytes: number }
const Q2 = { name: 'Q2_K', sub: 16, nmax: 3, scaleMax: 15, rmin: f32(-0.5), rdelta: f32(0.1), nstep: 15, mad: true, bytes: 84 };
const Q4 = { name: 'Q4_K', sub: 32, nmax: 15, scaleMax: 63, rmin: -1, rdelta: f32(0.1), nstep: 20, mad: false, bytes: 144 };
const Q5 = { name: 'Q5_K', sub: 32, nmax: 31, scaleMax: 63, rmin: f32(-0.5), rdelta: f32(0.1), nstep: 15, mad: false, bytes: 176 };

/** The shared quantize_row_q{2,4,5}_K_ref: per sub-block make_qkx2_quants, sub-scales and mins
 *  quantized against their maxima, then codes recomputed from the stored (rounded) values. */
function quantizeAsym(spec: AsymSpec, row: Float32Array): Uint8Array {
  const { name, sub, nmax, scaleMax, bytes } = spec;
  const nb = blocksInRow(name, QK_K, row.length);
  checkFinite(name, row);
  const out = new Uint8Array(nb * bytes);
  const nsub = QK_K / sub;
  const L = new Uint8Array(QK_K), w = new Float32Array(sub);
  const scales = new Float32Array(nsub), mins = new Float32Array(nsub);
  const ls = new Uint8Array(nsub), lm = new Uint8Array(nsub);
  for (let i = 0; i < nb; i++) {
    const x = i * QK_K, o = i * bytes;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < nsub; j++) {
      const xo = x + j * sub;
      if (sub === 32) { // q4_K / q5_K: weights av_x + |x|, av_x the sub-block's rms
        let sumX2 = 0;
        for (let l = 0; l < sub; l++) sumX2 = f32(sumX2 + f32(row[xo + l] * row[xo + l]));
        const avX = f32(Math.sqrt(f32(sumX2 / 32)));
        for (let l = 0; l < sub; l++) w[l] = f32(avX + Math.abs(row[xo + l]));
      } else { // q2_K: weights |x|, mean absolute error
        for (let l = 0; l < sub; l++) w[l] = Math.abs(row[xo + l]);
      }
      [scales[j], mins[j]] = makeQkx2(sub, nmax, row, xo, w, L, j * sub, spec.rmin, spec.rdelta, spec.nstep, spec.mad);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    let d: number, dmin: number;
    if (sub === 32) {
      const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
      const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
      for (let j = 0; j < nsub; j++) { // (uint8_t) nearest_int(...), then MIN(63, ·)
        ls[j] = Math.min(63, nearestInt(f32(invScale * scales[j])) & 0xff);
        lm[j] = Math.min(63, nearestInt(f32(invMin * mins[j])) & 0xff);
      }
      const s = o + 4; // 12 bytes: j < 4 low 6 bits of bytes j (scale), j+4 (min); j ≥ 4 split
      for (let j = 0; j < nsub; j++) {
        if (j < 4) {
          out[s + j] = ls[j];
          out[s + j + 4] = lm[j];
        } else {
          out[s + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
          out[s + j - 4] |= (ls[j] >> 4) << 6;
          out[s + j] |= (lm[j] >> 4) << 6;
        }
      }
      d = writeF16(out, o, f32(maxScale / 63));
      dmin = writeF16(out, o + 2, f32(maxMin / 63));
    } else { // q2_K: 4-bit scale and min per 16, in one byte; zero maxima skip the division
      const s = o;
      if (maxScale > 0) {
        const iscale = f32(scaleMax / maxScale);
        for (let j = 0; j < nsub; j++) ls[j] = nearestInt(f32(iscale * scales[j])) & 0xff;
        d = writeF16(out, o + 80, f32(maxScale / scaleMax));
      } else {
        ls.fill(0);
        d = writeF16(out, o + 80, 0);
      }
      for (let j = 0; j < nsub; j++) out[s + j] = ls[j];
      if (maxMin > 0) {
        const iscale = f32(scaleMax / maxMin);
        for (let j = 0; j < nsub; j++) out[s + j] |= (nearestInt(f32(iscale * mins[j])) << 4) & 0xff;
        dmin = writeF16(out, o + 82, f32(maxMin / scaleMax));
      } else {
        dmin = writeF16(out, o + 82, 0);
      }
      for (let j = 0; j < nsub; j++) { ls[j] = out[s + j] & 0xf; lm[j] = out[s + j] >> 4; }
    }
    for (let j = 0; j < nsub; j++) {
      const [sc, m] = sub === 32 ? scaleMinK4(j, out, o + 4) : [ls[j], lm[j]];
      const dj = f32(d * sc);
      if (dj === 0) continue; // C `!d`: NaN goes on. Codes stay those of make_qkx2_quants
      const dm = f32(dmin * m);
      for (let l = 0; l < sub; l++) L[j * sub + l] = clamp(nearestInt(f32(f32(row[x + j * sub + l] + dm) / dj)), 0, nmax);
    }
    if (nmax === 3) { // q2_K: qs[32h + l] holds elements 128h + l + 32k in bits 2k..2k+1
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          const e = h * 128 + l;
          out[o + 16 + h * 32 + l] = L[e] | (L[e + 32] << 2) | (L[e + 64] << 4) | (L[e + 96] << 6);
        }
      }
    } else { // q4_K/q5_K: qs[32c + l] = elements 64c + l (low nibble), 64c + l + 32 (high);
      // q5_K: bit 2c of qh[l] is the 5th bit of element 64c + l, bit 2c+1 that of 64c + l + 32
      const qs = o + (nmax === 31 ? 48 : 16), qh = o + 16;
      for (let c = 0; c < 4; c++) {
        for (let l = 0; l < 32; l++) {
          const a = L[64 * c + l], b = L[64 * c + l + 32];
          out[qs + 32 * c + l] = (a & 0xf) | ((b & 0xf) << 4);
          if (nmax === 31) out[qh + l] |= ((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1));
        }
      }
    }
  }
  return out;
}

function dequantizeAsym(spec: AsymSpec, bytes: Uint8Array): Float32Array {
  const { name, sub, bytes: bb } = spec;
  const nb = blocksInBytes(name, bb, bytes.length);
  const y = new Float32Array(nb * QK_K);
  for (let i = 0; i < nb; i++) {
    const o = i * bb, yo = i * QK_K;
    if (sub === 16) {
      const d = readF16(bytes, o + 80), min = readF16(bytes, o + 82);
      for (let e = 0; e < QK_K; e++) {
        const sc = bytes[o + (e >> 4)];
        const dl = f32(d * (sc & 0xf)), ml = f32(min * (sc >> 4));
        const q = (bytes[o + 16 + (e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        y[yo + e] = f32(f32(dl * q) - ml);
      }
      continue;
    }
    const d = readF16(bytes, o), min = readF16(bytes, o + 2);
    const five = spec.nmax === 31;
    const qs = o + (five ? 48 : 16);
    for (let j = 0; j < 8; j++) { // sub-block j: chunk c = j >> 1, low (j even) or high nibble
      const [sc, m] = scaleMinK4(j, bytes, o + 4);
      const dj = f32(d * sc), mj = f32(min * m);
      const c = j >> 1, shift = (j & 1) * 4;
      for (let l = 0; l < 32; l++) {
        let q = (bytes[qs + 32 * c + l] >> shift) & 0xf;
        if (five && bytes[o + 16 + l] & (1 << j)) q += 16;
        y[yo + 32 * j + l] = f32(f32(dj * q) - mj);
      }
    }
  }
  return y;
}

export const quantizeQ2_K = (row: Float32Array): Uint8Array => quantizeAsym(Q2, row);
export const dequantizeQ2_K = (b: Uint8Array): Float32Array => dequantizeAsym(Q2, b);
export const quantizeQ4_K = (row: Float32Array): Uint8Array => quantizeAsym(Q4, row);
export const dequantizeQ4_K = (b: Uint8Array): Float32Array => dequantizeAsym(Q4, b);
export const quantizeQ5_K = (row: Float32Array): Uint8Array => quantizeAsym(Q5, row);
export const dequantizeQ5_K = (b: Uint8Array): Float32Array => dequantizeAsym(Q5, b);
