// The llama.cpp block formats against hand-worked blocks from the C reference semantics
// (ggml-quants.c quantize_row_*_ref / dequantize_row_*), plus grid and round-trip properties.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { U32 } from '../bounds.js';
import { Q4_0, Q8_0, TQ2_0, FORMATS, fakeQuantRef, type BlockFormat } from '../../src/quant/formats.js';
import { GGML_TYPES } from '../../src/io/gguf_format.js';
import { fromF16 } from '../../src/io/half.js';

const f16At = (b: Uint8Array, off: number): number => b[off] | (b[off + 1] << 8);
/** Offset of the fp16 scale inside a block. */
const dOff = (f: BlockFormat): number => (f === TQ2_0 ? 64 : 0);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** Row of n values, blocks of different scales (so d spans several binades). */
function randomRow(n: number, block: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() * 2 - 1) * 2 ** (Math.floor(i / block) % 7 - 4);
  return x;
}

/** The formats with one fp16 scale per block (the K-quants have their own tests: kquants.test.ts). */
const SINGLE_SCALE = [Q4_0, Q8_0, TQ2_0] as const;

test('format table: ggml ids and block sizes match gguf_format GGML_TYPES', () => {
  for (const [name, f] of Object.entries(FORMATS)) {
    const t = GGML_TYPES[name as keyof typeof GGML_TYPES];
    assert.equal(f.name, name);
    assert.deepEqual([f.ggmlType, f.block, f.bytes], [t.id, t.blockSize, t.typeSize], name);
  }
  assert.deepEqual([Q4_0.ggmlType, Q4_0.block, Q4_0.bytes], [2, 32, 18]);
  assert.deepEqual([Q8_0.ggmlType, Q8_0.block, Q8_0.bytes], [8, 32, 34]);
  assert.deepEqual([TQ2_0.ggmlType, TQ2_0.block, TQ2_0.bytes], [35, 256, 66]);
});

test('Q4_0: one block by hand (signed max, d = max/-8, clamp at 15, nibble order)', () => {
  const x = new Float32Array(32);
  x[0] = 1; //     x/d = -2   → trunc(-2 + 8.5)   = 6
  x[1] = -3.9; //  x/d = 7.8  → trunc(16.3) = 16  → min 15
  x[16] = 4; //    the max: d = 4 / -8 = -0.5     → q = trunc(0.5) = 0
  x[17] = 0.25; // x/d = -0.5 → trunc(8.0)        = 8
  x[18] = -0.25; //x/d = 0.5  → trunc(9.0)        = 9; zeros → 8
  const b = Q4_0.quantizeRef(x);
  const want = [0x00, 0xb8, 0x06, 0x8f, 0x98, ...Array(13).fill(0x88)]; // fp16(-0.5) = 0xb800 LE
  assert.deepEqual([...b], want);
  const y = Q4_0.dequantizeRef(b);
  const wantY = new Float32Array(32);
  wantY[0] = 1; wantY[1] = -3.5; wantY[16] = 4; wantY[17] = 0; wantY[18] = -0.5;
  // (q-8)·d with q = 8 and d < 0 is −0, in C too; compare values, not zero signs.
  assert.deepEqual([...y].map((v) => v + 0), [...wantY]);
});

test('Q4_0: x·id + 8.5 is rounded to float before the truncating cast; ties go up', () => {
  const x = new Float32Array(32);
  x[0] = -8; // max = -8 → d = 1 (0x3c00), q = 0
  x[1] = Math.fround(0.5 - 2 ** -25); // 8.99999997 rounds to 9.0f → q = 9 (a double would give 8)
  x[2] = -0.5; // 8.0 → q = 8
  x[3] = 0.5; //  9.0 → q = 9
  const b = Q4_0.quantizeRef(x);
  assert.equal(f16At(b, 0), 0x3c00);
  const q = (j: number): number => (j < 16 ? b[2 + j] & 15 : b[2 + j - 16] >> 4);
  assert.deepEqual([q(0), q(1), q(2), q(3), q(4)], [0, 9, 8, 9, 8]);
});

test('Q8_0: one block by hand (d = amax/127, roundf halves away from zero, int8 bytes)', () => {
  const x = new Float32Array(32);
  [63.5, -0.75, 1.25, 0.2, -0.25, -63.5].forEach((v, j) => (x[j] = v)); // d = 0.5, id = 2
  const b = Q8_0.quantizeRef(x);
  assert.deepEqual([...b], [0x00, 0x38, 0x7f, 0xfe, 0x03, 0x00, 0xff, 0x81, ...Array(26).fill(0)]);
  const y = Q8_0.dequantizeRef(b);
  assert.deepEqual([...y.subarray(0, 7)], [63.5, -1, 1.5, 0, -0.5, -63.5, 0]);
});

test('Q8_0: the fp32 d is used to quantize, its fp16 rounding to dequantize', () => {
  const x = new Float32Array(32);
  x[0] = 1; // d = 1/127 = 0.0078740…; fp16 → 2^-7·(1 + 8/1024) = 0x2008
  const b = Q8_0.quantizeRef(x);
  assert.equal(f16At(b, 0), 0x2008);
  assert.equal(b[2], 127);
  assert.equal(Q8_0.dequantizeRef(b)[0], 127 * 0.00787353515625);
});

test('TQ2_0: one block by hand (qs first, d last; byte m packs m, m+32, m+64, m+96)', () => {
  const x = new Float32Array(256);
  x[0] = 2; x[32] = -2; x[64] = 1.0; x[96] = -0.9; // d = 2: q = 2, 0, lround(0.5)+1 = 2, 1
  x[129] = -1.0; x[161] = 2; //                       second half, byte 33: q = 0, 2, 1, 1
  x[255] = -2; //                                     = 128 + 31 + 3·32: byte 63, bits 6-7 = 0
  const b = TQ2_0.quantizeRef(x);
  const want = Array(66).fill(0x55); // all q = 1
  want[0] = 2 | (0 << 2) | (2 << 4) | (1 << 6); // 0x62
  want[33] = 0 | (2 << 2) | (1 << 4) | (1 << 6); // 0x58
  want[63] = 1 | (1 << 2) | (1 << 4) | (0 << 6); // 0x15
  want[64] = 0x00; want[65] = 0x40; // fp16(2) = 0x4000 LE
  assert.deepEqual([...b], want);
  const y = TQ2_0.dequantizeRef(b);
  const wantY = new Float32Array(256);
  wantY[0] = 2; wantY[32] = -2; wantY[64] = 2; wantY[129] = -2; wantY[161] = 2; wantY[255] = -2;
  assert.deepEqual([...y], [...wantY]);
});

test('zero blocks: d = 0, all-zero output, no NaN (Q4_0 stores -0 as C does: 0/-8)', () => {
  const fill = { Q4_0: 0x88, Q8_0: 0x00, TQ2_0: 0x55 } as const;
  for (const f of SINGLE_SCALE) {
    const x = new Float32Array(f.block * 2);
    const b = f.quantizeRef(x);
    assert.equal(b.length, 2 * f.bytes);
    for (let i = 0; i < 2; i++) {
      const o = i * f.bytes;
      assert.equal(f16At(b, o + dOff(f)), f === Q4_0 ? 0x8000 : 0, `${f.name} d bits`);
      const qs = f === TQ2_0 ? b.subarray(o, o + 64) : b.subarray(o + 2, o + f.bytes);
      assert.ok(qs.every((v) => v === fill[f.name]), `${f.name} qs`);
    }
    const y = f.dequantizeRef(b);
    assert.ok(y.every((v) => v === 0), `${f.name} dequantized zeros`);
  }
});

test('properties on random rows: grid, error bound, NaN-free, idempotence, fake = dequant∘quant', () => {
  for (const f of SINGLE_SCALE) {
    const n = f.block * 8;
    for (let seed = 1; seed <= 5; seed++) {
      const x = randomRow(n, f.block, seed * 7919 + f.ggmlType);
      const b = f.quantizeRef(x);
      assert.equal(b.length, (n / f.block) * f.bytes);
      const y = f.dequantizeRef(b);
      assert.equal(y.length, n);
      assert.ok(y.every(Number.isFinite), `${f.name}: finite`);
      assert.deepEqual([...fakeQuantRef(f, x)], [...y]);
      for (let i = 0; i < n / f.block; i++) {
        const dh = fromF16(f16At(b, i * f.bytes + dOff(f)));
        let amax = 0;
        for (let j = 0; j < f.block; j++) amax = Math.max(amax, Math.abs(x[i * f.block + j]));
        for (let j = 0; j < f.block; j++) {
          const k = i * f.block + j;
          const q = y[k] / dh;
          assert.ok(Number.isInteger(q), `${f.name}[${k}] on the grid`);
          if (f === Q4_0) assert.ok(q >= -8 && q <= 7, `Q4_0 q-8 = ${q}`);
          if (f === TQ2_0) assert.ok(q >= -1 && q <= 1, `TQ2_0 q-1 = ${q}`);
          if (f === Q8_0) {
            // d/2 from rounding, plus what the fp16 rounding of d moves the largest level, plus
            // the float32 arithmetic of q = round(x·(1/d)): d, 1/d and x·id each round once
            // (|Δq| ≤ 3u·127), and d itself is float32 (127·u·d): 4·127·u·d = 4u·amax.
            const d = amax / 127;
            const bound = d / 2 + 127 * Math.abs(d - dh) + 4 * U32 * amax;
            assert.ok(Math.abs(y[k] - x[k]) <= bound, `Q8_0[${k}]: |${y[k]} - ${x[k]}| > ${bound}`);
          }
        }
      }
      // The dequantized row is on the grid, so quantizing it again gives the same bytes.
      assert.deepEqual([...f.quantizeRef(y)], [...b], `${f.name}: idempotent (seed ${seed})`);
    }
  }
});

test('checked sizes: rows and buffers that are not whole blocks throw RangeError', () => {
  for (const f of Object.values(FORMATS)) {
    const re = new RegExp(`${f.name}.*\\b${f.block + 1}\\b.*\\b${f.block}\\b`);
    assert.throws(() => f.quantizeRef(new Float32Array(f.block + 1)), (e: unknown) => e instanceof RangeError && re.test(e.message));
    assert.throws(() => f.dequantizeRef(new Uint8Array(f.bytes - 1)), (e: unknown) => e instanceof RangeError && e.message.includes(f.name));
    assert.equal(f.quantizeRef(new Float32Array(0)).length, 0);
    const bad = new Float32Array(f.block);
    bad[3] = NaN;
    assert.throws(() => f.quantizeRef(bad), /non-finite value NaN at index 3/);
    bad[3] = Infinity;
    assert.throws(() => f.quantizeRef(bad), RangeError);
  }
});
