// `kdqat quantize` end to end (child processes): RTN into a student directory, the per-kind
// error table, `kdqat eval` of the student measuring the dequantized model, and the refusals
// (configs that do not fit the model, malformed files, existing outputs), which write nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelDir } from '../../src/io/model-dir.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { streamPerplexity } from '../../src/eval/stream-perplexity.js';
import type { Model } from '../../src/models/model.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { prepare } from '../../src/quant/prepare.js';
import { isStudentDir, loadStudent } from '../../src/quant/student.js';
import { runQuantize } from '../../src/cli/quantize.js';
import { kdqat, makeFixture, TEXT, type Fixture } from './fixture.js';

let fx: Fixture;
before(() => { fx = makeFixture('quantize'); });
after(() => fx?.cleanup());

const llamaModel = (dir: string): Model => {
  const m = loadModelDir(dir);
  return { arch: 'llama', config: m.config as LlamaConfig, params: m.params };
};

test('quantize → eval: the student evaluates as the fake-quantized teacher, bitwise', () => {
  const out = path.join(fx.root, 'llama-w4g32');
  const r = kdqat('quantize', '--model', fx.llama, '--quant', 'w4-g32', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^14 weights quantized: 14 × sym 4-bit per group of 32/);
  for (const kind of ['q', 'k', 'v', 'o', 'gate', 'up', 'down']) {
    assert.match(r.stdout, new RegExp(`\\n${kind} +2  sym 4-bit per group of 32 +\\d+\\.\\d\\d +\\d+\\.\\d\\d`), `row for ${kind}`);
  }
  assert.match(r.stderr, /a LLaMA decoder .*quantizing with preset w4-g32/);
  assert.ok(isStudentDir(out));
  assert.ok(fs.existsSync(path.join(out, 'tokenizer.json')), 'the tokenizer comes along');

  const text = fx.file('eval.txt', `${TEXT}\n${TEXT}`);
  const e = kdqat('eval', '--model', out, '--text', text, '--seq', '16', '--json');
  assert.equal(e.code, 0, e.stderr);
  const got = JSON.parse(e.stdout).results[0];
  // Independent: the teacher with prepare()'s fake-quantized weights, in this process.
  const teacher = llamaModel(fx.llama);
  const p = prepare(teacher, QUANT_PRESETS['w4-g32']);
  const ids = loadTokenizer(path.join(fx.llama, 'tokenizer.json')).encode(fs.readFileSync(text, 'utf8'), { addSpecialTokens: false });
  const want = streamPerplexity(teacher, ids, 16, { batchSize: 8, weight: p.weight });
  const fp = streamPerplexity(teacher, ids, 16, { batchSize: 8 });
  assert.equal(got.tokens, want.tokens);
  assert.equal(got.nll, want.nll, 'eval of the student = the prepared teacher');
  assert.notEqual(got.nll, fp.nll, 'and not the full-precision teacher');
  // --latent measures the latent (here: the teacher's) weights.
  const l = kdqat('eval', '--model', out, '--text', text, '--seq', '16', '--json', '--latent');
  assert.equal(l.code, 0, l.stderr);
  assert.equal(JSON.parse(l.stdout).results[0].nll, fp.nll);
});

test('quantize --json: per-kind and per-weight SQNR; BERT with ternary weights and 8-bit activations', async () => {
  const out = path.join(fx.root, 'bert-twn');
  const lines: string[] = [];
  const rep = await runQuantize({ model: fx.bert, quant: 'twn-a8', out, json: true }, (s) => lines.push(s), () => {});
  const j = JSON.parse(lines.join(''));
  assert.deepEqual(j.kinds.map((k: { kind: string }) => k.kind), ['query', 'key', 'value', 'attn-out', 'ffn-in', 'ffn-out']);
  assert.equal(j.weights.length, 6);
  assert.match(j.summary, /6 weights quantized: 6 × twn per tensor; 8-bit activations \(clip 2\.5\)/);
  // Ternary weights of a Gaussian matrix: SQNR a few dB (TWN keeps ~the top 60% of magnitudes).
  for (const w of rep.weights) assert.ok(w.sqnrDb > 2 && w.sqnrDb < 12, `${w.name}: ${w.sqnrDb} dB`);
  const s = loadStudent(out);
  assert.deepEqual(s.quant.activations, { bits: 8, clip: 2.5 });
  assert.equal(s.loaded.hf.arch === 'bert' && s.loaded.hf.meta.labels?.join(','), 'neg,pos', 'labels kept from config.json');
});

test('quantize refusals write nothing: group size, ggml blocks, bad pattern, bad bits, malformed JSON, unknown preset', () => {
  const out = path.join(fx.root, 'never');
  const cases: [string, RegExp][] = [
    ['w4-g128', /preset w4-g128: model\.layers\.0\.self_attn\.q_proj\.weight has shape \[32, 32\] \(out, in\): group size 128 does not divide its 32 inputs/],
    ['tq2_0', /tq2_0 quantizes blocks of 256 inputs, and 32 is not a multiple of 256/],
    [fx.file('pattern.json', JSON.stringify({ preset: 'w4-channel', modules: ['q_proj', 'qproj'] })), /pattern\.json: modules: pattern 'qproj' matches no parameter/],
    [fx.file('bits.json', JSON.stringify({ weights: { rule: { kind: 'sym', bits: 9 }, granule: 'channel' } })), /bits\.json: weights\.rule\.bits: bits must be an integer from 2 to 8, got 9/],
    [fx.file('broken.json', '{"weights": '), /broken\.json: not valid JSON/],
    ['w4-chanel', /--quant w4-chanel: neither a preset \(.*\) nor an existing JSON file/],
  ];
  for (const [quant, msg] of cases) {
    const r = kdqat('quantize', '--model', fx.llama, '--quant', quant, '--out', out);
    assert.equal(r.code, 1, `${quant}: should fail`);
    assert.match(r.stderr, msg);
    assert.ok(!fs.existsSync(out), `${quant}: nothing written`);
  }
  assert.deepEqual(fs.readdirSync(fx.root).filter((f) => f.startsWith('.')), [], 'no temp directories left');
});

test('quantize refuses an existing --out without --force; --force replaces only a directory kdqat wrote', () => {
  const out = path.join(fx.root, 'exists');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'notes.txt'), 'keep me');
  const r = kdqat('quantize', '--model', fx.llama, '--quant', 'q4_0', '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--out .*exists: .* already exists; pass --force to replace it/);
  assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'keep me');
  // Someone else's directory: not even with --force.
  const foreign = kdqat('quantize', '--model', fx.llama, '--quant', 'q4_0', '--out', out, '--force');
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, /--out .*exists: exists and was not written by kdqat \(it has no \.kdqat-output marker\)/);
  assert.deepEqual(fs.readdirSync(out), ['notes.txt']);
  fs.rmSync(out, { recursive: true });
  assert.equal(kdqat('quantize', '--model', fx.llama, '--quant', 'q4_0', '--out', out).code, 0);
  const f = kdqat('quantize', '--model', fx.llama, '--quant', 'q4_0', '--out', out, '--force');
  assert.equal(f.code, 0, f.stderr);
  assert.ok(isStudentDir(out));
  // A student re-quantizes from its latent weights.
  const again = kdqat('quantize', '--model', out, '--quant', 'w4-channel', '--out', path.join(fx.root, 'requant'));
  assert.equal(again.code, 0, again.stderr);
  const a = loadModelDir(path.join(fx.root, 'requant')).params, b = loadModelDir(fx.llama).params;
  for (const [n, t] of b) assert.deepEqual(a.get(n)!.f32, t.f32, n);
});
