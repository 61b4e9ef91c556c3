// Known vectors from llama.cpp itself (test/fixtures/ggml_blocks.safetensors, made by
// scripts/make_ggml_vectors.sh from node-llama-cpp's prebuilt libggml-base.so): our reference
// quantizers give exactly llama.cpp's bytes, and our dequantizers exactly its floats (bit for
// bit, including −0, ±inf and NaN where the f16 scale overflows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { FORMATS, type FormatName } from '../../src/quant/formats.js';
import { scaleMinK4 } from '../../src/quant/kquants.js';

const FILE = fileURLToPath(new URL('../fixtures/ggml_blocks.safetensors', import.meta.url));
const { tensors, metadata } = readSafetensors(FILE);
const CASES = ['normal', 'ties', 'near_ties', 'zeros', 'outlier', 'signs', 'tiny', 'f16', 'overflow'];
/** The K-quants' cases (scripts/make_ggml_vectors.cc makeKCases): no anchor element, but sub-block
 *  scales that round to 0, constant and zero groups, values on a grid, llama.cpp's own
 *  dequantized output, f16 subnormal / overflowing d and float overflow inside the search. */
const K_CASES = ['normal', 'subscales', 'zeros', 'constants', 'outlier', 'signs', 'grid', 'requant', 'tiny', 'huge'];
const casesOf = (name: string): string[] => (name.endsWith('_K') ? K_CASES : CASES);

function get(name: string, dtype: 'F32' | 'U8'): { data: Float32Array | Uint8Array; shape: number[] } {
  const t = tensors.get(name);
  assert.ok(t, `fixture tensor ${name} missing`);
  assert.equal(t.dtype, dtype, name);
  return { data: t.data as Float32Array | Uint8Array, shape: t.shape };
}

/** First index where two Float32Arrays differ bitwise (so −0 ≠ +0), or −1. Any NaN equals any
 *  NaN: C gives 0·inf the x86 default NaN, and a JS engine may canonicalize NaN payloads. */
function firstBitDiff(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

test('fixture: every format and case is present, type ids as in this llama.cpp build', () => {
  for (const [name, f] of Object.entries(FORMATS)) {
    assert.equal(Number(metadata[`${name}.ggml_type`]), f.ggmlType, `${name} ggml_type`);
    assert.equal(metadata[`${name}.type_name`].toUpperCase(), name);
    assert.deepEqual(metadata[`${name}.cases`].split(','), casesOf(name), `${name} cases`);
    for (const c of casesOf(name)) for (const s of ['x', 'q', 'y']) assert.ok(tensors.has(`${name}.${c}.${s}`), `${name}.${c}.${s}`);
  }
});

for (const name of Object.keys(FORMATS) as FormatName[]) {
  const f = FORMATS[name];
  for (const c of casesOf(name)) {
    test(`${name} ${c}: quantizeRef bytes and dequantizeRef floats equal llama.cpp's`, () => {
      const x = get(`${name}.${c}.x`, 'F32'), q = get(`${name}.${c}.q`, 'U8'), y = get(`${name}.${c}.y`, 'F32');
      const [rows, n] = x.shape;
      const rowBytes = (n / f.block) * f.bytes;
      assert.deepEqual(q.shape, [rows, rowBytes]);
      for (let r = 0; r < rows; r++) {
        const xr = (x.data as Float32Array).subarray(r * n, (r + 1) * n);
        const want = (q.data as Uint8Array).subarray(r * rowBytes, (r + 1) * rowBytes);
        const got = f.quantizeRef(xr);
        const at = got.findIndex((b, i) => b !== want[i]);
        assert.equal(at, -1, `${name} ${c} row ${r}: byte ${at} (block ${Math.floor(at / f.bytes)}) is ${got[at]}, llama.cpp wrote ${want[at]}`);
        // Dequantize llama.cpp's own bytes (so this holds independently of the check above).
        const deq = f.dequantizeRef(want);
        const wantY = (y.data as Float32Array).subarray(r * n, (r + 1) * n);
        const d = firstBitDiff(deq, wantY);
        assert.equal(d, -1, `${name} ${c} row ${r}: element ${d} dequantizes to ${deq[d]}, llama.cpp gives ${wantY[d]}`);
      }
    });
  }
}

test('the edge cases are really exercised (ties, f16 overflow, zero and subnormal scales)', () => {
  // Q8_0 ties: some |x·id| lands exactly on k + ½.
  const x = get('Q8_0.ties.x', 'F32').data as Float32Array;
  let halves = 0;
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const id = Math.fround(1 / Math.fround(amax / 127));
    for (let j = 0; j < 32; j++) if (Math.abs(Math.fround(x[b * 32 + j] * id)) % 1 === 0.5) halves++;
  }
  assert.ok(halves > 100, `only ${halves} exact halves`);
  // Overflow: llama.cpp's dequantized values contain ±inf and NaN.
  const y = get('Q4_0.overflow.y', 'F32').data as Float32Array;
  assert.ok(y.some((v) => v === Infinity || v === -Infinity) && y.some(Number.isNaN));
  // Tiny: some f16 scales are subnormal (exponent bits 0, mantissa ≠ 0), some are zero.
  const q = get('Q8_0.tiny.q', 'U8').data as Uint8Array;
  const scales = Array.from({ length: q.length / 34 }, (_, b) => q[b * 34] | (q[b * 34 + 1] << 8));
  assert.ok(scales.some((h) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0), 'a subnormal f16 scale');
  assert.ok(scales.some((h) => (h & 0x7fff) === 0), 'a zero f16 scale');
  // K-quants: d overflows f16 (NaN in llama.cpp's output) and some sub-block scales round to 0.
  for (const k of ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K']) {
    assert.ok((get(`${k}.huge.y`, 'F32').data as Float32Array).some(Number.isNaN), `${k} huge: a NaN`);
  }
  const q4k = get('Q4_K.subscales.q', 'U8').data as Uint8Array;
  let zeroScales = 0;
  for (let b = 0; b < q4k.length / 144; b++) for (let j = 0; j < 8; j++) if (scaleMinK4(j, q4k, b * 144 + 4)[0] === 0) zeroScales++;
  assert.ok(zeroScales > 0, 'a Q4_K sub-block whose 6-bit scale is 0');
});
