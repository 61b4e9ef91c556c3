// GGUF container: writer → reader round trips, byte layout against the spec, the Q/K row
// permutation against a literal re-implementation of convert_hf_to_gguf.py's permute, errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  GGML_TYPES, exportLlamaGguf, ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, tensorBytes, writeGguf,
  type GgufValue,
} from '../../src/io/gguf.js';
import { fromF16, toF16 } from '../../src/io/half.js';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { byteLevelTokenizer } from './gguf-fixtures.js';
import { tmpDir } from '../util.js';

let dir = '';
before(() => { dir = tmpDir('gguf'); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });
let n = 0;
const tmp = (): string => path.join(dir, `f${n++}.gguf`);

test('round trip: every metadata type, F32/F16/raw-quantized tensors, GGML dim order, alignment', () => {
  const kv: [string, GgufValue][] = [
    ['a.u8', { type: 'u8', value: 255 }], ['a.i8', { type: 'i8', value: -128 }],
    ['a.u16', { type: 'u16', value: 65535 }], ['a.i16', { type: 'i16', value: -32768 }],
    ['a.u32', { type: 'u32', value: 4294967295 }], ['a.i32', { type: 'i32', value: -2147483648 }],
    ['a.u64', { type: 'u64', value: 2n ** 64n - 1n }], ['a.i64', { type: 'i64', value: -(2n ** 63n) }],
    ['a.f32', { type: 'f32', value: 1e-5 }], ['a.f64', { type: 'f64', value: Math.PI }],
    ['a.bool', { type: 'bool', value: true }], ['a.str', { type: 'string', value: 'héllo ✓' }],
    ['a.strs', { type: 'array', itemType: 'string', value: ['Ġthe', '', 'ü'] }],
    ['a.ints', { type: 'array', itemType: 'i32', value: [1, -2, 3] }],
    ['a.empty', { type: 'array', itemType: 'string', value: [] }],
    ['a.nested', { type: 'array', itemType: 'array', value: [
      { type: 'array', itemType: 'u8', value: [1, 2] }, { type: 'array', itemType: 'string', value: ['x'] }] }],
  ];
  const w = Float32Array.from({ length: 6 * 5 }, (_, i) => i * 0.5 - 3);
  const h = Float32Array.from([1, -2, 0.1, 65504, 1e-7]);
  const q8 = Uint8Array.from({ length: 2 * 34 }, (_, i) => i);
  const p = tmp();
  writeGguf(p, { kv, tensors: [
    { name: 'w', shape: [6, 5], type: 'F32', data: w },
    { name: 'h', shape: [5], type: 'F16', data: () => h },
    { name: 'q', shape: [2, 32], type: 'Q8_0', data: q8 },
  ] });
  const g = readGgufHeader(p);
  assert.equal(g.version, 3);
  assert.equal(g.alignment, 32);
  assert.equal(g.dataStart % 32, 0);
  for (const [k, v] of kv) {
    const got = g.kv.get(k)!;
    assert.equal(got.type, v.type, k);
    if (v.type === 'f32') assert.equal(got.value, Math.fround(v.value));
    else assert.deepEqual(ggufGet(g, k), v.type === 'array' && v.itemType === 'array' ? v.value.map((x) => x.value) : v.value, k);
  }
  assert.deepEqual(ggufGet(g, 'general.alignment'), 32); // added by the writer
  const wi = g.tensors.get('w')!;
  assert.deepEqual(wi.shape, [6, 5]);
  assert.deepEqual(wi.ne, [5, 6]); // ne[0] = innermost (row length)
  assert.deepEqual(readGgufTensor(g, 'w'), w);
  assert.deepEqual(readGgufTensor(g, 'h'), Float32Array.from(h, (x) => fromF16(toF16(x))));
  assert.deepEqual(readGgufTensor(g, 'q'), q8);
  for (const t of g.tensors.values()) assert.equal(t.offset % 32, 0, `${t.name} offset aligned`);
});

test('byte layout matches the spec for a minimal file', () => {
  const p = tmp();
  writeGguf(p, { kv: [['general.architecture', { type: 'string', value: 'llama' }]],
    tensors: [{ name: 't', shape: [2], type: 'F32', data: Float32Array.of(1, 2) }] });
  const b = fs.readFileSync(p);
  assert.equal(b.subarray(0, 4).toString('latin1'), 'GGUF');
  assert.equal(b.readUInt32LE(4), 3); // version
  assert.equal(b.readBigUInt64LE(8), 1n); // tensor_count
  assert.equal(b.readBigUInt64LE(16), 2n); // kv_count (+ general.alignment)
  let o = 24;
  const str = (): string => { const len = Number(b.readBigUInt64LE(o)); o += 8 + len; return b.subarray(o - len, o).toString('utf8'); };
  assert.equal(str(), 'general.architecture');
  assert.equal(b.readUInt32LE(o), 8); o += 4; // GGUF_METADATA_VALUE_TYPE_STRING
  assert.equal(str(), 'llama');
  assert.equal(str(), 'general.alignment');
  assert.equal(b.readUInt32LE(o), 4); assert.equal(b.readUInt32LE(o + 4), 32); o += 8;
  assert.equal(str(), 't');
  assert.equal(b.readUInt32LE(o), 1); o += 4; // n_dims
  assert.equal(b.readBigUInt64LE(o), 2n); o += 8; // ne[0]
  assert.equal(b.readUInt32LE(o), 0); o += 4; // GGML_TYPE_F32
  assert.equal(b.readBigUInt64LE(o), 0n); o += 8; // offset
  const data = Math.ceil(o / 32) * 32;
  assert.ok(b.subarray(o, data).every((x) => x === 0), 'zero padding');
  assert.equal(b.readFloatLE(data), 1);
  assert.equal(b.readFloatLE(data + 4), 2);
  assert.equal(b.length, data + 32); // the last tensor is padded to the alignment too
});

test('type table: ids and block sizes of the ggml spec', () => {
  assert.deepEqual(GGML_TYPES.F32, { id: 0, blockSize: 1, typeSize: 4 });
  assert.deepEqual(GGML_TYPES.F16, { id: 1, blockSize: 1, typeSize: 2 });
  assert.deepEqual(GGML_TYPES.Q4_0, { id: 2, blockSize: 32, typeSize: 18 });
  assert.deepEqual(GGML_TYPES.Q8_0, { id: 8, blockSize: 32, typeSize: 34 });
  assert.deepEqual(GGML_TYPES.TQ2_0, { id: 35, blockSize: 256, typeSize: 66 });
  assert.equal(tensorBytes('Q4_0', [3, 64]), 3 * 2 * 18);
  assert.throws(() => tensorBytes('Q8_0', [4, 48]), /not a multiple of the Q8_0 block size 32/);
});

// ---- the permutation --------------------------------------------------------------------------

/** A minimal numpy: flat data + shape, reshape and swapaxes as numpy defines them (C order). */
interface Nd { data: number[]; shape: number[] }
const reshape = (a: Nd, shape: number[]): Nd => ({ data: a.data, shape });
function swapaxes(a: Nd, i: number, j: number): Nd {
  const shape = [...a.shape];
  [shape[i], shape[j]] = [shape[j], shape[i]];
  const strides = a.shape.map((_, k) => a.shape.slice(k + 1).reduce((x, y) => x * y, 1));
  [strides[i], strides[j]] = [strides[j], strides[i]];
  const out: number[] = [];
  const idx = shape.map(() => 0);
  for (let c = 0; c < a.data.length; c++) {
    out.push(a.data[idx.reduce((s, v, k) => s + v * strides[k], 0)]);
    for (let k = shape.length - 1; k >= 0 && ++idx[k] === shape[k]; k--) idx[k] = 0;
  }
  return { data: out, shape };
}
/** convert_hf_to_gguf.py LlamaModel.permute, transcribed line by line. */
function convertPermute(weights: Nd, nHead: number, nHeadKv: number | null): Nd {
  if (nHeadKv !== null && nHead !== nHeadKv) nHead = nHeadKv;
  const r = reshape(weights, [nHead, 2, weights.shape[0] / nHead / 2, ...weights.shape.slice(1)]);
  return reshape(swapaxes(r, 1, 2), weights.shape);
}

test('permuteQK equals convert_hf_to_gguf permute (q: n_head; k: n_head_kv), GQA included', () => {
  for (const [H, Hkv, D, C] of [[4, 2, 8, 32], [2, 2, 4, 8], [8, 1, 16, 128], [3, 3, 2, 6]]) {
    const data = Array.from({ length: H * D * C }, (_, i) => i);
    const q = convertPermute({ data, shape: [H * D, C] }, H, H);
    assert.deepEqual([...permuteQK(Float32Array.from(data), H * D, C, H)], q.data, `q H=${H}`);
    const kd = data.slice(0, Hkv * D * C);
    const k = convertPermute({ data: kd, shape: [Hkv * D, C] }, H, Hkv);
    assert.deepEqual([...permuteQK(Float32Array.from(kd), Hkv * D, C, Hkv)], k.data, `k H=${H} Hkv=${Hkv}`);
  }
  // Row order inside one head of D = 4: [r0, r1 | r2, r3] → [r0, r2, r1, r3].
  assert.deepEqual([...permuteQK(Float32Array.of(0, 1, 2, 3), 4, 1, 1)], [0, 2, 1, 3]);
  assert.throws(() => permuteQK(new Float32Array(6), 6, 1, 2), /heads of even size/);
});

// ---- exportLlamaGguf: names, metadata, errors ---------------------------------------------------

const cfg: LlamaConfig = {
  vocabSize: 260, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
  numKeyValueHeads: 2, rmsNormEps: 1e-5, ropeTheta: 500000, maxPositionEmbeddings: 64, tieWordEmbeddings: false,
  initializerRange: 0.1,
};

test('exportLlamaGguf: llama.cpp names and metadata, permuted Q/K, F16 weights with F32 norms', () => {
  const params = initParams(llamaParamSpec(cfg), 3);
  const p = tmp();
  exportLlamaGguf(p, { config: cfg, params, tokenizerJson: byteLevelTokenizer(), dtype: 'F16', special: { bosTokenId: 256, eosTokenId: 257 } });
  const g = readGgufHeader(p);
  const get = (k: string): unknown => ggufGet(g, k);
  assert.equal(get('general.architecture'), 'llama');
  assert.equal(get('general.file_type'), 1);
  const u32 = { 'llama.vocab_size': 260, 'llama.context_length': 64, 'llama.embedding_length': 32, 'llama.block_count': 2,
    'llama.feed_forward_length': 48, 'llama.rope.dimension_count': 8, 'llama.attention.head_count': 4,
    'llama.attention.head_count_kv': 2, 'tokenizer.ggml.bos_token_id': 256, 'tokenizer.ggml.eos_token_id': 257 };
  for (const [k, v] of Object.entries(u32)) {
    assert.equal(g.kv.get(k)?.type, 'u32', `${k} is u32 (llama.cpp checks the type)`);
    assert.equal(get(k), v, k);
  }
  assert.equal(g.kv.get('llama.rope.freq_base')?.type, 'f32');
  assert.equal(get('llama.rope.freq_base'), 500000);
  assert.equal(get('llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
  assert.equal(get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(get('tokenizer.ggml.pre'), 'gpt-2');
  const tokens = get('tokenizer.ggml.tokens') as string[], types = get('tokenizer.ggml.token_type') as number[];
  assert.equal(tokens.length, 260);
  assert.equal(tokens[32], 'Ġ'); // byte 0x20 in GPT-2's bytes_to_unicode
  assert.deepEqual([tokens[256], types[256], tokens[259], types[259], types[65]], ['<s>', 3, '[PAD259]', 5, 1]);
  assert.deepEqual(get('tokenizer.ggml.merges'), []);
  assert.equal(g.tensors.size, 2 + 9 * 2 + 1);
  assert.deepEqual(g.tensors.get('token_embd.weight')!.ne, [32, 260]);
  assert.equal(g.tensors.get('blk.1.ffn_norm.weight')!.type, 'F32');
  assert.equal(g.tensors.get('blk.0.attn_k.weight')!.type, 'F16');
  assert.deepEqual(g.tensors.get('blk.0.ffn_down.weight')!.shape, [32, 48]);
  const kHf = params.get('model.layers.0.self_attn.k_proj.weight')!.f32;
  const f16 = (a: Float32Array): Float32Array => Float32Array.from(a, (x) => fromF16(toF16(x)));
  assert.deepEqual(readGgufTensor(g, 'blk.0.attn_k.weight'), f16(permuteQK(kHf, 16, 32, 2)));
  assert.deepEqual(readGgufTensor(g, 'blk.0.attn_v.weight'), f16(params.get('model.layers.0.self_attn.v_proj.weight')!.f32));
  assert.deepEqual(readGgufTensor(g, 'output_norm.weight'), params.get('model.norm.weight')!.f32);
  assert.ok(g.tensors.has('output.weight'));
  // Tied: no output.weight (llama.cpp falls back to token_embd).
  const tied = { ...cfg, tieWordEmbeddings: true };
  const p2 = tmp();
  exportLlamaGguf(p2, { config: tied, params: initParams(llamaParamSpec(tied), 3), tokenizerJson: byteLevelTokenizer() });
  assert.ok(!readGgufHeader(p2).tensors.has('output.weight'));
  assert.equal(ggufGet(readGgufHeader(p2), 'general.file_type'), 0);
});

test('tensor names follow gguf-py TensorNameMap', () => {
  assert.equal(ggufTensorName('model.layers.11.self_attn.o_proj.weight'), 'blk.11.attn_output.weight');
  assert.equal(ggufTensorName('model.layers.0.mlp.gate_proj.weight'), 'blk.0.ffn_gate.weight');
  assert.equal(ggufTensorName('model.layers.0.input_layernorm.weight'), 'blk.0.attn_norm.weight');
  assert.throws(() => ggufTensorName('model.layers.0.self_attn.rotary_emb.inv_freq'), /no GGUF name/);
});

test('errors: existing file without force, bad tokenizer, missing/misshapen params, bad values', () => {
  const params = initParams(llamaParamSpec(cfg), 1);
  const p = tmp();
  fs.writeFileSync(p, 'keep');
  const tok = byteLevelTokenizer();
  assert.throws(() => exportLlamaGguf(p, { config: cfg, params, tokenizerJson: tok }), /already exists.*use --force/);
  assert.equal(fs.readFileSync(p, 'utf8'), 'keep');
  exportLlamaGguf(p, { config: cfg, params, tokenizerJson: tok, force: true });
  assert.equal(readGgufHeader(p).tensors.size, 21);
  const wp = { ...tok, model: { type: 'WordPiece', vocab: { a: 0 } }, pre_tokenizer: null, decoder: null };
  assert.throws(() => exportLlamaGguf(tmp(), { config: cfg, params, tokenizerJson: wp }), /WordPiece model\. GGUF export writes byte-level BPE/);
  assert.throws(() => exportLlamaGguf(tmp(), { config: { ...cfg, vocabSize: 200 }, params, tokenizerJson: tok }),
    /token id 257 .* ≥ the model's vocab_size 200/);
  const missing = new Map(params);
  missing.delete('model.layers.1.mlp.up_proj.weight');
  assert.throws(() => exportLlamaGguf(tmp(), { config: cfg, params: missing, tokenizerJson: tok }), /"model\.layers\.1\.mlp\.up_proj\.weight" is missing/);
  const bad = initParams(llamaParamSpec({ ...cfg, intermediateSize: 40 }), 1);
  assert.throws(() => exportLlamaGguf(tmp(), { config: cfg, params: bad, tokenizerJson: tok }), /has shape \[40, 32\], the config needs \[48, 32\]/);
  assert.throws(() => exportLlamaGguf(tmp(), { config: cfg, params, tokenizerJson: tok, special: { eosTokenId: 999 } }), /eos_token_id 999 is outside/);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 0, 'no temp files left behind');
  // writer-level checks
  const t = (over: object): object => ({ name: 'x', shape: [2], type: 'F32', data: new Float32Array(2), ...over });
  const w = (tensors: object[], kv: [string, GgufValue][] = []): void => writeGguf(tmp(), { kv, tensors: tensors as never });
  assert.throws(() => w([t({ data: new Float32Array(3) })]), /12 bytes of data, F32 \[2\] needs 8/);
  assert.throws(() => w([t({}), t({})]), /duplicate tensor name/);
  assert.throws(() => w([t({ name: 'n'.repeat(65) })]), /longer than 64 bytes/);
  assert.throws(() => w([t({ shape: [1, 1, 1, 1, 2] })]), /1\.\.4 positive dimensions/);
  assert.throws(() => w([t({ type: 'Q4_1' })]), /unknown type Q4_1/);
  assert.throws(() => w([], [['k', { type: 'u8', value: 256 }]]), /metadata k: an integer in u8 range/);
  assert.throws(() => w([], [['bad key', { type: 'u8', value: 1 }]]), /invalid metadata key/);
});

test('reader errors: not GGUF, unsupported version, truncated data, bad bool', () => {
  const p = tmp();
  fs.writeFileSync(p, Buffer.alloc(40));
  assert.throws(() => readGgufHeader(p), /not "GGUF"; the file is damaged or not GGUF: re-export it/);
  const good = tmp();
  writeGguf(good, { kv: [['b', { type: 'bool', value: true }]], tensors: [{ name: 't', shape: [64], type: 'F32', data: new Float32Array(64) }] });
  const bytes = fs.readFileSync(good);
  const v1 = Buffer.from(bytes); v1.writeUInt32LE(1, 4);
  fs.writeFileSync(p, v1);
  assert.throws(() => readGgufHeader(p), /version 1 is not supported/);
  fs.writeFileSync(p, bytes.subarray(0, bytes.length - 100));
  assert.throws(() => readGgufHeader(p), /runs past the .* data section \(truncated\?\)/);
  const bb = Buffer.from(bytes); bb[24 + 8 + 1 + 4] = 2; // the bool's value byte
  fs.writeFileSync(p, bb);
  assert.throws(() => readGgufHeader(p), /bool with byte value 2/);
});
