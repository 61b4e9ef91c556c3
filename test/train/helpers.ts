// Tiny models, synthetic data and a run factory for the training-loop tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../src/tensor/rng.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { packSequences, type Windows } from '../../src/data/packing.js';
import { AdamW } from '../../src/train/optim.js';
import { learningRate } from '../../src/train/schedule.js';
import { trainLoop, type LoopOptions, type LoopResult } from '../../src/train/loop.js';
import {
  causalLmLoss, maskBatch, mlmLoss, shuffledBatches, wrapClsSep, type MlmSpecials, type TokenBatch,
} from '../../src/train/objectives.js';
import { hash32 } from '../../src/tensor/rng.js';

export const V = 48;

export { tmpDir } from '../util.js';

export const llamaCfg: LlamaConfig = {
  vocabSize: V, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4,
  numKeyValueHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 32,
  tieWordEmbeddings: true, initializerRange: 0.02,
};

export const bertCfg: BertConfig = {
  vocabSize: V, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64,
  maxPositionEmbeddings: 32, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, initializerRange: 0.02, numLabels: 0,
};

// Ids 0-3 are BERT's specials here: [PAD] [CLS] [SEP] [MASK].
export const SPECIALS: MlmSpecials = { cls: 1, sep: 2, mask: 3, special: [0, 1, 2, 3] };

/**
 * Documents of 40 tokens from a noisy deterministic chain (x_i = 3·x_{i-lag} + 1 mod V, 90%;
 * uniform otherwise): learnable. With lag 1 a causal LM predicts the next token from the current
 * one alone; with lag ≥ 2 it must attend to an earlier position, as a masked LM always must.
 */
export function syntheticWindows(seqLen: number, docs: number, shift: boolean, seed = 1, lag = 1): Windows {
  const rng = new Rng(seed);
  const out: number[][] = [];
  for (let d = 0; d < docs; d++) {
    const doc = Array.from({ length: lag }, () => 4 + rng.int(V - 4));
    for (let i = lag; i < 40; i++) doc.push(rng.uniform() < 0.9 ? 4 + ((3 * doc[i - lag] + 1) % (V - 4)) : 4 + rng.int(V - 4));
    out.push(doc);
  }
  return packSequences(out, { seqLen, eosId: 2, shift });
}

export function freshParams(arch: 'llama' | 'bert', seed = 7): Params {
  return arch === 'llama' ? initParams(llamaParamSpec(llamaCfg), seed) : initParams(bertParamSpec(bertCfg, { mlm: true }), seed);
}

/** The loss of either objective, as pretrain wires it (masks and dropout from ctx.seed);
 *  `maskProb`: the masked LM's selection probability (default BERT's 0.15). */
export function lossFn(arch: 'llama' | 'bert', params: Params, maskProb?: number): LoopOptions<TokenBatch>['loss'] {
  if (arch === 'llama') return (b) => causalLmLoss(params, llamaCfg, b);
  return (b, ctx) => {
    const w = wrapClsSep(b, SPECIALS);
    const m = maskBatch(w, SPECIALS, V, ctx.seed, maskProb);
    return mlmLoss({ arch: 'bert', config: bertCfg, params, heads: { mlm: true, classifier: false } }, w, m.inputs, m.labels, hash32(ctx.seed, 1) >>> 1).loss;
  };
}

export interface RunSpec {
  arch: 'llama' | 'bert';
  steps: number;
  batch?: number;
  accumulate?: number;
  outDir?: string;
  saveEvery?: number;
  /** Throw from the loss function at this 0-based step (a simulated crash). */
  crashAt?: number;
  resume?: LoopOptions<TokenBatch>['resume'];
  windows: Windows;
  lr?: number;
  /** BERT: the masked LM's selection probability (default 0.15). */
  maskProb?: number;
}

/** One training run on fresh parameters (seeded), returning the params and the loop result. */
export function run(spec: RunSpec): { params: Params; optimizer: AdamW; result: LoopResult } {
  const params = freshParams(spec.arch);
  const optimizer = new AdamW(params, { lr: spec.lr ?? 3e-3, weightDecay: 0.01 });
  const loss = lossFn(spec.arch, params, spec.maskProb);
  const sched = { lr: spec.lr ?? 3e-3, totalSteps: spec.steps, warmupSteps: 3, decay: 'cosine' as const };
  const result = trainLoop<TokenBatch>({
    params, optimizer, totalSteps: spec.steps, accumulate: spec.accumulate, clipNorm: 1, seed: 11,
    lr: (s) => learningRate(sched, s),
    epochBatches: (e) => shuffledBatches(spec.windows, spec.batch ?? 4, 11, e),
    tokens: (b) => b.rows * b.seqLen,
    loss: (b, ctx) => {
      if (ctx.step === spec.crashAt) throw new Error('simulated crash');
      return loss(b, ctx);
    },
    outDir: spec.outDir, saveEvery: spec.saveEvery, logEvery: 1, resume: spec.resume,
    config: { arch: spec.arch },
  });
  return { params, optimizer, result };
}
