// ELECTRA's replaced-token detection (src/train/electra.ts): the samples follow the generator's
// softmax, the loss is L_MLM + λ·L_Disc as computed independently in float64 from the same
// logits, its gradient matches central differences, and no gradient flows through the samples.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, backward, noGrad } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { lmLogits } from '../../src/models/model.js';
import type { Model } from '../../src/models/registry.js';
import { IGNORE_INDEX } from '../../src/data/mlm.js';
import { maskBatch, wrapClsSep } from '../../src/train/objectives.js';
import { GENERATOR_PREFIX, detectorLogits, electraLoss, electraModels, replaceWithSamples } from '../../src/train/electra.js';
import { SPECIALS, V, bertCfg, syntheticWindows } from './helpers.js';
import { gradCheck } from '../gradcheck.js';
import { SUPPORTED_MODEL_TYPES, architecture } from '../../src/models/registry.js';
import { PRETRAIN_DEFAULTS, buildModel, generatorSizes } from '../../src/train/pretrain.js';
import { U32, gamma } from '../bounds.js';

const noDropout: BertConfig = { ...bertCfg, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 };
const genCfg: BertConfig = { ...noDropout, hiddenSize: 16, numAttentionHeads: 2, intermediateSize: 32 };

function models() {
  const disc = { arch: 'bert', config: noDropout, params: initParams(bertParamSpec(noDropout, {}), 7), heads: { mlm: false, classifier: false } } as Model;
  const gen = { arch: 'bert', config: genCfg, params: initParams(bertParamSpec(genCfg, { mlm: true }), 8), heads: { mlm: true, classifier: false } } as Model;
  return electraModels(disc, gen, noDropout.hiddenSize, 0);
}

function batch() {
  const w = syntheticWindows(14, 6, false);
  const plain = { rows: 3, seqLen: w.seqLen, inputs: w.data.slice(0, 3 * w.seqLen) };
  const b = wrapClsSep(plain, SPECIALS);
  return { b, mk: maskBatch(b, SPECIALS, V, 5) };
}

const chosenRows = (labels: Int32Array): number[] => [...labels.keys()].filter((i) => labels[i] !== IGNORE_INDEX);

it('one parameter map: the discriminator, the detector head and the prefixed generator share tensors with the models', () => {
  const m = models();
  for (const [k, t] of m.disc.params) assert.equal(m.params.get(k), t, k);
  for (const [k, t] of m.gen.params) assert.equal(m.params.get(GENERATOR_PREFIX + k), t, k);
  const head = [...m.params.keys()].filter((k) => k.startsWith('discriminator_predictions.'));
  assert.deepEqual(head.sort(), ['discriminator_predictions.dense.bias', 'discriminator_predictions.dense.weight',
    'discriminator_predictions.dense_prediction.bias', 'discriminator_predictions.dense_prediction.weight']);
  assert.equal(m.params.size, m.disc.params.size + m.gen.params.size + 4);
});

it('samples: a peaked softmax gives its token; only chosen positions change; replaced = differs from the original', () => {
  const original = Int32Array.from([1, 10, 11, 12, 13, 2]);
  const rows = [1, 3, 4];
  const want = [10, 40, 7]; // position 1 keeps its token: not replaced
  const z = new Float32Array(rows.length * V).fill(-1000);
  want.forEach((t, n) => { z[n * V + t] = 0; });
  const r = replaceWithSamples(original, rows, new Tensor(z, [rows.length, V]), 3);
  assert.deepEqual([...r.ids], [1, 10, 11, 40, 7, 2]);
  assert.deepEqual([...r.isReplaced], [0, 0, 0, 1, 1, 0]);
  assert.equal(r.replaced, 2);
});

it('samples follow the softmax: counts within 5 binomial standard deviations of N·p for every token', () => {
  // p = softmax(z) over 4 tokens; N draws (one row each). Each count is Binomial(N, p_v): a
  // deviation beyond 5σ has probability < 6e-7 per token for a correct sampler.
  const p = [0.5, 0.3, 0.15, 0.05], N = 20000, W = 4;
  const z = new Float32Array(N * W);
  for (let n = 0; n < N; n++) p.forEach((q, v) => { z[n * W + v] = Math.log(q) + 3; });
  const rows = Array.from({ length: N }, (_, i) => i);
  const r = replaceWithSamples(new Int32Array(N).fill(99), rows, new Tensor(z, [N, W]), 11);
  const counts = [0, 0, 0, 0];
  for (const t of r.ids) counts[t]++;
  p.forEach((q, v) => {
    const sd = Math.sqrt(N * q * (1 - q));
    assert.ok(Math.abs(counts[v] - N * q) <= 5 * sd, `token ${v}: ${counts[v]} draws, expected ${N * q} ± ${(5 * sd).toFixed(0)}`);
  });
  assert.equal(r.replaced, N);
});

it('loss = CE(generator at the chosen positions) + λ·mean 2-way CE(detector at every position), against float64 from the same logits', () => {
  const m = models(), { b, mk } = batch(), lambda = 50, seed = 17;
  const r = noGrad(() => electraLoss(m, b, mk.inputs, mk.labels, { seed, discWeight: lambda }));
  const rows = chosenRows(mk.labels);
  const gz = noGrad(() => lmLogits(m.gen, new Tensor(mk.inputs, [b.rows, b.seqLen]), { rows: Int32Array.from(rows) })).f32;
  const s = replaceWithSamples(b.inputs, rows, new Tensor(gz, [rows.length, V]), seed);
  const dz = noGrad(() => detectorLogits(m, s.ids, b.rows, b.seqLen)).f32;
  const ce = (z: ArrayLike<number>, at: number, n: number, y: number): number => {
    let max = -Infinity, sum = 0;
    for (let j = 0; j < n; j++) max = Math.max(max, z[at + j]);
    for (let j = 0; j < n; j++) sum += Math.exp(z[at + j] - max);
    return max + Math.log(sum) - z[at + y];
  };
  let gen = 0, zmax = 0;
  rows.forEach((pos, n) => { gen += ce(gz, n * V, V, mk.labels[pos]); });
  gen /= rows.length;
  let disc = 0;
  const N = b.rows * b.seqLen;
  for (let i = 0; i < N; i++) disc += ce(dz, 2 * i, 2, s.isReplaced[i]);
  disc /= N;
  for (const v of [...gz, ...dz]) zmax = Math.max(zmax, Math.abs(v));
  // float32 cross-entropy from float32 logits: per row, log-sum-exp over n terms and the
  // subtraction, error ≤ γ_{n+4}·(2·max|z| + ln n + 1); the mean over rows adds γ_rows·mean.
  const bound = (n: number, count: number, mean: number) => gamma(n + 4) * (2 * zmax + Math.log(n) + 1) + gamma(count) * mean;
  const bg = bound(V, rows.length, gen), bd = bound(2, N, disc);
  assert.ok(Math.abs(r.gen.item() - gen) <= bg, `generator loss ${r.gen.item()} vs ${gen} (bound ${bg})`);
  assert.ok(Math.abs(r.disc.item() - disc) <= bd, `detector loss ${r.disc.item()} vs ${disc} (bound ${bd})`);
  const total = gen + lambda * disc;
  assert.ok(Math.abs(r.loss.item() - total) <= bg + lambda * bd + 2 * U32 * total, `loss ${r.loss.item()} vs ${total}`);
  assert.equal(r.chosen, rows.length);
  assert.deepEqual([...r.isReplaced], [...s.isReplaced]);
  // The generator is untrained, so its samples almost never hit the original: the detector has
  // positives to learn from.
  assert.ok(s.replaced >= rows.length - 2 && s.replaced > 0, `${s.replaced} of ${rows.length} chosen positions replaced`);
});

// The encoder's own backward is checked against PyTorch elsewhere (test/models); what is new here
// is the detector head on top of it (and the next test shows its loss reaches every encoder
// weight). Encoder weights are not checked this way: at initialization their gradients are
// ~1e-6, so a step's change of the loss is below the float32 resolution of the loss itself.
it('the gradient w.r.t. the detector head matches central differences', () => {
  const m = models(), { b, mk } = batch();
  const f = () => electraLoss(m, b, mk.inputs, mk.labels, { seed: 17, discWeight: 50 }).loss;
  for (const name of ['discriminator_predictions.dense_prediction.weight', 'discriminator_predictions.dense_prediction.bias',
    'discriminator_predictions.dense.weight', 'discriminator_predictions.dense.bias']) {
    const t = m.params.get(name)!;
    t.requiresGrad = true;
    gradCheck(name, () => f(), [t], { maxPoints: 8, eps: 1e-2 });
  }
});

it('no gradient flows through the samples: the generator gets exactly the MLM loss\'s gradient, the discriminator none from it', () => {
  const m = models(), { b, mk } = batch();
  const grads = (which: 'loss' | 'gen'): Map<string, Float32Array | null> => {
    for (const t of m.params.values()) { t.requiresGrad = true; t.grad = null; }
    const r = electraLoss(m, b, mk.inputs, mk.labels, { seed: 17, discWeight: 50 });
    backward(r[which]);
    return new Map([...m.params].map(([k, t]) => [k, t.grad ? t.grad.f32.slice() : null]));
  };
  const full = grads('loss'), gen = grads('gen');
  for (const [k, g] of full) {
    if (k.startsWith(GENERATOR_PREFIX)) {
      const want = gen.get(k);
      if (!want) { assert.ok(!g || g.every((x) => x === 0), `${k}: no gradient from the MLM loss, none from the total`); continue; }
      assert.ok(g && g.every((x, i) => Object.is(x, want[i])), `${k}: the total's gradient is the MLM loss's, bit for bit`);
    } else {
      const fromGen = gen.get(k);
      assert.ok(!fromGen || fromGen.every((x) => x === 0), `${k}: the MLM loss does not reach the discriminator`);
      assert.ok(g && g.some((x) => x !== 0), `${k}: the detector's loss reaches it`);
    }
  }
});

it('every encoder family of the registry trains under ELECTRA: the loss reaches all its weights', () => {
  const families = SUPPORTED_MODEL_TYPES.filter((n) => architecture(n).encode);
  assert.ok(families.length >= 3, `encoder families with an encoder output: ${families.join(', ')}`);
  for (const arch of families) {
    const c = { ...PRETRAIN_DEFAULTS, arch, hidden: 32, layers: 2, heads: 4, kvHeads: 4, intermediate: 64, seq: 16, dropout: 0, objective: 'electra' as const };
    const disc = buildModel(c, V, { heads: { lm: false, mlm: false, classifier: false } });
    const m = electraModels(disc, buildModel(generatorSizes(c), V, { seed: 3 }), c.hidden, 0);
    const { b, mk } = batch();
    const B = 2, T = 16; // the first two rows, cut to the 16 positions these models embed
    const cut = (x: Int32Array) => Int32Array.from({ length: B * T }, (_, i) => x[Math.floor(i / T) * b.seqLen + (i % T)]);
    for (const t of m.params.values()) { t.requiresGrad = true; t.grad = null; }
    const r = electraLoss(m, { rows: B, seqLen: T, inputs: cut(b.inputs) }, cut(mk.inputs), cut(mk.labels), { seed: 5, discWeight: 50 });
    assert.ok(Number.isFinite(r.loss.item()), `${arch}: finite loss`);
    backward(r.loss);
    // Fixed tables (RoFormer's sinusoids: init 'values') are read, never trained: no gradient.
    const fixed = new Set<string>();
    for (const [prefix, model] of [['', disc], [GENERATOR_PREFIX, m.gen]] as const) {
      const rec = architecture(model.arch);
      for (const [n, sp] of rec.paramSpec(model.config, rec.modelHeads(model))) if (sp.init.kind === 'values') fixed.add(prefix + n);
    }
    for (const [k, t] of m.params) {
      if (/token_type|pooler/.test(k)) continue; // one segment; no pooler in a base model's loss
      if (fixed.has(k)) {
        assert.ok(!t.grad || t.grad.f32.every((x) => x === 0), `${arch}: the fixed table ${k} gets no gradient`);
        continue;
      }
      assert.ok(t.grad && t.grad.f32.some((x) => x !== 0), `${arch}: ${k} gets a gradient`);
    }
  }
});
