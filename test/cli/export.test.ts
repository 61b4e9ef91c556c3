// `kdqat export`: GGUF files the reader accepts with llama.cpp's tensor names, half-precision
// model directories, and the refusals (encoders to GGUF, existing outputs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ggufGet, readGgufHeader, readGgufTensor } from '../../src/io/gguf_read.js';
import { ggufTensorName, permuteQK, readGgufTensorF32 } from '../../src/io/gguf.js';
import { FORMATS, fakeQuantRef } from '../../src/quant/formats.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { fromBf16, fromF16, toBf16, toF16 } from '../../src/io/half.js';
import { llamaParamSpec } from '../../src/models/llama.js';
import { runExport } from '../../src/cli/export.js';
import { kdqat, makeFixture, LLAMA_CFG, type Fixture } from './fixture.js';

let fx: Fixture;
before(() => { fx = makeFixture('export'); });
after(() => fx?.cleanup());

test('export --format gguf: the GGUF reader finds every tensor under its llama.cpp name', () => {
  const out = path.join(fx.root, 'tiny.gguf');
  const r = kdqat('export', '--model', fx.llama, '--format', 'gguf', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*tiny\.gguf/);
  const g = readGgufHeader(out);
  assert.equal(ggufGet(g, 'general.architecture'), 'llama');
  assert.equal(ggufGet(g, 'llama.block_count'), LLAMA_CFG.numHiddenLayers);
  assert.equal(ggufGet(g, 'tokenizer.ggml.eos_token_id'), 1);
  const names = [...llamaParamSpec(LLAMA_CFG).keys()].map(ggufTensorName).sort();
  assert.deepEqual([...g.tensors.keys()].sort(), names);
  assert.ok(names.includes('blk.1.attn_q.weight') && names.includes('output.weight') && names.includes('token_embd.weight'));
  const src = loadModelDir(fx.llama).params;
  assert.deepEqual(readGgufTensor(g, 'token_embd.weight'), src.get('model.embed_tokens.weight')!.f32);
  const q = src.get('model.layers.0.self_attn.q_proj.weight')!;
  assert.deepEqual(readGgufTensor(g, 'blk.0.attn_q.weight'), permuteQK(q.f32, q.shape[0], q.shape[1], LLAMA_CFG.numAttentionHeads));

  // f16, and the refusal to overwrite without --force.
  const again = kdqat('export', '--model', fx.llama, '--format', 'gguf', '--out', out, '--dtype', 'f16');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /--out .*tiny\.gguf: .* already exists; pass --force to replace it/);
  const forced = kdqat('export', '--model', fx.llama, '--format', 'gguf', '--out', out, '--dtype', 'f16', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  const g16 = readGgufHeader(out);
  assert.equal(g16.tensors.get('blk.0.ffn_up.weight')!.type, 'F16');
  assert.equal(g16.tensors.get('blk.0.attn_norm.weight')!.type, 'F32'); // 1-D stays F32, as the converter does
});

test('export --format safetensors: a model directory in f16 / bf16 that loads back rounded', async () => {
  const src = loadModelDir(fx.llama).params;
  for (const [dtype, round] of [['f16', (x: number) => fromF16(toF16(x))], ['bf16', (x: number) => fromBf16(toBf16(x))]] as const) {
    const out = path.join(fx.root, `half-${dtype}`);
    await runExport({ model: fx.llama, format: 'safetensors', dtype, out });
    const st = readSafetensors(path.join(out, 'model.safetensors'));
    assert.equal(st.tensors.get('lm_head.weight')!.dtype, dtype.toUpperCase());
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, dtype === 'f16' ? 'float16' : 'bfloat16');
    assert.ok(fs.existsSync(path.join(out, 'tokenizer.json')));
    const back = loadModelDir(out).params;
    const w = src.get('model.layers.1.mlp.down_proj.weight')!.f32;
    assert.deepEqual(back.get('model.layers.1.mlp.down_proj.weight')!.f32, Float32Array.from(w, round));
  }
});

test('export errors', async () => {
  await assert.rejects(runExport({ model: fx.bert, format: 'gguf', out: path.join(fx.root, 'b.gguf') }),
    /--model .*bert is a BERT encoder .*GGUF export is for the decoder families llama.cpp runs .*use --format safetensors/);
  const existing = fx.file('exists.gguf', 'x');
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: existing }), /already exists; pass --force to replace it/);
  await assert.rejects(runExport({ model: fx.llama, format: 'safetensors', out: fx.bert }), /already exists; pass --force/);
  await assert.rejects(runExport({ model: fx.llama, format: 'tflite', out: 'x' }), /--format must be gguf, onnx or safetensors/);
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', dtype: 'bf16', out: 'x.gguf' }), /--dtype bf16: gguf export supports f32, f16/);
  await assert.rejects(runExport({ model: fx.llamaNoTok, format: 'gguf', out: path.join(fx.root, 'n.gguf') }), /no tokenizer\.json .*pass --tokenizer FILE/);
  await assert.rejects(runExport({ model: path.join(fx.root, 'missing'), format: 'gguf', out: path.join(fx.root, 'm.gguf') }), /--model .*missing does not exist/);
  // The tokenizer can come from --tokenizer; a BERT classifier re-saves fine.
  await runExport({ model: fx.llamaNoTok, format: 'gguf', out: path.join(fx.root, 'n.gguf'), tokenizer: path.join(fx.root, 'tokenizer.json') });
  await runExport({ model: fx.bert, format: 'safetensors', out: path.join(fx.root, 'bert16') });
  assert.equal(loadModelDir(path.join(fx.root, 'bert16')).hf.arch, 'bert');
});

test('export --format gguf --type q4_0 / q8_0 / --embed-type; tq2_0 needs 256-wide rows', async () => {
  const src = loadModelDir(fx.llama).params;
  for (const type of ['q4_0', 'q8_0'] as const) {
    const out = path.join(fx.root, `tiny-${type}.gguf`);
    const r = kdqat('export', '--model', fx.llama, '--format', 'gguf', '--out', out, '--type', type);
    assert.equal(r.code, 0, r.stderr);
    const g = readGgufHeader(out);
    assert.equal(ggufGet(g, 'general.file_type'), type === 'q4_0' ? 2 : 7);
    assert.equal(g.tensors.get('blk.1.ffn_down.weight')!.type, type.toUpperCase());
    assert.equal(g.tensors.get('token_embd.weight')!.type, 'Q8_0');
    assert.equal(g.tensors.get('blk.1.ffn_norm.weight')!.type, 'F32');
    const f = FORMATS[type.toUpperCase() as 'Q4_0' | 'Q8_0'];
    const w = src.get('model.layers.1.mlp.down_proj.weight')!.f32;
    assert.deepEqual(readGgufTensorF32(g, 'blk.1.ffn_down.weight'), fakeQuantRef(f, w));
  }
  const out = path.join(fx.root, 'tiny-e16.gguf');
  await runExport({ model: fx.llama, format: 'gguf', out, type: 'q4_0', embedType: 'f16' });
  assert.equal(readGgufHeader(out).tensors.get('output.weight')!.type, 'F16');
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: path.join(fx.root, 't.gguf'), type: 'tq2_0' }),
    /attn_q\.weight .*input dimension 32 is not a multiple of the TQ2_0 block size 256; export with --type q8_0 or q4_0/);
  assert.ok(!fs.existsSync(path.join(fx.root, 't.gguf')));
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: 'x.gguf', type: 'q4_1' }),
    /--type q4_1: gguf export supports f32, f16, q4_0, q8_0, tq2_0, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m, q5_k_m/);
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: path.join(fx.root, 'k.gguf'), type: 'q4_k_m' }),
    /token_embd\.weight .*input dimension 32 is not a multiple of the Q4_K block size 256/);
  assert.ok(!fs.existsSync(path.join(fx.root, 'k.gguf')));
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: 'x.gguf', type: 'q4_0', dtype: 'f16' }), /--type q4_0 and --dtype f16 disagree/);
  await assert.rejects(runExport({ model: fx.llama, format: 'gguf', out: 'x.gguf', embedType: 'q4_0' }), /--embed-type q4_0: token_embd\/output can be f32, f16 or q8_0/);
  await assert.rejects(runExport({ model: fx.llama, format: 'safetensors', out: 'x', type: 'q4_0' }), /--type\/--embed-type are for --format gguf/);
});
