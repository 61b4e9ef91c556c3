// llama.cpp block quantization formats as data, one entry per format (BlockFormat: ggml type id,
// file type, block and sub-block layout, grid, scale encoding, the QAT rule and native kernel that
// reproduce it, how ONNX holds it), and reference quantize/dequantize that reproduce ggml-quants.c bit for bit
// (quantize_row_{q4_0,q8_0,tq2_0,q2_K..q6_K}_ref and dequantize_row_*; struct layouts from
// ggml-common.h). The K-quants' math is in kquants.ts / kquants_sym.ts.
// These are the references QAT fake-quantization and GGUF export are tested against
// (STYLE.md 4 and 6: fake(w) === dequant(quant(w))). METHODS.md §2 gives the rules.
import { f32, roundAway, writeF16, readF16, blocksInRow, blocksInBytes, checkFinite } from './blocks.js';
import { QK_K, quantizeQ2_K, dequantizeQ2_K, quantizeQ4_K, dequantizeQ4_K, quantizeQ5_K, dequantizeQ5_K } from './kquants.js';
import { quantizeQ3_K, dequantizeQ3_K, quantizeQ6_K, dequantizeQ6_K } from './kquants_sym.js';
import { QuantRule } from '../tensor/kernels.js';

export interface BlockFormat {
  readonly name: string;
  /** enum ggml_type id, as written in GGUF tensor infos. */
  readonly ggmlType: number;
  /** general.file_type (llama.h LLAMA_FTYPE_MOSTLY_*) of a file whose projections have this type
   *  (Q3_K/Q4_K/Q5_K: llama-quantize's default recipe for it, _M). */
  readonly fileType: number;
  /** Elements per block (along the contiguous input dimension); the K-quants' super-block. */
  readonly block: number;
  /** Bytes per block, sizeof(block_*). */
  readonly bytes: number;
  /** The grid: elements per scale (the block, or a K-quant's sub-block), the stored code range
   *  [lo, hi] and ŵ = (code − offset)·scale, or with `mins` ŵ = float(float(code·scale) − min). */
  readonly grid: { readonly sub: number; readonly codes: readonly [number, number]; readonly offset: number; readonly mins: boolean };
  /** How scales (and mins) are stored: an fp16 d per block; K-quants: per sub-block an integer
   *  scale of `sub.bits` bits (signed or not) times d, and a `minBits` min times an fp16 dmin. */
  readonly scales: { readonly d: 'f16'; readonly sub?: { readonly bits: number; readonly signed: boolean }; readonly minBits?: number };
  /** kdqat's QAT rule (rules.ts) whose fake quantizer lands exactly on this grid, and the native
   *  kernel that computes it: `fakeQuant` (one pass is the fixed point) or `fakeQuantGrid`
   *  (gridQuantRef below), under QuantRule id `ruleId` (src/tensor/kernels.ts; native/quant.cc
   *  enum Rule and native/kquant.cc kRuleQ2_K: test/quant/format-table.test.ts checks them). */
  readonly rule: string;
  readonly kernel: { readonly name: 'fakeQuant' | 'fakeQuantGrid'; readonly ruleId: number };
  /** How an ONNX graph holds the dequantized weights exactly (for the ONNX exporter), or null if
   *  it cannot. Blocks run along the input dimension; scales are the stored fp16 d (or the
   *  K-quants' float(d·sc)) widened to float32, so that the one rounding of (q − zeroPoint)·scale
   *  is the one of dequantize_row_*; `subtractMin`: then Sub a float32 min per block
   *  (ŵ = float(float(q·scale) − min), the K-quants with mins). */
  readonly onnx: OnnxHolding | null;
  /** Float32 row (length a multiple of `block`) → the exact ggml byte layout. */
  quantizeRef(row: Float32Array): Uint8Array;
  /** ggml bytes (a whole number of blocks) → Float32 row. */
  dequantizeRef(bytes: Uint8Array): Float32Array;
}

/** See BlockFormat.onnx. MatMulNBits: com.microsoft contrib op (bits-wide codes, per-block scale
 *  and integer zero point); DequantizeLinear: ONNX opset 21 blocked quantization (axis 1). */
export type OnnxHolding =
  | { readonly op: 'MatMulNBits'; readonly bits: 2 | 4 | 8; readonly blockSize: number; readonly zeroPoint: number; readonly scale: 'f32' }
  | { readonly op: 'DequantizeLinear'; readonly dtype: 'int4' | 'uint4' | 'int8' | 'uint8'; readonly blockSize: number;
      readonly zeroPoint: number; readonly scale: 'f32'; readonly subtractMin?: true };

// block_q4_0 { ggml_half d; uint8_t qs[16]; }: byte j holds q[j] (low nibble) and q[j+16] (high).
function quantizeQ4_0(row: Float32Array): Uint8Array {
  const nb = blocksInRow('Q4_0', 32, row.length);
  checkFinite('Q4_0', row);
  const out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    const x = i * 32;
    // The signed element of largest magnitude (first one wins ties, as `amax < fabsf(v)`), so
    // that it lands exactly on q = 0, i.e. −8·d: the grid is asymmetric, [−8, 7]·d.
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = row[x + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -8); // an all-zero block gives −0 (stored as 0x8000), as in C
    const id = d ? f32(1 / d) : 0;
    const o = i * 18;
    writeF16(out, o, d);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x0 + 8.5f) truncates toward zero: round-half-up of x/d + 8 in float arithmetic.
      const q0 = Math.min(15, Math.trunc(f32(f32(row[x + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(f32(f32(row[x + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const nb = blocksInBytes('Q4_0', 18, bytes.length);
  const y = new Float32Array(nb * 32);
  for (let i = 0; i < nb; i++) {
    const o = i * 18;
    const d = readF16(bytes, o);
    for (let j = 0; j < 16; j++) {
      const b = bytes[o + 2 + j];
      y[i * 32 + j] = ((b & 0x0f) - 8) * d;
      y[i * 32 + 16 + j] = ((b >>> 4) - 8) * d;
    }
  }
  return y;
}

// block_q8_0 { ggml_half d; int8_t qs[32]; }
function quantizeQ8_0(row: Float32Array): Uint8Array {
  const nb = blocksInRow('Q8_0', 32, row.length);
  checkFinite('Q8_0', row);
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    const x = i * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(row[x + j]));
    const d = f32(amax / 127);
    const id = d ? f32(1 / d) : 0;
    const o = i * 34;
    writeF16(out, o, d);
    // roundf(x·id): halves away from zero; |x·id| ≤ 127 so no clamp is needed (nor done in C).
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundAway(f32(row[x + j] * id)) & 0xff;
  }
  return out;
}

function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const nb = blocksInBytes('Q8_0', 34, bytes.length);
  const y = new Float32Array(nb * 32);
  for (let i = 0; i < nb; i++) {
    const o = i * 34;
    const d = readF16(bytes, o);
    for (let j = 0; j < 32; j++) y[i * 32 + j] = ((bytes[o + 2 + j] << 24) >> 24) * d; // int8
  }
  return y;
}

// block_tq2_0 { uint8_t qs[64]; ggml_half d; } — the scale comes last. Each 32-byte half of qs
// covers 128 elements: byte m holds elements m, m+32, m+64, m+96 of that half in bits
// 0-1, 2-3, 4-5, 6-7, each as q = round(x/d) + 1 ∈ {0, 1, 2}.
function quantizeTQ2_0(row: Float32Array): Uint8Array {
  const nb = blocksInRow('TQ2_0', 256, row.length);
  checkFinite('TQ2_0', row);
  const out = new Uint8Array(nb * 66);
  for (let i = 0; i < nb; i++) {
    const x = i * 256;
    let amax = 0;
    for (let j = 0; j < 256; j++) amax = Math.max(amax, Math.abs(row[x + j]));
    const d = f32(amax);
    const id = d ? f32(1 / d) : 0;
    const o = i * 66;
    writeF16(out, o + 64, d);
    for (let h = 0; h < 2; h++) {
      for (let m = 0; m < 32; m++) {
        let q = 0;
        for (let n = 0; n < 4; n++) {
          const xi = roundAway(f32(row[x + h * 128 + m + n * 32] * id)) + 1; // lroundf
          q += (xi & 3) << (2 * n);
        }
        out[o + h * 32 + m] = q;
      }
    }
  }
  return out;
}

function dequantizeTQ2_0(bytes: Uint8Array): Float32Array {
  const nb = blocksInBytes('TQ2_0', 66, bytes.length);
  const y = new Float32Array(nb * 256);
  for (let i = 0; i < nb; i++) {
    const o = i * 66;
    const d = readF16(bytes, o + 64);
    for (let h = 0; h < 2; h++) {
      for (let n = 0; n < 4; n++) {
        for (let m = 0; m < 32; m++) {
          y[i * 256 + h * 128 + n * 32 + m] = (((bytes[o + h * 32 + m] >>> (2 * n)) & 3) - 1) * d;
        }
      }
    }
  }
  return y;
}

// The table: one entry per format (adding one = an entry here, its kernel, its vectors).
const f16 = { d: 'f16' } as const;
export const Q4_0 = {
  name: 'Q4_0', ggmlType: 2, fileType: 2, block: 32, bytes: 2 + 32 / 2,
  grid: { sub: 32, codes: [0, 15], offset: 8, mins: false }, scales: f16,
  rule: 'q4_0', kernel: { name: 'fakeQuant', ruleId: QuantRule.q4_0 },
  onnx: { op: 'MatMulNBits', bits: 4, blockSize: 32, zeroPoint: 8, scale: 'f32' },
  quantizeRef: quantizeQ4_0, dequantizeRef: dequantizeQ4_0,
} as const satisfies BlockFormat;
export const Q8_0 = {
  name: 'Q8_0', ggmlType: 8, fileType: 7, block: 32, bytes: 2 + 32,
  grid: { sub: 32, codes: [-128, 127], offset: 0, mins: false }, scales: f16,
  rule: 'q8_0', kernel: { name: 'fakeQuant', ruleId: QuantRule.q8_0 },
  onnx: { op: 'DequantizeLinear', dtype: 'int8', blockSize: 32, zeroPoint: 0, scale: 'f32' },
  quantizeRef: quantizeQ8_0, dequantizeRef: dequantizeQ8_0,
} as const satisfies BlockFormat;
export const TQ2_0 = {
  name: 'TQ2_0', ggmlType: 35, fileType: 37, block: 256, bytes: 256 / 4 + 2,
  grid: { sub: 256, codes: [0, 2], offset: 1, mins: false }, scales: f16,
  rule: 'tq2_0', kernel: { name: 'fakeQuant', ruleId: QuantRule.tq2_0 },
  onnx: { op: 'DequantizeLinear', dtype: 'uint4', blockSize: 256, zeroPoint: 1, scale: 'f32' },
  quantizeRef: quantizeTQ2_0, dequantizeRef: dequantizeTQ2_0,
} as const satisfies BlockFormat;

// K-quants (ggml type ids 10-14): super-blocks of QK_K = 256 with quantized sub-block scales.
export const Q2_K = {
  name: 'Q2_K', ggmlType: 10, fileType: 10, block: QK_K, bytes: 16 + 64 + 4,
  grid: { sub: 16, codes: [0, 3], offset: 0, mins: true }, scales: { d: 'f16', sub: { bits: 4, signed: false }, minBits: 4 },
  rule: 'q2_k', kernel: { name: 'fakeQuantGrid', ruleId: QuantRule.q2_k },
  onnx: { op: 'DequantizeLinear', dtype: 'uint4', blockSize: 16, zeroPoint: 0, scale: 'f32', subtractMin: true },
  quantizeRef: quantizeQ2_K, dequantizeRef: dequantizeQ2_K,
} as const satisfies BlockFormat;
export const Q3_K = {
  name: 'Q3_K', ggmlType: 11, fileType: 12, block: QK_K, bytes: 32 + 64 + 12 + 2,
  grid: { sub: 16, codes: [0, 7], offset: 4, mins: false }, scales: { d: 'f16', sub: { bits: 6, signed: true } },
  rule: 'q3_k', kernel: { name: 'fakeQuantGrid', ruleId: QuantRule.q3_k },
  onnx: { op: 'DequantizeLinear', dtype: 'uint4', blockSize: 16, zeroPoint: 4, scale: 'f32' },
  quantizeRef: quantizeQ3_K, dequantizeRef: dequantizeQ3_K,
} as const satisfies BlockFormat;
export const Q4_K = {
  name: 'Q4_K', ggmlType: 12, fileType: 15, block: QK_K, bytes: 4 + 12 + 128,
  grid: { sub: 32, codes: [0, 15], offset: 0, mins: true }, scales: { d: 'f16', sub: { bits: 6, signed: false }, minBits: 6 },
  rule: 'q4_k', kernel: { name: 'fakeQuantGrid', ruleId: QuantRule.q4_k },
  onnx: { op: 'DequantizeLinear', dtype: 'uint4', blockSize: 32, zeroPoint: 0, scale: 'f32', subtractMin: true },
  quantizeRef: quantizeQ4_K, dequantizeRef: dequantizeQ4_K,
} as const satisfies BlockFormat;
export const Q5_K = {
  name: 'Q5_K', ggmlType: 13, fileType: 17, block: QK_K, bytes: 4 + 12 + 32 + 128,
  grid: { sub: 32, codes: [0, 31], offset: 0, mins: true }, scales: { d: 'f16', sub: { bits: 6, signed: false }, minBits: 6 },
  rule: 'q5_k', kernel: { name: 'fakeQuantGrid', ruleId: QuantRule.q5_k },
  onnx: { op: 'DequantizeLinear', dtype: 'uint8', blockSize: 32, zeroPoint: 0, scale: 'f32', subtractMin: true },
  quantizeRef: quantizeQ5_K, dequantizeRef: dequantizeQ5_K,
} as const satisfies BlockFormat;
export const Q6_K = {
  name: 'Q6_K', ggmlType: 14, fileType: 18, block: QK_K, bytes: 128 + 64 + 16 + 2,
  grid: { sub: 16, codes: [0, 63], offset: 32, mins: false }, scales: { d: 'f16', sub: { bits: 8, signed: true } },
  rule: 'q6_k', kernel: { name: 'fakeQuantGrid', ruleId: QuantRule.q6_k },
  onnx: { op: 'DequantizeLinear', dtype: 'uint8', blockSize: 16, zeroPoint: 32, scale: 'f32' },
  quantizeRef: quantizeQ6_K, dequantizeRef: dequantizeQ6_K,
} as const satisfies BlockFormat;

/** Every block format, by name. */
export const FORMATS = { Q4_0, Q8_0, TQ2_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K } as const;
export type FormatName = keyof typeof FORMATS;
/** The formats in table order. */
export const FORMAT_LIST: readonly BlockFormat[] = Object.values(FORMATS);

/** The format whose grid a QAT rule kind ('q4_0', 'q4_k', …) is, or undefined (sym, asym, twn). */
export function formatOfRule(kind: string): (typeof FORMATS)[FormatName] | undefined {
  return Object.values(FORMATS).find((f) => f.rule === kind);
}

/** Fake quantization by the export path itself: dequantize(quantize(row)). */
export function fakeQuantRef(format: BlockFormat, row: Float32Array): Float32Array {
  return format.dequantizeRef(format.quantizeRef(row));
}

/** gridQuantRef's budget: passes per settling round, and rounds. */
export const GRID_PASSES = 8;
export const GRID_ROUNDS = 6;

const sameValues = (a: Float32Array, b: Float32Array): boolean => a.every((v, i) => v === b[i]); // −0 = +0

/**
 * QAT's fake quantization on a format's exact grid: per block, dequantize∘quantize repeated
 * until the block is a fixed point, so that quantizeRef of the result dequantizes back to it
 * (−0 and +0 alike, as export's lossless check counts them): a student holding it exports
 * losslessly. Every value is an output of llama.cpp's own dequantizer, so the quantized 6-bit
 * sub-block scales and mins and the fp16 d/dmin are part of the grid.
 *
 * Q4_0/Q8_0/TQ2_0 blocks are fixed points after one pass (= fakeQuantRef). The K-quants search
 * their scales, and a dequantized block's sub-block scales are not always found again: most
 * blocks settle in 1-3 passes, but a few (mostly sparse ones: a sub-block with one or two
 * non-zero values, where several scales fit equally well and float rounding picks one) oscillate.
 * Then the values that keep changing are set to 0 and the block is settled again (up to
 * GRID_ROUNDS times); a block that still oscillates becomes all zeros, a fixed point of every
 * format. Throws if the block's scale overflows fp16 (dequantized values not finite).
 */
export function gridQuantRef(format: BlockFormat, row: Float32Array): Float32Array {
  const out = fakeQuantRef(format, row);
  const B = format.block;
  for (let b = 0; b < out.length / B; b++) {
    const block = out.subarray(b * B, (b + 1) * B);
    if (!block.every(Number.isFinite)) {
      let amax = 0;
      for (let j = b * B; j < (b + 1) * B; j++) amax = Math.max(amax, Math.abs(row[j]));
      throw new RangeError(`${format.name}: block ${b} (elements ${b * B}..${(b + 1) * B - 1}, max |w| ${amax}) ` +
        'overflows the fp16 block scale; such weights cannot be stored in this format (rescale them or keep the tensor F32)');
    }
    block.set(settle(format, block));
  }
  return out;
}

function settle(format: BlockFormat, start: Float32Array): Float32Array {
  let w = start;
  for (let round = 0; round < GRID_ROUNDS; round++) {
    let prev = w;
    for (let pass = 0; pass < GRID_PASSES; pass++) {
      const y = fakeQuantRef(format, w);
      // Settled; y (not w) so that the zeros carry the signs the GGUF dequantizes to.
      if (sameValues(y, w)) return y;
      prev = w;
      w = y;
    }
    w = fakeQuantRef(format, w.map((v, i) => (v === prev[i] ? v : 0)));
  }
  return fakeQuantRef(format, new Float32Array(format.block));
}
