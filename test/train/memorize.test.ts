// A tiny LLaMA memorizes one fixed batch in 200 AdamW steps, and memory stays flat.
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { Rng, backward, crossEntropy, intTensor, reshape } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { AdamW, clipGradNorm } from '../../src/train/optim.js';
import { learningRate } from '../../src/train/schedule.js';
import { onBackend } from '../backends.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

it('memorizes a fixed batch in 200 steps with flat RSS (native)', () => onBackend('native', () => {
  const cfg: LlamaConfig = {
    vocabSize: 64, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4,
    numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 10000, maxPositionEmbeddings: 32,
    tieWordEmbeddings: true, initializerRange: 0.02,
  };
  const params = initParams(llamaParamSpec(cfg), 3);
  const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0 });
  const rng = new Rng(5);
  const B = 4, T = 16;
  const ids = new Int32Array(B * T).map(() => rng.int(cfg.vocabSize));
  const tgt = ids.map((_, i) => ((i + 1) % T === 0 ? -100 : ids[i + 1]));
  const x = intTensor(ids, [B, T]), y = intTensor(tgt, [B * T]);
  const losses: number[] = [];
  const rss: number[] = [];
  for (let step = 0; step < 200; step++) {
    const { logits } = llamaForward(params, cfg, x);
    const loss = crossEntropy(reshape(logits, [B * T, cfg.vocabSize]), y);
    backward(loss);
    clipGradNorm(params, 1.0);
    opt.step(learningRate({ lr: 1e-2, totalSteps: 200, warmupSteps: 10, decay: 'cosine' }, step));
    opt.zeroGrad();
    losses.push(loss.item());
    if (step % 20 === 19) {
      gc();
      rss.push(process.memoryUsage().rss);
    }
  }
  assert.ok(losses[0] > 3.5, `initial loss ${losses[0]} should be near ln(64) = 4.16`);
  assert.ok(losses[199] < 0.05, `final loss ${losses[199]} should be near 0 (memorized)`);
  // "Monotonically enough": every 20-step window mean is below the previous one's.
  for (let w = 1; w < 10; w++) {
    const mean = (k: number): number => losses.slice(20 * k, 20 * k + 20).reduce((a, b) => a + b) / 20;
    assert.ok(mean(w) < mean(w - 1), `window ${w} mean ${mean(w)} is not below window ${w - 1} mean ${mean(w - 1)}`);
  }
  // No leak per step: RSS after step 200 within 30 MB of RSS after step 60.
  const growth = (rss[rss.length - 1] - rss[2]) / 2 ** 20;
  assert.ok(growth < 30, `RSS grew ${growth.toFixed(1)} MB between step 60 and step 200`);
}));
