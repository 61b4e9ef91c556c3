// The PyTorch fixtures (test/fixtures/README.md) load and hold the documented names and shapes.
// Their numerical content is checked by the model tests that use them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type Tensor } from '../../src/io/safetensors.js';
import { U32, U64, gamma } from '../bounds.js';

const dir = fileURLToPath(new URL('../fixtures/', import.meta.url));
type Spec = Record<string, number[]>;

/** Loads `file` and checks it has exactly the names of `spec`, with these shapes, all finite F32
 *  (except the I32 names listed). */
function check(file: string, spec: Spec, ints: string[] = []): { t: Map<string, Tensor>; meta: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(dir + file);
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(spec).sort(), `${file}: names`);
  for (const [name, shape] of Object.entries(spec)) {
    const t = tensors.get(name)!;
    assert.deepEqual(t.shape, shape, `${file}: ${name} shape`);
    assert.equal(t.dtype, ints.includes(name) ? 'I32' : 'F32', `${file}: ${name} dtype`);
    assert.ok(Array.prototype.every.call(t.data, Number.isFinite), `${file}: ${name} is finite`);
  }
  assert.equal(metadata.generator, 'scripts/make_fixtures.py');
  return { t: tensors, meta: metadata };
}

const grads = (params: Spec): Spec => Object.fromEntries(Object.entries(params).map(([n, s]) => [`grad.${n}`, s]));
const f32 = (t: Map<string, Tensor>, n: string): Float32Array => t.get(n)!.data as Float32Array;

/** attn_probs (B,H,T,T): rows sum to 1; probs and scores are 0 where `masked(b, i, j)`. */
function checkAttention(t: Map<string, Tensor>, B: number, H: number, T: number,
  masked: (b: number, i: number, j: number) => boolean): void {
  const p = f32(t, 'attn_probs'), s = f32(t, 'attn_scores');
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    let sum = 0;
    for (let j = 0; j < T; j++) {
      const k = ((b * H + h) * T + i) * T + j;
      sum += p[k];
      if (masked(b, i, j)) assert.ok(p[k] === 0 && s[k] === 0, `masked (${b},${h},${i},${j}) is 0`);
    }
    // The fixture's probabilities are float64 softmax rows rounded once to float32 (u each),
    // summed here in float64: |Σ − 1| ≤ T·u (+ float64 rounding).
    assert.ok(Math.abs(sum - 1) <= T * U32 + gamma(T, U64), `attn_probs row (${b},${h},${i}) sums to ${sum}`);
  }
}

const BTC = [2, 7, 64];
const LLAMA: Spec = {
  'self_attn.q_proj.weight': [64, 64], 'self_attn.k_proj.weight': [32, 64],
  'self_attn.v_proj.weight': [32, 64], 'self_attn.o_proj.weight': [64, 64],
  'mlp.gate_proj.weight': [96, 64], 'mlp.up_proj.weight': [96, 64], 'mlp.down_proj.weight': [64, 96],
  'input_layernorm.weight': [64], 'post_attention_layernorm.weight': [64],
};

test('llama_block(.grads).safetensors: names, shapes, config, causal attention', () => {
  const { t, meta } = check('llama_block.safetensors', {
    ...LLAMA, x: BTC, y: BTC, gy: BTC, gx: BTC, h: BTC,
    attn_probs: [2, 4, 7, 7], attn_scores: [2, 4, 7, 7], rope_cos: [7, 16], rope_sin: [7, 16],
  });
  const cfg = JSON.parse(meta.config);
  assert.equal(cfg.hidden_size, 64);
  assert.equal(cfg.num_key_value_heads, 2);
  assert.equal(JSON.parse(meta.rms_norm_eps), 1e-6);
  assert.equal(JSON.parse(meta.rope_theta), 10000);
  checkAttention(t, 2, 4, 7, (_b, i, j) => j > i);
  check('llama_block_grads.safetensors', grads(LLAMA));
});

const BERT: Spec = {};
for (const [n, out, inp] of [['attention.self.query', 64, 64], ['attention.self.key', 64, 64],
  ['attention.self.value', 64, 64], ['attention.output.dense', 64, 64], ['intermediate.dense', 128, 64],
  ['output.dense', 64, 128]] as const) {
  BERT[`${n}.weight`] = [out, inp];
  BERT[`${n}.bias`] = [out];
}
for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) BERT[`${n}.weight`] = BERT[`${n}.bias`] = [64];

test('bert_block(.grads).safetensors: names, shapes, config, padding mask', () => {
  const { t, meta } = check('bert_block.safetensors', {
    ...BERT, x: BTC, mask: [2, 7], y: BTC, gy: BTC, gx: BTC, context: BTC, sa_out: BTC, attn_out: BTC,
    attn_probs: [2, 4, 7, 7], attn_scores: [2, 4, 7, 7],
  }, ['mask']);
  assert.deepEqual([...(t.get('mask')!.data as Int32Array)], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  assert.equal(JSON.parse(meta.layer_norm_eps), 1e-12);
  assert.equal(JSON.parse(meta.config).intermediate_size, 128);
  checkAttention(t, 2, 4, 7, (b, _i, j) => b === 1 && j >= 4);
  check('bert_block_grads.safetensors', grads(BERT));
});

test('ops.safetensors: names and shapes', () => {
  const spec: Spec = {};
  const add = (prefix: string, names: string[], shape: number[]): void => {
    for (const n of names) spec[`${prefix}.${n}`] = shape;
  };
  for (const op of ['gelu', 'gelu_tanh', 'silu']) add(op, ['x', 'y', 'gy', 'gx'], [64]);
  add('layernorm', ['x', 'y', 'gy', 'gx'], [5, 16]);
  add('layernorm', ['w', 'b', 'gw', 'gb'], [16]);
  add('rmsnorm', ['x', 'y', 'gy', 'gx'], [5, 16]);
  add('rmsnorm', ['w', 'gw'], [16]);
  for (const op of ['softmax', 'log_softmax']) add(op, ['x', 'y', 'gy', 'gx'], [5, 11]);
  add('cross_entropy', ['logits', 'glogits'], [6, 10]);
  add('cross_entropy', ['target'], [6]);
  add('cross_entropy', ['loss'], []);
  add('kl', ['t', 's', 'gs'], [5, 12]);
  add('kl', ['loss'], []);
  const { t, meta } = check('ops.safetensors', spec, ['cross_entropy.target']);
  const target = [...(t.get('cross_entropy.target')!.data as Int32Array)];
  assert.ok(target.includes(-100) && target.every((v) => v === -100 || (v >= 0 && v < 10)));
  assert.equal(JSON.parse(meta['kl.tau']), 2);
  assert.equal(JSON.parse(meta['layernorm.eps']), 1e-5);
});
