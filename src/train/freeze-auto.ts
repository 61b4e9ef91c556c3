// `--freeze auto`: choose the modules to freeze (src/train/freeze.ts) from a short KD-QAT probe
// that measures, per layer × module kind, the signals of paper A's gradient study (METHODS.md §4;
// src/analysis/signal.ts) and the curvature of the KD loss (src/analysis/hutchinson.ts).
//
// The probe works on a COPY of the student's latent weights and LSQ steps (re-prepared from the
// same quantization config), so the real run starts from exactly the same round-to-nearest
// student as any other run. It draws its own batches with a seed derived from the run's
// (hash32(seed, PROBE_SALT)), and trains with AdamW, the run's learning-rate schedule, weight
// decay and clipping (one micro-batch per step) for --freeze-probe-steps steps. Measured, per
// quantized Linear W of the blocks (ŵ its fake-quantized value, n its size):
//   grad_rel     mean over the probe steps of ‖∂L/∂W‖ / ‖W₀‖ (W₀: the RTN student's latent W)
//   update_ratio mean ‖W_after − W_before‖ / ‖W_before‖ per step (SignalMonitor)
//   cross_rate   mean fraction of integer codes that change per step (SignalMonitor's
//                step_cross_rate: latent weights that cross a rounding boundary)
//   dhat_ms      mean ‖ŵ_after − ŵ_before‖² / n per step: what a step changes in the weights the
//                forward uses (for a fixed grid, cross_rate × grid step²)
//   hess_mean    tr(H)/n, H the Hessian of the KD loss w.r.t. ŵ on the probe's first batch at the
//                RTN student (Hutchinson, HUTCHINSON_VECTORS Rademacher vectors, central
//                differences of float32 gradients; hess_se its standard error / n). The Hessian
//                is taken w.r.t. ŵ, not the latent W: through the rounding, L(W) is piecewise
//                constant and its Hessian zero almost everywhere.
//   curv_cost    ½ · hess_mean · dhat_ms: the second-order loss increase per weight that one step
//                causes through this module (a quadratic model's δᵀHδ/2 with δ spread evenly)
//
// The rule (R = the ratio in `--freeze auto:R`, default 2): each module's grad_rel and curv_cost
// are divided by their medians over the module kinds of the SAME layer (layers differ in scale
// as a whole — the first block's gradients are larger for every kind — and the question is
// which kind stands out, not which layer). A module is FLAGGED when either ratio is ≥ R: the
// loss pushes on it R times harder than on its layer's typical module, or a step on it costs R
// times the typical curvature penalty — training it is where KD-QAT's steps are least
// trustworthy. A module KIND is frozen (in every layer, as the presets do) when it is flagged in
// more than half of the layers. Paper A's ov-freeze is the instance where the flagged kinds are
// v and o: the chosen patterns are then exactly the `ov` preset's (on the built-in SOTU teacher
// at w4-channel this is what the rule chooses: docs/freeze-auto.md).
// Nothing outside the blocks (embeddings, a quantized head) is a candidate.
//
// Cost: 2·HUTCHINSON_VECTORS student forward+backward passes and one teacher forward for the
// curvature, plus per probe step one teacher forward and one student forward+backward (a
// probe of S steps costs about S + 2·HUTCHINSON_VECTORS training steps); reported in seconds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { backward, noGrad } from '../tensor/autograd.js';
import { withCompute, type ComputePrecision, type HeadPrecision } from '../tensor/compute.js';
import { kernel } from '../tensor/registry.js';
import { hash32 } from '../tensor/rng.js';
import type { Params, WeightFn } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import { architecture, moduleOf, MODULE_KINDS, type ArchName } from '../models/registry.js';
import { prepare, type Prepared } from '../quant/prepare.js';
import { quantizeCodes } from '../quant/rules.js';
import { captureFor, distillLoss, type DistillOutputs, type LossWeights } from '../distill/losses.js';
import { SignalMonitor } from '../analysis/signal.js';
import { hutchinson } from '../analysis/hutchinson.js';
import { AdamW, clipGradNorm } from './optim.js';
import { learningRate } from './schedule.js';
import { epochBatches, type QatBatch, type QatData } from './qat-data.js';
import { UsageError } from './usage.js';
import { median } from '../report/table.js';

/** --freeze-probe-steps default: enough AdamW steps for the moments to settle (β₁ = 0.9). */
export const PROBE_STEPS = 32;
/** Rademacher vectors of the curvature estimate (its standard error is reported). */
export const HUTCHINSON_VECTORS = 8;
/** R of `--freeze auto` (a ratio to the median). */
export const AUTO_RATIO = 2;
/** The file the probe's choice and evidence go to, in --out. */
export const FREEZE_AUTO_FILE = 'freeze_auto.json';
const PROBE_SALT = 0x70726f62; // 'prob'

/** `auto` → R = AUTO_RATIO, `auto:R` → R (> 1); anything else → null (a preset or patterns). */
export function parseFreezeAuto(spec: string): { ratio: number } | null {
  const s = spec.trim();
  if (s !== 'auto' && !s.startsWith('auto:')) {
    if (s.split(',').some((x) => x.trim() === 'auto' || x.trim().startsWith('auto:'))) {
      throw new UsageError(`--freeze ${spec}: 'auto' chooses the whole freeze set and cannot be combined with other patterns; give --freeze auto (or auto:R) alone`);
    }
    return null;
  }
  if (s === 'auto') return { ratio: AUTO_RATIO };
  const r = Number(s.slice(5));
  if (!(r > 1) || !Number.isFinite(r)) throw new UsageError(`--freeze ${spec}: the ratio in auto:R must be a number > 1 (a multiple of the median), e.g. auto:2`);
  return { ratio: r };
}

/** The probe's measurements of one block module (null: not measured). */
export interface ModuleSignals {
  name: string;
  layer: number;
  kind: string;
  grad_rel: number | null;
  update_ratio: number | null;
  cross_rate: number | null;
  dhat_ms: number | null;
  hess_mean: number | null;
  hess_se: number | null;
}

export interface ModuleEvidence extends ModuleSignals {
  curv_cost: number | null;
  /** grad_rel and curv_cost over their medians. */
  r_grad: number | null;
  r_curv: number | null;
  flagged: boolean;
}

export interface KindChoice {
  kind: string;
  layers: number;
  flagged_layers: number[];
  frozen: boolean;
  /** The name pattern that selects this kind in every layer (what --freeze would be given). */
  pattern: string;
}

export interface FreezeAutoRecord {
  rule: string;
  ratio: number;
  /** The chosen patterns, in kind order ('' → none): what the run's --freeze resolves to. */
  patterns: string[];
  kinds: KindChoice[];
  /** Per layer (index = layer): the medians the ratios divide by. */
  medians: { grad_rel: (number | null)[]; curv_cost: (number | null)[] };
  modules: ModuleEvidence[];
  probe: { steps: number; vectors: number; seed: number; batch: number; seconds: number; student_passes: number; teacher_passes: number };
}

export const RULE_TEXT = (r: number): string =>
  `a module is flagged when its relative gradient norm ‖∇W‖/‖W‖ or its curvature cost ½·(tr H/n)·mean ‖Δŵ‖²/n ` +
  `is ≥ ${r} × the median over the module kinds of its layer; a module kind is frozen (in every layer) when flagged in more than half of the layers`;

/** The pattern of a kind: the weight names after the layer index, if all layers agree
 *  (`self_attn.v_proj`), else the names themselves (without `.weight`). */
function kindPatterns(names: string[]): string[] {
  const tails = new Set(names.map((n) => n.replace(/^.*?(?:^|\.)(?:layers|layer)\.\d+\./, '').replace(/\.weight$/, '')));
  return tails.size === 1 ? [...tails] : names.map((n) => n.replace(/\.weight$/, ''));
}

/** The rule (see the top) applied to measured signals. */
export function chooseFreeze(signals: ModuleSignals[], ratio: number): Omit<FreezeAutoRecord, 'probe'> {
  const cost = (s: ModuleSignals): number | null => (s.hess_mean !== null && s.dhat_ms !== null ? 0.5 * s.hess_mean * s.dhat_ms : null);
  const finite = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const layers = Math.max(-1, ...signals.map((s) => s.layer)) + 1;
  const inLayer = (l: number): ModuleSignals[] => signals.filter((s) => s.layer === l);
  const mg = Array.from({ length: layers }, (_, l) => median(finite(inLayer(l).map((s) => s.grad_rel))));
  const mc = Array.from({ length: layers }, (_, l) => median(finite(inLayer(l).map(cost))));
  const over = (x: number | null, m: number | null): number | null => (x === null || m === null || !(m > 0) ? null : x / m);
  const modules: ModuleEvidence[] = signals.map((s) => {
    const c = cost(s), rg = over(s.grad_rel, mg[s.layer]), rc = over(c, mc[s.layer]);
    return { ...s, curv_cost: c, r_grad: rg, r_curv: rc, flagged: (rg !== null && rg >= ratio) || (rc !== null && rc >= ratio) };
  });
  const kinds = [...new Set(modules.map((m) => m.kind))].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
  const choices: KindChoice[] = kinds.map((kind) => {
    const ms = modules.filter((m) => m.kind === kind);
    const flagged = ms.filter((m) => m.flagged).map((m) => m.layer).sort((a, b) => a - b);
    return { kind, layers: ms.length, flagged_layers: flagged, frozen: 2 * flagged.length > ms.length, pattern: kindPatterns(ms.map((m) => m.name)).join(',') };
  });
  return {
    rule: RULE_TEXT(ratio), ratio, patterns: choices.filter((c) => c.frozen).flatMap((c) => c.pattern.split(',')),
    kinds: choices, medians: { grad_rel: mg, curv_cost: mc }, modules,
  };
}

const order = (kind: string): number => {
  const i = MODULE_KINDS.indexOf(kind);
  return i < 0 ? MODULE_KINDS.length : i;
};

export interface ProbeInput {
  arch: ArchName;
  student: Model;
  teacher: Model;
  prepared: Prepared;
  data: QatData;
  weights: LossWeights;
  tau: number;
  /** The run's settings the probe trains with. */
  run: { seed: number; batch: number; lr: number; warmup: number; totalSteps: number; weightDecay: number; clip: number };
  steps: number;
  ratio: number;
  teacherPrec: ComputePrecision;
  studentPrec: ComputePrecision;
  /** The student's LM head (--bf16 layers: float32 logits, bf16 backward, under a bf16 body). */
  studentHeadPrec: HeadPrecision;
  vectors?: number;
  say?: (m: string) => void;
}

/** Runs the probe (see the top) and applies the rule. The student and its quantizer are untouched. */
export function probeFreeze(o: ProbeInput): FreezeAutoRecord {
  const t0 = performance.now();
  const vectors = o.vectors ?? HUTCHINSON_VECTORS;
  // The copy: fresh latent weights, and a fresh quantizer whose LSQ steps start from the run's.
  const params: Params = new Map();
  for (const [n, p] of o.student.params) {
    const t = new Tensor(p.f32.slice(), p.shape, true);
    t.name = n;
    params.set(n, t);
  }
  const model = { ...o.student, params } as Model;
  const prep = prepare(model, o.prepared.config, { steps: o.prepared.quantParams });
  const all: Params = new Map([...params, ...prep.quantParams]);
  const blocks = [...prep.quantized.keys()].filter((n) => moduleOf(n).layer !== null);
  if (blocks.length === 0) throw new Error(`--freeze auto: the quantization config quantizes no Linear of the blocks; there is nothing to choose from`);
  const capture = captureFor(o.weights, o.arch);
  const seed = hash32(o.run.seed, PROBE_SALT);
  let epoch = 0;
  let it = epochBatches(o.data, o.run.batch, seed, epoch);
  const next = (): QatBatch => {
    let r = it.next();
    if (r.done) {
      it = epochBatches(o.data, o.run.batch, seed, ++epoch);
      r = it.next();
    }
    return r.value as QatBatch;
  };
  const fwd = (m: Model, b: QatBatch, weight?: WeightFn): DistillOutputs =>
    archOf(m).forward(m, { ids: b.ids, mask: b.mask, tokenTypeIds: b.typeIds }, { weight, capture });
  const teacherOut = (b: QatBatch): DistillOutputs => noGrad(() => withCompute(o.teacherPrec, () => fwd(o.teacher, b, undefined)));
  const lossOf = (s: DistillOutputs, t: DistillOutputs, b: QatBatch): Tensor =>
    distillLoss(s, t, o.weights, { arch: o.arch, tau: o.tau, mask: b.mask, labels: b.labels }).total;
  let teacherPasses = 0, studentPasses = 0;

  // Curvature at the RTN student, on the probe's first batch, w.r.t. ŵ (float32 throughout).
  const b0 = next();
  const t0out = teacherOut(b0);
  teacherPasses++;
  const hat = new Map(blocks.map((n) => [n, noGrad(() => prep.weight(n, params.get(n)!))]));
  const gradAt = (delta: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> => {
    studentPasses++;
    return gradWrtHat(all, prep.weight, hat, delta, (w) => withCompute('fp32', () => lossOf(fwd(model, b0, w), t0out, b0)));
  };
  const rms = (x: Float32Array): number => Math.sqrt(kernel('sumSquares')(x) / x.length);
  const hess = hutchinson(blocks.map((n) => ({ name: n, size: hat.get(n)!.size, scale: rms(hat.get(n)!.f32) })), gradAt, { vectors, seed });

  // The training probe.
  const trainable = new Set(all.keys());
  const monitor = new SignalMonitor({
    params: all, quantized: blocks, trainable,
    codes: (name, w) => {
      const t = prep.targets.get(name)!;
      return quantizeCodes(w.f32, t.rows, t.cols, prep.quantized.get(name)!, prep.quantParams.get(`${name}.step`)?.f32).codes;
    },
  });
  const weight = monitor.instrument(prep.weight);
  const optimizer = new AdamW(all, { lr: o.run.lr, weightDecay: o.run.weightDecay, noDecay: (n) => prep.quantParams.has(n) || (all.get(n)?.ndim ?? 2) < 2 });
  const schedule = { lr: o.run.lr, totalSteps: o.run.totalSteps, warmupSteps: o.run.warmup, decay: 'cosine' as const, minRatio: 0.1 };
  const norm0 = new Map(blocks.map((n) => [n, Math.sqrt(kernel('sumSquares')(params.get(n)!.f32))]));
  const sums = new Map(blocks.map((n) => [n, { grad: 0, gradN: 0, upd: 0, updN: 0, cross: 0, crossN: 0, dhat: 0 }]));
  const hatNow = (n: string): Float32Array => noGrad(() => prep.weight(n, params.get(n)!)).f32.slice();
  for (let step = 0; step < o.steps; step++) {
    const b = step === 0 ? b0 : next();
    const t = step === 0 ? t0out : teacherOut(b);
    if (step > 0) teacherPasses++;
    monitor.active = true;
    const loss = withCompute(o.studentPrec, () => lossOf(fwd(model, b, weight), t, b), { head: o.studentHeadPrec });
    if (!Number.isFinite(loss.item())) throw new Error(`--freeze auto: the probe's loss is ${loss.item()} at probe step ${step + 1}; try a lower --lr, or choose --freeze yourself`);
    backward(loss);
    studentPasses++;
    monitor.afterBackward();
    clipGradNorm(all, o.run.clip || Infinity);
    monitor.beforeUpdate();
    const before = new Map(blocks.map((n) => [n, hatNow(n)]));
    optimizer.step(learningRate(schedule, step));
    noGrad(() => monitor.afterUpdate(prep.weight));
    monitor.active = false;
    optimizer.zeroGrad();
    const rec = monitor.take();
    for (const n of blocks) {
      const { layer, kind } = moduleOf(n);
      const s = sums.get(n)!;
      const at = (m: 'grad_norm' | 'update_ratio' | 'step_cross_rate'): number | null => rec[m]?.[kind]?.[layer!] ?? null;
      const g = at('grad_norm'), u = at('update_ratio'), c = at('step_cross_rate');
      if (g !== null) { s.grad += g; s.gradN++; }
      if (u !== null) { s.upd += u; s.updN++; }
      if (c !== null) { s.cross += c; s.crossN++; }
      const a = hatNow(n);
      s.dhat += kernel('sumSquaredDiff')(a, before.get(n)!) / a.length;
    }
  }

  const signals: ModuleSignals[] = blocks.map((n) => {
    const { layer, kind } = moduleOf(n);
    const s = sums.get(n)!, h = hess.get(n)!, size = params.get(n)!.size, w0 = norm0.get(n)!;
    return {
      name: n, layer: layer!, kind,
      grad_rel: s.gradN && w0 > 0 ? s.grad / s.gradN / w0 : null,
      update_ratio: s.updN ? s.upd / s.updN : null,
      cross_rate: s.crossN ? s.cross / s.crossN : null,
      dhat_ms: o.steps > 0 ? s.dhat / o.steps : null,
      hess_mean: Number.isFinite(h.trace) ? h.trace / size : null,
      hess_se: h.se !== null && Number.isFinite(h.se) ? h.se / size : null,
    };
  });
  const choice = chooseFreeze(signals, o.ratio);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  o.say?.(`--freeze auto: probed ${blocks.length} modules in ${o.steps} steps + ${vectors} curvature vectors (${seconds} s); ` +
    `freezing ${choice.patterns.length ? choice.patterns.join(', ') : 'nothing'} (${choice.rule})`);
  return { ...choice, probe: { steps: o.steps, vectors, seed, batch: o.run.batch, seconds, student_passes: studentPasses, teacher_passes: teacherPasses } };
}

/**
 * ∇_ŵ L: the gradient of `loss(weight)` w.r.t. the fake-quantized values `hat` of the named
 * weights, at ŵ + delta. The forward reads fresh leaves holding ŵ + delta in their place (the
 * other weights through `weight`), and every parameter in `all` is detached meanwhile, so the
 * backward fills only the leaves and leaves no .grad behind.
 */
export function gradWrtHat(
  all: Params, weight: WeightFn, hat: ReadonlyMap<string, Tensor>, delta: ReadonlyMap<string, Float32Array>, loss: (w: WeightFn) => Tensor,
): Map<string, Float32Array> {
  const leaves = new Map<string, Tensor>();
  const flags = [...all.values()].map((p) => p.requiresGrad);
  for (const p of all.values()) p.requiresGrad = false;
  const w: WeightFn = (name, p) => {
    const h = hat.get(name), d = delta.get(name);
    if (!h || !d) return weight(name, p);
    const x = h.f32.slice();
    kernel('axpy')(1, d, x);
    const leaf = new Tensor(x, h.shape, true);
    leaves.set(name, leaf);
    return leaf;
  };
  if (weight.input) w.input = weight.input;
  try {
    backward(loss(w));
  } finally {
    [...all.values()].forEach((p, i) => { p.requiresGrad = flags[i]; });
  }
  return new Map([...leaves].filter(([, l]) => l.grad).map(([n, l]) => [n, l.grad!.f32]));
}

/** Is `patterns` exactly a preset of `arch` (e.g. ov), so the report can say so? */
export function presetOf(patterns: readonly string[], arch: ArchName): string | null {
  const presets = architecture(arch).modules.freezePresets;
  const key = [...patterns].sort().join(',');
  for (const [name, ps] of Object.entries(presets)) if ([...ps].sort().join(',') === key) return name;
  return null;
}

/** OUT/freeze_auto.json of a run (a resumed run's summary carries it again). */
export function readFreezeAuto(out: string): FreezeAutoRecord {
  const file = path.join(out, FREEZE_AUTO_FILE);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as FreezeAutoRecord;
  } catch (e) {
    throw new Error(`${file}: cannot read the --freeze auto probe's record (${(e as Error).message}); it is written when the run starts — run again without --resume to probe anew`);
  }
}
