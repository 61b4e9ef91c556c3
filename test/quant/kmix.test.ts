// llama-quantize's Q4_K_M / Q5_K_M recipes (quant/kmix.ts): use_more_bits, the per-tensor type
// map, `kdqat export --type q4_k_m` of a plain model (types, file type, bytes = the K-quant
// references) and of a student trained with kMixQuantConfig (lossless, checked bit for bit).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { K_MIXES, kMixQuantConfig, kMixTypes, useMoreBits } from '../../src/quant/kmix.js';
import { FORMATS, type FormatName } from '../../src/quant/formats.js';
import { prepare } from '../../src/quant/prepare.js';
import { saveStudent } from '../../src/quant/student.js';
import { ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, readGgufTensorF32 } from '../../src/io/gguf.js';
import { runExport } from '../../src/cli/export.js';
import { saveModelDir } from '../../src/io/model-dir.js';
import { assertBitwise, tinyLlama, tmpDir } from './models.js';
import { byteLevelTokenizer } from '../io/gguf-fixtures.js';

const root = tmpDir('kmix');
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('use_more_bits: the first and last eighth and every third layer between (LLaMA-7B: 16 of 32)', () => {
  const layers = (n: number): number[] => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
  assert.deepEqual(layers(32), [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  assert.deepEqual(layers(22), [0, 1, 4, 7, 10, 13, 16, 19, 20, 21]); // TinyLlama: n/8 = 2, 7n/8 = 19
  assert.deepEqual(layers(4), [2, 3]); // n/8 = 0: every third from layer 2, and layer 3 (≥ 7·4/8)
  assert.deepEqual(layers(1), [0]);
});

test('kMixTypes: Q6_K for output (tied: token_embd), attn_v and ffn_down of use_more_bits layers', () => {
  const cfg = tinyLlama({ hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 4 }).config;
  for (const mix of ['Q4_K_M', 'Q5_K_M'] as const) {
    const t = kMixTypes(cfg, mix), base = K_MIXES[mix].base;
    assert.equal(t.get('lm_head.weight'), 'Q6_K');
    assert.equal(t.get('model.embed_tokens.weight'), base);
    assert.equal(t.get('model.norm.weight'), 'F32');
    for (let i = 0; i < 4; i++) {
      const more = i >= 2 ? 'Q6_K' : base;
      assert.equal(t.get(`model.layers.${i}.self_attn.v_proj.weight`), more, `layer ${i} v`);
      assert.equal(t.get(`model.layers.${i}.mlp.down_proj.weight`), more, `layer ${i} down`);
      for (const p of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj']) {
        assert.equal(t.get(`model.layers.${i}.${p}.weight`), base, `layer ${i} ${p}`);
      }
    }
    const tied = kMixTypes({ ...cfg, tieWordEmbeddings: true }, mix);
    assert.equal(tied.get('model.embed_tokens.weight'), 'Q6_K');
    assert.equal(tied.has('lm_head.weight'), false);
    assert.equal(kMixTypes({ ...cfg, hiddenSize: 128, numAttentionHeads: 2, numKeyValueHeads: 2 }, mix).get('lm_head.weight'), 'Q8_0');
  }
});

test('kdqat export --type q4_k_m / q5_k_m: per-tensor types, file type, blocks; a kMixQuantConfig student exports losslessly', async () => {
  const model = tinyLlama({ hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, vocabSize: 264 });
  const tokenizerJson = JSON.stringify(byteLevelTokenizer());
  const plain = path.join(root, 'plain');
  saveModelDir(plain, { config: { arch: 'llama', config: model.config }, params: model.params, dtype: 'F32', tokenizerJson });
  for (const mix of ['Q4_K_M', 'Q5_K_M'] as const) {
    const types = kMixTypes(model.config, mix);
    // A plain model: llama-quantize's types, each tensor the K-quant reference of its weights.
    const out = path.join(root, `${mix}.gguf`);
    await runExport({ model: plain, format: 'gguf', out, type: mix.toLowerCase() });
    let g = readGgufHeader(out);
    assert.equal(ggufGet(g, 'general.file_type'), K_MIXES[mix].fileType);
    for (const [name, type] of types) {
      const t = g.tensors.get(ggufTensorName(name))!;
      assert.equal(t.type, type, name);
      if (type === 'F32') continue;
      const [R, C] = model.params.get(name)!.shape;
      let w = model.params.get(name)!.f32;
      if (name.endsWith('q_proj.weight')) w = permuteQK(w, R, C, 4);
      if (name.endsWith('k_proj.weight')) w = permuteQK(w, R, C, 2);
      assert.deepEqual(readGgufTensor(g, t.name), FORMATS[type as FormatName].quantizeRef(w), `${mix} ${name}`);
    }
    // A student trained on the recipe's grids: its weights come back bit for bit.
    const p = prepare(model, kMixQuantConfig(model.config, mix));
    assert.equal(p.quantized.size, 4 * 7 + 1);
    const dir = path.join(root, `student-${mix}`);
    saveStudent(dir, model, p, { tokenizerFrom: plain });
    const sout = path.join(root, `student-${mix}.gguf`);
    await runExport({ model: dir, format: 'gguf', out: sout, type: mix.toLowerCase() });
    g = readGgufHeader(sout);
    for (const name of p.quantized.keys()) {
      const param = model.params.get(name)!;
      const [R, C] = param.shape;
      let fake = p.weight(name, param).f32;
      if (name.endsWith('q_proj.weight')) fake = permuteQK(fake, R, C, 4);
      if (name.endsWith('k_proj.weight')) fake = permuteQK(fake, R, C, 2);
      assert.equal(g.tensors.get(ggufTensorName(name))!.type, types.get(name), name);
      assertBitwise(readGgufTensorF32(g, ggufTensorName(name)), fake, `${mix} student ${name}`);
    }
    // A student on one grid throughout is refused by the recipe (it would re-quantize the Q6_K tensors).
    const one = path.join(root, `one-${mix}`);
    saveStudent(one, model, prepare(model, { weights: kMixQuantConfig(model.config, mix).weights }), { tokenizerFrom: plain });
    await assert.rejects(runExport({ model: one, format: 'gguf', out: path.join(root, 'x.gguf'), type: mix.toLowerCase() }),
      new RegExp(`--type ${mix.toLowerCase()}: the student .* has model\\.layers\\.2\\.self_attn\\.v_proj\\.weight on the ${K_MIXES[mix].base} grid, but ${mix} stores it as Q6_K`));
  }
});
