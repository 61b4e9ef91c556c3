// The transformers.js model folder `kdqat export --format onnx --out DIR` writes, loaded by
// @huggingface/transformers offline from local files (env.allowRemoteModels = false): its
// text-generation pipeline (greedy, on onnx/model_quantized.onnx: MatMulNBits 4-bit) generates
// what kdqat's student generates, and its text-classification pipeline (ternary weights, 8-bit
// activations; a BERT and a RoFormer student) gives kdqat's label with kdqat's probability.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, type TextClassificationPipeline, type TextGenerationPipeline } from '@huggingface/transformers';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { archOf } from '../../src/models/model.js';
import { generate } from '../../src/models/generate.js';
import { openModel, openTokenizer, eosIds, type OpenedModel } from '../../src/cli/open-model.js';
import { runExport } from '../../src/cli/export.js';
import { exportOnnxFolder } from '../../src/io/onnx-export.js';
import { readTokenizerConfig } from '../../src/io/tokenizer_config.js';
import { kdqat, tmpDir } from '../cli/helpers.js';
import { onnxBound } from './onnx-helpers.js';
import { byteLevelTokenizer } from './gguf-fixtures.js';

const TEACHERS = fileURLToPath(new URL('../../teachers/', import.meta.url));
let root = '';
before(() => {
  root = tmpDir('onnx-tjs');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = root;
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

async function studentFolder(teacher: string, preset: string, name: string): Promise<OpenedModel> {
  const sdir = path.join(root, `${name}-student`);
  const r = await kdqat('quantize', '--model', path.join(TEACHERS, teacher), '--quant', preset, '--out', sdir);
  assert.equal(r.code, 0, r.stderr);
  await runExport({ model: sdir, format: 'onnx', out: path.join(root, name) });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx', 'onnx/model_quantized.onnx']) {
    assert.ok(fs.existsSync(path.join(root, name, f)), `${name}/${f}`);
  }
  return openModel(sdir);
}

test('transformers.js text-generation (greedy, model_quantized.onnx = 4-bit MatMulNBits) generates what kdqat generates', async () => {
  const m = await studentFolder('llama-sotu', 'w4-g128', 'llama-w4');
  const tok = openTokenizer(m, undefined);
  const prompt = 'The state of the Union is';
  const ids = tok.encode(prompt);
  const want = generate(m.model, ids, { maxNewTokens: 12, weight: m.weight, eosIds: eosIds(m, tok) }).tokens;
  for (const dtype of ['q8', 'fp32'] as const) { // model_quantized.onnx, model.onnx
    const gen = await pipeline('text-generation', 'llama-w4', { dtype, device: 'cpu' }) as TextGenerationPipeline;
    const enc = gen.tokenizer(prompt);
    assert.deepEqual(Array.from(enc.input_ids.data as BigInt64Array, Number), ids, 'same tokenization');
    const out = await gen(prompt, { max_new_tokens: 12, do_sample: false }) as { generated_text: string }[];
    assert.equal(out[0].generated_text, tok.decode([...ids, ...want], { skipSpecialTokens: true }), `${dtype}: generated text`);
    await gen.dispose();
  }
});

// BERT (absolute positions) and RoFormer (rotary positions, rotated in the graph).
for (const [teacher, folder] of [['bert-brown-genre', 'bert-twn'], ['roformer-brown-genre', 'roformer-twn']] as const) {
  test(`transformers.js text-classification of a ${teacher} student (ternary weights, 8-bit activations; model_quantized.onnx and model.onnx) gives kdqat's label and probability`, async () => {
    const m = await studentFolder(teacher, 'twn-a8', folder);
    const tok = openTokenizer(m, undefined);
    const labels = archOf(m.model).labels(m.loaded.hf.meta as never)!;
    for (const dtype of ['q8', 'fp32'] as const) { // model_quantized.onnx, model.onnx
      const cls = await pipeline('text-classification', folder, { dtype, device: 'cpu' }) as TextClassificationPipeline;
      for (const text of ['The jury said the city election was conducted well.', 'She looked at the stars and wondered where he had gone.']) {
        const ids = tok.encode(text);
        const logits = noGrad(() => archOf(m.model).forward(m.model, { ids: intTensor(ids, [1, ids.length]) }, { weight: m.weight }).logits.f32);
        const mx = Math.max(...logits), z = logits.reduce((s, v) => s + Math.exp(v - mx), 0);
        const best = logits.indexOf(mx);
        const out = await cls(text) as { label: string; score: number }[];
        assert.equal(out[0].label, labels[best], text);
        // Logits within δ = bound·max(1, max|logit|) move a softmax probability p by at most p·(e^{2δ} − 1).
        const c = m.model.config as { numHiddenLayers: number; intermediateSize: number };
        const delta = onnxBound(c.numHiddenLayers, c.intermediateSize) * Math.max(1, ...logits.map(Math.abs));
        const p = 1 / z;
        assert.ok(Math.abs(out[0].score - p) <= p * Math.expm1(2 * delta) + 2 ** -23, `${text}: p ${out[0].score} vs ${p}`);
      }
      await cls.dispose();
    }
  });
}

test('transformers.js loads a folder written with external data (model.onnx_data, config.json use_external_data_format) to the same predictions', async () => {
  const m = openModel(path.join(root, 'bert-twn-student'));
  const tokFile = path.join(m.dir, 'tokenizer.json');
  const files = exportOnnxFolder(path.join(root, 'bert-ext'), { model: m.model, student: m.student }, {
    hf: m.loaded.hf, tokenizerJson: fs.readFileSync(tokFile, 'utf8'), tokenizerConfig: readTokenizerConfig(tokFile), externalAt: 0,
  });
  assert.deepEqual(files, ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx', 'onnx/model_quantized.onnx_data']);
  const text = 'The jury said the city election was conducted well.';
  for (const dtype of ['q8', 'fp32'] as const) {
    const a = await pipeline('text-classification', 'bert-twn', { dtype, device: 'cpu' }) as TextClassificationPipeline;
    const b = await pipeline('text-classification', 'bert-ext', { dtype, device: 'cpu' }) as TextClassificationPipeline;
    assert.deepEqual(await b(text), await a(text), dtype);
    await a.dispose();
    await b.dispose();
  }
});

test('transformers.js runs a SmolLM3 export (model_type smollm3: no RoPE in the 4th layer) and generates what kdqat generates', async () => {
  const src = path.join(root, 'smollm3-src');
  fs.mkdirSync(src);
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(fileURLToPath(new URL(`../fixtures/decoders/smollm3/${f}`, import.meta.url)), path.join(src, f));
  fs.writeFileSync(path.join(src, 'tokenizer.json'), JSON.stringify(byteLevelTokenizer()));
  await runExport({ model: src, format: 'onnx', out: path.join(root, 'smollm3') });
  const m = openModel(src);
  const tok = openTokenizer(m, undefined);
  const prompt = 'Hello, world';
  const ids = tok.encode(prompt);
  const want = generate(m.model, ids, { maxNewTokens: 12, eosIds: eosIds(m, tok) }).tokens;
  assert.equal(want.length, 12, 'no end-of-text token early');
  const gen = await pipeline('text-generation', 'smollm3', { dtype: 'fp32', device: 'cpu' }) as TextGenerationPipeline;
  const out = await gen(prompt, { max_new_tokens: 12, do_sample: false }) as { generated_text: string }[];
  assert.equal(out[0].generated_text, tok.decode([...ids, ...want], { skipSpecialTokens: true }));
  await gen.dispose();
});

