// The decoder families (issue 11) against their PyTorch reference (scripts/ref_decoders.py):
// each fixture under test/fixtures/decoders/ is a small random checkpoint in the family's Hugging
// Face layout, with a config.json carrying every key of the real model's. kdqat loads it through
// the family's record and must give the reference's logits and the gradients of
// sum(logits · gy) w.r.t. every stored parameter (Phi-3's fused qkv_proj / gate_up_proj: the
// stacked gradients of kdqat's q/k/v and gate/up parts) within the bar, 1e-4 relative
// (to each tensor's largest entry). The float32 rounding bound of test/tolerance.ts for a whole
// 2-layer model (chainBound(3·forwardDepth(2), 64, κ) ≈ 1e-3 for κ ≈ 3) is looser than that bar,
// so the bar is the issue's. Loading then saving gives back model.safetensors byte for byte (F32,
// and BF16 through a BF16 save), and config.json with the same keys and values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModelDir, saveModelDir, asModel } from '../../src/io/model-dir.js';
import { Tensor, backward, mul, sum, intTensor } from '../../src/tensor/index.js';
import { archOf, lmLogits, type Model } from '../../src/models/model.js';
import { storedLayout, stackRows } from '../../src/models/fused.js';
import { paramSpecOf } from '../../src/io/model-dir.js';
import { headDimOf, ropeTablesOf, type LlamaConfig } from '../../src/models/llama.js';
import { hfConfigJson, parseHfConfig } from '../../src/models/registry.js';
import { KvDecoder, generate } from '../../src/models/generate.js';
import { tmpDir } from '../util.js';

const ROOT = fileURLToPath(new URL('../fixtures/decoders/', import.meta.url));
export const DECODER_FIXTURES = ['smollm2', 'llama3', 'llama-linear', 'llama-yarn', 'mistral', 'mistral-swa', 'qwen2', 'qwen3', 'phi3', 'seed-oss', 'phi3-longrope', 'phi3-longrope-short', 'phi4-mini', 'smollm3'] as const;
const BAR = 1e-4; // issue 11: logits and gradients within 1e-4 relative

/** max |got − want| / max |want| (the tensor's scale). */
function rel(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let num = 0, den = 0;
  for (let i = 0; i < got.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}

function reference(name: string): Map<string, { data: Float32Array | Int32Array; shape: number[] }> {
  const ref = readSafetensors(path.join(ROOT, name, 'reference.safetensors')).tensors;
  for (const [k, v] of readSafetensors(path.join(ROOT, name, 'grads.safetensors')).tensors) ref.set(k, v);
  return ref as Map<string, { data: Float32Array | Int32Array; shape: number[] }>;
}

/** Logits and per-stored-tensor gradients of sum(logits · gy), for the fixture's ids. */
function run(name: string, configOverride?: Partial<LlamaConfig>): { logits: Float32Array; grads: Map<string, Float32Array>; max: { logits: number; grads: number } } {
  const loaded = loadModelDir(path.join(ROOT, name));
  const ref = reference(name);
  const model = asModel(loaded);
  if (configOverride) Object.assign(model.config, configOverride);
  const ids = ref.get('input_ids')!;
  const logits = lmLogits(model, intTensor(ids.data as Int32Array, ids.shape));
  const gy = ref.get('gy')!;
  backward(sum(mul(logits, new Tensor(gy.data as Float32Array, gy.shape))));
  const grads = new Map<string, Float32Array>();
  const rec = archOf(model);
  for (const [stored, { parts }] of storedLayout(paramSpecOf(loaded.hf), rec.fused?.(model.config) ?? [])) {
    grads.set(stored, parts ? stackRows(parts.map((p) => model.params.get(p.name)!.grad!.f32)) : model.params.get(stored)!.grad!.f32);
  }
  let g = 0;
  for (const [n, v] of grads) g = Math.max(g, rel(v, ref.get(`grad.${n}`)!.data as Float32Array));
  return { logits: logits.f32, grads, max: { logits: rel(logits.f32, ref.get('logits')!.data as Float32Array), grads: g } };
}

for (const name of DECODER_FIXTURES) {
  test(`${name}: logits and every parameter gradient match the PyTorch reference within 1e-4 relative`, () => {
    const ref = reference(name);
    const r = run(name);
    assert.ok(r.max.logits <= BAR, `logits: relative error ${r.max.logits.toExponential(2)} > ${BAR}`);
    const names = [...ref.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort();
    assert.deepEqual([...r.grads.keys()].sort(), names, 'gradients for exactly the stored parameters');
    for (const n of names) {
      const e = rel(r.grads.get(n)!, ref.get(`grad.${n}`)!.data as Float32Array);
      assert.ok(e <= BAR, `d/d ${n}: relative error ${e.toExponential(2)} > ${BAR}`);
    }
    process.stdout.write(`# ${name}: max relative error logits ${r.max.logits.toExponential(2)}, gradients ${r.max.grads.toExponential(2)}\n`);
  });

  test(`${name}: load → save gives back model.safetensors byte for byte (F32, BF16) and config.json (its bytes when unchanged)`, () => {
    const src = path.join(ROOT, name);
    const tmp = tmpDir(`dec-${name}`);
    try {
      const loaded = loadModelDir(src);
      const f32 = path.join(tmp, 'f32');
      saveModelDir(f32, { config: loaded.hf, params: loaded.params, dtype: 'F32' });
      assert.ok(fs.readFileSync(path.join(f32, 'model.safetensors')).equals(fs.readFileSync(path.join(src, 'model.safetensors'))), 'model.safetensors differs');
      const want = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
      // Every key comes back; the saved file's torch_dtype is its own.
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(f32, 'config.json'), 'utf8')), { ...want, torch_dtype: 'float32' });
      // BF16: a BF16 file loads to floats that save back to the same bytes.
      const b1 = path.join(tmp, 'bf16a'), b2 = path.join(tmp, 'bf16b');
      saveModelDir(b1, { config: loaded.hf, params: loaded.params, dtype: 'BF16' });
      const again = loadModelDir(b1);
      saveModelDir(b2, { config: again.hf, params: again.params, dtype: 'BF16' });
      assert.ok(fs.readFileSync(path.join(b1, 'model.safetensors')).equals(fs.readFileSync(path.join(b2, 'model.safetensors'))), 'BF16 model.safetensors differs');
      assert.equal(fs.readFileSync(path.join(b1, 'config.json'), 'utf8'), fs.readFileSync(path.join(b2, 'config.json'), 'utf8'));
      // A BF16 checkpoint saved as BF16 is unchanged, so config.json comes back byte for byte too
      // (the source's own spelling of numbers, e.g. Python's 1e-05 and 10000.0).
      if (want.torch_dtype === 'bfloat16') {
        assert.equal(fs.readFileSync(path.join(b1, 'config.json'), 'utf8'), fs.readFileSync(path.join(src, 'config.json'), 'utf8'), 'config.json differs');
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('the RoPE scaling fixtures have teeth: the model without its rope_scaling misses the reference by more than 10× the bar', () => {
  for (const name of ['llama3', 'llama-linear', 'llama-yarn', 'phi3-longrope', 'phi3-longrope-short', 'phi4-mini']) {
    const r = run(name, { ropeScaling: null });
    assert.ok(r.max.logits > 10 * BAR, `${name}: without rope_scaling the logits are within ${r.max.logits.toExponential(2)}`);
  }
  // LongRoPE: the 32-token reference uses the long factors past an original context of 16 and the
  // short ones within 64; the other table (or no attention factor) misses it.
  for (const [name, swap] of [['phi3-longrope', (o: number) => o * 2 + 32], ['phi3-longrope-short', () => 16]] as const) {
    const cfg = asModel(loadModelDir(path.join(ROOT, name))).config as LlamaConfig;
    const s = cfg.ropeScaling!;
    assert.equal(s.type, 'longrope');
    if (s.type !== 'longrope') return;
    const other = run(name, { ropeScaling: { ...s, originalMaxPositionEmbeddings: swap(s.originalMaxPositionEmbeddings) } });
    assert.ok(other.max.logits > 10 * BAR, `${name} with the other factors: logits within ${other.max.logits.toExponential(2)}`);
    const flat = run(name, { ropeScaling: { ...s, attentionFactor: 1 } });
    assert.ok(flat.max.logits > 10 * BAR, `${name} without its attention factor: logits within ${flat.max.logits.toExponential(2)}`);
  }
});

test('partial rotary (phi4-mini: 6 of 8 entries per head): rotating the whole head misses the reference; the KV-cache generator equals the full forward', () => {
  const model = asModel(loadModelDir(path.join(ROOT, 'phi4-mini')));
  const s = (model.config as LlamaConfig).ropeScaling!;
  if (s.type !== 'longrope') throw new Error('phi4-mini: LongRoPE expected');
  // All 8 entries rotated (the fourth pair's LongRoPE factors 1): another model.
  const whole = run('phi4-mini', { rotaryDim: undefined, ropeScaling: { ...s, longFactor: [...s.longFactor, 1], shortFactor: [...s.shortFactor, 1] } });
  assert.ok(Number.isFinite(whole.max.logits) && whole.max.logits > 10 * BAR, `phi4-mini rotating all 8 entries: logits within ${whole.max.logits.toExponential(2)}`);
  assert.equal((model.config as LlamaConfig).rotaryDim, 6);
  const prompt = [72, 101, 108, 108, 111];
  // 5 + 10 tokens stay within the original context (16): the cache holds no factor switch.
  assert.deepEqual(generate(model, prompt, { maxNewTokens: 10 }).tokens, generate(model, prompt, { maxNewTokens: 10, cache: false }).tokens);
});

test('LongRoPE with a KV cache: a step uses the factors of its forward\'s length, as transformers\' dynamic update does', () => {
  // phi3-longrope: original context 16. transformers recomputes cos/sin per forward from its
  // largest position + 1, and the cache keeps keys rotated as they were: a decoding step at
  // position p uses the short factors up to p = 15 and the long ones from p = 16 on.
  const model = asModel(loadModelDir(path.join(ROOT, 'phi3-longrope')));
  const cfg = model.config as LlamaConfig, D = headDimOf(cfg);
  const row = (t: { cos: Float32Array }, i: number): number[] => [...t.cos.subarray(i * D, (i + 1) * D)];
  assert.deepEqual(row(ropeTablesOf(cfg, 1, 15), 0), row(ropeTablesOf(cfg, 16), 15), 'position 15 in a 16-token forward: short');
  assert.deepEqual(row(ropeTablesOf(cfg, 1, 16), 0), row(ropeTablesOf(cfg, 17), 16), 'position 16 in a 17-token forward: long');
  assert.notDeepEqual(row(ropeTablesOf(cfg, 17), 3), row(ropeTablesOf(cfg, 16), 3), 'the factors apply to every position of the forward');
  // Within the original context the cached generator equals the cache-free forward.
  const prompt = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114];
  const out = [...prompt, ...generate(model, prompt, { maxNewTokens: 6 }).tokens];
  const V = cfg.vocabSize;
  assert.ok(out.length > prompt.length);
  for (let n = prompt.length; n < out.length; n++) {
    const z = lmLogits(model, intTensor(out.slice(0, n), [1, n])).f32.subarray((n - 1) * V, n * V);
    assert.equal(out[n], z.indexOf(Math.max(...z)), `token ${n}`);
  }
});

test('a config kdqat cannot honour is refused naming the key and the value', () => {
  const cfg = (name: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(ROOT, name, 'config.json'), 'utf8'));
  const bad = (j: Record<string, unknown>, re: RegExp): void => assert.throws(() => parseHfConfig(j, 'm/config.json'), (e: Error) => e.message.startsWith('m/config.json: ') && re.test(e.message), JSON.stringify(re));
  const llama3 = cfg('llama3'), qwen2 = cfg('qwen2'), qwen3 = cfg('qwen3'), phi3 = cfg('phi3'), mistral = cfg('mistral');
  // an unknown rope type, or one the family does not have
  bad({ ...llama3, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /rope_scaling\.rope_type "dynamic" is not supported for model_type "llama"/);
  bad({ ...llama3, rope_scaling: { type: 'longrope', long_factor: [1], short_factor: [1] } }, /rope_scaling\.rope_type "longrope" is not supported for model_type "llama"/);
  bad({ ...phi3, rope_scaling: { type: 'longrope', long_factor: [1], short_factor: [1, 1, 1, 1] } }, /rope_scaling\.long_factor must be 4 positive numbers \(one per rotated pair of the 8-wide head\), got \[1\]/);
  bad({ ...phi3, rope_scaling: { type: 'longrope', long_factor: [1, 2, 3, 4], short_factor: [1, 1, 0, 1] } }, /rope_scaling\.short_factor must be 4 positive numbers/);
  bad({ ...phi3, rope_scaling: { type: 'longrope', long_factor: [1, 2, 3, 4] } }, /rope_scaling\.short_factor must be 4 positive numbers .*got undefined/);
  bad({ ...phi3, rope_scaling: { type: 'longrope', long_factor: [1, 2, 3, 4], short_factor: [1, 1, 1, 1], factor: 2 } }, /rope_scaling\.factor 2 ≠ max_position_embeddings \/ original_max_position_embeddings = 256\/4096/);
  bad({ ...phi3, rope_scaling: { type: 'yarn', factor: 2 } }, /rope_scaling\.rope_type "yarn" is not supported for model_type "phi3"; kdqat supports "default", "longrope"/);
  bad({ ...mistral, rope_scaling: { rope_type: 'linear', factor: 2 } }, /rope_scaling\.rope_type "linear" is not supported for model_type "mistral"/);
  bad({ ...llama3, rope_scaling: { ...(llama3.rope_scaling as object), mystery: 1 } }, /rope_scaling\.mystery \(1\) is not a key of rope_type "llama3"/);
  bad({ ...llama3, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16 } }, /rope_scaling\.factor 4 ≠ max_position_embeddings \/ rope_scaling\.original_max_position_embeddings = 256\/16/);
  // a missing key
  const { intermediate_size: _i, ...noInter } = qwen3;
  bad(noInter, /missing required key "intermediate_size"/);
  bad({ ...llama3, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, /rope_scaling\.original_max_position_embeddings is required for rope_type "llama3"/);
  // attention that is not the family's (or not one kdqat runs)
  bad({ ...qwen2, use_sliding_window: true }, /"use_sliding_window": true is not supported \(sliding_window 32768 on layers from max_window_layers 24\)/);
  bad({ ...qwen3, attention_bias: true }, /"attention_bias": true is not supported for qwen3/);
  bad({ ...llama3, attention_bias: true }, /"attention_bias": true is not supported/);
  bad({ ...phi3, head_dim: 16 }, /"head_dim": 16 ≠ hidden_size\/num_attention_heads; Phi-3 has no head_dim/);
  bad({ ...llama3, rope_interleaved: true }, /"rope_interleaved": true is not supported/);
  bad({ ...llama3, partial_rotary_factor: 0.75 }, /"partial_rotary_factor": 0\.75 is not supported \(kdqat rotates the whole head \(partial_rotary_factor 1\) but for Phi-3\)/);
  bad({ ...phi3, partial_rotary_factor: 0.1 }, /"partial_rotary_factor" 0\.1 rotates int\(8 · 0\.1\) = 0 entries of each head; RoPE needs an even number ≥ 2/);
  bad({ ...phi3, partial_rotary_factor: 0.375 }, /= 3 entries of each head; RoPE needs an even number/);
  bad({ ...phi3, partial_rotary_factor: 1.5 }, /"partial_rotary_factor" must be in \(0, 1\], got 1\.5/);
  bad({ ...phi3, partial_rotary_factor: 0.75, rope_scaling: { type: 'longrope', long_factor: [1, 2, 3, 4], short_factor: [1, 1, 1, 1] } }, /rope_scaling\.short_factor must be 3 positive numbers \(one per rotated pair of the 6-wide head\)/);
  bad({ ...qwen2, rope_parameters: { rope_theta: 1e6, rope_type: 'default' } }, /"rope_parameters": .* is not supported \(this is a transformers ≥ 5 config/);
  bad({ ...mistral, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported for mistral/);
  bad({ ...mistral, architectures: ['LlamaForCausalLM'] }, /architectures \["LlamaForCausalLM"\] are not supported for model_type "mistral"; supported: MistralForCausalLM/);
  bad({ ...mistral, sliding_window: 0 }, /"sliding_window" must be ≥ 1, got 0/);
  const smollm3 = cfg('smollm3');
  bad({ ...smollm3, no_rope_layers: [1, 1, 0] }, /"no_rope_layers" must be a list of 0 \(no RoPE\) and 1 \(RoPE\), one per layer \(4\), got \[1,1,0\]/);
  bad({ ...smollm3, no_rope_layers: [1, 1, 1, true] }, /"no_rope_layers" must be a list of 0/);
  bad({ ...smollm3, use_sliding_window: true, sliding_window: 4096 }, /"use_sliding_window": true is not supported \(sliding_window 4096 on the NoPE layers\)/);
  bad({ ...llama3, pretraining_tp: 2 }, /"pretraining_tp": 2 is not supported/);
});

test('SmolLM3\'s NoPE layers: RoPE in every layer misses the reference; no_rope_layers defaults to every no_rope_layer_interval-th layer; the KV-cache generator equals the full forward', () => {
  const all = run('smollm3', { noRopeLayers: undefined });
  assert.ok(all.max.logits > 10 * BAR, `smollm3 with RoPE in its 4th layer: logits within ${all.max.logits.toExponential(2)}`);
  const j = JSON.parse(fs.readFileSync(path.join(ROOT, 'smollm3', 'config.json'), 'utf8'));
  assert.deepEqual((parseHfConfig(j, 'c').config as LlamaConfig).noRopeLayers, [3]);
  const { no_rope_layers: _n, ...byInterval } = j;
  assert.deepEqual((parseHfConfig(byInterval, 'c').config as LlamaConfig).noRopeLayers, [3]);
  assert.deepEqual((parseHfConfig({ ...byInterval, no_rope_layer_interval: 2 }, 'c').config as LlamaConfig).noRopeLayers, [1, 3]);
  // The cached decoder's next-token logits, prompt then token by token, against the full forward's.
  const model = asModel(loadModelDir(path.join(ROOT, 'smollm3'))) as Model & { config: LlamaConfig };
  const ids = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114];
  const full = lmLogits(model, intTensor(ids, [1, ids.length])).f32, V = model.config.vocabSize;
  const dec = new KvDecoder(model);
  const steps = [dec.step(ids.slice(0, 5)), ...ids.slice(5).map((t) => dec.step(t))];
  steps.forEach((got, i) => {
    const at = 4 + i;
    assert.ok(rel(got, full.subarray(at * V, (at + 1) * V)) < BAR, `KV-cache logits at position ${at}`);
  });
});

test('sliding window: the window fixture has teeth (without its window the logits miss), and generation with the KV cache past the window equals the full forward', () => {
  const r = run('mistral-swa', { slidingWindow: null });
  assert.ok(r.max.logits > 10 * BAR, `mistral-swa without its window: logits within ${r.max.logits.toExponential(2)}`);
  const model = asModel(loadModelDir(path.join(ROOT, 'mistral-swa'))); // sliding_window 8
  const prompt = [72, 101, 108, 108, 111];
  const cached = generate(model, prompt, { maxNewTokens: 20 });
  const full = generate(model, prompt, { maxNewTokens: 20, cache: false });
  assert.deepEqual(cached.tokens, full.tokens);
});

test('SmolLM2 is the llama record with tied embeddings (a config, not a record): no lm_head stored or expected', () => {
  const loaded = loadModelDir(path.join(ROOT, 'smollm2'));
  assert.equal(loaded.arch, 'llama');
  assert.equal((loaded.hf.config as LlamaConfig).tieWordEmbeddings, true);
  assert.ok(!loaded.params.has('lm_head.weight'));
  assert.ok(!readSafetensors(path.join(ROOT, 'smollm2', 'model.safetensors')).tensors.has('lm_head.weight'));
});

test('the published config.json of SmolLM2-135M and Qwen2.5-0.5B (bench/configs/) parse and write back the same keys and values', () => {
  for (const name of ['smollm2-135m', 'qwen2.5-0.5b']) {
    const file = fileURLToPath(new URL(`../../bench/configs/${name}.json`, import.meta.url));
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(hfConfigJson(parseHfConfig(json, file)), json, name);
  }
});

test('keys that do not change the model kdqat runs (dropout rates, use_cache, unknown informational keys) are written back as given', () => {
  const j = { ...JSON.parse(fs.readFileSync(path.join(ROOT, 'qwen2', 'config.json'), 'utf8')), attention_dropout: 0.1, use_cache: false, sliding_window: 131072, note: 'x' };
  assert.deepEqual(hfConfigJson(parseHfConfig(j)), j);
});
