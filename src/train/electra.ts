// ELECTRA's replaced-token detection (Clark et al. 2020, "ELECTRA: Pre-training Text Encoders as
// Discriminators Rather Than Generators"), for any encoder family of the registry.
//
// A small generator (the same family, hidden/intermediate/heads scaled by `generatorSize`) is
// trained as a masked LM on the usual BERT corruption; at each chosen position a token is sampled
// from its softmax (no gradient flows through the sample), and the discriminator — the encoder
// that is kept — reads the original sequence with those positions replaced and predicts, at
// every position, whether the token there is the original. A sample equal to the original counts
// as original (ELECTRA §2). Loss = L_MLM(generator) + λ·L_Disc, λ = `discWeight` (ELECTRA: 50).
// Every position gives the discriminator a target, against the ~15 % chosen ones of a masked LM:
// scripts/context-learning.ts and docs/teachers.md "Why no kdqat encoder beats word counting" measure why
// that matters here.
//
// Differences from the paper, all stated in README "Pre-training objectives": the generator has its own embeddings
// (ELECTRA ties the token embeddings; §3.2 finds tying worth +0.7 GLUE); the detector head is
// dense(C→C), GELU, dense(C→2) with a 2-way softmax, which is the paper's dense(C→1) sigmoid with
// the logit z₁ − z₀; the corruption is BERT's 80/10/10 (ELECTRA's generator sees [MASK] at all
// chosen positions).
import { add, crossEntropy, gelu, linear, reshape, scale, softmax } from '../tensor/ops/index.js';
import { intTensor, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { Rng, hash32 } from '../tensor/rng.js';
import { initParams, param, type Init, type Params } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import type { Windows } from '../data/packing.js';
import { maskBatch, mlmLoss, sequentialBatches, wrapClsSep, type MlmSpecials, type TokenBatch } from './objectives.js';

/** Prefix of the generator's parameters inside the run's parameter map (checkpoints). */
export const GENERATOR_PREFIX = 'generator.';
const HEAD = 'discriminator_predictions.';

export interface ElectraModels {
  /** The encoder that is kept (no head of its own). */
  disc: Model;
  /** The masked-LM generator (its parameters are the run's `generator.*`). */
  gen: Model;
  /** Everything trained: the discriminator's, the detector head's and the generator's (prefixed). */
  params: Params;
}

/** The detector head's parameters, dense(C→C) then dense(C→2), initialized like BERT's Linears. */
function headSpec(C: number, std: number): Map<string, { shape: number[]; init: Init }> {
  const w: Init = { kind: 'normal', std }, z: Init = { kind: 'zeros' };
  return new Map([
    [`${HEAD}dense.weight`, { shape: [C, C], init: w }], [`${HEAD}dense.bias`, { shape: [C], init: z }],
    [`${HEAD}dense_prediction.weight`, { shape: [2, C], init: w }], [`${HEAD}dense_prediction.bias`, { shape: [2], init: z }],
  ]);
}

/** Joins the discriminator (hidden size `hidden`), the head (initialized from `seed`) and the
 *  generator in one map; the models keep sharing the tensors, so the optimizer and checkpoints
 *  see one set of parameters. */
export function electraModels(disc: Model, gen: Model, hidden: number, seed: number, initStd = 0.02): ElectraModels {
  const head = initParams(headSpec(hidden, initStd), hash32(seed, 0x656c65));
  const params: Params = new Map([...disc.params, ...head]);
  for (const [k, v] of gen.params) params.set(GENERATOR_PREFIX + k, v);
  return { disc, gen, params };
}

/** One ELECTRA loss on a batch of wrapped rows ([CLS] … [SEP]) given the masked-LM corruption
 *  (`inputs`, `labels` as maskBatch makes them). `seed` draws the generator's samples;
 *  `dropoutSeed` (31-bit) turns dropout on in both models. */
export function electraLoss(
  m: ElectraModels, b: TokenBatch, inputs: Int32Array, labels: Int32Array, opts: { seed: number; discWeight: number; dropoutSeed?: number },
): { loss: Tensor; gen: Tensor; disc: Tensor; detector: Tensor; isReplaced: Int32Array; chosen: number } {
  const B = b.rows, T = b.seqLen;
  const genDrop = opts.dropoutSeed === undefined ? undefined : hash32(opts.dropoutSeed, 1) >>> 1;
  const g = mlmLoss(m.gen, b, inputs, labels, genDrop); // logits (N, V) at the chosen positions
  const { ids, isReplaced } = replaceWithSamples(b.inputs, g.rows, g.logits, opts.seed);
  const detector = detectorLogits(m, ids, B, T, opts.dropoutSeed); // (B·T, 2)
  const disc = crossEntropy(detector, intTensor(isReplaced, [B * T]));
  return { loss: add(g.loss, scale(disc, opts.discWeight)), gen: g.loss, disc, detector, isReplaced, chosen: g.count };
}

/** The original rows with each chosen position replaced by a sample from the generator's softmax
 *  there (inverse CDF of one uniform per position, from `seed`; the probabilities from the
 *  engine's softmax kernel); label 1 where the sample differs. */
export function replaceWithSamples(
  original: Int32Array, rows: readonly number[], logits: Tensor, seed: number,
): { ids: Int32Array; isReplaced: Int32Array; replaced: number } {
  const V = logits.shape[1], rng = new Rng(seed);
  const p = noGrad(() => softmax(logits)).f32; // (N, V)
  const ids = Int32Array.from(original), isReplaced = new Int32Array(original.length);
  let replaced = 0;
  rows.forEach((pos, n) => {
    const row = n * V;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += p[row + v];
    const u = rng.uniform() * sum;
    let v = 0, acc = p[row];
    while (acc <= u && v < V - 1) acc += p[row + ++v];
    ids[pos] = v;
    if (v !== original[pos]) { isReplaced[pos] = 1; replaced++; }
  });
  return { ids, isReplaced, replaced };
}

/** The detector's logits (B·T, 2): [original, replaced]. */
export function detectorLogits(m: ElectraModels, ids: Int32Array, B: number, T: number, dropoutSeed?: number): Tensor {
  const rec = archOf(m.disc);
  if (!rec.encode) throw new Error(`--objective electra: ${rec.label} has no encoder output`);
  const last = rec.encode(m.disc, intTensor(ids, [B, T]), { dropoutSeed }); // (B, T, C)
  const C = last.shape[2], P = m.params;
  const h = gelu(linear(reshape(last, [B * T, C]), param(P, `${HEAD}dense.weight`), param(P, `${HEAD}dense.bias`)));
  return linear(h, param(P, `${HEAD}dense_prediction.weight`), param(P, `${HEAD}dense_prediction.bias`)); // (B·T, 2)
}

/** Validation, dropout off, masks and samples fixed by the window's position in `w` (like
 *  mlmEval): the generator's MLM loss, the detector's loss, its accuracy over all positions and
 *  over the replaced ones, and the fraction of positions replaced. */
export function electraEval(
  m: ElectraModels, w: Windows, sp: MlmSpecials, opts: { batchSize: number; maxWindows?: number },
): { mlm: number; disc: number; accuracy: number; replacedRecall: number; replacedShare: number } {
  let mlm = 0, targets = 0, disc = 0, positions = 0, correct = 0, replaced = 0, caught = 0, row = 0;
  noGrad(() => {
    for (const plain of sequentialBatches(w, opts.batchSize, opts.maxWindows)) {
      const b = wrapClsSep(plain, sp);
      const mk = maskBatch(b, sp, m.gen.config.vocabSize, hash32(0x6d6c6d, row));
      const r = electraLoss(m, b, mk.inputs, mk.labels, { seed: hash32(0x656c65, row), discWeight: 1 });
      row += b.rows;
      const n = b.rows * b.seqLen, z = r.detector.f32;
      mlm += r.gen.item() * r.chosen; targets += r.chosen;
      disc += r.disc.item() * n; positions += n;
      for (let i = 0; i < n; i++) {
        const guess = z[2 * i + 1] > z[2 * i] ? 1 : 0;
        if (guess === r.isReplaced[i]) correct++;
        if (r.isReplaced[i]) { replaced++; if (guess) caught++; }
      }
    }
  });
  return {
    mlm: targets ? mlm / targets : NaN, disc: positions ? disc / positions : NaN, accuracy: positions ? correct / positions : NaN,
    replacedRecall: replaced ? caught / replaced : NaN, replacedShare: positions ? replaced / positions : NaN,
  };
}
