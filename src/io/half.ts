// 16-bit float conversions by bit manipulation (no lookup tables):
//   f16  = IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
//   bf16 = bfloat16: the top 16 bits of a binary32 (1 sign, 8 exponent, 7 mantissa bits).
// f32 → 16-bit rounds to nearest, ties to even (IEEE 754 §4.3.1 roundTiesToEven); values too
// large for f16 become ±inf, values too small become f16 subnormals or ±0. NaN stays NaN: its
// sign and top payload bits are kept and the quiet bit is set (so a signalling NaN comes back
// quiet, the only way a f16 → f32 → f16 round trip can change bits). 16-bit → f32 is exact.
// Array versions work on the bit patterns (Uint32Array views), so NaN payloads are never
// canonicalized by a trip through a JS number.

/** binary32 bits (as uint32) → binary16 bits, round to nearest even. */
export function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff; // biased by 127
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf, NaN
  const e = exp - 112; // f16 biased exponent (127 − 15 = 112)
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e >= 1) {
    // Normal: keep 10 mantissa bits, round on the 13 dropped ones. A carry out of the
    // mantissa bumps the exponent, and out of exponent 30 gives inf (65520 → inf), as required.
    let h = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  // Subnormal result (or zero): value = M·2^(exp−150) with M the 24-bit significand; in units of
  // the f16 subnormal step 2^−24 that is M >> (126 − exp). Past a shift of 24 it rounds to 0.
  const shift = 126 - exp; // ≥ 14 here
  if (shift > 24 || exp === 0) return sign; // also f32 subnormals: far below 2^−25
  const m = mant | 0x800000;
  let q = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) !== 0)) q++; // may carry into the smallest normal
  return sign | q;
}

/** binary16 bits → binary32 bits (as uint32), exact. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal mant·2^−24: normalize so bit 10 is the implicit one.
  const k = Math.clz32(mant) - 21; // shifts needed to bring the top set bit to bit 10
  return (sign | ((113 - k) << 23) | (((mant << k) & 0x3ff) << 13)) >>> 0;
}

/** binary32 bits → bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  // b + 0x7fff (+1 if the kept lsb is odd) carries into bit 16 exactly when rounding up.
  // No uint32 overflow: the largest non-NaN pattern is 0xff800000 (−inf).
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits → binary32 bits (as uint32), exact. */
export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

// ---- scalar helpers (through a shared scratch word; fine for tests and single values) -----------
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Number → f16 bits (first rounded to f32 by the Float32Array store, then to f16). */
export function toF16(x: number): number {
  scratchF[0] = x;
  return f32BitsToF16Bits(scratchU[0]);
}
export function fromF16(h: number): number {
  scratchU[0] = f16BitsToF32Bits(h);
  return scratchF[0];
}
export function toBf16(x: number): number {
  scratchF[0] = x;
  return f32BitsToBf16Bits(scratchU[0]);
}
export function fromBf16(h: number): number {
  scratchU[0] = bf16BitsToF32Bits(h);
  return scratchF[0];
}

// ---- whole arrays -------------------------------------------------------------------------------
function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** f32 (n) → f16 bits (n). `out` may be given to avoid the allocation. */
export function f32ToF16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  checkLen(src.length, out.length);
  const u = bitsOf(src);
  for (let i = 0; i < u.length; i++) out[i] = f32BitsToF16Bits(u[i]);
  return out;
}

/** f16 bits (n) → f32 (n), exact. */
export function f16ToF32Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  checkLen(src.length, out.length);
  const u = bitsOf(out);
  for (let i = 0; i < src.length; i++) u[i] = f16BitsToF32Bits(src[i]);
  return out;
}

/** f32 (n) → bf16 bits (n), round to nearest even. */
export function f32ToBf16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  checkLen(src.length, out.length);
  const u = bitsOf(src);
  for (let i = 0; i < u.length; i++) out[i] = f32BitsToBf16Bits(u[i]);
  return out;
}

/** bf16 bits (n) → f32 (n), exact. */
export function bf16ToF32Array(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  checkLen(src.length, out.length);
  const u = bitsOf(out);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

function checkLen(n: number, m: number): void {
  if (n !== m) throw new RangeError(`half: output length ${m} does not match input length ${n}`);
}
