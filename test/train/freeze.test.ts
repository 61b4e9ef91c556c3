// Freezing (src/train/freeze.ts) inside the training loop: frozen parameters get no gradient,
// no update and no optimizer state (in memory and in the checkpoint); their quantizer
// parameters freeze with them; a frozen weight's transformed value is computed once.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, intTensor, klDiv, mul, reshape, noGrad } from '../../src/tensor/index.js';
import type { Params, WeightFn } from '../../src/nn/params.js';
import { llamaForward } from '../../src/models/llama.js';
import { AdamW } from '../../src/train/optim.js';
import { trainLoop } from '../../src/train/loop.js';
import { shuffledBatches, type TokenBatch } from '../../src/train/objectives.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { cacheFrozen, freeze, freezePatterns } from '../../src/train/freeze.js';
import { freshParams, llamaCfg, syntheticWindows, tmpDir, V } from './helpers.js';

it('freezePatterns: presets per architecture, pattern lists, mixtures', () => {
  assert.deepEqual(freezePatterns('ov', 'llama'), ['self_attn.v_proj', 'self_attn.o_proj']);
  assert.deepEqual(freezePatterns('ov', 'bert'), ['attention.self.value', 'attention.output.dense']);
  assert.deepEqual(freezePatterns(' ov , layers.0.mlp', 'llama'), ['self_attn.v_proj', 'self_attn.o_proj', 'layers.0.mlp']);
  assert.deepEqual(freezePatterns('', 'llama'), []);
});

it('freeze: selects by pattern, freezes the steps of frozen weights, rejects a pattern matching nothing', () => {
  const params = freshParams('llama');
  const steps: Params = new Map();
  for (const n of params.keys()) if (n.includes('_proj')) steps.set(`${n}.step`, new Tensor(new Float32Array(1), [1], true));
  const r = freeze('ov', 'llama', params, steps);
  assert.deepEqual(r.params, [...params.keys()].filter((n) => /v_proj|o_proj/.test(n)));
  assert.equal(r.params.length, 2 * llamaCfg.numHiddenLayers);
  assert.deepEqual(r.quantParams, r.params.map((n) => `${n}.step`));
  for (const [n, p] of [...params, ...steps]) assert.equal(p.requiresGrad, !/v_proj|o_proj/.test(n), n);
  assert.throws(() => freeze('ov,no_such_module', 'llama', freshParams('llama'), new Map()), /--freeze ov,no_such_module: pattern 'no_such_module' matches no parameter/);
  // Freezing only a step (quantizer parameter) leaves its weight trainable.
  const p2 = freshParams('llama'), s2: Params = new Map([['model.layers.0.mlp.up_proj.weight.step', new Tensor(new Float32Array(1), [1], true)]]);
  const r2 = freeze('re:up_proj\\.weight\\.step$', 'llama', p2, s2);
  assert.deepEqual(r2, { params: [], quantParams: ['model.layers.0.mlp.up_proj.weight.step'] });
  assert.equal(p2.get('model.layers.0.mlp.up_proj.weight')!.requiresGrad, true);
});

it('ov-freeze in training: frozen weights bitwise unchanged, no optimizer state (memory, checkpoint), computed once; others move', () => {
  const teacher = freshParams('llama', 3);
  const params: Params = new Map([...teacher].map(([n, p]) => [n, new Tensor(p.f32.slice(), p.shape, true)]));
  const before = new Map([...params].map(([n, p]) => [n, p.f32.slice()]));
  const frozen = freeze('ov', 'llama', params, new Map());
  // A stand-in for a fake quantizer: scales every weight by 0.9 and counts the calls.
  const calls = new Map<string, number>();
  const scaleW: WeightFn = (name, p) => {
    calls.set(name, (calls.get(name) ?? 0) + 1);
    return mul(p, new Tensor(Float32Array.of(0.9), [1]));
  };
  const weight = cacheFrozen(scaleW, new Set(frozen.params));
  const windows = syntheticWindows(16, 40, true);
  const out = tmpDir('freeze');
  const optimizer = new AdamW(params, { lr: 1e-2 });
  const steps = 6;
  trainLoop<TokenBatch>({
    params, optimizer, lr: () => 1e-2, totalSteps: steps, seed: 1, outDir: out, saveEvery: steps,
    epochBatches: (e) => shuffledBatches(windows, 4, 1, e),
    loss: (b) => {
      const ids = intTensor(b.inputs, [b.rows, b.seqLen]);
      const t = noGrad(() => llamaForward(teacher, llamaCfg, ids).logits);
      const s = llamaForward(params, llamaCfg, ids, { weight }).logits;
      return klDiv(reshape(t, [b.rows * b.seqLen, V]), reshape(s, [b.rows * b.seqLen, V]));
    },
  });
  const stateNames = new Set(optimizer.stateNames());
  const ckpt = readCheckpoint(`${out}/checkpoint`);
  for (const [n, p] of params) {
    const isFrozen = frozen.params.includes(n);
    const same = Buffer.from(p.f32.buffer).equals(Buffer.from(before.get(n)!.buffer));
    assert.equal(same, isFrozen, `${n}: ${isFrozen ? 'frozen, must be unchanged' : 'trained, must move'}`);
    assert.equal(stateNames.has(n), !isFrozen, `${n}: optimizer state in memory`);
    assert.equal(ckpt.optimizer.buffers.has(`${n}.exp_avg`), !isFrozen, `${n}: exp_avg in the checkpoint`);
    assert.equal(ckpt.optimizer.buffers.has(`${n}.exp_avg_sq`), !isFrozen, `${n}: exp_avg_sq in the checkpoint`);
    assert.equal(p.grad, null);
    // Frozen weights went through the WeightFn once; the others at every step.
    if (calls.has(n)) assert.equal(calls.get(n), isFrozen ? 1 : steps, `${n}: WeightFn calls`);
  }
  for (const n of frozen.params) assert.deepEqual(ckpt.params.get(n), before.get(n), `${n} in the checkpoint`);
});

it('a frozen weight first computed by a forward without a graph (an evaluation) serves the later forwards', () => {
  // Such a forward gives its layers' intermediates back as each layer returns (storage.ts
  // scoped); the cached value is made in that layer yet must outlive it.
  const params: Params = new Map([...freshParams('llama', 5)].map(([n, p]) => [n, new Tensor(p.f32.slice(), p.shape, true)]));
  const frozen = freeze('ov', 'llama', params, new Map());
  const weight = cacheFrozen((_name, p) => mul(p, new Tensor(Float32Array.of(0.9), [1])), new Set(frozen.params));
  const ids = intTensor(Array.from({ length: 2 * 8 }, (_, i) => (i * 7) % V), [2, 8]);
  const first = noGrad(() => llamaForward(params, llamaCfg, ids, { weight }).logits.f32.slice());
  const again = noGrad(() => llamaForward(params, llamaCfg, ids, { weight }).logits.f32.slice());
  const recorded = llamaForward(params, llamaCfg, ids, { weight }).logits.f32.slice();
  assert.deepEqual(again, first);
  assert.deepEqual(recorded, first);
});
