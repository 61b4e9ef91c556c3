// Child process of bench/qat_step.ts and bench/scaling.ts: times `steps` KD-QAT steps after
// `warmup` (default 2) warm-up steps and prints one JSON record. The model is bench/step.ts's
// STEP_SHAPE unless a shape is given as JSON (the fields of STEP_SHAPE; bench/scaling.ts).
// Usage: qat_step_worker.ts [steps] [shape JSON] [warmup]
// Threads come from KDQAT_THREADS. KDQAT_PROFILE=1 adds per-kernel time.
import { Rng, backward, getThreads, intTensor, noGrad, Tensor, withGridGemm } from '../src/tensor/index.js';
import { initParams, type Params } from '../src/nn/params.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../src/models/llama.js';
import { AdamW } from '../src/train/optim.js';
import { decoderOutputs, distillLoss } from '../src/distill/losses.js';
import { fakeQuantWeight } from '../src/quant/ops.js';
import type { WeightQuant } from '../src/quant/rules.js';
import { STEP_SHAPE } from './step.js';

const steps = Number(process.argv[2] ?? 5);
const S: typeof STEP_SHAPE = process.argv[3] ? { ...STEP_SHAPE, ...JSON.parse(process.argv[3]) } : STEP_SHAPE;
const warmup = Number(process.argv[4] ?? 2);
const cfg: LlamaConfig = {
  vocabSize: S.vocab, hiddenSize: S.dim, intermediateSize: S.hidden, numHiddenLayers: S.layers,
  numAttentionHeads: S.heads, numKeyValueHeads: S.heads, rmsNormEps: 1e-6, ropeTheta: 10000,
  maxPositionEmbeddings: S.seq, tieWordEmbeddings: false, initializerRange: 0.02,
};
const teacher = initParams(llamaParamSpec(cfg), 3);
for (const p of teacher.values()) p.requiresGrad = false;
// KD-QAT starts from an exact copy of the teacher.
const student: Params = new Map([...teacher].map(([k, v]) => [k, new Tensor(v.f32.slice(), v.shape, true)]));
const W4: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } };
const PROJ = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;
const weight = (name: string, p: Tensor): Tensor => (PROJ.test(name) ? fakeQuantWeight(p, W4) : p);
const opt = new AdamW(student, { lr: 1e-5, weightDecay: 0 });
const rng = new Rng(2);
const ids = new Int32Array(S.batch * S.seq);
for (let i = 0; i < ids.length; i++) ids[i] = rng.int(S.vocab);
const x = intTensor(ids, [S.batch, S.seq]);

// KDQAT_GRID=off: the student's Linears (weights on per-channel grids) on the float32 GEMM instead
// of matmulOnGrid (AMX only; compute.ts withGridGemm).
const gridEnv = process.env.KDQAT_GRID ?? 'on';
if (!['on', 'off'].includes(gridEnv)) throw new Error(`KDQAT_GRID=${gridEnv}: use on or off`);
const grid = gridEnv === 'on';
function step(): number {
  const t = noGrad(() => decoderOutputs(llamaForward(teacher, cfg, x)));
  const s = withGridGemm(grid, () => decoderOutputs(llamaForward(student, cfg, x, { weight })));
  const { total } = distillLoss(s, t, { pred: 1 }, { arch: 'llama', tau: 1 });
  backward(total, null, { release: true }); // storage given back as the training loop does (loop.ts)
  opt.step(1e-5);
  opt.zeroGrad(true);
  return total.item();
}

const first = step();
for (let i = 1; i < warmup; i++) step();
const t0 = performance.now();
let last = 0, best = Infinity;
for (let i = 0; i < steps; i++) {
  const s0 = performance.now();
  last = step();
  best = Math.min(best, performance.now() - s0);
}
const ms = (performance.now() - t0) / steps;
console.log(JSON.stringify({
  bench: 'qat_step', impl: 'kdqat', threads: getThreads(),
  tokens_per_s: (S.batch * S.seq) / (ms / 1000), step_ms: ms,
  // the fastest single step: on a machine shared with other work, the least disturbed one
  best_tokens_per_s: (S.batch * S.seq) / (best / 1000), best_step_ms: best,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024, loss_first: first, loss_last: last,
}));

if (process.env.KDQAT_PROFILE === '1') {
  const { kernelProfile } = await import('../src/tensor/registry.js');
  for (const r of kernelProfile()) process.stderr.write(`${r.name.padEnd(22)} ${String(r.calls).padStart(6)} calls ${(r.ms / (steps + warmup)).toFixed(1).padStart(8)} ms/step\n`);
  process.stderr.write(`step ${ms.toFixed(0)} ms\n`);
}
