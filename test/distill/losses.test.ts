// Distillation losses (METHODS.md §3) against PyTorch fixtures (scripts/make_distill_fixtures.py),
// plus the properties the fixtures cannot show: attn_map is 0 for identical models, padding
// changes no term (values and parameter gradients, on real model forwards), weights combine
// linearly, captureFor asks for exactly what is needed, and bad input fails clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor, backward, crossEntropy, intTensor, klDiv, noGrad, reshape, zeros } from '../../src/tensor/index.js';
import {
  LOSS_NAMES, captureFor, decoderOutputs, distillLoss, encoderOutputs, parseLossWeights, releaseOutputs,
  type DistillOutputs, type LossName, type LossWeights,
} from '../../src/distill/losses.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertClassify, bertEncode, bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { Rng } from '../../src/tensor/rng.js';
import { BACKENDS, onBackend } from '../backends.js';
import { expectClose } from '../util.js';
import { familyModel, randomIds } from '../quant/models.js';
import { forward } from '../../src/train/qat-loss.js';
import type { QatBatch } from '../../src/train/qat-data.js';
import type { ModelSizes } from '../../src/models/architecture.js';
import type { ArchName } from '../../src/models/registry.js';
import { chainBound } from '../tolerance.js';
import { gamma } from '../bounds.js';

// Bounds for a loss against the fixture (float64 math rounded once). A loss value is one sum
// over every element of the student tensors it reads (n = their total size; any order) of terms
// each a few float32 roundings deep (a log-softmax: max, exp-sum, log, difference): with the
// terms' Σ|·| at most the loss's scale for MSE and cross-entropy (nonnegative terms) and stated
// ≤ 2× it for the KL terms, |Δ| ≤ chainBound(4, n, 2)·|loss|. A gradient entry is a row
// reduction (length ≤ the longest row, V or T or C, + 4 roundings) of quantities no larger than
// the gradient's scale (a probability difference p_S − p_T has |p_S| + |p_T| ≤ 2 × …): per entry
// chainBound(4, row, 1) relative plus γ_{row+4}·2·scale absolute.
const valueRtol = (xs: Tensor[]): number => chainBound(4, xs.reduce((n, x) => n + x.size, 0), 2);
const gradTol = (x: Tensor, scale: number): [number, number] => {
  const row = x.shape[x.shape.length - 1];
  return [chainBound(4, row, 1), 2 * gamma(row + 4) * scale];
};

const fx = readSafetensors(fileURLToPath(new URL('../fixtures/distill_losses.safetensors', import.meta.url)));

const get = (name: string): Tensor => {
  const t = fx.tensors.get(name);
  assert.ok(t, `fixture tensor ${name} missing`);
  return new Tensor(t.data as Float32Array | Int32Array, t.shape);
};
const has = (name: string): boolean => fx.tensors.has(name);

interface CaseConfig { B: number; T: number; H: number; C: number; L: number; V: number; tau: number; causal: boolean; classifier: boolean }
const config = (c: string): CaseConfig => JSON.parse(fx.metadata[`${c}.config`]) as CaseConfig;

/** Student or teacher outputs from the fixture; student tensors are fresh leaves with grads. */
function outputs(c: string, who: 's' | 't'): DistillOutputs {
  const leaf = (n: string): Tensor => new Tensor(get(n).f32.slice(), get(n).shape, who === 's');
  const list = (k: string): Tensor[] => {
    const out: Tensor[] = [];
    for (let l = 0; has(`${c}.${who}.${k}.${l}`); l++) out.push(leaf(`${c}.${who}.${k}.${l}`));
    return out;
  };
  const o: DistillOutputs = {
    logits: leaf(`${c}.${who}.logits`), hidden: list('hidden'), probs: list('probs'), scores: list('scores'),
    context: list('context'), saOut: list('sa_out'), attnOut: list('attn_out'),
  };
  if (config(c).causal) o.attnOut = o.saOut; // what decoderOutputs does
  return o;
}

/** The student tensors a loss reads (for its gradients). */
function read(o: DistillOutputs, name: LossName, causal: boolean): Tensor[] {
  switch (name) {
    case 'pred': case 'ce': return [o.logits];
    case 'rep': return o.hidden;
    case 'attn_score': return o.scores;
    case 'attn_map': return o.probs;
    case 'context': return o.context;
    case 'sa_out': return o.saOut;
    case 'attn_out': return causal ? o.saOut : o.attnOut;
  }
}

for (const c of ['dec', 'enc']) {
  for (const backend of BACKENDS) {
    test(`${c}: every loss matches PyTorch (value and student gradient) on ${backend}`, () => onBackend(backend, () => {
      const cfg = config(c);
      const arch = cfg.causal ? 'llama' : 'bert';
      for (const name of LOSS_NAMES) {
        const s = outputs(c, 's'), t = outputs(c, 't');
        const { total, terms } = distillLoss(s, t, { [name]: 1 }, { arch, tau: cfg.tau, mask: get(`${c}.mask`), labels: get(`${c}.labels`) });
        assert.deepEqual(Object.keys(terms), [name]);
        const xs = read(s, name, cfg.causal);
        expectClose([total.item()], get(`${c}.loss.${name}`).f32, valueRtol(xs), 0, `${c} ${name} value`);
        backward(total);
        xs.forEach((x, l) => {
          const want = get(name === 'pred' || name === 'ce' ? `${c}.grad.${name}.logits` : `${c}.grad.${name}.${l}`).f32;
          let scale = 0;
          for (const v of want) scale = Math.max(scale, Math.abs(v));
          assert.ok(x.grad, `${c} ${name}: no gradient for student tensor ${l}`);
          expectClose(x.grad!.f32, want, ...gradTol(x, scale), `${c} ${name} grad ${l}`);
        });
      }
    }));
  }
}

test('weights combine linearly: total = Σ w·term, gradient = Σ w·gradient', () => {
  const cfg = config('dec');
  const w: LossWeights = { pred: 1, ce: 0.5, rep: 0.3, attn_score: 0.2, attn_map: 0.7, attn_out: 0.4, context: 0.1, sa_out: 0.25 };
  const s = outputs('dec', 's'), t = outputs('dec', 't');
  const o = { arch: 'llama' as const, tau: cfg.tau, mask: get('dec.mask'), labels: get('dec.labels') };
  const { total, terms } = distillLoss(s, t, w, o);
  let want = 0;
  for (const [k, v] of Object.entries(w)) {
    want += v * get(`dec.loss.${k}`).f32[0];
    expectClose([terms[k as LossName]!.item()], get(`dec.loss.${k}`).f32, valueRtol(read(s, k as LossName, true)), 0, k);
  }
  // Σ of 8 nonnegative weighted terms, each within its valueRtol (at most the largest, all
  // student tensors), plus the weighting and the 8-term sum: γ_16 more.
  const allRtol = valueRtol([s.logits, ...s.hidden, ...s.probs, ...s.scores, ...s.context, ...s.saOut]);
  expectClose([total.item()], [want], allRtol + gamma(16), 0, 'total');
  backward(total);
  const scaled = (n: string, f: number): [Float32Array, number] => {
    const w = get(n).f32.map((v) => f * v);
    return [w, w.reduce((m, v) => Math.max(m, Math.abs(v)), 0)];
  };
  // Hidden states are read by rep only: their gradient is 0.3 × rep's.
  const [rep, repScale] = scaled('dec.grad.rep.1', 0.3);
  expectClose(s.hidden[1].grad!.f32, rep, ...gradTol(s.hidden[1], repScale), 'rep grad');
  // saOut is read by attn_out (decoder) and sa_out: 0.4 + 0.25 of the same MSE gradient (one
  // more rounding for the sum of the two contributions: within gradTol's 4).
  const [sa, saScale] = scaled('dec.grad.sa_out.0', 0.65);
  expectClose(s.saOut[0].grad!.f32, sa, ...gradTol(s.saOut[0], saScale), 'saOut grad');
  // Zero weights compute nothing.
  assert.deepEqual(Object.keys(distillLoss(outputs('dec', 's'), t, { pred: 1, rep: 0 }, o).terms), ['pred']);
});

test('captureFor requests only what the weighted losses read', () => {
  assert.deepEqual(captureFor({ pred: 1 }, 'llama'), {});
  assert.deepEqual(captureFor({ pred: 1, ce: 0.5 }, 'bert'), {});
  assert.deepEqual(captureFor({ pred: 1, rep: 1, attn_map: 0 }, 'llama'), { hidden: true });
  assert.deepEqual(captureFor({ rep: 1, attn_map: 1 }, 'bert'), { hidden: true, probs: true });
  assert.deepEqual(captureFor({ attn_score: 1 }, 'bert'), { scores: true });
  assert.deepEqual(captureFor({ attn_out: 1 }, 'llama'), { saOut: true });
  assert.deepEqual(captureFor({ attn_out: 1 }, 'bert'), { attnOut: true });
  assert.deepEqual(captureFor({ context: 1, sa_out: 1 }, 'bert'), { context: true, saOut: true });
});

// ---- real forwards: identical models, padding ---------------------------------------------------

const LCFG: LlamaConfig = {
  vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
  rmsNormEps: 1e-6, ropeTheta: 1e4, maxPositionEmbeddings: 32, tieWordEmbeddings: false, initializerRange: 0.2,
};
const BCFG: BertConfig = {
  vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 24, maxPositionEmbeddings: 32,
  typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0, attentionProbsDropoutProb: 0,
  initializerRange: 0.2, numLabels: 3,
};
const ALL: LossWeights = { pred: 1, ce: 1, rep: 1, attn_score: 1, attn_map: 1, attn_out: 1, context: 1, sa_out: 1 };

function perturbed(p: Params, seed: number, eps: number): Params {
  const rng = new Rng(seed);
  const out: Params = new Map();
  for (const [k, v] of p) out.set(k, new Tensor(v.f32.map((x) => x + eps * rng.normal()), v.shape, true));
  return out;
}

/** A (B, T) batch: ids, lengths → mask, labels (next tokens, -100 at each last real position). */
function batch(ids: number[][], lengths: number[], T: number): { ids: Tensor; mask: Tensor; labels: Tensor } {
  const B = ids.length, id = new Int32Array(B * T), m = new Int32Array(B * T), lab = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      id[b * T + t] = ids[b][t] ?? (7 * b + 3 * t) % LCFG.vocabSize; // padding ids: arbitrary tokens
      m[b * T + t] = t < lengths[b] ? 1 : 0;
      if (t + 1 < lengths[b]) lab[b * T + t] = ids[b][t + 1];
    }
  }
  return { ids: intTensor(id, [B, T]), mask: intTensor(m, [B, T]), labels: intTensor(lab, [B, T]) };
}

// The padded and unpadded runs are the same math with different shapes, so the native kernels
// block their sums differently: each is within chainBound of the exact value, so they differ by
// at most twice that. Depth: 2 layers × 17 stages forward (as in test/models/blocks.test.ts),
// × 3 with the backward, plus 4 for the loss; n = the longest reduction (intermediate 24, or
// the batch's ≤ 3·(7+3) = 30 tokens for weight gradients); κ = 1 (the quantities compared are
// sums of nonnegative terms: loss values and gradient norms). A padded token leaking into a loss
// moves it by ~1/N ≈ 10 %, far beyond this.
const PAD_RTOL = 2 * chainBound(3 * 2 * 17 + 4, 30, 1);

type Run = (student: Params, teacher: Params, T: number, w: LossWeights) => Record<string, number>;

const runLlama: Run = (student, teacher, T, w) => {
  const seqs = [[1, 5, 9, 2, 33, 4, 8], [3, 3, 17, 21, 6]];
  const { ids, mask, labels } = batch(seqs, [7, 5], T);
  const capture = captureFor(w, 'llama');
  const t = noGrad(() => decoderOutputs(llamaForward(teacher, LCFG, ids, { attentionMask: mask, capture })));
  const s = decoderOutputs(llamaForward(student, LCFG, ids, { attentionMask: mask, capture }));
  const r = distillLoss(s, t, w, { arch: 'llama', tau: 2, mask, labels });
  return collect(r, student);
};

const runBert: Run = (student, teacher, T, w) => {
  const seqs = [[2, 5, 9, 12, 33, 4], [2, 3, 17, 21], [2, 8, 8, 30, 1]];
  const { ids, mask } = batch(seqs, [6, 4, 5], T);
  const labels = intTensor([0, 2, 1], [3]);
  const capture = captureFor(w, 'bert');
  const t = noGrad(() => {
    const enc = bertEncode(teacher, BCFG, ids, { attentionMask: mask, capture });
    return encoderOutputs(enc, bertClassify(teacher, BCFG, enc));
  });
  const enc = bertEncode(student, BCFG, ids, { attentionMask: mask, capture });
  const s = encoderOutputs(enc, bertClassify(student, BCFG, enc));
  return collect(distillLoss(s, t, w, { arch: 'bert', mask, labels }), student);
};

/** Term values and a few parameter-gradient entries (by name) after backward of the total. */
function collect(r: ReturnType<typeof distillLoss>, student: Params): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.terms)) out[k] = v.item();
  for (const p of student.values()) p.grad = null;
  backward(r.total);
  for (const [name, p] of student) {
    if (!p.grad) continue;
    let s = 0;
    for (const v of p.grad.f32) s += v * v;
    out[`grad ${name}`] = Math.sqrt(s);
  }
  return out;
}

const models = [
  { arch: 'llama', spec: llamaParamSpec(LCFG), run: runLlama, T: 7 },
  { arch: 'bert', spec: bertParamSpec(BCFG, { classifier: true }), run: runBert, T: 6 },
] as const;

for (const m of models) {
  for (const backend of BACKENDS) {
    test(`${m.arch}: attn_map is 0 for identical models and > 0 otherwise (${backend})`, () => onBackend(backend, () => {
      const teacher = initParams(m.spec, 1);
      const same = m.run(perturbed(teacher, 2, 0), teacher, m.T, { attn_map: 1, pred: 1, rep: 1, attn_score: 1, attn_out: 1 });
      for (const k of ['attn_map', 'pred', 'rep', 'attn_score', 'attn_out']) assert.equal(same[k], 0, `${k} of identical models`);
      const diff = m.run(perturbed(teacher, 2, 0.05), teacher, m.T, { attn_map: 1 });
      assert.ok(diff.attn_map > 1e-6, `attn_map of different models is ${diff.attn_map}`);
    }));

    test(`${m.arch}: appending padding changes no term and no gradient (${backend})`, () => onBackend(backend, () => {
      const teacher = initParams(m.spec, 3);
      const student = perturbed(teacher, 4, 0.05);
      const a = m.run(student, teacher, m.T, ALL);
      const b = m.run(student, teacher, m.T + 3, ALL);
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const k of Object.keys(a)) {
        assert.ok(a[k] > 0 || k.startsWith('grad'), `${k} is ${a[k]}`);
        expectClose([b[k]], [a[k]], PAD_RTOL, 0, k);
      }
    }));
  }
}

// ---- bad input ---------------------------------------------------------------------------------

test('errors: mismatched layers or shapes, missing captures or labels, bad weights and masks', () => {
  const o = { arch: 'llama' as const, mask: get('dec.mask'), labels: get('dec.labels') };
  const s = (): DistillOutputs => outputs('dec', 's');
  const t = outputs('dec', 't');
  const fewer = { ...t, hidden: t.hidden.slice(1) };
  assert.throws(() => distillLoss(s(), fewer, { rep: 1 }, o), /loss 'rep': student has 3 layers of hidden states, teacher 2/);
  const wrong = { ...t, probs: [t.probs[0], new Tensor(new Float32Array(2 * 3 * 36), [2, 3, 6, 6])] };
  assert.throws(() => distillLoss(s(), wrong, { attn_map: 1 }, o), /loss 'attn_map' layer 1: student shape \[2,2,6,6\] differs from teacher shape \[2,3,6,6\]/);
  assert.throws(() => distillLoss({ ...s(), scores: [] }, t, { attn_score: 1 }, o),
    /loss 'attn_score' needs attention scores, but the student's forward captured none; run both forwards with capture: captureFor\(weights, 'llama'\)/);
  assert.throws(() => distillLoss(s(), { ...t, saOut: [], attnOut: [] }, { attn_out: 1 }, o), /teacher's forward captured none/);
  assert.throws(() => distillLoss(s(), t, { ce: 1 }, { arch: 'llama' }), /'ce' has a positive weight but no labels/);
  assert.throws(() => distillLoss(s(), t, { ce: 1 }, { arch: 'llama', labels: intTensor([1, 2], [2]) }), /'ce' labels must be int32 \[2,6\]/);
  const small = { ...t, logits: new Tensor(new Float32Array(2 * 6 * 10), [2, 6, 10]) };
  assert.throws(() => distillLoss(s(), small, { pred: 1 }, o), /student logits \[2,6,11\] and teacher logits \[2,6,10\] differ/);
  assert.throws(() => distillLoss(s(), t, { pred: 1 }, { arch: 'llama', mask: intTensor(new Int32Array(10).fill(1), [2, 5]) }), /mask must be int32 \(B, T\) = \(2, 6\)/);
  assert.throws(() => distillLoss(s(), t, { pred: 1 }, { arch: 'llama', mask: intTensor(new Int32Array(12).fill(2), [2, 6]) }), /mask entries must be 0 or 1/);
  assert.throws(() => distillLoss(s(), t, { pred: 1 }, { arch: 'llama', tau: 0 }), /tau must be a positive number/);
  assert.throws(() => distillLoss(s(), t, { attn: 1 } as LossWeights, o), /unknown distillation loss 'attn' \(known: pred, ce, rep/);
  assert.throws(() => distillLoss(s(), t, { pred: -1 }, o), /'pred' has weight -1; weights must be finite numbers ≥ 0/);
  assert.throws(() => distillLoss(s(), t, { pred: 0 }, o), /no distillation loss has a positive weight/);
});

test('parseLossWeights reads objects and name=weight lists, naming the source on errors', () => {
  assert.deepEqual(parseLossWeights({ pred: 1, attn_map: 0.5 }, 'x'), { pred: 1, attn_map: 0.5 });
  assert.deepEqual(parseLossWeights('pred=1, rep=1,attn_out=0.3', '--loss'), { pred: 1, rep: 1, attn_out: 0.3 });
  assert.throws(() => parseLossWeights('pred=1,rep', '--loss'), /--loss: expected name=weight, got 'rep'/);
  assert.throws(() => parseLossWeights('pred=x', '--loss'), /--loss: distillation loss 'pred' has weight NaN/);
  assert.throws(() => parseLossWeights({ kd: 1 }, 'cfg.json'), /cfg.json: unknown distillation loss 'kd'/);
  assert.throws(() => parseLossWeights([1], 'cfg.json'), /cfg.json: loss weights must be an object/);
});

test('without a mask, pred and ce are the plain mean over every token', () => {
  const s = outputs('dec', 's'), t = outputs('dec', 't');
  const labels = get('dec.labels');
  const { terms } = distillLoss(s, t, { pred: 1, ce: 1 }, { arch: 'llama', tau: 2, labels });
  const [B, T, V] = s.logits.shape;
  const kl = klDiv(t.logits, s.logits, 2).item(), ce = crossEntropy(reshape(s.logits, [B * T, V]), reshape(labels, [B * T])).item();
  assert.equal(terms.pred!.item(), kl);
  assert.equal(terms.ce!.item(), ce);
  // and the masked value differs (padding rows of the fixture hold real-looking logits)
  assert.notEqual(distillLoss(s, t, { pred: 1 }, { arch: 'llama', tau: 2, mask: get('dec.mask') }).total.item(), kl);
});

// releaseOutputs (what `kdqat qat` does with a teacher's outputs once their loss has been
// back-propagated): the taps (owners, and reshapes of the forward's own intermediates) and a
// decoder head's input and logits go back to the storage pool, the head's weight (a parameter)
// does not, and the model is untouched: its next forward gives the same values.
test('releaseOutputs: taps and the head input go back to the pool, never the head weight; the next forward is the same', () => {
  const sizes: ModelSizes = { vocab: 64, hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64, seq: 16, dropout: 0 };
  for (const name of ['llama', 'bert']) {
    const { model } = familyModel(name, sizes, 3);
    // Parameters in pool storage (zeros: stamped buffers, as the pool hands out), so that one
    // given back by mistake would be detached and the next forward would fail.
    for (const [k, p] of model.params) {
      if (p.dtype !== 'f32') continue;
      const c = zeros(p.shape);
      c.f32.set(p.f32);
      model.params.set(k, c);
    }
    const b = { ids: randomIds(2, 16, sizes.vocab), mask: null, typeIds: null } as unknown as QatBatch;
    const capture = captureFor({ pred: 1, rep: 1, attn_map: 1, attn_score: 1, context: 1, sa_out: 1 }, name as ArchName);
    const run = (): DistillOutputs => noGrad(() => forward(model, b, capture));
    const first = run();
    const logits = first.logits.f32.slice(); // (reads a decoder's lazy logits: memoized on its head)
    const taps = (['hidden', 'probs', 'scores', 'context', 'saOut', 'attnOut'] as const).flatMap((k) => first[k] ?? []);
    assert.ok(taps.length >= 5 * sizes.layers, `${name}: taps captured`);
    const weight = first.head?.weight;
    const weightBits = weight?.f32.slice();
    releaseOutputs(first, model.params);
    for (const t of taps) assert.equal(t.f32.length, 0, `${name}: a tap of shape [${t.shape}] is given back`);
    if (first.head) {
      assert.equal(first.head.x.f32.length, 0, `${name}: the head's input is given back`);
      assert.equal(first.head.logits!.f32.length, 0, `${name}: the memoized logits are given back`);
      assert.deepEqual(weight!.f32, weightBits, `${name}: the head weight is kept`);
    } else assert.equal(Object.getOwnPropertyDescriptor(first, 'logits')!.value.f32.length, 0, `${name}: the logits are given back`);
    assert.deepEqual(run().logits.f32, logits, `${name}: the next forward gives the same logits`);
  }
});
