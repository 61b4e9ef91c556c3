// ONNX export of QAT students (quant/student.ts): the codes go in exactly — MatMulNBits (4-bit
// with the student's block size, zero points for asym; 2-bit for ternary/tq2_0; 8-bit for q8_0,
// q6_k) or int8/uint8 codes dequantized in the graph (K-quants with mins, odd groups) — and
// onnxruntime runs them to kdqat's deployed student's outputs. The packed MatMulNBits weights
// dequantize (by the operator's formula, and in onnxruntime itself) to exactly the student's
// weights. f16 of a student is refused (naming the formats that hold it) unless --lossy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad } from '../../src/tensor/index.js';
import { archOf } from '../../src/models/model.js';
import { buildOnnx, checkExact } from '../../src/io/onnx-export.js';
import { decodeModel, initializerData, OnnxGraph, DT, MS_DOMAIN } from '../../src/io/onnx.js';
import { storageOf, unpackNBits } from '../../src/io/onnx-weights.js';
import type { QuantConfig } from '../../src/quant/config.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { runExport } from '../../src/cli/export.js';
import { KvDecoder } from '../../src/models/generate.js';
import { intTensor } from '../../src/tensor/index.js';
import { relError } from '../util.js';
import { randomIds, tinyBert, tinyLlama, tmpDir } from '../quant/models.js';
import { checkDecoder, data, decoderFeeds, f32, i64, makeStudent, onnxBound, session } from './onnx-helpers.js';
import type { OpenedModel } from '../../src/cli/open-model.js';

const root = tmpDir('onnx-quant');
after(() => fs.rmSync(root, { recursive: true, force: true }));
const group = (size: number) => ({ kind: 'group', size }) as const;

/** Every MatMulNBits weight of the graph: its initializers unpack (the operator's formula) to
 *  the student's weight bit for bit, and onnxruntime's own MatMulNBits on an identity input
 *  returns the same values. Returns how many there were. */
async function checkPacked(bytes: Uint8Array, m: OpenedModel): Promise<number> {
  const model = decodeModel(bytes);
  let n = 0;
  for (const node of model.graph!.node!.filter((x) => x.opType === 'MatMulNBits')) {
    const attr = Object.fromEntries(node.attribute!.map((a) => [a.name, Number(a.i)]));
    const [, Bn, Sn, Zn] = node.input!;
    const B = initializerData(model, Bn).data as Uint8Array, S = initializerData(model, Sn).data as Float32Array;
    const Z = Zn ? initializerData(model, Zn).data as Uint8Array : null;
    const W = Bn.replace(/\.qweight$/, '');
    const want = m.model.params.get(W)!.f32;
    const got = unpackNBits(B, S, Z, attr.N, attr.K, attr.bits, attr.block_size);
    assert.ok(got.every((v, i) => v === want[i]), `${W}: packed codes do not dequantize to the student's weight`);
    // onnxruntime's dequantization: Y = I·Ŵᵀ (each output one product by 1 plus zeros: exact).
    const g = new OnnxGraph();
    const A = g.input('A', DT.FLOAT, [attr.K, attr.K]);
    const ins = [A, g.init('B', DT.UINT8, initializerData(model, Bn).dims, B), g.init('S', DT.FLOAT, [S.length], S)];
    if (Z) ins.push(g.init('Z', DT.UINT8, [Z.length], Z));
    g.output('Y', g.op('MatMulNBits', ins, { K: attr.K, N: attr.N, bits: attr.bits, block_size: attr.block_size, accuracy_level: 1 }, { domain: MS_DOMAIN }), DT.FLOAT, [attr.K, attr.N]);
    const eye = new Float32Array(attr.K * attr.K);
    for (let i = 0; i < attr.K; i++) eye[i * attr.K + i] = 1;
    const Y = data((await (await session(g.encode())).run({ A: f32(eye, [attr.K, attr.K]) })).Y);
    for (let r = 0; r < attr.N; r++) {
      // === : a product cannot tell −0 from +0 (Y sums 1·ŵ with +0 terms), nor can the matmul it feeds.
      for (let k = 0; k < attr.K; k++) assert.ok(Y[k * attr.N + r] === want[r * attr.K + k], `${W}[${r}, ${k}]: onnxruntime dequantizes to ${Y[k * attr.N + r]}, not ${want[r * attr.K + k]}`);
    }
    n++;
  }
  return n;
}

const opsOf = (bytes: Uint8Array): Set<string> => new Set(decodeModel(bytes).graph!.node!.map((x) => x.opType!));

for (const [name, config, bits] of [
  ['sym 4-bit group 32 (MatMulNBits, default zero point)', { weights: { rule: { kind: 'sym', bits: 4 }, granule: group(32) } }, 4],
  ['asym 4-bit group 16 (MatMulNBits zero points)', { weights: { rule: { kind: 'asym', bits: 4 }, granule: group(16) } }, 4],
  ['q4_0 (MatMulNBits, blocks of 32)', QUANT_PRESETS.q4_0, 4],
  ['sym 4-bit per channel, lm_head 8-bit', QUANT_PRESETS['w4-channel-head8'], 4],
  ['sym 3-bit per channel (in 4-bit MatMulNBits)', QUANT_PRESETS['w3-channel'], 4],
  ['asym 8-bit group 32 (MatMulNBits 8-bit zero points)', { weights: { rule: { kind: 'asym', bits: 8 }, granule: group(32) } }, 8],
  ['ternary (twn, per channel: MatMulNBits 2-bit)', QUANT_PRESETS.twn, 2],
  ['sym 2-bit group 64 (MatMulNBits 2-bit)', { weights: { rule: { kind: 'sym', bits: 2 }, granule: group(64) } }, 2],
  ['asym 3-bit group 48 (not a power of two: int8 codes in the graph)', { weights: { rule: { kind: 'asym', bits: 3 }, granule: group(48) } }, 0],
] as [string, QuantConfig, number][]) {
  test(`LLaMA student ${name}: onnxruntime = kdqat (full + KV step), codes exact`, async () => {
    const m = makeStudent(root, name.replace(/\W+/g, '_'), tinyLlama(name.includes('48') ? { hiddenSize: 96, intermediateSize: 192, numAttentionHeads: 4, numKeyValueHeads: 2 } : {}), config);
    const bytes = buildOnnx({ model: m.model, student: m.student }, 'quantized');
    await checkDecoder(m.model, bytes, name);
    const packed = await checkPacked(bytes, m);
    if (bits) {
      assert.equal(packed, m.student!.weights.size, 'every quantized weight is a MatMulNBits');
      const bitsSeen = new Set(decodeModel(bytes).graph!.node!.filter((x) => x.opType === 'MatMulNBits').map((x) => Number(x.attribute!.find((a) => a.name === 'bits')!.i)));
      assert.ok(bitsSeen.has(bits), `bits ${[...bitsSeen]}`);
    } else {
      assert.equal(packed, 0);
      assert.ok(opsOf(bytes).has('Cast'));
    }
    // The f32 model of the same student gives the same outputs.
    await checkDecoder(m.model, buildOnnx({ model: m.model, student: m.student }, 'f32'), `${name} f32`);
  });
}

test('LLaMA K-quant and llama.cpp-grid students: q4_k (codes + mins in the graph), q6_k / q3_k (MatMulNBits 8/4-bit, blocks of 16), tq2_0 (2-bit, 256)', async () => {
  const base = tinyLlama({ hiddenSize: 256, intermediateSize: 256, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2 });
  for (const [preset, nbits] of [['q4_k', 0], ['q6_k', 8], ['q3_k', 4], ['tq2_0', 2]] as const) {
    const m = makeStudent(root, preset, base, QUANT_PRESETS[preset]);
    const bytes = buildOnnx({ model: m.model, student: m.student }, 'quantized');
    await checkDecoder(m.model, bytes, preset);
    const packed = await checkPacked(bytes, m);
    assert.equal(packed, nbits ? m.student!.weights.size : 0, preset);
    const st = storageOf(m.student!.weights.values().next().value!.quant, 256);
    assert.equal(st.kind === 'nbits' ? st.bits : 0, nbits, preset);
  }
});

test('BERT ternary student with 8-bit activations (twn-a8-emb: QuantizeLinear/DequantizeLinear, quantized word embeddings): onnxruntime = kdqat', async () => {
  const m = makeStudent(root, 'twn-a8', tinyBert({ mlm: false, classifier: true }), QUANT_PRESETS['twn-a8-emb']);
  assert.ok(m.weight && m.student?.activations?.bits === 8);
  const bytes = buildOnnx({ model: m.model, student: m.student }, 'quantized');
  const ops = opsOf(bytes);
  assert.ok(ops.has('QuantizeLinear') && ops.has('DequantizeLinear') && ops.has('MatMulNBits'), [...ops].join(','));
  const c = m.model.config, B = 2, T = 8;
  const ids = randomIds(B, T, c.vocabSize);
  const want = noGrad(() => archOf(m.model).forward(m.model, { ids, mask: intTensor(new Int32Array(B * T).fill(1), [B, T]) }, { weight: m.weight }).logits.f32);
  for (const dtype of ['quantized', 'f32'] as const) {
    const s = await session(buildOnnx({ model: m.model, student: m.student }, dtype));
    const r = await s.run({ input_ids: i64(ids.i32, [B, T]), attention_mask: i64(new Array(B * T).fill(1), [B, T]), token_type_ids: i64(new Array(B * T).fill(0), [B, T]) });
    const e = relError(data(r.logits), want);
    assert.ok(e <= onnxBound(c.numHiddenLayers, c.intermediateSize), `${dtype}: rel error ${e}`);
  }
});

test('LLaMA student with 8-bit activations: onnxruntime = kdqat, full forward, and prefill + one cached step = kdqat\'s KV decoder (the step quantizes the new token alone)', async () => {
  const m = makeStudent(root, 'w4a8', tinyLlama(), { weights: { rule: { kind: 'sym', bits: 4 }, granule: group(32) }, activations: { bits: 8 } });
  assert.ok(m.model.arch === 'llama' && m.weight);
  const c = m.model.config, B = 1, T = 7, V = c.vocabSize, D = c.hiddenSize / c.numAttentionHeads, L = c.numHiddenLayers;
  const bound = onnxBound(L, c.intermediateSize);
  const ids = randomIds(B, T, V);
  const want = noGrad(() => archOf(m.model).forward(m.model, { ids }, { weight: m.weight }).logits.f32);
  const s = await session(buildOnnx({ model: m.model, student: m.student }, 'quantized'));
  const r = await s.run(decoderFeeds(ids.i32, B, T, L, c.numKeyValueHeads, D));
  assert.ok(relError(data(r.logits), want) <= bound, `full: rel error ${relError(data(r.logits), want)}`);
  // The per-tensor scale of a cached step covers the new token only, in kdqat's KvDecoder too.
  const kv = new KvDecoder(m.model, m.weight);
  const prompt = Array.from(ids.i32.subarray(0, T - 1));
  const wantPre = noGrad(() => kv.step(prompt));
  const wantStep = noGrad(() => kv.step(ids.i32[T - 1]));
  const r1 = await s.run(decoderFeeds(Int32Array.from(prompt), B, T - 1, L, c.numKeyValueHeads, D));
  assert.ok(relError(data(r1.logits).subarray((T - 2) * V), wantPre) <= bound, 'prefill');
  const r2 = await s.run(decoderFeeds(Int32Array.of(ids.i32[T - 1]), B, 1, L, c.numKeyValueHeads, D, r1, T - 1));
  const e = relError(data(r2.logits), wantStep);
  assert.ok(e <= bound, `cached step: rel error ${e}`);
});

test('bad input: --dtype f16 of a student is refused naming the exact formats; --lossy exports and reports the error', async () => {
  const dir = path.join(root, 'f16');
  const m = makeStudent(root, 'f16', tinyLlama(), { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } } });
  assert.throws(() => checkExact({ model: m.model, student: m.student }, 'f16', false), /--dtype quantized .* or --dtype f32 .*--lossy/);
  await assert.rejects(runExport({ model: m.dir, format: 'onnx', out: `${dir}.onnx`, dtype: 'f16' }), /f16 cannot hold the student's dequantized weights exactly.*--dtype quantized/);
  const notes = checkExact({ model: m.model, student: m.student }, 'f16', true);
  assert.match(notes[0], /max \|Δ\| \d\.\d+e-\d+, RMS \d\.\d+e-\d+ \([\d,]+ of [\d,]+ values differ\)/);
  await runExport({ model: m.dir, format: 'onnx', out: `${dir}.onnx`, dtype: 'f16', lossy: true });
  assert.ok(fs.statSync(`${dir}.onnx`).size > 0);
  await assert.rejects(runExport({ model: m.dir, format: 'onnx', out: path.join(root, 'x.onnx'), dtype: 'int3' }), /onnx export supports f32, f16, quantized/);
});
