// The K-quants' blocks as per-element codes and per-sub-block scales (and mins): the deployable
// form of a K-quant weight (rules.ts Codes), from which dequantize_row_q*_K's arithmetic is one
// step per element:
//   Q2_K, Q4_K, Q5_K:  ŵ = float(float(code·scale) − min),  code ∈ 0..3 / 0..15 / 0..31
//   Q3_K, Q6_K:        ŵ = float((code − offset)·scale),    offset 4 / 32, code ∈ 0..7 / 0..63
// with scale = float(fp16(d)·sc) and min = float(fp16(dmin)·m) of the sub-block (16 elements for
// Q2_K/Q3_K/Q6_K, 32 for Q4_K/Q5_K). Bit-identical to dequantize_row_q*_K (tested).
import { f32, readF16, blocksInBytes } from './blocks.js';
import { QK_K, scaleMinK4 } from './kquants.js';
import { q3Scale } from './kquants_sym.js';
import { FORMATS } from './formats.js';

export type KFormatName = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/** Per K-quant: bytes per block, sub-block size, code offset (symmetric ones), has mins. */
export const K_LAYOUT = Object.fromEntries((['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const).map((k) => {
  const f = FORMATS[k]; // the format table
  return [k, { bytes: f.bytes as number, sub: f.grid.sub as number, offset: f.grid.offset as number, mins: f.grid.mins as boolean }];
})) as Record<KFormatName, { bytes: number; sub: number; offset: number; mins: boolean }>;

export interface KUnpacked { codes: Uint8Array; scales: Float32Array; mins: Float32Array | null }

/** Blocks of a K-quant → codes (one per element), scales and mins (one per sub-block). */
export function unpackK(name: KFormatName, bytes: Uint8Array): KUnpacked {
  const L = K_LAYOUT[name];
  const nb = blocksInBytes(name, L.bytes, bytes.length);
  const nsub = QK_K / L.sub;
  const codes = new Uint8Array(nb * QK_K), scales = new Float32Array(nb * nsub);
  const mins = L.mins ? new Float32Array(nb * nsub) : null;
  for (let i = 0; i < nb; i++) {
    const o = i * L.bytes, c = i * QK_K, s = i * nsub;
    if (name === 'Q4_K' || name === 'Q5_K') {
      const d = readF16(bytes, o), dmin = readF16(bytes, o + 2), qs = o + (name === 'Q5_K' ? 48 : 16);
      for (let j = 0; j < 8; j++) {
        const [sc, m] = scaleMinK4(j, bytes, o + 4);
        scales[s + j] = f32(d * sc);
        mins![s + j] = f32(dmin * m);
        for (let l = 0; l < 32; l++) {
          let q = (bytes[qs + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 0xf;
          if (name === 'Q5_K' && bytes[o + 16 + l] & (1 << j)) q += 16;
          codes[c + 32 * j + l] = q;
        }
      }
    } else if (name === 'Q2_K') {
      const d = readF16(bytes, o + 80), dmin = readF16(bytes, o + 82);
      for (let j = 0; j < 16; j++) {
        scales[s + j] = f32(d * (bytes[o + j] & 0xf));
        mins![s + j] = f32(dmin * (bytes[o + j] >> 4));
      }
      for (let e = 0; e < QK_K; e++) codes[c + e] = (bytes[o + 16 + (e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
    } else if (name === 'Q3_K') {
      const d = readF16(bytes, o + 108);
      for (let j = 0; j < 16; j++) scales[s + j] = f32(d * q3Scale(bytes, o + 96, j));
      for (let e = 0; e < QK_K; e++) {
        const q = (bytes[o + 32 + (e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        codes[c + e] = q + (bytes[o + (e & 31)] & (1 << (e >> 5)) ? 4 : 0);
      }
    } else {
      const d = readF16(bytes, o + 208);
      for (let j = 0; j < 16; j++) scales[s + j] = f32(d * ((bytes[o + 192 + j] << 24) >> 24));
      for (let e = 0; e < QK_K; e++) {
        const h = e >> 7, k = (e >> 5) & 3, l = e & 31;
        const lo = (bytes[o + 64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xf;
        codes[c + e] = lo | (((bytes[o + 128 + 32 * h + l] >> (2 * k)) & 3) << 4);
      }
    }
  }
  return { codes, scales, mins };
}

/** ŵ from unpackK's form (the formulas at the top). */
export function dequantizeUnpackedK(name: KFormatName, u: KUnpacked): Float32Array {
  const { sub, offset } = K_LAYOUT[name];
  const y = new Float32Array(u.codes.length);
  for (let i = 0; i < y.length; i++) {
    const k = Math.floor(i / sub);
    y[i] = u.mins ? f32(f32(u.codes[i] * u.scales[k]) - u.mins[k]) : f32((u.codes[i] - offset) * u.scales[k]);
  }
  return y;
}
