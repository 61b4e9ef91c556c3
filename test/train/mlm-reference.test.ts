// kdqat's masked-LM pre-training (`pretrain --arch bert`) against a PyTorch replica
// (scripts/ref_mlm.py: BERT from its equations, F.cross_entropy with ignore_index, torch AdamW
// with the transformers no-decay groups, clip_grad_norm_) on the same initial weights and the
// same masked batches, dropout 0: the first three updates' losses, step 1's gradients and the
// weights after step 1. The fixture test/fixtures/mlm_reference.safetensors is made by
//   node --import tsx -e "import('./test/cli/helpers.ts').then((m) => m.smallTextFile('/tmp/mlmfx'))"
//   node --import tsx scripts/compare-mlm.ts --out /tmp/mlmfx/run --compare-steps 3 \
//     --fixture test/fixtures/mlm_reference.safetensors --corpus /tmp/mlmfx/small.txt --hidden 16 \
//     --layers 2 --heads 2 --kv-heads 2 --intermediate 32 --seq 16 --vocab 200 --steps 3 --batch 8 \
//     --lr 3e-3 --warmup 2
// The reference computes in float64 and rounds once to float32.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type Tensor as StTensor } from '../../src/io/safetensors.js';
import { runPretrain, buildModel, type PretrainConfig } from '../../src/train/pretrain.js';
import { dumpMlmRun } from '../../src/train/pretrain-dump.js';
import { mlmLoss } from '../../src/train/objectives.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { CHECKPOINT_DIR } from '../../src/train/checkpoint.js';
import { backward } from '../../src/tensor/autograd.js';
import { silentReporter } from '../../src/cli/progress.js';
import { smallTextFile, tmpDir } from '../cli/helpers.js';
import { chainBound, forwardDepth, KAPPA_MATMUL } from '../tolerance.js';
import { U32 } from '../bounds.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mlm_reference.safetensors');
const REGENERATE = 'kdqat\'s data path or initialization changed since the fixture was made; if that is intended, ' +
  'regenerate test/fixtures/mlm_reference.safetensors with the commands at the top of this file';

const fx = readSafetensors(FIXTURE);
const T = (name: string): StTensor => {
  const t = fx.tensors.get(name);
  assert.ok(t, `${FIXTURE}: no tensor ${name}`);
  return t;
};
const f32 = (name: string): Float32Array => T(name).data as Float32Array;
const config = JSON.parse(fx.metadata.config) as PretrainConfig;
const model = JSON.parse(fx.metadata.model) as { vocabSize: number; hiddenSize: number; intermediateSize: number; numHiddenLayers: number };
const opt = JSON.parse(fx.metadata.optimizer) as { lr: number; warmup: number; weight_decay: number; clip: number; eps: number };
const STEPS = 3;
const L = model.numHiddenLayers;
// The longest float32 sum in the forward pass: a dot product over C, F or V terms, or softmax/
// attention over T (test/tolerance.ts chainBound).
const N = Math.max(model.hiddenSize, model.intermediateSize, model.vocabSize, config.seq);

const root = tmpDir('mlm-ref');
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** kdqat pretrain on the fixture's settings; the checkpoint after step 1 is kept (saveEvery 1). */
function runKdqat(): { losses: number[]; step1: Map<string, StTensor>; out: string } {
  const text = smallTextFile(root);
  const out = path.join(root, 'run');
  let step1: Map<string, StTensor> | null = null;
  runPretrain({
    out, reporter: silentReporter,
    config: { ...config, corpus: [text], steps: STEPS, saveEvery: 1, evalEvery: 0, logEvery: 1 },
    saveHook: (stage) => {
      if (stage === 'published' && !step1) step1 = readSafetensors(path.join(out, CHECKPOINT_DIR, 'model.safetensors')).tensors;
    },
  });
  assert.ok(step1, 'the step-1 checkpoint was seen');
  return { losses: readTrainLog(path.join(out, 'train_log.jsonl')).map((r) => r.loss), step1, out };
}

const run = runKdqat();

test('the run replays exactly the fixture\'s initial weights and masked batches (the replica saw kdqat\'s inputs)', () => {
  const d = dumpMlmRun(run.out, STEPS);
  for (const [name, t] of d.tensors) {
    if (name.startsWith('valid.')) continue;
    const want = T(name);
    assert.deepEqual(t.shape, want.shape, `${name}: shape; ${REGENERATE}`);
    assert.ok(Buffer.from((t.data as Float32Array | Int32Array).buffer).equals(Buffer.from((want.data as Float32Array | Int32Array).buffer)), `${name}: ${REGENERATE}`);
  }
  assert.equal([...fx.tensors.keys()].filter((n) => n.startsWith('init.') || n.startsWith('step.')).length, [...d.tensors.keys()].filter((n) => !n.startsWith('valid.')).length);
});

test('the first three losses equal the PyTorch replica\'s within the float32 forward bound', () => {
  // Step 1 from the same weights: kdqat's float32 forward is within chainBound of the float64
  // reference (relative to max(1, loss): the loss is a mean of log-softmax terms of that size).
  // Steps 2 and 3 start from weights that differ only where the update is decided by rounding
  // (|g| at rounding level, e.g. the key biases, whose exact gradient is 0 and which do not
  // change the loss), so the same bound holds for them; a wrong mask, loss normalization, head
  // tying, schedule or decay group moves these losses by far more than that.
  const ref = T('ref.loss').data as Float64Array;
  assert.equal(run.losses.length, STEPS);
  const rel = chainBound(forwardDepth(L), N, KAPPA_MATMUL);
  for (let s = 0; s < STEPS; s++) {
    const bound = rel * Math.max(1, Math.abs(ref[s]));
    assert.ok(Math.abs(run.losses[s] - ref[s]) <= bound, `step ${s + 1}: kdqat ${run.losses[s]}, PyTorch ${ref[s]}, bound ${bound}`);
  }
});

/** Gradient scale of a parameter: its own largest |g|, or for a bias its weight's (the bias
 *  gradient sums the same output gradients; the key bias's exact gradient is 0, since softmax is
 *  invariant to a shift per query, so its float32 value is rounding of that scale). */
function gradScale(name: string): number {
  const own = f32(`ref.grad0.${name}`).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const w = name.replace(/\.bias$/, '.weight');
  const sib = w !== name && fx.tensors.has(`ref.grad0.${w}`) ? f32(`ref.grad0.${w}`).reduce((m, v) => Math.max(m, Math.abs(v)), 0) : 0;
  return Math.max(own, sib);
}

// Backward mirrors the forward: twice its depth of float32 stages.
const GRAD_REL = chainBound(2 * forwardDepth(L), N, KAPPA_MATMUL);

test('step 1\'s gradients (masked-LM loss through mlmLoss) equal the replica\'s within the backward bound', () => {
  const m = buildModel(config, model.vocabSize);
  for (const [name, p] of m.params) p.f32.set(f32(`init.${name}`));
  const inputs = T('step.0.inputs');
  const [B, Tq] = inputs.shape;
  const { loss } = mlmLoss(m, { rows: B, seqLen: Tq, inputs: inputs.data as Int32Array }, inputs.data as Int32Array, T('step.0.labels').data as Int32Array);
  backward(loss);
  for (const [name, p] of m.params) {
    const want = f32(`ref.grad0.${name}`), got = p.grad?.f32 ?? new Float32Array(p.size);
    const tol = GRAD_REL * gradScale(name);
    let worst = 0, at = 0;
    for (let i = 0; i < want.length; i++) {
      const e = Math.abs(got[i] - want[i]);
      if (e > worst) { worst = e; at = i; }
    }
    assert.ok(worst <= tol, `${name}[${at}]: kdqat ${got[at]}, PyTorch ${want[at]}, |Δ| ${worst} > ${tol}`);
  }
});

test('the weights after step 1 equal the replica\'s within the bound of one AdamW step', () => {
  // Step 1 of Adam: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) (+ decoupled decay
  // lr·wd·w): where |g| > 2E (E the gradient bound after clipping) both signs agree and the
  // updates differ by at most lr·eps·E / ((|g| − E)·|g|); elsewhere each is within lr of −lr·wd·w,
  // so they differ by at most 2·lr. Plus rounding: the adamw kernel's ≤ 12 float32 operations
  // (lr, decay, m, v, bias corrections, sqrt, eps, divide, subtract) each round by at most u
  // relative to |w| + lr, and the fixture's float32 rounding adds u·|w|: 13u·(|w| + lr).
  let sq = 0;
  for (const name of fx.tensors.keys()) if (name.startsWith('ref.grad0.')) for (const g of f32(name)) sq += g * g;
  const norm = Math.sqrt(sq), clip = opt.clip > 0 && norm > opt.clip ? opt.clip / (norm + 1e-6) : 1;
  const lr = opt.lr * 1 / Math.max(1, opt.warmup); // schedule.ts: step 0 of the warmup
  let decided = 0, total = 0;
  for (const name of fx.tensors.keys()) {
    if (!name.startsWith('ref.step1.')) continue;
    const p = name.slice('ref.step1.'.length);
    const want = f32(name), got = run.step1.get(p)?.data as Float32Array, g = f32(`ref.grad0.${p}`), w0 = f32(`init.${p}`);
    assert.ok(got, `checkpoint has ${p}`);
    const E = clip * (GRAD_REL * gradScale(p) + U32 * gradScale(p)); // + the fixture's rounding of g
    for (let i = 0; i < want.length; i++) {
      const a = clip * Math.abs(g[i]);
      const round = 13 * U32 * (Math.abs(w0[i]) + lr);
      const tol = a > 2 * E ? lr * opt.eps * E / ((a - E) * a) + round : 2 * lr + round;
      if (a > 2 * E) decided++;
      total++;
      assert.ok(Math.abs(got[i] - want[i]) <= tol, `${p}[${i}]: kdqat ${got[i]}, PyTorch ${want[i]} (g ${g[i]}), |Δ| ${Math.abs(got[i] - want[i])} > ${tol}`);
    }
  }
  // Most elements must get the tight bound, so a wrong update cannot hide in the loose branch
  // (the rest are mostly word-embedding rows of tokens absent from the batch: small gradients).
  assert.ok(decided > 0.5 * total, `${decided} of ${total} elements have |g| > 2E`);
});

test('the dump refuses what it cannot replay, naming the file and the fix', () => {
  assert.throws(() => dumpMlmRun(path.join(root, 'nothing'), 1), /summary\.json: not found; give the --out directory of a finished kdqat pretrain run/);
  assert.throws(() => dumpMlmRun(run.out, STEPS + 1), /steps must be in 1\.\.3 \(the run's --steps\), got 4/);
  const other = path.join(root, 'llama');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'summary.json'), JSON.stringify({ config: { ...config, arch: 'llama' } }));
  assert.throws(() => dumpMlmRun(other, 1), /config\.arch is "llama"; the masked-LM dump needs an encoder run/);
});
