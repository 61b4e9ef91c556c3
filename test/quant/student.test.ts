// prepare ≡ convert end to end: the logits of the fake-quantized model (prepared.weight over the
// latent weights) are bitwise those of the model loaded back from the saved student directory
// (dequantized codes), for every kind of rule, both architectures, tied heads and 8-bit
// activations; plus the student directory's layout and its refusal to overwrite.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad, type Tensor } from '../../src/tensor/index.js';
import type { WeightFn } from '../../src/nn/params.js';
import { lmLogits, type Model } from '../../src/models/model.js';
import { bertClassify, bertEncode } from '../../src/models/bert.js';
import { QUANT_PRESETS, type QuantConfig } from '../../src/quant/config.js';
import { prepare, convert } from '../../src/quant/prepare.js';
import { saveStudent, loadStudent, isStudentDir, QUANT_JSON, QUANT_WEIGHTS } from '../../src/quant/student.js';
import { openModel } from '../../src/cli/open-model.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { assertBitwise, randomIds, tinyBert, tinyLlama, tmpDir } from './models.js';

const root = tmpDir('student');
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => path.join(root, `s${n++}`);

function logits(model: Model, ids: Tensor, weight: WeightFn | undefined): Float32Array {
  return noGrad(() => {
    if (model.arch === 'bert' && model.heads.classifier) {
      const enc = bertEncode(model.params, model.config, ids, { weight });
      return bertClassify(model.params, model.config, enc, { weight }).f32;
    }
    return lmLogits(model, ids, { weight }).f32;
  });
}

/** Saves, reloads through open-model (what `kdqat eval` does) and compares the logits bitwise. */
function roundTrip(model: Model, config: QuantConfig, what: string, perturbSteps = false): { dir: string; quantized: number } {
  const p = prepare(model, config);
  if (perturbSteps) { // as if LSQ had trained them: the codes must use the trained steps
    let k = 0;
    for (const s of p.quantParams.values()) for (let i = 0; i < s.size; i++) s.f32[i] *= 1 + 0.07 * Math.sin(++k);
  }
  const ids = randomIds(2, 9, model.config.vocabSize);
  const want = logits(model, ids, p.weight);
  const plain = logits(model, ids, undefined);
  assert.ok(want.some((v, i) => v !== plain[i]), `${what}: quantization should change the logits`);
  const dir = fresh();
  saveStudent(dir, model, p);
  assert.ok(isStudentDir(dir));
  const m = openModel(dir);
  assert.ok(m.student, `${what}: opened as a student`);
  assertBitwise(logits(m.model, ids, m.weight), want, `${what}: student logits vs prepared`);
  // --latent gives the latent weights back bitwise.
  const lat = openModel(dir, { latent: true });
  for (const [name, t] of model.params) assertBitwise(lat.model.params.get(name)!.f32, t.f32, `${what}: latent ${name}`);
  assertBitwise(logits(lat.model, ids, undefined), plain, `${what}: latent logits`);
  return { dir, quantized: p.quantized.size };
}

const llamaCases: [string, QuantConfig][] = [
  ['w4-channel', QUANT_PRESETS['w4-channel']],
  ['w3-channel', QUANT_PRESETS['w3-channel']],
  ['w4-g32', QUANT_PRESETS['w4-g32']],
  ['w4-tensor', QUANT_PRESETS['w4-tensor']],
  ['w4-channel-asym', QUANT_PRESETS['w4-channel-asym']],
  ['asym 3-bit groups of 32', { weights: { rule: { kind: 'asym', bits: 3 }, granule: { kind: 'group', size: 32 } } }],
  ['twn', QUANT_PRESETS.twn],
  ['q4_0', QUANT_PRESETS.q4_0],
  ['q8_0', QUANT_PRESETS.q8_0],
  ['w4-channel-head8', QUANT_PRESETS['w4-channel-head8']],
];

for (const [name, cfg] of llamaCases) {
  test(`student round trip bitwise: LLaMA ${name}`, () => {
    const r = roundTrip(tinyLlama(), cfg, name);
    assert.equal(r.quantized, name.includes('head8') ? 15 : 14);
  });
}

test('student round trip bitwise: LSQ steps (trained) sym and asym, saved and used for the codes', () => {
  const model = tinyLlama();
  roundTrip(model, QUANT_PRESETS['w4-channel-lsq'], 'w4-channel-lsq', true);
  const asymLsq: QuantConfig = { weights: { rule: { kind: 'asym', bits: 4 }, granule: { kind: 'group', size: 32 }, lsq: true } };
  const { dir } = roundTrip(model, asymLsq, 'asym lsq', true);
  const s = loadStudent(dir);
  assert.equal(s.quant.steps.size, 14);
  const st = s.quant.steps.get('model.layers.1.mlp.down_proj.weight.step')!;
  assert.deepEqual(st.shape, [64 * 128 / 32]);
  // Reloaded steps restart QAT where it left off: the same prepared logits.
  const p2 = prepare(model, asymLsq, { steps: s.quant.steps });
  assertBitwise(p2.quantParams.get('model.layers.1.mlp.down_proj.weight.step')!.f32, st.f32, 'reloaded step');
});

test('student round trip bitwise: tq2_0 (blocks of 256)', () => {
  roundTrip(tinyLlama({ hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 4, vocabSize: 48 }), QUANT_PRESETS.tq2_0, 'tq2_0');
});

test('student round trip bitwise: the K-quants (super-blocks of 256; mins stored for q2_k/q4_k/q5_k)', () => {
  const model = tinyLlama({ hiddenSize: 256, intermediateSize: 512, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 4, vocabSize: 48 });
  for (const k of ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const) {
    const { dir } = roundTrip(model, QUANT_PRESETS[k], k);
    const f = openSafetensors(path.join(dir, QUANT_WEIGHTS));
    try {
      const sub = k === 'q4_k' || k === 'q5_k' ? 32 : 16;
      assert.deepEqual(f.info('model.layers.0.mlp.up_proj.weight.scales').shape, [512 * 256 / sub]);
      assert.equal(f.infos.has('model.layers.0.mlp.up_proj.weight.mins'), k !== 'q3_k' && k !== 'q6_k', k);
    } finally {
      f.close();
    }
  }
});

test('tied LLaMA head: quantizing lm_head quantizes the head only; the student is untied on load', () => {
  const model = tinyLlama({ tieWordEmbeddings: true });
  const cfg = QUANT_PRESETS['w4-channel-head8'];
  const p = prepare(model, cfg);
  assert.deepEqual(p.quantized.get('model.embed_tokens.weight'), { rule: { kind: 'sym', bits: 8 }, granule: { kind: 'channel' } });
  assert.equal(p.targets.get('model.embed_tokens.weight')!.logical, 'lm_head.weight');
  // The embedding lookup reads the latent parameter: the hidden state after the embedding is FP.
  const { dir } = roundTrip(model, cfg, 'tied head8');
  const f = openSafetensors(path.join(dir, QUANT_WEIGHTS));
  try {
    assert.ok(f.infos.has('lm_head.weight.codes'));
    assert.equal(f.info('lm_head.weight.codes').dtype, 'I8');
    assert.ok(!f.infos.has('model.embed_tokens.weight.codes'));
  } finally { f.close(); }
  const m = openModel(dir);
  assert.equal((m.model.config as { tieWordEmbeddings: boolean }).tieWordEmbeddings, false);
  assertBitwise(m.model.params.get('model.embed_tokens.weight')!.f32, model.params.get('model.embed_tokens.weight')!.f32, 'embedding stays FP');
  // The latent directory itself stays tied, as the source model was.
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).tie_word_embeddings, true);
});

test('student round trip bitwise: BERT classifier, twn and twn-a8 (8-bit activations)', () => {
  const model = tinyBert({ mlm: false, classifier: true });
  roundTrip(model, QUANT_PRESETS.twn, 'bert twn');
  const { dir } = roundTrip(model, QUANT_PRESETS['twn-a8'], 'bert twn-a8');
  const m = openModel(dir);
  assert.deepEqual(m.student!.activations, { bits: 8, clip: 2.5 });
  assert.ok(m.weight?.input, 'activation quantization is part of the opened student');
});

test('student round trip bitwise: BERT MLM with the word embedding ternary per row (lookup and tied decoder)', () => {
  const model = tinyBert({ mlm: true, classifier: false });
  const r = roundTrip(model, QUANT_PRESETS['twn-a8-emb'], 'bert twn-a8-emb');
  assert.equal(r.quantized, 13);
  const f = openSafetensors(path.join(r.dir, QUANT_WEIGHTS));
  try {
    assert.deepEqual(f.info('bert.embeddings.word_embeddings.weight.scales').shape, [80]); // one α per row
    assert.deepEqual(JSON.parse(f.metadata['bert.embeddings.word_embeddings.weight']), { rule: { kind: 'twn' }, granule: { kind: 'channel' }, clip: 2.5 });
  } finally { f.close(); }
});

test('student layout: codes/scales/zeros dtypes and shapes, metadata, quantization.json, latent HF dir', () => {
  const model = tinyLlama();
  const cfg: QuantConfig = { weights: { rule: { kind: 'asym', bits: 4 }, granule: { kind: 'group', size: 32 } } };
  const p = prepare(model, cfg);
  const dir = fresh();
  saveStudent(dir, model, p);
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, ['.kdqat-output', 'config.json', 'generation_config.json', 'model.quantized.safetensors', 'model.safetensors', 'quantization.json']);
  const conv = convert(model, p);
  const f = openSafetensors(path.join(dir, QUANT_WEIGHTS));
  try {
    assert.equal(f.metadata.format, 'kdqat-quantized');
    assert.equal(f.metadata.version, '1');
    assert.equal(f.metadata.activations, 'null');
    const W = 'model.layers.0.mlp.down_proj.weight'; // (64, 128)
    assert.equal(f.info(`${W}.codes`).dtype, 'U8');
    assert.deepEqual(f.info(`${W}.codes`).shape, [64, 128]);
    assert.equal(f.info(`${W}.scales`).dtype, 'F32');
    assert.deepEqual(f.info(`${W}.scales`).shape, [64, 4]);
    assert.equal(f.info(`${W}.zeros`).dtype, 'I32');
    assertBitwise(f.read(`${W}.codes`).data as Uint8Array, conv.get(W)!.codes.codes, 'codes');
    assertBitwise(f.read(`${W}.zeros`).data as Int32Array, conv.get(W)!.codes.zeros!, 'zeros');
    assert.equal(f.names().length, 14 * 3);
  } finally { f.close(); }
  const qj = JSON.parse(fs.readFileSync(path.join(dir, QUANT_JSON), 'utf8'));
  assert.equal(qj.format, 'kdqat-quantization');
  assert.equal(qj.version, 1);
  assert.deepEqual(qj.config, cfg);
  assert.deepEqual(qj.weights['model.layers.0.mlp.down_proj.weight'], { param: 'model.layers.0.mlp.down_proj.weight', shape: [64, 128], quant: cfg.weights });
  // A plain loader reads the latent weights (F32, bitwise).
  const plain = loadModelDir(dir);
  for (const [name, t] of model.params) assertBitwise(plain.params.get(name)!.f32, t.f32, name);
});

test('student dir: refuses an existing directory without force; force replaces only a directory kdqat wrote', () => {
  const model = tinyLlama();
  const p = prepare(model, QUANT_PRESETS['w4-channel']);
  const dir = fresh();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'mine');
  assert.throws(() => saveStudent(dir, model, p), /already exists; refusing to overwrite it \(use --force\)/);
  assert.throws(() => saveStudent(dir, model, p, { force: true }), /exists and was not written by kdqat/);
  assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  fs.rmSync(dir, { recursive: true });
  saveStudent(dir, model, p);
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'inside a student');
  saveStudent(dir, model, p, { force: true });
  assert.ok(isStudentDir(dir));
  assert.ok(!fs.existsSync(path.join(dir, 'keep.txt')));
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.includes('.tmp')), [], 'no temp leftovers');
});

test('student dir: a damaged quantized file is refused with the file named', () => {
  const model = tinyLlama();
  const dir = fresh();
  saveStudent(dir, model, prepare(model, QUANT_PRESETS['w4-channel']));
  const qj = path.join(dir, QUANT_JSON);
  const j = JSON.parse(fs.readFileSync(qj, 'utf8'));
  j.weights['model.layers.0.self_attn.q_proj.weight'].quant.rule.bits = 12;
  fs.writeFileSync(qj, JSON.stringify(j));
  assert.throws(() => loadStudent(dir), (e: Error) => e.message.includes(qj) && /bits/.test(e.message));
  fs.rmSync(path.join(dir, QUANT_WEIGHTS));
  j.weights['model.layers.0.self_attn.q_proj.weight'].quant.rule.bits = 4;
  fs.writeFileSync(qj, JSON.stringify(j));
  assert.throws(() => openModel(dir), /no model\.quantized\.safetensors/);
});
