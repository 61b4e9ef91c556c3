// Child process of bench/real_size.ts. `make <name> <dir>`: writes a random checkpoint in the
// exact layout of the real model (bench/configs/<name>.json; weights BF16 as the real files
// ship) to <dir>. `run <name> <dir> [<steps> [<warmup>]]`: loads it with kdqat's loader (the
// timed load), times forward tokens/s without gradients and KD-QAT steps (teacher = the loaded
// model, student = an exact copy under the model's quantization setting, see SHAPES): <warmup>
// untimed steps (default 2), then <steps> timed ones (default 2), and prints one JSON record with
// the peak RSS, the first step's time, the page faults and the MB of storage per timed step the
// pool did not serve (fresh_mb_per_step: storage.ts freshBytes). Two warm-up steps because the first two take the page
// faults of the heap growing to its peak (one-time costs, in first_step_ms); the timed steps are
// the steady state a training run spends its time in (bench/torch_real_size.py does the same).
// Threads from KDQAT_THREADS; KDQAT_BF16=teacher|layers|all runs the teacher's forward (and the
// forward-only timing), also the student's GEMMs but its LM head, or every GEMM in bf16
// (withCompute; `kdqat qat --bf16`);
// KDQAT_RECOMPUTE=selective|all (1 = all) recomputes the student's layers in backward
// (`kdqat qat --recompute selective|all`, which also takes the storage policy that goes with
// the mode; KDQAT_STORAGE=pool|heap overrides it); KDQAT_INT8=off runs the student's Linears on integer
// grids (BERT-base's twn-a8) in float32 instead of the integer GEMM (compute.ts withIntegerGemm),
// KDQAT_INT8_GRAD=on computes their input gradients dX = dY·Ŵ as int8 GEMMs, dY rounded to 8 bits
// per row (compute.ts withInt8Grad, `kdqat qat --int8-grad`; off here unless asked for, so each
// record says what it ran: `kdqat qat`'s default, auto, turns it on where the GEMMs are float32);
// KDQAT_GRID=off their float32 GEMMs with one operand on a grid as the float32 GEMM instead of
// matmulOnGrid (AMX; withGridGemm). The teacher's weight matrices are held as bf16 as `kdqat qat`
// holds them (qat-models.ts narrowTeacher: the checkpoint is BF16, the teacher's GEMMs float32);
// KDQAT_TEACHER_BF16=off keeps them float32, for a before/after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  RECOMPUTE_MODES, Rng, Tensor, backward, bf16Unavailable, getThreads, intTensor, noGrad, storagePolicyFor, withCompute, withGridGemm, withInt8Grad, withIntegerGemm, withRecompute,
  type RecomputeMode,
} from '../src/tensor/index.js';
import { STORAGE_POLICIES, freshBytes, withStoragePolicy, type StoragePolicy } from '../src/tensor/storage.js';
import { initParams, type Params } from '../src/nn/params.js';
import { asModel, loadModelDir, paramSpecOf, saveModelDir } from '../src/io/model-dir.js';
import { archOf, parseHfConfig, type Model } from '../src/models/registry.js';
import { prepare } from '../src/quant/prepare.js';
import { QUANT_PRESETS } from '../src/quant/config.js';
import { captureFor, distillLoss, releaseOutputs } from '../src/distill/losses.js';
import { AdamW } from '../src/train/optim.js';
import { cacheFrozen, freeze } from '../src/train/freeze.js';
import { bf16Precisions } from '../src/train/qat-config.js';
import { narrowTeacher } from '../src/train/qat-models.js';
import { SHAPES, type RealSizeName } from './real_size_shapes.js';

const [mode, name, dir, stepsArg, warmupArg] = process.argv.slice(2) as [string, RealSizeName, string, string?, string?];
const shape = SHAPES[name];
if (!shape) throw new Error(`unknown real-size model "${name}" (${Object.keys(SHAPES).join(', ')})`);
const here = path.dirname(new URL(import.meta.url).pathname);
const json = JSON.parse(fs.readFileSync(path.join(here, 'configs', `${name}.json`), 'utf8'));

if (mode === 'make') {
  const hf = parseHfConfig(json, `bench/configs/${name}.json`);
  const spec = paramSpecOf(hf);
  const params = initParams(new Map([...spec].map(([n, s]) => [n, { shape: s.shape, init: { kind: 'normal' as const, std: 0.02 } }])), 1);
  saveModelDir(dir, { config: hf, params, dtype: 'BF16', force: true });
  process.exit(0);
}

const [steps, warmup] = ([['<steps>', stepsArg], ['<warmup>', warmupArg]] as const).map(([what, arg]) => {
  const v = Number(arg ?? 2);
  if (!Number.isInteger(v) || v < 1) throw new Error(`real_size_worker run: ${what} must be an integer ≥ 1, got ${JSON.stringify(arg)}`);
  return v;
});
const bf16 = process.env.KDQAT_BF16 ?? 'off';
if (!['off', 'teacher', 'layers', 'all'].includes(bf16)) throw new Error(`KDQAT_BF16=${bf16}: use off, teacher, layers or all`);
if (bf16 !== 'off' && bf16Unavailable()) throw new Error(`KDQAT_BF16=${bf16}: ${bf16Unavailable()}`);
const int8 = process.env.KDQAT_INT8 ?? 'on';
if (!['on', 'off'].includes(int8)) throw new Error(`KDQAT_INT8=${int8}: use on or off`);
const int8Grad = process.env.KDQAT_INT8_GRAD ?? 'off';
if (!['on', 'off'].includes(int8Grad)) throw new Error(`KDQAT_INT8_GRAD=${int8Grad}: use on or off`);
const gridBwd = process.env.KDQAT_GRID ?? 'on';
if (!['on', 'off'].includes(gridBwd)) throw new Error(`KDQAT_GRID=${gridBwd}: use on or off`);
const recompute: RecomputeMode = (({ '': 'off', 0: 'off', 1: 'all' } as Record<string, RecomputeMode>)[process.env.KDQAT_RECOMPUTE ?? ''] ?? process.env.KDQAT_RECOMPUTE) as RecomputeMode;
if (!RECOMPUTE_MODES.includes(recompute)) throw new Error(`KDQAT_RECOMPUTE=${recompute}: use off, selective or all (1 = all)`);
// KDQAT_STORAGE=pool|heap: the storage policy instead of the one `kdqat qat` takes with the
// recompute mode (storage.ts StoragePolicy), for a before/after.
const storage = (process.env.KDQAT_STORAGE ?? storagePolicyFor(recompute)) as StoragePolicy;
if (!STORAGE_POLICIES.includes(storage)) throw new Error(`KDQAT_STORAGE=${storage}: use ${STORAGE_POLICIES.join(' or ')}`);
const { teacher: teacherPrec, student: studentPrec, studentHead: studentHeadPrec } = bf16Precisions(bf16);
const t0 = performance.now();
const loaded = loadModelDir(dir);
const loadMs = performance.now() - t0;
const teacher: Model = asModel(loaded);
for (const p of teacher.params.values()) p.requiresGrad = false;
const rec = archOf(teacher);
const { batch: B, seq: T } = shape;
const rng = new Rng(2);
const ids = new Int32Array(B * T);
for (let i = 0; i < ids.length; i++) ids[i] = rng.int(teacher.config.vocabSize);
const x = { ids: intTensor(ids, [B, T]), mask: null };

// Forward without gradients (what evaluation and the teacher do).
let fwdBest = Infinity;
for (let i = 0; i < 2; i++) {
  const s0 = performance.now();
  noGrad(() => withCompute(teacherPrec, () => rec.forward(teacher, x)));
  fwdBest = Math.min(fwdBest, performance.now() - s0);
}

// KD-QAT: the student is an exact copy, fake-quantized by the preset.
const studentParams: Params = new Map([...teacher.params].map(([k, v]) => [k, new Tensor(v.f32.slice(), v.shape, true)]));
const student: Model = { ...teacher, params: studentParams } as Model;
const prepared = prepare(student, QUANT_PRESETS[shape.preset]);
const capture = captureFor(shape.losses, teacher.arch);
// KDQAT_FREEZE=ov: freeze as `kdqat qat --freeze` does (no gradient, no dW GEMM, ŵ computed once).
const frozen = freeze(process.env.KDQAT_FREEZE ?? '', teacher.arch, studentParams, prepared.quantParams);
const weight = cacheFrozen(prepared.weight, new Set(frozen.params));
const teacherBf16 = process.env.KDQAT_TEACHER_BF16 ?? 'on';
if (!['on', 'off'].includes(teacherBf16)) throw new Error(`KDQAT_TEACHER_BF16=${teacherBf16}: use on or off`);
const teacherBf16Saved = teacherBf16 === 'on' && teacherPrec === 'fp32' ? narrowTeacher(teacher) : 0; // as buildModels
const trained = new Map([...studentParams, ...prepared.quantParams].filter(([, p]) => p.requiresGrad));
const opt = new AdamW(trained, { lr: 1e-5, weightDecay: 0 });
function step(): number {
  return withStoragePolicy(storage, stepUnder);
}
function stepUnder(): number {
  const t = noGrad(() => withCompute(teacherPrec, () => rec.forward(teacher, x, { capture })));
  const s = withGridGemm(gridBwd === 'on', () => withIntegerGemm(int8 === 'on', () => withInt8Grad(int8Grad === 'on', () => withRecompute(recompute, () =>
    withCompute(studentPrec, () => rec.forward(student, x, { capture, weight }), { head: studentHeadPrec })))));
  // KDQAT_FUSED_KL=0: the dense logits KL (B·T·V logits of both models), for a before/after.
  const { total } = distillLoss(s, t, shape.losses, { arch: teacher.arch, tau: 1, fused: process.env.KDQAT_FUSED_KL !== '0' });
  backward(total, null, { release: true }); // storage given back as the training loop does (loop.ts)
  releaseOutputs(t, teacher.params); // and the teacher's outputs, as qat.ts does when the next batch comes
  opt.step(1e-5);
  opt.zeroGrad(true); // as the training loop does (loop.ts)
  return total.item();
}
const f0 = performance.now();
const first = step();
const firstMs = performance.now() - f0;
for (let i = 1; i < warmup; i++) step();
if (process.env.KDQAT_PROFILE === '1') (await import('../src/tensor/registry.js')).resetKernelProfile();
let best = Infinity, last = first;
const faults0 = process.resourceUsage().minorPageFault, fresh0 = freshBytes();
const s0 = performance.now();
for (let i = 0; i < steps; i++) {
  const a = performance.now();
  last = step();
  best = Math.min(best, performance.now() - a);
}
const ms = (performance.now() - s0) / steps;
const faultsPerStep = (process.resourceUsage().minorPageFault - faults0) / steps;
// Storage the steps asked for that the pool could not give (storage.ts freshBytes; with the heap,
// everything they ask for).
const freshPerStep = (freshBytes() - fresh0) / steps / 2 ** 20;
console.log(JSON.stringify({
  bench: 'real_size', impl: 'kdqat', model: name, threads: getThreads(), batch: B, seq: T, bf16, recompute, storage, int8,
  int8_grad: int8Grad === 'on', load_ms: loadMs, forward_tokens_per_s: (B * T) / (fwdBest / 1000),
  qat_tokens_per_s: (B * T) / (ms / 1000), qat_best_tokens_per_s: (B * T) / (best / 1000), warmup_steps: warmup, first_step_ms: firstMs,
  teacher_bf16_saved_mb: teacherBf16Saved / 2 ** 20,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024, minor_faults_per_step: faultsPerStep, fresh_mb_per_step: freshPerStep, loss_first: first, loss_last: last,
}));

// KDQAT_PROFILE=1: where the time went, per kernel, as totals over the timed KD-QAT steps.
if (process.env.KDQAT_PROFILE === '1') {
  const { kernelProfile } = await import('../src/tensor/registry.js');
  for (const r of kernelProfile()) process.stderr.write(`${r.name.padEnd(22)} ${String(r.calls).padStart(6)} calls ${r.ms.toFixed(0).padStart(8)} ms ${String(r.faults).padStart(9)} page faults\n`);
}
