// The symmetric K-quants, Q3_K and Q6_K (no mins; signed sub-block scales against one fp16 d),
// reproducing ggml-quants.c's quantize_row_q{3,6}_K_ref and dequantize_row_q{3,6}_K bit for bit.
// Conventions (f32 rounding, nearest_int) as in kquants.ts.
import { f32, writeF16, readF16, blocksInRow, blocksInBytes, checkFinite } from './blocks.js';
import { QK_K, GROUP_MAX_EPS, nearestInt, clamp } from './kquants.js';

/** make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): a symmetric group on codes
 *  −nmax..nmax−1 (stored + nmax), weights x², scale searched over −(nmax + 0.1·is)/max. */
function makeQx(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) { amax = ax; max = x[xo + i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const sums = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clamp(nearestInt(f32(iscale * v)), -nmax, nmax - 1);
      if (store) L[lo + i] = l + nmax;
      const w = f32(v * v);
      sumlx = f32(sumlx + f32(f32(w * v) * l));
      suml2 = f32(suml2 + f32(f32(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = sums(f32(-nmax / max), true);
  let scale = suml2 !== 0 ? f32(sumlx / suml2) : 0; // C truthiness: NaN is true
  let best = f32(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f32(-f32(nmax + f32(f32(0.1) * is)) / max);
    [sumlx, suml2] = sums(iscale, false);
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      sums(iscale, true);
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants(n, nmax, x, L, do_rmse = true): symmetric, codes −nmax..nmax−1, then up to 5
 *  rounds of per-element coordinate descent on the x²-weighted error. L stored + nmax. */
function makeQ3(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) { amax = ax; max = x[xo + i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f32(-nmax / max);
  const Ls = new Int32Array(n);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(f32(iscale * v)), -nmax, nmax - 1);
    Ls[i] = l;
    const w = f32(v * v);
    sumlx = f32(sumlx + f32(f32(w * v) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = f32(v * v);
      let slx = f32(sumlx - f32(f32(w * v) * Ls[i]));
      if (slx > 0) {
        let sl2 = f32(suml2 - f32(f32(w * Ls[i]) * Ls[i]));
        const nl = clamp(nearestInt(f32(f32(v * sl2) / slx)), -nmax, nmax - 1);
        if (nl !== Ls[i]) {
          slx = f32(slx + f32(f32(w * v) * nl));
          sl2 = f32(sl2 + f32(f32(w * nl) * nl));
          if (sl2 > 0 && f32(f32(slx * slx) * suml2) > f32(f32(sumlx * sumlx) * sl2)) {
            Ls[i] = nl; sumlx = slx; suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = Ls[i] + nmax;
  return suml2 > 0 ? f32(sumlx / suml2) : 0;
}

// Q3_K: block_q3_K { u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d } = 110 bytes. 16 signed
// 6-bit sub-scales (stored + 32): low nibbles in scales[0..7] (j < 8 low, j ≥ 8 high nibble of
// byte j−8), top 2 bits in bits 2(j/4) of scales[8 + j%4]. Codes −4..3 (+4): 2 low bits packed
// as in Q2_K, the third in bit e/32 of hmask[e % 32].
export function q3Scale(s: Uint8Array, o: number, j: number): number {
  const low = j < 8 ? s[o + j] & 0xf : s[o + j - 8] >> 4;
  return (low | (((s[o + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

export function quantizeQ3_K(row: Float32Array): Uint8Array {
  const nb = blocksInRow('Q3_K', QK_K, row.length);
  checkFinite('Q3_K', row);
  const out = new Uint8Array(nb * 110);
  const L = new Uint8Array(QK_K), scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const x = i * QK_K, o = i * 110, so = o + 96;
    let maxScale = 0, amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3(16, 4, row, x + 16 * j, L, 16 * j);
      const a = Math.abs(scales[j]);
      if (a > amax) { amax = a; maxScale = scales[j]; }
    }
    let d: number;
    if (maxScale !== 0) {
      const iscale = f32(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = clamp((nearestInt(f32(iscale * scales[j])) << 24) >> 24, -32, 31) + 32; // int8_t
        if (j < 8) out[so + j] = l & 0xf;
        else out[so + j - 8] |= (l & 0xf) << 4;
        out[so + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
      }
      d = writeF16(out, o + 108, f32(1 / iscale));
    } else {
      d = writeF16(out, o + 108, 0);
    }
    for (let j = 0; j < 16; j++) {
      const dj = f32(d * q3Scale(out, so, j));
      if (dj === 0) continue; // C `!d` (a NaN d goes on)
      for (let l = 0; l < 16; l++) L[16 * j + l] = clamp(nearestInt(f32(row[x + 16 * j + l] / dj)), -4, 3) + 4;
    }
    for (let e = 0; e < QK_K; e++) {
      if (L[e] > 3) {
        out[o + (e % 32)] |= 1 << (e >> 5);
        L[e] -= 4;
      }
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = h * 128 + l;
        out[o + 32 + h * 32 + l] = L[e] | (L[e + 32] << 2) | (L[e + 64] << 4) | (L[e + 96] << 6);
      }
    }
  }
  return out;
}

export function dequantizeQ3_K(bytes: Uint8Array): Float32Array {
  const nb = blocksInBytes('Q3_K', 110, bytes.length);
  const y = new Float32Array(nb * QK_K);
  for (let i = 0; i < nb; i++) {
    const o = i * 110;
    const d = readF16(bytes, o + 108);
    for (let e = 0; e < QK_K; e++) {
      const dl = f32(d * q3Scale(bytes, o + 96, e >> 4));
      const q = (bytes[o + 32 + (e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
      const hi = bytes[o + (e & 31)] & (1 << (e >> 5)) ? 0 : 4;
      y[i * QK_K + e] = f32(dl * (q - hi));
    }
  }
  return y;
}

// Q6_K: block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; half d } = 210 bytes. Codes −32..31
// (+32): per 128-element half h, ql[64h + l] holds elements l (low nibble) and l + 64 (high),
// ql[64h + 32 + l] elements l + 32 and l + 96; qh[32h + l] their top 2 bits in bits 0-1 … 6-7.
export function quantizeQ6_K(row: Float32Array): Uint8Array {
  const nb = blocksInRow('Q6_K', QK_K, row.length);
  checkFinite('Q6_K', row);
  const out = new Uint8Array(nb * 210);
  const L = new Uint8Array(QK_K), scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const x = i * QK_K, o = i * 210;
    let maxScale = 0, maxAbs = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQx(16, 32, row, x + 16 * j, L, 16 * j);
      const a = Math.abs(scales[j]);
      if (a > maxAbs) { maxAbs = a; maxScale = scales[j]; }
    }
    if (maxAbs < GROUP_MAX_EPS) continue; // all-zero block, d = +0
    const iscale = f32(-128 / maxScale);
    const d = writeF16(out, o + 208, f32(1 / iscale));
    for (let j = 0; j < 16; j++) out[o + 192 + j] = Math.min(127, nearestInt(f32(iscale * scales[j]))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const dj = f32(d * ((out[o + 192 + j] << 24) >> 24));
      if (dj === 0) continue; // C `!d` (a NaN d goes on)
      for (let l = 0; l < 16; l++) L[16 * j + l] = clamp(nearestInt(f32(row[x + 16 * j + l] / dj)), -32, 31) + 32;
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = h * 128 + l;
        out[o + 64 * h + l] = (L[e] & 0xf) | ((L[e + 64] & 0xf) << 4);
        out[o + 64 * h + 32 + l] = (L[e + 32] & 0xf) | ((L[e + 96] & 0xf) << 4);
        out[o + 128 + 32 * h + l] = (L[e] >> 4) | ((L[e + 32] >> 4) << 2) | ((L[e + 64] >> 4) << 4) | ((L[e + 96] >> 4) << 6);
      }
    }
  }
  return out;
}

export function dequantizeQ6_K(bytes: Uint8Array): Float32Array {
  const nb = blocksInBytes('Q6_K', 210, bytes.length);
  const y = new Float32Array(nb * QK_K);
  for (let i = 0; i < nb; i++) {
    const o = i * 210;
    const d = readF16(bytes, o + 208);
    for (let e = 0; e < QK_K; e++) {
      const h = e >> 7, k = (e >> 5) & 3, l = e & 31; // element 128h + 32k + l
      const lo = (bytes[o + 64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xf;
      const q = (lo | (((bytes[o + 128 + 32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
      const sc = (bytes[o + 192 + (e >> 4)] << 24) >> 24;
      y[i * QK_K + e] = f32(f32(d * sc) * q);
    }
  }
  return y;
}
