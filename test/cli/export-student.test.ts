// `kdqat export --format gguf` of QAT students (quant/student.ts directories) on the llama.cpp
// grids: lossless — every weight the student quantized with q4_0/q8_0/tq2_0 is written in that
// block format and its GGUF blocks dequantize to exactly the student's deployed (dequantized)
// weights; a different block --type is refused; other rules are re-quantized with a note.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, readGgufTensorF32, type GgufFile } from '../../src/io/gguf.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { Tensor } from '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/rng.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import type { Model } from '../../src/models/model.js';
import { prepare } from '../../src/quant/prepare.js';
import { saveStudent } from '../../src/quant/student.js';
import type { QuantConfig } from '../../src/quant/config.js';
import { runExport, studentPlan } from '../../src/cli/export.js';
import { openModel } from '../../src/cli/open-model.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
let dir = '';
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-export-student-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const group = (size: number) => ({ kind: 'group', size }) as const;

/** A student of the SOTU teacher under `config`, its latent weights moved off the teacher's
 *  (as QAT would) so the deployed weights are not just RTN of the shipped ones. */
function makeStudent(name: string, config: QuantConfig): string {
  const m = loadModelDir(TEACHER);
  assert.ok(m.hf.arch === 'llama');
  const rng = new Rng(11);
  const params = new Map([...m.params].map(([n, p]) => [n, new Tensor(Float32Array.from(p.f32, (v) => v * (1 + 0.02 * rng.normal())), p.shape, true)]));
  const model: Model = { arch: 'llama', config: m.config as LlamaConfig, params };
  const out = path.join(dir, name);
  saveStudent(out, model, prepare(model, config), { tokenizerFrom: TEACHER, hf: m.hf });
  return out;
}

/** The GGUF tensor of HF weight `name` as float32, q/k rows un-permuted back to HF order. */
function weightFromGguf(g: GgufFile, name: string, cfg: LlamaConfig, expected: Tensor): boolean {
  const got = readGgufTensorF32(g, ggufTensorName(name));
  const [rows, cols] = expected.shape;
  const want = name.endsWith('q_proj.weight') ? permuteQK(expected.f32, rows, cols, cfg.numAttentionHeads)
    : name.endsWith('k_proj.weight') ? permuteQK(expected.f32, rows, cols, cfg.numKeyValueHeads) : expected.f32;
  return got.length === want.length && got.every((v, i) => v === want[i]);
}

for (const [rule, ftype] of [['q4_0', 2], ['q8_0', 7], ['tq2_0', 37]] as const) {
  test(`a ${rule} student exports losslessly (default --type = its format; ${rule === 'q4_0' ? 'q8_0 head' : 'full-precision head'})`, async () => {
    const block = { rule: { kind: rule }, granule: group(rule === 'tq2_0' ? 256 : 32) } as const;
    const config: QuantConfig = rule === 'q4_0'
      ? { weights: block, overrides: [{ pattern: 'lm_head', quant: { rule: { kind: 'q8_0' }, granule: group(32) } }] }
      : { weights: block };
    const sdir = makeStudent(rule, config);
    const out = path.join(dir, `${rule}.gguf`);
    await runExport({ model: sdir, format: 'gguf', out });
    const g = readGgufHeader(out);
    assert.equal(ggufGet(g, 'general.file_type'), ftype);
    const opened = openModel(sdir); // the deployed student: dequantized codes
    const cfg = opened.model.config as LlamaConfig;
    const quantized = [...opened.student!.weights.keys()];
    assert.equal(quantized.length, 7 * cfg.numHiddenLayers + (rule === 'q4_0' ? 1 : 0));
    for (const W of quantized) {
      const t = g.tensors.get(ggufTensorName(W))!;
      assert.equal(t.type, W === 'lm_head.weight' ? 'Q8_0' : rule.toUpperCase(), W);
      assert.ok(weightFromGguf(g, W, cfg, opened.loaded.params.get(W)!), `${W}: GGUF blocks do not dequantize to the student's weights`);
    }
    // A quantized tied head is untied in the student, so it has its own output.weight; else the
    // tied embedding is token_embd only, Q8_0 (llama.cpp's quantize would pick Q6_K/Q4_K).
    assert.equal(g.tensors.has('output.weight'), rule === 'q4_0');
    assert.equal(g.tensors.get('token_embd.weight')!.type, 'Q8_0');
  });
}

test('RTN q4_0 student ≡ RTN export of its latent weights: same bytes', async () => {
  const sdir = makeStudent('rtn', { weights: { rule: { kind: 'q4_0' }, granule: group(32) } });
  const a = path.join(dir, 'student.gguf'), b = path.join(dir, 'latent.gguf');
  await runExport({ model: sdir, format: 'gguf', out: a });
  // The latent weights are an ordinary model dir (config.json + model.safetensors): copy them
  // without quantization.json and export round-to-nearest.
  const plain = path.join(dir, 'rtn-latent');
  fs.cpSync(sdir, plain, { recursive: true });
  fs.rmSync(path.join(plain, 'quantization.json'));
  fs.rmSync(path.join(plain, 'model.quantized.safetensors'));
  await runExport({ model: plain, format: 'gguf', out: b, type: 'q4_0' });
  const ga = readGgufHeader(a), gb = readGgufHeader(b);
  for (const name of ['blk.0.attn_q.weight', 'blk.2.attn_k.weight', 'blk.3.ffn_down.weight', 'token_embd.weight']) {
    assert.deepEqual(readGgufTensor(ga, name), readGgufTensor(gb, name), name);
  }
});

test('student refusals and notes: another block --type, f32 keeps the exact values, sym rules refused or (--lossy) re-quantized with the error', async () => {
  const sdir = makeStudent('q4', { weights: { rule: { kind: 'q4_0' }, granule: group(32) } });
  await assert.rejects(runExport({ model: sdir, format: 'gguf', out: path.join(dir, 'x.gguf'), type: 'q8_0' }),
    /--type q8_0: the student .* has model\.layers\.0\.self_attn\.q_proj\.weight on the Q4_0 grid .*Use --type q4_0 \(lossless\), or f32\/f16/);
  assert.ok(!fs.existsSync(path.join(dir, 'x.gguf')));
  const f32 = path.join(dir, 'q4-f32.gguf');
  await runExport({ model: sdir, format: 'gguf', out: f32, type: 'f32' });
  const g = readGgufHeader(f32);
  const opened = openModel(sdir);
  const W = 'model.layers.1.mlp.up_proj.weight';
  assert.equal(g.tensors.get(ggufTensorName(W))!.type, 'F32');
  assert.ok(weightFromGguf(g, W, opened.model.config as LlamaConfig, opened.loaded.params.get(W)!));

  const sym = makeStudent('w4', { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } }, activations: { bits: 8 } });
  assert.throws(() => studentPlan(openModel(sym), 'Q4_0', false),
    /--type q4_0: 28 weight\(s\) of .* use sym quantization, which Q4_0 cannot hold exactly\. Formats that hold them exactly: --type f32 .*--format onnx .*--lossy/);
  await assert.rejects(runExport({ model: sym, format: 'safetensors', out: path.join(dir, 'w4-f16') }),
    /--dtype f16: f16 cannot hold the student's dequantized weights exactly .*--dtype f32, or --format onnx/);
  const plan = studentPlan(openModel(sym), 'Q4_0', false, true);
  assert.equal(plan.lossless.size, 0);
  assert.match(plan.notes.join('\n'), /28 weight\(s\) of .* use sym quantization, which Q4_0 cannot hold exactly; they are re-quantized to Q4_0 round-to-nearest .*not lossless: largest change \d\.\d\de-\d+ of max\|w\|/);
  assert.match(plan.notes.join('\n'), /8-bit activation quantization is not stored in GGUF/);
  assert.equal(studentPlan(openModel(sym), undefined, false).dtype, 'F32'); // no llama.cpp grid: default F32
});
