// ONNX export (io/onnx-export.ts) run in onnxruntime-node against kdqat's own forward: a LLaMA
// decoder with the KV cache (prefill, then one step on the cache = the full forward), tied and
// grouped-query variants, a BERT encoder (classifier logits and hidden states, padded batch;
// absolute, relative and RoFormer's rotary positions),
// f16 weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad } from '../../src/tensor/index.js';
import { archOf, type Model } from '../../src/models/model.js';
import { bertEncode } from '../../src/models/bert.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildOnnx, exportOnnxFile } from '../../src/io/onnx-export.js';
import { decodeModel } from '../../src/io/onnx.js';
import { f16ToF32Array, f32ToF16Array } from '../../src/io/half.js';
import { intTensor, Tensor } from '../../src/tensor/index.js';
import { relError, tmpDir } from '../util.js';
import { fileURLToPath } from 'node:url';
import { asModel, loadModelDir } from '../../src/io/model-dir.js';
import { randomIds, tinyBert, tinyLlama } from '../quant/models.js';
import { checkDecoder, data, decoderFeeds, i64, onnxBound, session } from './onnx-helpers.js';

test('LLaMA f32: onnxruntime = kdqat, full forward and prefill + one KV-cache step (GQA, untied head)', async () => {
  const m = tinyLlama();
  await checkDecoder(m, buildOnnx({ model: m }, 'f32'), 'llama');
  const g = decodeModel(buildOnnx({ model: m }, 'f32')).graph!;
  assert.deepEqual(g.input!.map((i) => i.name).slice(0, 5),
    ['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value']);
  assert.deepEqual(g.output!.map((o) => o.name).slice(-3), ['present.1.key', 'present.1.value', 'logits']);
});

test('LLaMA f32, tied embeddings and multi-head (Hkv = H): onnxruntime = kdqat; one copy of the tied matrix', async () => {
  const m = tinyLlama({ tieWordEmbeddings: true, numKeyValueHeads: 4 });
  const bytes = buildOnnx({ model: m }, 'f32');
  await checkDecoder(m, bytes, 'tied llama');
  const big = decodeModel(bytes).graph!.initializer!.filter((t) => t.dims!.map(Number).includes(m.config.vocabSize));
  assert.equal(big.length, 1, 'the tied embedding is stored once');
});

test('LLaMA f16 weights: onnxruntime = kdqat on the f16-rounded weights; the file is about half the size', async () => {
  const m = tinyLlama();
  const rounded: Model = { ...m, params: new Map([...m.params].map(([n, p]) => [n, new Tensor(p.ndim === 2 ? f16ToF32Array(f32ToF16Array(p.f32)) : p.f32, p.shape)])) };
  const bytes = buildOnnx({ model: m }, 'f16');
  await checkDecoder(m, bytes, 'f16 llama', rounded);
  assert.ok(bytes.length < 0.6 * buildOnnx({ model: m }, 'f32').length);
});

/** The padded batch every encoder check runs: row 1 has 5 tokens + 3 pads, a second segment from
 *  position 3. */
function encoderBatch(vocab: number) {
  const B = 2, T = 8, ids = randomIds(B, T, vocab);
  const maskArr = Int32Array.from({ length: B * T }, (_, i) => (i >= T && i % T >= 5 ? 0 : 1));
  const typesArr = Int32Array.from({ length: B * T }, (_, i) => (i % T >= 3 ? 1 : 0));
  const feeds = { input_ids: i64(ids.i32, [B, T]), attention_mask: i64(maskArr, [B, T]), token_type_ids: i64(typesArr, [B, T]) };
  return { B, T, ids, maskArr, typesArr, feeds };
}

/** The classifier logits of model `m` exported to ONNX, on encoderBatch. */
async function onnxLogits(m: Model): Promise<Float32Array> {
  const r = await (await session(buildOnnx({ model: m }, 'f32'))).run(encoderBatch(m.config.vocabSize).feeds);
  return data(r.logits);
}

/** encoderBatch through onnxruntime and kdqat's forward: logits and the hidden states of the
 *  real tokens must agree within the f32 bound. Returns the ONNX logits. */
async function checkEncoder(m: Model, what: string): Promise<Float32Array> {
  const c = m.config as Model['config'] & { numHiddenLayers: number; intermediateSize: number; hiddenSize: number; vocabSize: number };
  const C = c.hiddenSize;
  const bound = onnxBound(c.numHiddenLayers, Math.max(c.intermediateSize, C));
  const { B, T, ids, maskArr, typesArr, feeds } = encoderBatch(c.vocabSize);
  const mask = intTensor(maskArr, [B, T]), types = intTensor(typesArr, [B, T]);
  const want = noGrad(() => archOf(m).forward(m, { ids, mask, tokenTypeIds: types }, { capture: { hidden: true } }));
  const r = await (await session(buildOnnx({ model: m }, 'f32'))).run(feeds);
  assert.ok(relError(data(r.logits), want.logits.f32) <= bound, `${what} logits: ${relError(data(r.logits), want.logits.f32)}`);
  const h = want.hidden.at(-1)!.f32, got = data(r.last_hidden_state);
  for (let i = 0; i < B * T; i++) {
    if (!maskArr[i]) continue; // padded positions: no one reads them
    const e = relError(got.subarray(i * C, (i + 1) * C), h.subarray(i * C, (i + 1) * C));
    assert.ok(e <= bound, `${what} hidden state of token ${i}: rel error ${e}`);
  }
  return data(r.logits);
}

test('BERT classifier: onnxruntime logits and last_hidden_state = kdqat, padded batch with token types', async () => {
  await checkEncoder(tinyBert({ mlm: false, classifier: true }), 'bert');
});

for (const type of ['relative_key', 'relative_key_query'] as const) {
  test(`BERT with ${type} positions: onnxruntime = kdqat (distance scores in every layer, no absolute positions)`, async () => {
    const m = tinyBert({ mlm: false, classifier: true }, { positionEmbeddingType: type, maxPositionEmbeddings: 16 });
    const tables = [...m.params.keys()].filter((n) => n.endsWith('distance_embedding.weight'));
    assert.equal(tables.length, m.config.numHiddenLayers);
    for (const n of tables) { // initialised at std 0.02, the distance scores would hardly move a logit: make them count
      const t = m.params.get(n)!;
      m.params.set(n, new Tensor(t.f32.map((v) => 25 * v), t.shape));
    }
    const logits = await checkEncoder(m, type);
    // Teeth: the same weights without distance scores give other logits, far outside the bound.
    const plain = { ...m, config: { ...m.config, positionEmbeddingType: undefined }, params: new Map([...m.params]) } as Model;
    const other = await onnxLogits(plain);
    assert.ok(relError(other, logits) > 1e-3, `absolute positions give ${relError(other, logits)} from the relative graph`);
  });
}

test('RoFormer classifier (the PyTorch-checked fixture): onnxruntime = kdqat with rotary positions; without the rotation the logits differ', async () => {
  const fixture = fileURLToPath(new URL('../fixtures/encoders/roformer/cls/', import.meta.url));
  const m = asModel(loadModelDir(fixture));
  const logits = await checkEncoder(m, 'roformer');
  // Teeth: a graph whose sinusoid table does not rotate (sin 0, cos 1) gives other logits.
  const table = [...m.params].find(([n]) => n.endsWith('embed_positions.weight'))!;
  const [P, D] = table[1].shape;
  const still = new Float32Array(P * D);
  for (let t = 0; t < P; t++) for (let i = D / 2; i < D; i++) still[t * D + i] = 1;
  const flat = { ...m, params: new Map([...m.params, [table[0], new Tensor(still, [P, D])]]) } as Model;
  const other = await onnxLogits(flat);
  assert.ok(relError(other, logits) > 1e-3, `no rotation gives ${relError(other, logits)} from the rotary graph`);
});

test('Phi-3 with LongRoPE, and Phi-4-mini\'s partial rotary (the PyTorch-checked fixtures): onnxruntime = kdqat with the short factors (9 tokens) and the long ones (24, past the original 16), full forward and a cached step', async () => {
  const m = asModel(loadModelDir(fileURLToPath(new URL('../fixtures/decoders/phi3-longrope/', import.meta.url))));
  const bytes = buildOnnx({ model: m }, 'f32');
  const inits = decodeModel(bytes).graph!.initializer!.map((t) => t.name);
  assert.ok(inits.includes('cos_cache_long') && inits.includes('sin_cache_long'), 'the long tables are in the graph');
  await checkDecoder(m, bytes, 'phi3-longrope, 9 tokens', m, undefined, 9);
  // 24: the prefill of 23 is past the original context already, so both calls take the long factors.
  await checkDecoder(m, bytes, 'phi3-longrope, 24 tokens', m, undefined, 24);
  // Phi-4-mini's layout: RoPE on the first 6 of 8 entries of a head, LongRoPE, tied embeddings.
  const p4 = asModel(loadModelDir(fileURLToPath(new URL('../fixtures/decoders/phi4-mini/', import.meta.url))));
  const p4bytes = buildOnnx({ model: p4 }, 'f32');
  await checkDecoder(p4, p4bytes, 'phi4-mini, 9 tokens', p4, undefined, 9);
  await checkDecoder(p4, p4bytes, 'phi4-mini, 24 tokens', p4, undefined, 24);
});

test('SmolLM3 (the PyTorch-checked fixture: no RoPE in its 4th layer): onnxruntime = kdqat, full forward and a cached step; the graph rotates q and k in 3 of 4 layers', async () => {
  const m = asModel(loadModelDir(fileURLToPath(new URL('../fixtures/decoders/smollm3/', import.meta.url))));
  const bytes = buildOnnx({ model: m }, 'f32');
  await checkDecoder(m, bytes, 'smollm3, 12 tokens', m, undefined, 12);
  // rotate_half's Split per rotated q and k: 2 a layer with RoPE, none without.
  assert.equal(decodeModel(bytes).graph!.node!.filter((n) => n.opType === 'Split').length, 2 * 3);
});

test('BERT without a classifier (MLM model): last_hidden_state only, gelu_new', async () => {
  const m = tinyBert({ mlm: true, classifier: false }, { hiddenAct: 'gelu_new' });
  const B = 1, T = 6, ids = randomIds(B, T, m.config.vocabSize);
  const s = await session(buildOnnx({ model: m }, 'f32'));
  assert.deepEqual(s.outputNames, ['last_hidden_state']);
  const r = await s.run({ input_ids: i64(ids.i32, [B, T]), attention_mask: i64(new Array(T).fill(1), [B, T]), token_type_ids: i64(new Array(T).fill(0), [B, T]) });
  const want = noGrad(() => bertEncode(m.params, m.config, ids).last.f32);
  assert.ok(relError(data(r.last_hidden_state), want) <= onnxBound(2, 128));
});

test('sliding window (spec.slidingWindow, for Mistral-style records): with one layer, position i sees tokens i−W+1..i only, so its logits = kdqat\'s forward of those W tokens (RoPE scores depend on offsets only)', async () => {
  const m = tinyLlama({ numHiddenLayers: 1 });
  const c = m.config, W = 3, T = 9, V = c.vocabSize, D = c.hiddenSize / c.numAttentionHeads;
  const bound = onnxBound(1, c.intermediateSize);
  const s = await session(buildOnnx({ model: m }, 'f32', { spec: (sp) => ({ ...sp, slidingWindow: W }) }));
  const ids = randomIds(1, T, V);
  const r = data((await s.run(decoderFeeds(ids.i32, 1, T, 1, c.numKeyValueHeads, D))).logits);
  for (let i = W - 1; i < T; i++) {
    const win = intTensor(ids.i32.slice(i - W + 1, i + 1), [1, W]);
    const want = noGrad(() => archOf(m).forward(m, { ids: win }).logits.f32.slice((W - 1) * V));
    const e = relError(r.subarray(i * V, (i + 1) * V), want);
    assert.ok(e <= bound, `position ${i}: rel error ${e}`);
  }
  // A window covering the sequence changes nothing.
  const wide = await session(buildOnnx({ model: m }, 'f32', { spec: (sp) => ({ ...sp, slidingWindow: T }) }));
  const plain = await session(buildOnnx({ model: m }, 'f32'));
  const feeds = decoderFeeds(ids.i32, 1, T, 1, c.numKeyValueHeads, D);
  assert.deepEqual(data((await wide.run(feeds)).logits), data((await plain.run(feeds)).logits));
});

test('external data (weights past EXTERNAL_DATA_BYTES, forced here): model.onnx + model.onnx_data load by path to the same logits', async () => {
  const dir = tmpDir('onnx-ext');
  try {
    const m = tinyLlama();
    const file = path.join(dir, 'model.onnx');
    const written = exportOnnxFile(file, { model: m }, 'f32', { externalAt: 0 });
    assert.deepEqual(written.map((f) => path.basename(f)), ['model.onnx', 'model.onnx_data']);
    assert.ok(fs.statSync(file).size < 64 * 1024, 'the graph alone');
    const c = m.config, D = c.hiddenSize / c.numAttentionHeads, ids = randomIds(1, 5, c.vocabSize);
    const feeds = decoderFeeds(ids.i32, 1, 5, c.numHiddenLayers, c.numKeyValueHeads, D);
    const ext = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    const inline = await session(buildOnnx({ model: m }, 'f32'));
    assert.deepEqual(data((await ext.run(feeds)).logits), data((await inline.run(feeds)).logits));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
