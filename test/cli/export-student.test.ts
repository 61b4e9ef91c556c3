// `kdqat export --format gguf` of QAT students (quant/student.ts directories) on the llama.cpp
// grids: lossless — every weight the student quantized with q4_0/q8_0/tq2_0 is written in that
// block format and its GGUF blocks dequantize to exactly the student's deployed (dequantized)
// weights; a --type that cannot hold a student's quantizer is refused naming the formats that can,
// or written with --lossy, which reports the error; safetensors writes the deployed weights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ggufGet, ggufTensorName, permuteQK, readGgufHeader, readGgufTensor, readGgufTensorF32, type GgufFile } from '../../src/io/gguf.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { Tensor, withGridGemm } from '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/rng.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import type { Model } from '../../src/models/model.js';
import { prepare } from '../../src/quant/prepare.js';
import { saveStudent } from '../../src/quant/student.js';
import type { QuantConfig } from '../../src/quant/config.js';
import { runExport, studentPlan } from '../../src/cli/export.js';
import { halfRoundTrip } from '../../src/quant/exactness.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { lmLogits } from '../../src/models/model.js';
import { openModel } from '../../src/cli/open-model.js';
import { tmpDir } from '../util.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
let dir = '';
before(() => { dir = tmpDir('export-student'); });
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

/** runExport with its notes collected. */
async function exportNotes(opts: Parameters<typeof runExport>[0]): Promise<string> {
  const notes: string[] = [];
  await runExport({ ...opts, onNote: (n) => notes.push(n) });
  return notes.join('\n');
}
/** "max |Δ| 1.234e-3, RMS 5.678e-4": the figures a --lossy note reports. */
const ERROR_FIGURES = /max \|Δ\| (\d\.\d+e[-+]\d+), RMS (\d\.\d+e[-+]\d+) \(([\d,]+) of ([\d,]+) values differ\)/;

test('GGUF: a --type that cannot hold the student\'s grid is refused naming the formats that can; --lossy re-quantizes and reports the error', async () => {
  const sdir = makeStudent('q4', { weights: { rule: { kind: 'q4_0' }, granule: group(32) } });
  await assert.rejects(runExport({ model: sdir, format: 'gguf', out: path.join(dir, 'x.gguf'), type: 'q8_0' }),
    /--type q8_0: the student .* has model\.layers\.0\.self_attn\.q_proj\.weight on the Q4_0 grid .*Q8_0 would re-quantize it\. Formats that hold q4_0 \(blocks of 32\) exactly: --format gguf --type q4_0; --format gguf --type f32; --format safetensors --dtype f32; --format onnx; or pass --lossy/);
  assert.ok(!fs.existsSync(path.join(dir, 'x.gguf')));
  const lossy = await exportNotes({ model: sdir, format: 'gguf', out: path.join(dir, 'q4-as-q8.gguf'), type: 'q8_0', lossy: true });
  const m = ERROR_FIGURES.exec(lossy);
  assert.ok(m, `a --lossy note with the error figures: ${lossy}`);
  assert.ok(Number(m[1]) > 0 && Number(m[2]) > 0 && Number(m[2]) <= Number(m[1]), lossy);
  assert.equal(m[4], (4 * (4 * 256 * 256 + 3 * 256 * 768)).toLocaleString('en-US'), 'every projection weight compared');
  // F32 holds it exactly, and says so.
  const f32 = path.join(dir, 'q4-f32.gguf');
  assert.match(await exportNotes({ model: sdir, format: 'gguf', out: f32, type: 'f32' }), /holds the student's 28 quantized weight\(s\) exactly/);
  const g = readGgufHeader(f32);
  const opened = openModel(sdir);
  const W = 'model.layers.1.mlp.up_proj.weight';
  assert.equal(g.tensors.get(ggufTensorName(W))!.type, 'F32');
  assert.ok(weightFromGguf(g, W, opened.model.config as LlamaConfig, opened.loaded.params.get(W)!));

  // Per-channel 4-bit (and an asymmetric grid): no GGUF block type holds them.
  for (const rule of [{ kind: 'sym', bits: 4 }, { kind: 'asym', bits: 4 }] as const) {
    const sym = makeStudent(`w4-${rule.kind}`, { weights: { rule, granule: { kind: 'channel' } }, activations: { bits: 8 } });
    for (const type of ['q4_0', 'q4_k', 'q4_k_m']) {
      await assert.rejects(runExport({ model: sym, format: 'gguf', out: path.join(dir, 'y.gguf'), type }),
        new RegExp(`--type ${type}: .*${rule.kind} 4-bit per channel.*Formats that hold ${rule.kind} 4-bit per channel exactly: ` +
          '--format gguf --type f32; --format safetensors --dtype f32; --format onnx; or pass --lossy'), `${rule.kind} → ${type}`);
    }
    const notes = await exportNotes({ model: sym, format: 'gguf', out: path.join(dir, `w4-${rule.kind}.gguf`), type: 'q4_0', lossy: true });
    assert.match(notes, /--lossy: they are re-quantized to Q4_0/);
    assert.match(notes, ERROR_FIGURES);
    assert.match(notes, /8-bit activation quantization is not stored in GGUF/);
    assert.equal(studentPlan(openModel(sym), undefined, false).dtype, 'F32'); // no llama.cpp grid: default F32
  }
});

test('safetensors: a student exports its deployed (dequantized) weights by default, which reload to the fake-quantized forward bitwise; --latent the latent ones', async () => {
  for (const [name, config] of [['w4', { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } } }],
    ['q4k', { weights: { rule: { kind: 'q4_k' }, granule: group(256) } }]] as [string, QuantConfig][]) {
    const sdir = makeStudent(`st-${name}`, config);
    const out = path.join(dir, `st-${name}-out`);
    assert.match(await exportNotes({ model: sdir, format: 'safetensors', out }), /^$/); // F32: exact, nothing to say
    assert.equal(readSafetensors(path.join(out, 'model.safetensors')).tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'F32');
    const lat = openModel(sdir, { latent: true });
    const ids = intTensor(Array.from({ length: 12 }, (_, i) => (i * 37) % 4096), [1, 12]);
    // The exported weights are ŵ's values; compare both forwards on the float32 GEMM (on AMX the
    // fake-quantized weights' grid would send the student's through matmulOnGrid, whose sums
    // round differently: compute.ts withGridGemm).
    const fake = noGrad(() => withGridGemm(false, () => lmLogits(lat.model, ids, { weight: prepare(lat.model, config).weight }).f32));
    const exported = loadModelDir(out);
    const got = noGrad(() => lmLogits({ arch: 'llama', config: exported.config as LlamaConfig, params: exported.params } as Model, ids).f32);
    assert.equal(got.length, fake.length);
    assert.ok(got.every((v, i) => Object.is(v, fake[i])), `${name}: HF logits of the exported dir ≠ the student's fake-quantized forward`);
    // --latent: the latent weights (F16 by default, as any model directory).
    const latOut = path.join(dir, `st-${name}-latent`);
    await runExport({ model: sdir, format: 'safetensors', out: latOut, latent: true });
    const t = readSafetensors(path.join(latOut, 'model.safetensors')).tensors.get('model.layers.0.mlp.up_proj.weight')!;
    assert.equal(t.dtype, 'F16');
    const want = halfRoundTrip(lat.loaded.params.get('model.layers.0.mlp.up_proj.weight')!.f32, 'F16');
    assert.ok(loadModelDir(latOut).params.get('model.layers.0.mlp.up_proj.weight')!.f32.every((v, i) => v === want[i]));
  }
});

test('safetensors f16/bf16 of a student: refused unless they hold the deployed values; --lossy reports the error', async () => {
  const sdir = makeStudent('st-q4_0', { weights: { rule: { kind: 'q4_0' }, granule: group(32) } });
  for (const dtype of ['f16', 'bf16']) {
    await assert.rejects(runExport({ model: sdir, format: 'safetensors', out: path.join(dir, `z-${dtype}`), dtype }),
      new RegExp(`--dtype ${dtype}: the deployed values of .* are not all representable in ${dtype.toUpperCase()}.*Formats that hold q4_0 \\(blocks of 32\\) exactly: --format gguf --type q4_0; --format gguf --type f32; --format safetensors --dtype f32; --format onnx; or pass --lossy`));
    const notes = await exportNotes({ model: sdir, format: 'safetensors', out: path.join(dir, `z-${dtype}-lossy`), dtype, lossy: true });
    const m = ERROR_FIGURES.exec(notes);
    assert.ok(m && Number(m[1]) > 0, notes);
  }
  // A ternary student's deployed values are ±α or 0 per tensor: F16 holds them when α is an F16 value.
  const twn = makeStudent('st-twn', { weights: { rule: { kind: 'twn' }, granule: { kind: 'tensor' } } });
  const opened = openModel(twn);
  const exact = [...opened.student!.weights.keys()].every((W) => {
    const w = opened.loaded.params.get(W)!.f32;
    return halfRoundTrip(w, 'F16').every((v, i) => v === w[i]);
  });
  const run = runExport({ model: twn, format: 'safetensors', out: path.join(dir, 'twn-f16'), dtype: 'f16', onNote: () => {} });
  if (exact) await run; else await assert.rejects(run, /not all representable in F16/);
});
