// QAT on llama.cpp's K-quant grids (rules q2_k … q6_k): the fake quantizer is a fixed point of
// llama.cpp's own quantize→dequantize (formats.ts gridQuantRef), its deployable codes/scales/mins
// (kunpack.ts) reproduce dequantize_row_q*_K bit for bit, and a student prepared on q4_k / q5_k /
// q6_k exports to a GGUF whose blocks dequantize to exactly the fake-quantized weights.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, backward } from '../../src/tensor/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { FORMATS, fakeQuantRef, gridQuantRef, type FormatName } from '../../src/quant/formats.js';
import { unpackK, dequantizeUnpackedK, type KFormatName } from '../../src/quant/kunpack.js';
import { fakeQuantWeight } from '../../src/quant/ops.js';
import { quantizeCodes, dequantizeCodes, type WeightQuant } from '../../src/quant/rules.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { prepare } from '../../src/quant/prepare.js';
import { saveStudent } from '../../src/quant/student.js';
import { FILE_TYPE, ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, readGgufTensorF32 } from '../../src/io/gguf.js';
import { runExport } from '../../src/cli/export.js';
import { Rng } from '../../src/tensor/rng.js';
import { assertBitwise, tinyLlama, tmpDir } from './models.js';
import { byteLevelTokenizer } from '../io/gguf-fixtures.js';

const K: KFormatName[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
const root = tmpDir('kgrid');
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Bitwise equality with any NaN equal to any NaN (C's default NaN vs a JS engine's). */
function bitsOrNaN(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) assert.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

/** Rows of 4 super-blocks: normal, heavy-tailed, and sparse (90% zeros: the blocks that oscillate). */
function rows(seed: number): Record<string, Float32Array> {
  const r = new Rng(seed), n = 4 * 256;
  return {
    normal: Float32Array.from({ length: n }, () => 0.02 * r.normal()),
    heavy: Float32Array.from({ length: n }, () => (0.02 * r.normal()) / Math.max(0.05, r.uniform())),
    sparse: Float32Array.from({ length: n }, () => (r.uniform() < 0.1 ? r.normal() : 0)),
  };
}

test('unpackK: codes·scales (− mins) reproduce dequantize_row_q*_K on llama.cpp\'s own blocks', () => {
  const fixture = fileURLToPath(new URL('../fixtures/ggml_blocks.safetensors', import.meta.url));
  const { tensors, metadata } = readSafetensors(fixture);
  for (const name of K) {
    for (const c of metadata[`${name}.cases`].split(',')) {
      const q = tensors.get(`${name}.${c}.q`)!.data as Uint8Array;
      bitsOrNaN(dequantizeUnpackedK(name, unpackK(name, q)), FORMATS[name].dequantizeRef(q), `${name} ${c}`);
    }
  }
});

test('gridQuantRef: a fixed point of quantize→dequantize (bitwise), fakeQuantRef for the single-scale formats', () => {
  let settledLater = 0;
  for (let seed = 1; seed <= 3; seed++) {
    for (const [kind, x] of Object.entries(rows(seed))) {
      for (const name of Object.keys(FORMATS) as FormatName[]) {
        const f = FORMATS[name];
        const g = gridQuantRef(f, x);
        assertBitwise(f.dequantizeRef(f.quantizeRef(g)), g, `${name} ${kind} seed ${seed}: fixed point`);
        if (!K.includes(name as KFormatName)) assertBitwise(g, fakeQuantRef(f, x), `${name}: one pass`);
        else if (!fakeQuantRef(f, x).every((v, i) => v === g[i])) settledLater++;
      }
    }
  }
  assert.ok(settledLater > 0, 'some K-quant rows needed more than one pass (the iteration is exercised)');
  // The last resort, an all-zero block, is a fixed point of every format.
  for (const f of Object.values(FORMATS)) {
    const z = fakeQuantRef(f, new Float32Array(f.block));
    assertBitwise(fakeQuantRef(f, z), z, `${f.name} zeros`);
  }
  const huge = new Float32Array(256).fill(3e9);
  huge[7] = -1e12;
  assert.throws(() => gridQuantRef(FORMATS.Q4_K, huge), /Q4_K: block 0 .*overflows the fp16 block scale/);
});

test('fakeQuantWeight on q2_k … q6_k: ŵ = gridQuantRef, the codes give ŵ back bitwise, STE gradients', () => {
  const r = new Rng(5), rowsN = 3, cols = 512;
  const data = Float32Array.from({ length: rowsN * cols }, () => 0.05 * r.normal());
  for (const kind of ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const) {
    const q: WeightQuant = { rule: { kind }, granule: { kind: 'group', size: 256 } };
    const w = new Tensor(data.slice(), [rowsN, cols], true);
    const y = fakeQuantWeight(w, q);
    const name = kind.toUpperCase() as KFormatName;
    assertBitwise(y.f32, gridQuantRef(FORMATS[name], data), `${kind}: ŵ`);
    const c = quantizeCodes(data, rowsN, cols, q);
    assert.equal(c.scales.length, (rowsN * cols) / (kind === 'q4_k' || kind === 'q5_k' ? 32 : 16));
    assert.equal(c.mins != null, kind !== 'q3_k' && kind !== 'q6_k');
    assertBitwise(dequantizeCodes(c, rowsN, cols, q), y.f32, `${kind}: dequantizeCodes(quantizeCodes(w))`);
    const gy = new Tensor(Float32Array.from({ length: rowsN * cols }, (_, i) => Math.sin(i)), [rowsN, cols]);
    backward(y, gy);
    assertBitwise(w.grad!.f32, gy.f32, `${kind}: plain STE`);
    const wc = new Tensor(data.slice(), [rowsN, cols], true);
    backward(fakeQuantWeight(wc, { ...q, clip: 0.05 }), gy);
    for (let i = 0; i < data.length; i++) assert.equal(wc.grad!.f32[i], Math.abs(data[i]) <= Math.fround(0.05) ? gy.f32[i] : 0);
  }
  assert.throws(() => fakeQuantWeight(new Tensor(new Float32Array(2 * 96), [2, 96]), QUANT_PRESETS.q4_k.weights),
    /cols 96 is not a multiple of the q4_k block 256/);
});

test('prepare → save → kdqat export: a q4_k / q5_k / q6_k student\'s GGUF holds exactly its fake-quantized weights', async () => {
  const model = tinyLlama({ hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, vocabSize: 264 });
  const tokenizer = path.join(root, 'tokenizer.json');
  fs.writeFileSync(tokenizer, JSON.stringify(byteLevelTokenizer()));
  for (const kind of ['q4_k', 'q5_k', 'q6_k'] as const) {
    const p = prepare(model, QUANT_PRESETS[kind]);
    const dir = path.join(root, kind), out = path.join(root, `${kind}.gguf`);
    saveStudent(dir, model, p);
    await runExport({ model: dir, format: 'gguf', out, tokenizer }); // the student's own format, lossless
    const g = readGgufHeader(out);
    const type = kind.toUpperCase() as KFormatName;
    assert.equal(ggufGet(g, 'general.file_type'), FILE_TYPE[type]);
    for (const name of p.quantized.keys()) {
      const param = model.params.get(name)!;
      const [R, C] = param.shape;
      let fake = p.weight(name, param).f32; // what QAT trained through
      if (name.endsWith('q_proj.weight')) fake = permuteQK(fake, R, C, 4);
      if (name.endsWith('k_proj.weight')) fake = permuteQK(fake, R, C, 2);
      const t = g.tensors.get(ggufTensorName(name))!;
      assert.equal(t.type, type, name);
      assertBitwise(readGgufTensorF32(g, t.name), fake, `${kind} ${name}: dequantized GGUF vs fake-quantized`);
      assert.deepEqual(readGgufTensor(g, t.name), FORMATS[type].quantizeRef(fake), `${kind} ${name}: bytes = quantize_row_${kind}_ref`);
    }
  }
});
