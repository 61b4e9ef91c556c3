// KD-QAT on every decoder family (issue 11): the PyTorch-reference checkpoints of
// test/fixtures/decoders/ (scripts/ref_decoders.py) are the teachers; a few steps of the QAT
// trainer with --freeze ov and every loss term a decoder has a tap for; then the student is
// evaluated (perplexity, KL) and generates, with the KV cache giving what the full forward
// gives. ov-freeze acts on exactly the V rows: for Phi-3, whose checkpoint stores q, k, v in one
// qkv_proj, the student's v rows of it are the teacher's bit for bit while its q and k rows moved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelDir, asModel, saveModelDir } from '../../src/io/model-dir.js';
import { prepare } from '../../src/quant/prepare.js';
import { noGrad } from '../../src/tensor/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { generate } from '../../src/models/generate.js';
import { saveTokenizer, trainByteLevelBpe } from '../../src/tokenize/index.js';
import { PRETRAIN_DEFAULTS, runPretrain } from '../../src/train/pretrain.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import type { Architecture } from '../../src/models/architecture.js';
import { decoderConfig, silentReporter, tmpDir } from './qat-fixture.js';
import { smallTextFile } from '../cli/helpers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/decoders/', import.meta.url));
// One fixture per family (the llama rope-scaling variants share the forward; llama3 stands for
// them), and mistral-swa: a window (8) shorter than the training sequences (16) and generation.
const FAMILIES = ['smollm2', 'llama3', 'mistral', 'mistral-swa', 'qwen2', 'qwen3', 'phi3', 'seed-oss', 'smollm3'];
const ALL_TERMS = 'pred=1,ce=0.5,rep=1,attn_score=0.1,attn_map=1,attn_out=1,context=1,sa_out=1';

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

for (const name of FAMILIES) {
  test(`${name}: KD-QAT (ov-freeze, every loss term) runs; the student evaluates and generates`, () => {
    const root = tmpDir(`qat-${name}`);
    try {
      const teacher = path.join(root, 'teacher');
      fs.cpSync(path.join(FIXTURES, name), teacher, { recursive: true });
      for (const f of ['reference.safetensors', 'grads.safetensors']) fs.rmSync(path.join(teacher, f));
      const text = smallTextFile(root);
      const t0 = loadModelDir(teacher);
      saveTokenizer(path.join(teacher, 'tokenizer.json'), trainByteLevelBpe([fs.readFileSync(text, 'utf8')], { vocabSize: t0.hf.config.vocabSize }));
      const out = path.join(root, 'out');
      const s = runQat({
        out, reporter: silentReporter,
        config: decoderConfig({ dir: teacher, text }, { quant: 'w4-channel', freeze: 'ov', loss: ALL_TERMS, steps: 3, seqLen: 16, batch: 2, evalEvery: 0, saveEvery: 3, logEvery: 1, evalWindows: 2 }),
      });
      assert.equal(s.arch, t0.arch);
      assert.equal(s.steps, 3);
      for (const k of ['valid_ppl', 'valid_kl']) assert.ok(Number.isFinite(s.final[k]) && Number.isFinite(s.rtn[k]), `${k}: rtn ${s.rtn[k]}, final ${s.final[k]}`);
      // ov-freeze: the latent v_proj / o_proj weights are the teacher's; q_proj moved.
      const ck = readCheckpoint(path.join(out, 'checkpoint'));
      for (let l = 0; l < t0.hf.config.numHiddenLayers; l++) {
        for (const m of ['v_proj', 'o_proj', 'q_proj']) {
          const n = `model.layers.${l}.self_attn.${m}.weight`;
          assert.equal(same(ck.params.get(n)!, t0.params.get(n)!.f32), m !== 'q_proj', `${n} ${m === 'q_proj' ? 'moved' : 'frozen'}`);
        }
      }
      // The student directory is a checkpoint of the family (Phi-3: fused again), and loads.
      const student = loadModelDir(path.join(out, STUDENT_DIR));
      assert.equal(student.arch, t0.arch);
      if (name === 'phi3') {
        // model.safetensors stores qkv_proj again; its last Hkv·D rows are the student's v_proj.
        const stored = readSafetensors(path.join(out, STUDENT_DIR, 'model.safetensors')).tensors;
        const qkv = stored.get('model.layers.0.self_attn.qkv_proj.weight')!;
        const v = student.params.get('model.layers.0.self_attn.v_proj.weight')!.f32;
        assert.ok(same((qkv.data as Float32Array).subarray(qkv.data.length - v.length), v), 'qkv_proj ends with v_proj');
        assert.ok(!stored.has('model.layers.0.self_attn.v_proj.weight'));
      }
      const model = asModel(student);
      const prompt = [72, 101, 108, 108, 111];
      const cached = generate(model, prompt, { maxNewTokens: 6 });
      const full = generate(model, prompt, { maxNewTokens: 6, cache: false });
      assert.equal(cached.tokens.length, 6);
      assert.deepEqual(cached.tokens, full.tokens, 'KV-cache generation = full-forward generation');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
}

test('every decoder family pretrains from scratch (kdqat pretrain --arch): the loss falls, the directory loads back as the family', () => {
  const root = tmpDir('pretrain-decoders');
  try {
    const text = smallTextFile(root);
    const decoders = Object.values(ARCHITECTURES as Record<string, Architecture>).filter((a) => a.kind === 'decoder').map((a) => a.name);
    assert.ok(decoders.length >= 5, decoders.join(', '));
    for (const arch of decoders) {
      const out = path.join(root, arch);
      const s = runPretrain({
        out, reporter: silentReporter,
        config: {
          ...PRETRAIN_DEFAULTS, arch: arch as never, corpus: [text], hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64,
          seq: 32, vocab: 300, steps: 8, batch: 4, lr: 3e-3, warmup: 1, evalEvery: 0, evalWindows: 4, saveEvery: 0, logEvery: 1,
        },
      });
      assert.equal(s.arch, arch);
      const m = loadModelDir(out);
      assert.equal(m.arch, arch);
      const log = fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => Number.isFinite(l.loss));
      assert.ok(log.at(-1).loss < log[0].loss, `${arch}: loss ${log[0].loss} → ${log.at(-1).loss}`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('phi3: a quantization rule on v_proj acts on exactly the V rows of the stored qkv_proj (per-row granules, so the slice quantizes as those rows would in place)', () => {
  const root = tmpDir('phi3-vq');
  try {
    const src = path.join(FIXTURES, 'phi3');
    const model = asModel(loadModelDir(src));
    const prepared = prepare(model, { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } }, modules: ['v_proj'] });
    const L = model.config.numHiddenLayers;
    assert.deepEqual([...prepared.quantized.keys()], Array.from({ length: L }, (_, l) => `model.layers.${l}.self_attn.v_proj.weight`));
    const params = new Map(model.params);
    for (const n of prepared.quantized.keys()) params.set(n, noGrad(() => prepared.weight(n, model.params.get(n)!)));
    const out = path.join(root, 'vq');
    saveModelDir(out, { config: loadModelDir(src).hf, params, dtype: 'F32' });
    const before = readSafetensors(path.join(src, 'model.safetensors')).tensors;
    const after = readSafetensors(path.join(out, 'model.safetensors')).tensors;
    for (const [n, t] of before) {
      const a = after.get(n)!.data as Float32Array, b = t.data as Float32Array;
      if (!n.endsWith('qkv_proj.weight')) { assert.ok(same(a, b), `${n} unchanged`); continue; }
      const l = Number(/layers\.(\d+)\./.exec(n)![1]);
      const v = params.get(`model.layers.${l}.self_attn.v_proj.weight`)!.f32;
      const qk = b.length - v.length;
      assert.ok(same(a.subarray(0, qk), b.subarray(0, qk)), `${n}: q and k rows untouched`);
      assert.ok(same(a.subarray(qk), v), `${n}: the V rows are the quantized v_proj`);
      assert.ok(!same(a.subarray(qk), b.subarray(qk)), `${n}: the V rows changed`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
