// Shared pieces of the llama.cpp block formats: float32 arithmetic as C does it, the fp16 block
// scale as stored (little-endian ggml_half), and the row/block size checks.
import { toF16, fromF16 } from '../io/half.js';

/** C `float` arithmetic: every intermediate of the reference functions is rounded to binary32. */
export const f32 = Math.fround;

/** C `roundf` / `lroundf`: nearest integer, halfway cases away from zero (C11 §7.12.9.6).
 *  Math.round would send −0.5 to −0, not −1. Exact for binary32 inputs (x + 0.5 is exact in
 *  a double for every float32 x in range). */
export function roundAway(x: number): number {
  return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(-x + 0.5);
}

/** Writes GGML_FP32_TO_FP16(x) little-endian at bytes[off], returns the fp16 value as a number. */
export function writeF16(bytes: Uint8Array, off: number, x: number): number {
  const h = toF16(x);
  bytes[off] = h & 0xff;
  bytes[off + 1] = h >>> 8;
  return fromF16(h);
}

/** GGML_FP16_TO_FP32 of the little-endian ggml_half at bytes[off]. */
export function readF16(bytes: Uint8Array, off: number): number {
  return fromF16(bytes[off] | (bytes[off + 1] << 8));
}

/** Number of blocks in a row of n floats; throws unless n is a whole number of blocks. */
export function blocksInRow(name: string, block: number, n: number): number {
  if (n % block !== 0) {
    throw new RangeError(
      `${name}: row length ${n} is not a multiple of the block size ${block} (pad or split the row so its length is k·${block})`,
    );
  }
  return n / block;
}

/** Number of blocks in a quantized buffer; throws unless it is a whole number of blocks. */
export function blocksInBytes(name: string, bytesPerBlock: number, nBytes: number): number {
  if (nBytes % bytesPerBlock !== 0) {
    throw new RangeError(
      `${name}: ${nBytes} bytes is not a multiple of the block size ${bytesPerBlock} bytes (truncated or wrong-format data?)`,
    );
  }
  return nBytes / bytesPerBlock;
}

/** The reference quantizers are undefined on NaN/±inf (C casts NaN to int8): refuse them. */
export function checkFinite(name: string, row: Float32Array): void {
  for (let i = 0; i < row.length; i++) {
    if (!Number.isFinite(row[i])) {
      throw new RangeError(`${name}: non-finite value ${row[i]} at index ${i}; quantize only finite weights`);
    }
  }
}
