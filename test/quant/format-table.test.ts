// The format table (src/quant/formats.ts) is the one source per format, and what is still written
// down elsewhere agrees with it: the ggml type and file-type ids (against node-llama-cpp's own
// enums, an independent copy of ggml.h / llama.h), the GGUF container's block table, the QAT rule
// and kernel rule ids (src/tensor/kernels.ts, and the native kernels' own tables, checked by
// behaviour: the rule id a format names quantizes on that format's grid, with its block and
// sub-block sizes), the grid (code range, offset, mins), and the ONNX column (the op's
// arithmetic on the stored codes and scales gives the dequantized weights bit for bit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GgmlType, GgufFileType } from 'node-llama-cpp';
import { FORMATS, FORMAT_LIST, formatOfRule, gridQuantRef, type BlockFormat } from '../../src/quant/formats.js';
import { GGML_TYPES } from '../../src/io/gguf_format.js';
import { FILE_TYPE, GGUF_WEIGHT_TYPES } from '../../src/io/gguf.js';
import { QuantRule } from '../../src/tensor/kernels.js';
import { kernelOf } from '../../src/tensor/registry.js';
import { nativeAvailable } from '../../src/tensor/index.js';
import { parseQuantConfig } from '../../src/quant/config.js';
import { quantizeCodes, dequantizeCodes, K_RULES, type WeightQuant } from '../../src/quant/rules.js';
import { K_LAYOUT } from '../../src/quant/kunpack.js';
import { Rng } from '../../src/tensor/rng.js';

const row = (n: number, seed = 3): Float32Array => { const r = new Rng(seed); return Float32Array.from({ length: n }, () => 0.05 * r.normal()); };
const quantOf = (f: BlockFormat): WeightQuant => ({ rule: { kind: f.rule } as WeightQuant['rule'], granule: { kind: 'group', size: f.block } });
const bitsEqual = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && new Uint32Array(a.buffer, a.byteOffset, a.length).every((v, i) => v === new Uint32Array(b.buffer, b.byteOffset, b.length)[i]);

test('ggml type and file-type ids equal llama.cpp\'s (node-llama-cpp GgmlType / GgufFileType)', () => {
  for (const f of FORMAT_LIST) {
    assert.equal(f.ggmlType, GgmlType[f.name as keyof typeof GgmlType], `${f.name} ggml_type`);
    // LLAMA_FTYPE_MOSTLY_<name>, or llama-quantize's default recipe for it (_M) for Q3_K/Q4_K/Q5_K.
    const ft = GgufFileType[`MOSTLY_${f.name}` as keyof typeof GgufFileType] ?? GgufFileType[`MOSTLY_${f.name}_M` as keyof typeof GgufFileType];
    assert.equal(f.fileType, ft, `${f.name} general.file_type`);
    assert.equal(FILE_TYPE[f.name as keyof typeof FILE_TYPE], f.fileType);
    const g = GGML_TYPES[f.name as keyof typeof GGML_TYPES];
    assert.deepEqual([g.id, g.blockSize, g.typeSize], [f.ggmlType, f.block, f.bytes], `${f.name}: io/gguf_format.ts GGML_TYPES`);
  }
  assert.deepEqual(GGUF_WEIGHT_TYPES, ['F32', 'F16', ...FORMAT_LIST.map((f) => f.name)]);
});

test('each format\'s rule is a config rule, names its kernel and rule id, and the derived tables agree', () => {
  for (const f of FORMAT_LIST) {
    assert.equal(formatOfRule(f.rule), f);
    assert.equal(f.kernel.ruleId, QuantRule[f.rule as keyof typeof QuantRule], `${f.name}: QuantRule.${f.rule}`);
    const q = parseQuantConfig({ weights: { rule: f.rule } }, 'test').weights;
    assert.equal(q.rule.kind, f.rule);
    assert.equal(f.block % f.grid.sub, 0, `${f.name}: sub-blocks tile the block`);
    assert.equal(f.kernel.name === 'fakeQuantGrid', f.grid.sub < f.block, `${f.name}: K-quants (sub-block scales) need the fixed-point kernel`);
    if (f.kernel.name === 'fakeQuantGrid') {
      const K = K_RULES[f.rule as keyof typeof K_RULES];
      assert.deepEqual([K.format, K.sub, K.mins], [f.name, f.grid.sub, f.grid.mins]);
      assert.deepEqual(K_LAYOUT[f.name as keyof typeof K_LAYOUT], { bytes: f.bytes, sub: f.grid.sub, offset: f.grid.offset, mins: f.grid.mins });
    }
  }
  assert.equal(formatOfRule('sym'), undefined);
});

test('native kernels: each format\'s rule id quantizes on that format\'s grid, with its block and sub-block', () => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  for (const f of FORMAT_LIST) {
    const n = 2 * Math.max(f.block, 256), w = row(n);
    const out = new Float32Array(n);
    if (f.kernel.name === 'fakeQuant') {
      const fq = kernelOf('native', 'fakeQuant')!;
      fq(w, out, null, new Float32Array(n / f.block), null, null, 1, n, f.kernel.ruleId as never, 0, f.block);
      assert.throws(() => fq(w, out, null, new Float32Array(n / (2 * f.block)), null, null, 1, n, f.kernel.ruleId as never, 0, 2 * f.block),
        new RegExp(`needs group ${f.block}`), `${f.name}: native/quant.cc block_of`);
    } else {
      const G = n / f.grid.sub, k = kernelOf('native', 'fakeQuantGrid')!;
      k(w, out, new Int32Array(n), new Float32Array(G), f.grid.mins ? new Float32Array(G) : null, 1, n, f.kernel.ruleId as never);
      if (f.grid.mins) {
        assert.throws(() => k(w, out, new Int32Array(n), new Float32Array(G), null, 1, n, f.kernel.ruleId as never), /needs a mins buffer/);
      }
    }
    assert.ok(bitsEqual(out, gridQuantRef(f, w)), `${f.name}: native rule id ${f.kernel.ruleId} is not this format's grid`);
  }
});

test('grid: stored codes lie in the code range and ŵ = (code − offset)·scale (− min); ONNX column reproduces ŵ bit for bit', () => {
  const range: Record<string, [number, number]> = { int4: [-8, 7], uint4: [0, 15], int8: [-128, 127], uint8: [0, 255] };
  for (const f of FORMAT_LIST) {
    const n = 4 * Math.max(f.block, 256), w = row(n, 9);
    const q = quantOf(f);
    const c = quantizeCodes(w, 1, n, q);
    const deq = dequantizeCodes(c, 1, n, q);
    assert.ok(bitsEqual(deq, gridQuantRef(f, w)), `${f.name}: codes dequantize to the grid`);
    assert.equal(c.scales.length, n / f.grid.sub, `${f.name}: one scale per ${f.grid.sub}`);
    const [lo, hi] = f.grid.codes;
    for (const v of c.codes) assert.ok(v >= lo && v <= hi, `${f.name}: code ${v} outside [${lo}, ${hi}]`);
    assert.equal(!!c.mins, f.grid.mins, `${f.name}: mins`);
    // Stored codes: rules.ts keeps q8_0's signed code; the others are the stored unsigned codes.
    const o = f.onnx;
    if (!o) continue;
    const [dlo, dhi] = o.op === 'MatMulNBits' ? [0, 2 ** o.bits - 1] : range[o.dtype];
    assert.equal(o.blockSize, f.grid.sub, `${f.name}: ONNX block = the format's scale granule`);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const code = c.codes[i], g = Math.floor(i / f.grid.sub);
      assert.ok(code >= dlo && code <= dhi, `${f.name}: code ${code} does not fit ONNX ${o.op === 'MatMulNBits' ? `${o.bits}-bit` : o.dtype}`);
      y[i] = Math.fround((code - o.zeroPoint) * c.scales[g]); // DequantizeLinear / MatMulNBits: (x − zp)·scale in float
      if (o.op === 'DequantizeLinear' && o.subtractMin) y[i] = Math.fround(y[i] - c.mins![g]);
    }
    assert.ok(bitsEqual(y, deq), `${f.name}: the ONNX arithmetic does not give ŵ`);
    assert.equal(!!(o.op === 'DequantizeLinear' && o.subtractMin), f.grid.mins, `${f.name}: subtractMin iff the format has mins`);
  }
  assert.equal(Object.keys(FORMATS).length, FORMAT_LIST.length);
});
