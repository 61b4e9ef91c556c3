// Child process of bench/step.ts: times `steps` training steps after 2 warm-up steps and
// prints one JSON record. Threads come from KDQAT_THREADS.
import { Rng, backward, crossEntropy, intTensor, getThreads, reshape } from '../src/tensor/index.js';
import { initParams } from '../src/nn/params.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../src/models/llama.js';
import { AdamW } from '../src/train/optim.js';
import { STEP_SHAPE as S } from './step.js';

const steps = Number(process.argv[2] ?? 5);
const cfg: LlamaConfig = {
  vocabSize: S.vocab, hiddenSize: S.dim, intermediateSize: S.hidden, numHiddenLayers: S.layers,
  numAttentionHeads: S.heads, numKeyValueHeads: S.heads, rmsNormEps: 1e-6, ropeTheta: 10000,
  maxPositionEmbeddings: S.seq, tieWordEmbeddings: false, initializerRange: 0.02,
};
const params = initParams(llamaParamSpec(cfg), 1);
const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.1 });
const rng = new Rng(2);
const ids = new Int32Array(S.batch * S.seq), tgt = new Int32Array(S.batch * S.seq);
for (let i = 0; i < ids.length; i++) ids[i] = rng.int(S.vocab);
for (let i = 0; i < ids.length; i++) tgt[i] = (i + 1) % S.seq === 0 ? -100 : ids[i + 1];
const x = intTensor(ids, [S.batch, S.seq]), y = intTensor(tgt, [S.batch * S.seq]);

function step(): number {
  const { logits } = llamaForward(params, cfg, x);
  const loss = crossEntropy(reshape(logits, [S.batch * S.seq, S.vocab]), y);
  backward(loss, null, { release: true }); // storage given back as the training loop does (loop.ts)
  opt.step(1e-3);
  opt.zeroGrad(true);
  return loss.item();
}

const first = step();
step();
const t0 = performance.now();
let last = 0;
for (let i = 0; i < steps; i++) last = step();
const ms = (performance.now() - t0) / steps;
console.log(JSON.stringify({
  bench: 'train_step', impl: 'kdqat', threads: getThreads(),
  tokens_per_s: (S.batch * S.seq) / (ms / 1000), step_ms: ms,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024, loss_first: first, loss_last: last,
}));

if (process.env.KDQAT_PROFILE === '1') {
  const { kernelProfile } = await import('../src/tensor/registry.js');
  const total = (performance.now() - t0) / (steps + 2) * steps; // rough
  for (const r of kernelProfile()) process.stderr.write(`${r.name.padEnd(22)} ${String(r.calls).padStart(6)} calls ${(r.ms / (steps + 2)).toFixed(1).padStart(8)} ms/step\n`);
  process.stderr.write(`step ${ms.toFixed(0)} ms (profiled ${total.toFixed(0)})\n`);
}
