// How fast does each objective learn to use the context? The tiny BERT (masked LM) and tiny
// LLaMA (causal LM) of the training tests (test/train/helpers.ts: 2 layers, 32 wide, vocabulary
// 48) trained on the same synthetic documents, a noisy chain where each token is
// 3·x_{i-lag} + 1 (mod 44) with probability 0.9 and uniform otherwise, so a model that reads the
// token `lag` back predicts almost every token and one that does not is at the unigram entropy
// ln 44 = 3.78 nats. Knowing that token, the best causal loss is the entropy of the chain's step,
// 0.687 nats (0.9 + 0.1/44 on the chain's token, 0.1/44 on each other); 4,000 documents of 40
// tokens (160 k tokens, about 9 epochs at the default steps) keep memorization from going much
// below it. With lag 1 the causal model needs no attention (the current token decides the next);
// with lag 2 it must attend to an earlier position, as the masked one always must.
// Same optimizer, schedule and seed for both (AdamW, lr 3e-3 cosine, batch 16 × 30 tokens).
// Prints the mean training loss per --every steps, and the loss targets per step: every position
// for the causal LM, the ~15 % chosen positions for the masked LM, so the two can be compared at
// equal targets seen. With --mask P,P,… the masked LM is trained once per selection probability
// and each is also scored the same way at the end: held-out loss at 15 % masking, dropout off,
// on 500 documents the training never saw. (Issue 14: kdqat's MLM encoders stayed on the
// unigram plateau.) With --electra, also ELECTRA's replaced-token detection (src/train/electra.ts:
// this BERT as the discriminator, a 16-wide generator, λ 50, the same optimizer and steps),
// scored at the end on the held-out documents: the detector's loss against the entropy of its
// label prior (a detector that reads nothing), and the share of replaced tokens it catches.
//
// Usage: npx tsx scripts/context-learning.ts [--steps 3000] [--every 250] [--lag 1,2] [--mask 0.15]
//        [--electra] [--json]
import { parseArgs } from 'node:util';
import { SPECIALS, V, bertCfg, run, syntheticWindows } from '../test/train/helpers.js';
import { maskBatch, mlmEval, shuffledBatches, wrapClsSep, type TokenBatch } from '../src/train/objectives.js';
import { initParams, type Params } from '../src/nn/params.js';
import { bertParamSpec } from '../src/models/bert.js';
import type { Model } from '../src/models/registry.js';
import { trainLoop } from '../src/train/loop.js';
import { AdamW } from '../src/train/optim.js';
import { learningRate } from '../src/train/schedule.js';
import { electraEval, electraLoss, electraModels } from '../src/train/electra.js';
import { hash32 } from '../src/tensor/rng.js';

const { values: a } = parseArgs({
  options: {
    steps: { type: 'string', default: '3000' }, every: { type: 'string', default: '250' },
    lag: { type: 'string', default: '1,2' }, mask: { type: 'string', default: '0.15' },
    electra: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  },
});
const steps = Number(a.steps), every = Number(a.every), lags = a.lag.split(',').map(Number), masks = a.mask.split(',').map(Number);
if (!masks.every((p) => p > 0 && p <= 1)) throw new Error(`--mask must list probabilities in (0, 1], got ${a.mask}`);
if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(every) && every >= 1)) throw new Error('--steps and --every must be positive integers');
if (!lags.every((l) => Number.isInteger(l) && l >= 1 && l < 40)) throw new Error(`--lag must list integers from 1 to 39, got ${a.lag}`);
const batch = 16, seqLen = 30;

/** Masked-LM loss on held-out chain documents at 15 % masking, dropout off (mlmEval's fixed masks). */
const heldOut = (params: Params, lag: number): number =>
  mlmEval({ arch: 'bert', config: bertCfg, params, heads: { mlm: true, classifier: false } }, syntheticWindows(seqLen, 500, false, 2, lag), SPECIALS, { batchSize: batch }).loss;

/** ELECTRA on the chain: the held-out detector loss, its prior's entropy, and the recall. */
function electra(lag: number): { discLoss: number; priorEntropy: number; recall: number; genMlm: number } {
  const gcfg = { ...bertCfg, hiddenSize: 16, numAttentionHeads: 2, intermediateSize: 32 };
  const disc = { arch: 'bert', config: bertCfg, params: initParams(bertParamSpec(bertCfg, {}), 7), heads: { mlm: false, classifier: false } } as Model;
  const gen = { arch: 'bert', config: gcfg, params: initParams(bertParamSpec(gcfg, { mlm: true }), 8), heads: { mlm: true, classifier: false } } as Model;
  const m = electraModels(disc, gen, bertCfg.hiddenSize, 0);
  const windows = syntheticWindows(seqLen, 4000, false, 1, lag);
  const sched = { lr: 3e-3, totalSteps: steps, warmupSteps: 3, decay: 'cosine' as const };
  trainLoop<TokenBatch>({
    params: m.params, optimizer: new AdamW(m.params, { lr: 3e-3, weightDecay: 0.01 }), totalSteps: steps, clipNorm: 1, seed: 11,
    lr: (s) => learningRate(sched, s), epochBatches: (e) => shuffledBatches(windows, batch, 11, e), tokens: (b) => b.rows * b.seqLen,
    loss: (b, ctx) => {
      const w = wrapClsSep(b, SPECIALS), mk = maskBatch(w, SPECIALS, V, ctx.seed);
      return electraLoss(m, w, mk.inputs, mk.labels, { seed: hash32(ctx.seed, 2), discWeight: 50, dropoutSeed: hash32(ctx.seed, 1) >>> 1 }).loss;
    },
    logEvery: steps, config: {},
  });
  const r = electraEval(m, syntheticWindows(seqLen, 500, false, 2, lag), SPECIALS, { batchSize: batch });
  const q = r.replacedShare;
  return { discLoss: r.disc, priorEntropy: -(q * Math.log(q) + (1 - q) * Math.log(1 - q)), recall: r.replacedRecall, genMlm: r.mlm };
}

// Loss targets per step: the causal LM scores every position; the masked LM the chosen ones
// (the selection probability over the window's tokens; [CLS]/[SEP] are never chosen).
const out: Record<string, Record<string, { targetsPerStep: number; losses: number[]; heldOut15?: number }>> = {};
for (const lag of lags) {
  out[`lag${lag}`] = {};
  const runs = [{ arch: 'llama' as const, p: 1 }, ...masks.map((p) => ({ arch: 'bert' as const, p }))];
  for (const { arch, p } of runs) {
    const t0 = performance.now();
    const r = run({ arch, steps, batch, lr: 3e-3, windows: syntheticWindows(seqLen, 4000, arch === 'llama', 1, lag), maskProb: p });
    const losses = r.result.losses;
    const means = Array.from({ length: Math.ceil(losses.length / every) }, (_, k) => {
      const part = losses.slice(k * every, (k + 1) * every);
      return part.reduce((s, x) => s + x, 0) / part.length;
    });
    const key = arch === 'llama' ? 'causal' : `masked${p}`;
    out[`lag${lag}`][key] = { targetsPerStep: batch * seqLen * p, losses: means, ...(arch === 'bert' ? { heldOut15: heldOut(r.params, lag) } : {}) };
    if (!a.json) {
      const what = arch === 'llama' ? 'causal LM (LLaMA)' : `masked LM (BERT), ${p * 100} % chosen`;
      console.log(`lag ${lag}, ${what}, ${batch * seqLen * p} targets/step, mean loss per ${every} steps (${((performance.now() - t0) / 1000).toFixed(0)} s):`);
      console.log('  ' + means.map((x) => x.toFixed(3)).join(' '));
      const h = out[`lag${lag}`][key].heldOut15;
      if (h !== undefined) console.log(`  held-out loss at 15 % masking, dropout off: ${h.toFixed(3)}`);
    }
  }
  if (a.electra) {
    const t0 = performance.now();
    const e = electra(lag);
    (out[`lag${lag}`] as Record<string, unknown>).electra = e;
    if (!a.json) {
      console.log(`lag ${lag}, ELECTRA (${((performance.now() - t0) / 1000).toFixed(0)} s): held-out detector loss ${e.discLoss.toFixed(3)} ` +
        `against its prior's entropy ${e.priorEntropy.toFixed(3)}, replaced tokens caught ${(100 * e.recall).toFixed(1)} %; generator MLM ${e.genMlm.toFixed(3)}`);
    }
  }
}
const p = 0.9 + 0.1 / 44, q = 0.1 / 44;
const chainEntropy = -(p * Math.log(p) + 43 * q * Math.log(q));
if (a.json) console.log(JSON.stringify({ steps, every, unigram: Math.log(44), chainEntropy, runs: out }, null, 2));
else console.log(`unigram entropy ${Math.log(44).toFixed(3)}; the chain's step entropy (best causal loss) ${chainEntropy.toFixed(3)}`);
