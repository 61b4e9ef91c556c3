// GGUF export in llama.cpp's block formats (no llama.cpp needed here; gguf-llama-quant.test.ts
// runs the files): tensor types per llama.cpp's quantize policy, general.file_type, aligned
// block data, Q/K permutation applied before quantizing, and the lossless export of a model whose
// projections already sit on the grid (what a QAT student on q4_0/q8_0/tq2_0 or a K-quant holds).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FILE_TYPE, exportLlamaGguf, ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, readGgufTensorF32,
  type GgufEmbedType, type GgufWeightType,
} from '../../src/io/gguf.js';
import { FORMATS, fakeQuantRef, gridQuantRef, type FormatName } from '../../src/quant/formats.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { Tensor } from '../../src/tensor/index.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { byteLevelTokenizer } from './gguf-fixtures.js';
import { tmpDir } from '../util.js';

let dir = '';
before(() => { dir = tmpDir('ggufq'); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });
let n = 0;
const tmp = (): string => path.join(dir, `q${n++}.gguf`);

// Input dims 256 and 512: whole TQ2_0 blocks. GQA so that q and k permute with different heads.
const CFG: LlamaConfig = {
  vocabSize: 264, hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 2, numAttentionHeads: 4,
  numKeyValueHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64,
  tieWordEmbeddings: false, initializerRange: 0.05,
};
const PROJ = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
const isProj = (name: string): boolean => PROJ.some((p) => name.endsWith(`${p}.weight`));
const QTYPES: FormatName[] = ['Q8_0', 'Q4_0', 'TQ2_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

function write(params: Params, dtype: GgufWeightType, embedType?: GgufEmbedType, cfg = CFG): string {
  const file = tmp();
  exportLlamaGguf(file, { config: cfg, params, tokenizerJson: byteLevelTokenizer(), dtype, embedType, special: { bosTokenId: 256, eosTokenId: 257 } });
  return file;
}

/** Row-major weights as the GGUF holds them: q/k permuted. */
function asStored(name: string, w: Float32Array, shape: readonly number[]): Float32Array {
  const [rows, cols] = shape;
  if (name.endsWith('q_proj.weight')) return permuteQK(w, rows, cols, CFG.numAttentionHeads);
  if (name.endsWith('k_proj.weight')) return permuteQK(w, rows, cols, CFG.numKeyValueHeads);
  return w;
}

/** Fake-quantizes every projection with `f` as QAT does (gridQuantRef: a fixed point of
 *  quantize→dequantize; for Q4_0/Q8_0/TQ2_0 that is fakeQuantRef): what a student holds. */
function onGrid(params: Params, f: FormatName): Params {
  const out: Params = new Map();
  for (const [name, p] of params) out.set(name, isProj(name) ? new Tensor(gridQuantRef(FORMATS[f], p.f32), p.shape) : p);
  return out;
}

const bitsEqual = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

for (const type of QTYPES) {
  test(`${type} export: tensor types, file_type, aligned blocks, q/k permuted before quantizing`, () => {
    const params = initParams(llamaParamSpec(CFG), 3);
    const file = write(params, type);
    const g = readGgufHeader(file); // validates offsets against the alignment and the data size
    assert.equal(ggufGet(g, 'general.file_type'), FILE_TYPE[type]);
    assert.equal(ggufGet(g, 'general.quantization_version'), 2);
    assert.equal(g.dataStart % g.alignment, 0);
    for (const [name, { shape }] of llamaParamSpec(CFG)) {
      const t = g.tensors.get(ggufTensorName(name))!;
      const want = shape.length === 1 ? 'F32' : isProj(name) ? type : 'Q8_0';
      assert.equal(t.type, want, name);
      assert.equal(t.offset % g.alignment, 0, `${name} offset`);
      if (shape.length === 1) continue;
      const f = FORMATS[want as FormatName];
      assert.equal(t.bytes, (shape[0] * shape[1] / f.block) * f.bytes, `${name} bytes`);
      // Bytes: exactly formats.ts's quantizer on the (permuted) rows, which the known vectors
      // tie to llama.cpp's own quantize_row_*_ref.
      const stored = asStored(name, params.get(name)!.f32, shape);
      assert.ok(Buffer.from(readGgufTensor(g, t.name) as Uint8Array).equals(f.quantizeRef(stored)), `${name} blocks`);
      // Permuting whole rows commutes with per-row blocks: dequantized = permute(fake(w)).
      const fake = fakeQuantRef(f, params.get(name)!.f32);
      assert.ok(bitsEqual(readGgufTensorF32(g, t.name), asStored(name, fake, shape)), `${name} dequantized`);
    }
  });

  test(`${type} export of weights already on the ${type} grid is lossless`, () => {
    const student = onGrid(initParams(llamaParamSpec(CFG), 5), type);
    const g = readGgufHeader(write(student, type));
    for (const name of [...student.keys()].filter(isProj)) {
      const p = student.get(name)!;
      const got = readGgufTensorF32(g, ggufTensorName(name));
      assert.ok(bitsEqual(got, asStored(name, p.f32, p.shape)), `${name}: GGUF blocks do not dequantize to the student's weights`);
    }
    // And the head/embedding (not quantized by the student) are Q8_0 of the full-precision ones.
    const emb = student.get('model.embed_tokens.weight')!.f32;
    assert.ok(bitsEqual(readGgufTensorF32(g, 'token_embd.weight'), fakeQuantRef(FORMATS.Q8_0, emb)));
  });
}

test('a different grid is not lossless: Q4_0 weights exported as TQ2_0 change', () => {
  const student = onGrid(initParams(llamaParamSpec(CFG), 5), 'Q4_0');
  const g = readGgufHeader(write(student, 'TQ2_0'));
  const p = student.get('model.layers.0.mlp.up_proj.weight')!;
  assert.ok(!bitsEqual(readGgufTensorF32(g, 'blk.0.ffn_up.weight'), p.f32));
});

test('--embed-type choices, F32/F16 defaults, tied embeddings', () => {
  const params = initParams(llamaParamSpec(CFG), 3);
  const types = (file: string): Record<string, string> =>
    Object.fromEntries([...readGgufHeader(file).tensors.values()].map((t) => [t.name, t.type]));
  let t = types(write(params, 'Q4_0', 'F16'));
  assert.deepEqual([t['token_embd.weight'], t['output.weight'], t['blk.1.ffn_down.weight'], t['output_norm.weight']], ['F16', 'F16', 'Q4_0', 'F32']);
  t = types(write(params, 'F16'));
  assert.deepEqual([t['token_embd.weight'], t['output.weight'], t['blk.1.ffn_down.weight']], ['F16', 'F16', 'F16']);
  const g = readGgufHeader(write(params, 'F32'));
  assert.equal(ggufGet(g, 'general.file_type'), 0);
  assert.deepEqual(readGgufTensor(g, 'blk.0.attn_v.weight'), params.get('model.layers.0.self_attn.v_proj.weight')!.f32);
  const tied = { ...CFG, tieWordEmbeddings: true };
  const tp = initParams(llamaParamSpec(tied), 4);
  t = types(write(tp, 'TQ2_0', undefined, tied));
  assert.equal(t['output.weight'], undefined);
  assert.equal(t['token_embd.weight'], 'Q8_0');
});

test('errors: rows that are not whole blocks, unknown types', () => {
  const small: LlamaConfig = { ...CFG, hiddenSize: 64, intermediateSize: 96 };
  const params = initParams(llamaParamSpec(small), 3);
  assert.throws(() => write(params, 'TQ2_0', undefined, small),
    /blk\.0\.attn_q\.weight \(model\.layers\.0\.self_attn\.q_proj\.weight\): input dimension 64 is not a multiple of the TQ2_0 block size 256; export with --type q8_0 or q4_0/);
  const odd: LlamaConfig = { ...CFG, hiddenSize: 48, numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 96 };
  assert.throws(() => write(initParams(llamaParamSpec(odd), 3), 'F16', 'Q8_0', odd),
    /token_embd\.weight .*input dimension 48 is not a multiple of the Q8_0 block size 32; export with --type f16 \(or --embed-type f16/);
  assert.throws(() => write(params, 'Q4_1' as GgufWeightType, undefined, small), /GGUF export supports types F32, F16, Q4_0, Q8_0, TQ2_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, not Q4_1/);
  assert.throws(() => write(params, 'Q4_0', 'Q4_0' as GgufEmbedType, small), /token_embd\/output type must be one of F32, F16, Q8_0, Q4_K, Q5_K, Q6_K, not Q4_0/);
  assert.throws(() => write(params, 'Q4_K', undefined, small), /input dimension 64 is not a multiple of the Q4_K block size 256; export with --type q8_0 or q4_0/);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0);
});

test('lossless: a weight off its grid is refused, naming it; types override the policy', () => {
  const student = onGrid(initParams(llamaParamSpec(CFG), 5), 'Q4_0');
  const name = 'model.layers.1.self_attn.k_proj.weight';
  const lossless = new Set([...student.keys()].filter(isProj));
  const file = tmp();
  exportLlamaGguf(file, { config: CFG, params: student, tokenizerJson: byteLevelTokenizer(), dtype: 'Q4_0', lossless });
  const bent = new Map(student);
  const w = Float32Array.from(student.get(name)!.f32);
  w[77] = Math.fround(w[77] * 1.001 + 1e-4);
  bent.set(name, new Tensor(w, student.get(name)!.shape));
  assert.throws(() => exportLlamaGguf(tmp(), { config: CFG, params: bent, tokenizerJson: byteLevelTokenizer(), dtype: 'Q4_0', lossless }),
    /blk\.1\.attn_k\.weight \(model\.layers\.1\.self_attn\.k_proj\.weight\): not on the Q4_0 grid: element \d+ is .*not quantized with q4_0/);
  const types = new Map([['lm_head.weight', 'Q4_0' as const], ['model.layers.0.mlp.up_proj.weight', 'F16' as const]]);
  const g = readGgufHeader(write2(student, types));
  assert.equal(g.tensors.get('output.weight')!.type, 'Q4_0');
  assert.equal(g.tensors.get('blk.0.ffn_up.weight')!.type, 'F16');
  assert.equal(g.tensors.get('blk.1.ffn_up.weight')!.type, 'Q8_0');
});

function write2(params: Params, types: ReadonlyMap<string, 'Q4_0' | 'F16'>): string {
  const file = tmp();
  exportLlamaGguf(file, { config: CFG, params, tokenizerJson: byteLevelTokenizer(), dtype: 'Q8_0', types });
  return file;
}
