// Quantization configs: parsing (every error names the source and the field), presets, the
// default module selection per architecture, overrides, and prepare's checks against a model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseQuantConfig, loadQuantConfig, QUANT_PRESETS, type QuantConfig } from '../../src/quant/config.js';
import { prepare, planQuantization, quantTargets } from '../../src/quant/prepare.js';
import { moduleOf } from '../../src/models/registry.js';
import { tinyBert, tinyLlama, tmpDir } from './models.js';

const root = tmpDir('qconfig');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const SRC = 'my/quant.json';
function rejects(json: unknown, field: string, msg: RegExp): void {
  assert.throws(() => parseQuantConfig(json, SRC), (e: Error) => {
    assert.ok(e.message.startsWith(`${SRC}: ${field}: `), `message "${e.message}" should start with "${SRC}: ${field}: "`);
    assert.match(e.message, msg);
    return true;
  });
}

test('parseQuantConfig: canonical form, shorthands, preset base', () => {
  assert.deepEqual(parseQuantConfig({ weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 64 } } }, SRC),
    { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 64 } } });
  assert.deepEqual(parseQuantConfig({ weights: { rule: 'twn', granule: 'channel', clip: 2.5 } }, SRC),
    { weights: { rule: { kind: 'twn' }, granule: { kind: 'channel' }, clip: 2.5 } });
  // llama.cpp rules get their own blocks.
  assert.deepEqual(parseQuantConfig({ weights: { rule: 'tq2_0' } }, SRC).weights, { rule: { kind: 'tq2_0' }, granule: { kind: 'group', size: 256 } });
  const c = parseQuantConfig({ preset: 'twn-a8', overrides: [{ pattern: 'value', quant: null }] }, SRC);
  assert.deepEqual(c, { ...QUANT_PRESETS['twn-a8'], overrides: [{ pattern: 'value', quant: null }] });
  assert.equal(QUANT_PRESETS['twn-a8'].overrides, undefined, 'presets are not mutated');
  // Every preset survives its own JSON round trip (configs are data).
  for (const [name, p] of Object.entries(QUANT_PRESETS)) assert.deepEqual(parseQuantConfig(JSON.parse(JSON.stringify(p)), name), p, name);
});

test('parseQuantConfig: every error names the source and the field', () => {
  rejects([], '(top level)', /must be a JSON object/);
  rejects({}, 'weights', /missing/);
  rejects({ weights: { rule: { kind: 'int4' }, granule: 'channel' } }, 'weights.rule.kind', /unknown rule "int4" \(known: sym, asym, twn, q4_0, q8_0, tq2_0, q2_k, q3_k, q4_k, q5_k, q6_k\)/);
  rejects({ weights: { rule: { kind: 'sym', bits: 9 }, granule: 'channel' } }, 'weights.rule.bits', /from 2 to 8, got 9/);
  rejects({ weights: { rule: { kind: 'asym', bits: 1 }, granule: 'channel' } }, 'weights.rule.bits', /from 2 to 8, got 1/);
  rejects({ weights: { rule: { kind: 'sym', bits: 4.5 }, granule: 'channel' } }, 'weights.rule.bits', /got 4.5/);
  rejects({ weights: { rule: { kind: 'sym' }, granule: 'channel' } }, 'weights.rule.bits', /needs "bits"/);
  rejects({ weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 0 } } }, 'weights.granule.size', /positive integer/);
  rejects({ weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 12.5 } } }, 'weights.granule.size', /positive integer/);
  rejects({ weights: { rule: { kind: 'sym', bits: 4 }, granule: 'row' } }, 'weights.granule', /"tensor", "channel" or/);
  rejects({ weights: { rule: { kind: 'sym', bits: 4 } } }, 'weights.granule', /missing/);
  rejects({ weights: { rule: 'twn', granule: 'tensor', lsq: true } }, 'weights.lsq', /sym and asym rules only/);
  rejects({ weights: { rule: 'q4_0', granule: { kind: 'group', size: 64 } } }, 'weights.granule', /blocks of 32/);
  rejects({ weights: { rule: 'twn', granule: 'tensor', clip: -1 } }, 'weights.clip', /positive number/);
  rejects({ weights: { rule: 'twn', granule: 'tensor', bits: 2 } }, 'weights.bits', /unknown key \(allowed: rule, granule, lsq, clip\)/);
  rejects({ weight: { rule: 'twn', granule: 'tensor' } }, 'weight', /unknown key/);
  rejects({ preset: 'w5-channel' }, 'preset', /unknown preset "w5-channel" \(known: .*w4-channel/);
  rejects({ preset: 'twn', modules: 'q_proj' }, 'modules', /array of module patterns/);
  rejects({ preset: 'twn', modules: ['re:('] }, 'modules[0]', /not a valid regular expression/);
  rejects({ preset: 'twn', overrides: [{ pattern: 'v_proj' }] }, 'overrides[0].quant', /missing/);
  rejects({ preset: 'twn', overrides: [{ pattern: 'v_proj', quant: { rule: { kind: 'sym', bits: 16 }, granule: 'channel' } }] }, 'overrides[0].quant.rule.bits', /got 16/);
  rejects({ preset: 'twn', activations: { bits: 10 } }, 'activations.bits', /from 2 to 8/);
  rejects({ preset: 'twn', activations: { bits: 8, clip: 0 } }, 'activations.clip', /positive/);
});

test('loadQuantConfig: preset names, files, malformed JSON naming the file', () => {
  assert.deepEqual(loadQuantConfig('w4-g128').config, QUANT_PRESETS['w4-g128']);
  const good = path.join(root, 'good.json');
  fs.writeFileSync(good, JSON.stringify({ preset: 'w4-channel', overrides: [{ pattern: 'down_proj', quant: { rule: { kind: 'sym', bits: 8 }, granule: 'channel' } }] }));
  assert.equal(loadQuantConfig(good).config.overrides![0].pattern, 'down_proj');
  const bad = path.join(root, 'bad.json');
  fs.writeFileSync(bad, '{"weights": {"rule": "twn",}');
  assert.throws(() => loadQuantConfig(bad), (e: Error) => e.message.startsWith(`${bad}: not valid JSON`));
  const field = path.join(root, 'field.json');
  fs.writeFileSync(field, '{"weights": {"rule": {"kind": "sym", "bits": 12}, "granule": "channel"}}');
  assert.throws(() => loadQuantConfig(field), (e: Error) => e.message.startsWith(`${field}: weights.rule.bits:`));
  assert.throws(() => loadQuantConfig('w4-chanel'), /neither a preset \(.*w4-channel.*\) nor an existing JSON file/);
});

const kindsOf = (names: Iterable<string>): string[] => [...names].map((n) => moduleOf(n).kind);

test('default selection: LLaMA projections of every layer; embeddings, norms, head FP', () => {
  const model = tinyLlama();
  const p = prepare(model, QUANT_PRESETS['w4-channel']);
  assert.equal(p.quantized.size, 14);
  assert.deepEqual(kindsOf(p.quantized.keys()), [...'q k v o gate up down'.split(' '), ...'q k v o gate up down'.split(' ')]);
  for (const n of p.quantized.keys()) assert.match(n, /^model\.layers\.[01]\.(self_attn|mlp)\.\w+_proj\.weight$/);
  assert.equal(p.quantParams.size, 0);
  // LSQ: one step per weight, named `${weight}.step`, one value per granule.
  const l = prepare(model, QUANT_PRESETS['w4-channel-lsq']);
  assert.deepEqual([...l.quantParams.keys()], [...p.quantized.keys()].map((n) => `${n}.step`));
  assert.deepEqual(l.quantParams.get('model.layers.0.mlp.down_proj.weight.step')!.shape, [64]);
  assert.ok([...l.quantParams.values()].every((s) => s.requiresGrad));
});

test('default selection: BERT query key value attention-out ffn-in ffn-out; embeddings, pooler, classifier FP', () => {
  const model = tinyBert({ mlm: false, classifier: true });
  const p = prepare(model, QUANT_PRESETS.twn);
  assert.deepEqual(kindsOf(p.quantized.keys()), [...'query key value attn-out ffn-in ffn-out'.split(' '), ...'query key value attn-out ffn-in ffn-out'.split(' ')]);
  assert.ok([...p.quantized.keys()].every((n) => n.endsWith('.weight')), 'biases stay FP');
  assert.equal(p.weight.input, undefined, 'no activation quantization without activations');
  assert.ok(prepare(model, QUANT_PRESETS['twn-a8']).weight.input);
});

test('modules and overrides: replace the selection, set per-pattern quantizers, null = FP, add the head', () => {
  const model = tinyLlama();
  const only = planQuantization(model, { weights: QUANT_PRESETS['w4-channel'].weights, modules: ['q_proj', 'layers.1.mlp'] });
  assert.deepEqual([...only.quantized.keys()], [
    'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight',
    'model.layers.1.mlp.gate_proj.weight', 'model.layers.1.mlp.up_proj.weight', 'model.layers.1.mlp.down_proj.weight',
  ]);
  const w8 = { rule: { kind: 'sym', bits: 8 }, granule: { kind: 'channel' } } as const;
  const cfg: QuantConfig = {
    weights: QUANT_PRESETS['w4-channel'].weights,
    overrides: [{ pattern: 'v_proj', quant: null }, { pattern: 'down_proj', quant: w8 }, { pattern: 'layers.1.mlp.down_proj', quant: null }, { pattern: 'lm_head', quant: w8 }],
  };
  const p = planQuantization(model, cfg).quantized;
  assert.equal(p.has('model.layers.0.self_attn.v_proj.weight'), false);
  assert.deepEqual(p.get('model.layers.0.mlp.down_proj.weight'), w8);
  assert.equal(p.has('model.layers.1.mlp.down_proj.weight'), false, 'later overrides win');
  assert.deepEqual(p.get('lm_head.weight'), w8);
  assert.deepEqual(p.get('model.layers.1.self_attn.q_proj.weight'), QUANT_PRESETS['w4-channel'].weights);
  assert.equal(p.size, 14 - 2 - 1 + 1);
  // Globs and regexes select too.
  assert.equal(planQuantization(model, { weights: w8, modules: ['re:layers\\.0\\..*proj'] }).quantized.size, 7);
  assert.equal(planQuantization(model, { weights: w8, modules: ['*'] }).quantized.size, 15);
  // A code-built q4_0 config with a channel granule means q4_0's own blocks.
  assert.deepEqual(planQuantization(model, { weights: { rule: { kind: 'q4_0' }, granule: { kind: 'channel' } } }).quantized.get('model.layers.0.self_attn.q_proj.weight')!.granule, { kind: 'group', size: 32 });
});

test('quantTargets: the tied LLaMA head is selected by lm_head and keyed by the name the WeightFn sees', () => {
  const tied = tinyLlama({ tieWordEmbeddings: true });
  assert.deepEqual(quantTargets(tied).at(-1), { name: 'model.embed_tokens.weight', logical: 'lm_head.weight', rows: 96, cols: 64 });
  assert.throws(() => planQuantization(tied, { weights: QUANT_PRESETS['w4-channel'].weights, overrides: [{ pattern: 'embed_tokens', quant: null }] }),
    /overrides\[0\]\.pattern: pattern 'embed_tokens' matches only parameters kdqat does not quantize \(model\.embed_tokens\.weight\)/);
});

/** prepare must fail with `msg`; the message names where. */
function prepFails(model: Parameters<typeof prepare>[0], cfg: QuantConfig, msg: RegExp): void {
  assert.throws(() => prepare(model, cfg, { source: 'q.json' }), (e: Error) => {
    assert.ok(e.message.startsWith('q.json: '), e.message);
    assert.match(e.message, msg);
    return true;
  });
}

test('prepare checks the config against the model first: group size, ggml blocks, bits, patterns', () => {
  const model = tinyLlama({ hiddenSize: 48, intermediateSize: 96, numAttentionHeads: 4, numKeyValueHeads: 2 });
  prepFails(model, QUANT_PRESETS['w4-g32'],
    /model\.layers\.0\.self_attn\.q_proj\.weight has shape \[48, 48\] \(out, in\): group size 32 does not divide its 48 inputs; use a group size that divides 48 \(e\.g\. 16, 8\)/);
  prepFails(model, QUANT_PRESETS.q4_0, /q_proj\.weight has shape \[48, 48\] \(out, in\): q4_0 quantizes blocks of 32 inputs, and 48 is not a multiple of 32/);
  prepFails(tinyLlama(), QUANT_PRESETS.tq2_0, /q_proj\.weight has shape \[64, 64\] \(out, in\): tq2_0 quantizes blocks of 256 inputs/);
  prepFails(model, { weights: { rule: { kind: 'sym', bits: 1 }, granule: { kind: 'channel' } } }, /weights\.rule\.bits: bits must be an integer from 2 to 8, got 1/);
  prepFails(model, { weights: { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } }, overrides: [{ pattern: 'up_proj', quant: { rule: { kind: 'asym', bits: 9 }, granule: { kind: 'channel' } } }] },
    /overrides\[0\]\.quant\.rule\.bits: .*got 9/);
  prepFails(model, { weights: QUANT_PRESETS['w4-channel'].weights, modules: ['q_proj', 'qkv_proj'] }, /modules: pattern 'qkv_proj' matches no parameter of this model/);
  prepFails(model, { weights: QUANT_PRESETS['w4-channel'].weights, overrides: [{ pattern: 'query', quant: null }] }, /overrides\[0\]\.pattern: pattern 'query' matches no parameter/);
  prepFails(model, { ...QUANT_PRESETS['twn-a8'], activations: { bits: 12 } }, /activations\.bits/);
  // An override can rescue the module that does not fit.
  const ok = prepare(model, { weights: QUANT_PRESETS['w4-g32'].weights, modules: ['down_proj'] });
  assert.equal(ok.quantized.size, 2);
});
