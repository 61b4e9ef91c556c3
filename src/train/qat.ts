// KD-QAT (METHODS.md §1): the student is an exact copy of the full-precision teacher whose
// quantized weights are fake-quantized in its forward pass (src/quant prepare); the latent
// weights (and LSQ steps) are trained, through the straight-through estimator, on a weighted
// sum of distillation losses between student and teacher outputs (src/distill/losses.ts). The
// teacher runs without gradients (optionally from a disk cache, src/train/teacher-cache.ts).
// Frozen modules (--freeze ov: paper A's ov-freeze) stay fake-quantized but get no update and
// no optimizer state (src/train/freeze.ts).
//
// Output directory (--out):
//   student/          the student (saveStudent: latent weights as an HF model directory, plus
//                     quantization.json and model.quantized.safetensors with codes and scales);
//                     `kdqat eval --model OUT/student` measures the deployable quantized model
//   best-student/     --keep-best: the student of the best periodic evaluation
//   qat_log.jsonl     every --log-every steps: {"step", "lr", "loss": {"total", <term>…},
//                     "signal": per-module statistics (src/analysis/signal.ts)}, plus the
//                     evaluation lines (valid_ppl / dev_accuracy)
//   summary.json      teacher / round-to-nearest / KD-QAT metrics and the run's settings
//   checkpoint/       latent weights + quantizer parameters + AdamW state, for --resume
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad } from '../tensor/autograd.js';
import { recomputeModeOf, storagePolicyFor } from '../tensor/recompute.js';
import { withCompute, type ComputePrecision } from '../tensor/compute.js';
import { bf16Slower, bf16Unavailable, nativeIsaInfo } from '../backend/index.js';
import type { Params, WeightFn } from '../nn/params.js';
import { countParams } from '../nn/params.js';
import type { Model } from '../models/model.js';
import type { ArchName } from '../models/registry.js';
import type { LoadedModel } from '../io/model-dir.js';
import { prepare, type Prepared } from '../quant/prepare.js';
import { saveStudent } from '../quant/student.js';
import { quantizeCodes } from '../quant/rules.js';
import { captureFor, releaseOutputs, type DistillOutputs } from '../distill/losses.js';
import { SignalMonitor } from '../analysis/signal.js';
import type { LoopResult } from './loop.js';
import { openSession, type Session, type SessionRun } from './session.js';
import { cleanUpOnFailure, writeJsonAtomic } from './outdir.js';
import { crashPoint } from '../io/test-hooks.js';
import { checkNotInput } from '../io/outputs.js';
import { cacheFrozen, freeze } from './freeze.js';
import { FREEZE_AUTO_FILE, PROBE_STEPS, parseFreezeAuto, probeFreeze, readFreezeAuto, type FreezeAutoRecord } from './freeze-auto.js';
import { epochBatches, sliceRows, termShares, type QatBatch, type QatData, type RankBatch, type ShareBatch } from './qat-data.js';
import { rankRows, type Distributed } from './distributed.js';
import { TeacherCache, batchKey, teacherKey } from './teacher-cache.js';
import { bf16Precisions, checkInt8Grad, checkQatConfig, resolveBf16Auto, resolveInt8GradAuto, type QatConfig } from './qat-config.js';
import { UsageError } from './usage.js';
import { qatEvaluator, type QatEvaluator } from './qat-eval.js';
import { CROSS_PREFIX, distillation, forward } from './qat-loss.js';
import { buildModels, qatDataOf, type Built, type Models } from './qat-models.js';

export { QAT_DEFAULTS, type QatConfig } from './qat-config.js';

/** The student's directory inside --out. */
export const STUDENT_DIR = 'student';
/** --keep-best: the student of the best periodic evaluation. */
export const BEST_STUDENT_DIR = 'best-student';

export interface QatRun extends SessionRun {
  config: QatConfig;
  commandLine?: string[];
  /** false: no evaluation at all (baselines, periodic, final) — for a caller that measures the
   *  student itself (kdqat reproduce); the summary's metrics are then empty. 'periodic': only the
   *  periodic evaluations (for --keep-best). Default true. */
  evaluate?: boolean | 'periodic';
  // dist (SessionRun; `--distributed mpi`, src/train/distributed.ts): rank 0 alone evaluates and
  // writes; every rank trains on its rows of each batch.
}

export interface QatSummary {
  arch: ArchName;
  steps: number;
  /** The metric of the comparison: valid_ppl (decoder) or dev_accuracy (encoder). */
  metric: string;
  teacher: Record<string, number>;
  /** The student before training: round-to-nearest of the teacher (or of --student-init). */
  rtn: Record<string, number>;
  final: Record<string, number>;
  /** --keep-best: the step and metrics of the student in OUT/best-student (null: not kept). */
  best: QatBest | null;
  /** Decoder: (ppl_rtn − ppl_qat) / (ppl_rtn − ppl_teacher), the part of the loss recovered;
   *  null when RTN's perplexity is not above the teacher's (nothing lost). */
  recovered: number | null;
  frozen: string[];
  /** --freeze auto: the probe's choice and evidence (OUT/freeze_auto.json). */
  freeze_auto?: FreezeAutoRecord;
  trainable_parameters: number;
  quantized_weights: number;
  /** topk: --cache-teacher-topk (0: full logits). */
  teacher_cache: { dir: string; hits: number; misses: number; topk: number } | null;
  tokens_seen: number;
  wall_time_s: number;
  train_tokens_per_s: number;
  /** --distributed: the rank count and, per step of this segment on rank 0, the mean time in
   *  the all-reduces and before them waiting for the slowest rank's backward. */
  distributed?: { engine: string; ranks: number; allreduce_ms_per_step: number; wait_ms_per_step: number };
  config: QatConfig;
  command: string[];
}

export interface QatBest {
  step: number;
  metrics: Record<string, number>;
}

export function runQat(run: QatRun): QatSummary {
  return cleanUpOnFailure(run.out, run.resume, () => qat(run));
}

// A run in named steps: settings → teacher and student → data → (out dir) → trainable parameters
// → teacher outputs → baselines → the distillation loss → the session's training → the summary.
// Each step takes what it needs and returns what the next ones use.
function qat(run: QatRun): QatSummary {
  const session = openSession(run, run.config, { hint: '; run without --resume (and with --force) to start over' });
  const { out, dist, lead } = session;
  let c = session.config;
  checkQatConfig(c);
  const say = (m: string): void => run.reporter?.message(m);
  // --bf16 auto is resolved once, when the run starts; the config (checkpoints, summary) holds
  // the mode, so a --resume never resolves it again on another CPU.
  if (c.bf16 === 'auto') {
    if (session.ckpt) throw new UsageError(`--resume: the checkpoint's config has bf16 "auto", which runs resolve before saving; the checkpoint in ${out} was not written by kdqat qat`);
    const why = bf16Unavailable() ?? bf16Slower();
    c = { ...c, bf16: resolveBf16Auto(why) };
    session.update(c);
    say(c.bf16 === 'off' ? `--bf16 auto: off (float32 GEMMs: ${why})`
      : `--bf16 auto: ${c.bf16} (GEMMs in bf16 with float32 accumulation on this CPU's ${nativeIsaInfo()?.amx?.matmulBf16 ? 'AMX tiles' : 'avx512_bf16'}, a decoder's logits in float32; --bf16 off for float32 everywhere)`);
  }
  const prec = precisions(c, !!session.ckpt, out);

  // Everything that can be wrong is checked before --force clears an old run out of the way.
  if (!session.ckpt && c.freezeAuto) throw new UsageError(`freezeAuto ${JSON.stringify(c.freezeAuto)}: is written by the run, not given; use --freeze auto`);
  const auto = parseFreezeAuto(c.freeze);
  const built = buildModels(c, !auto, prec.teacher);
  const data = qatDataOf(c, built);
  // --int8-grad auto is resolved once, when the run starts, as --bf16 auto is.
  if (c.int8Grad === 'auto') {
    if (session.ckpt) throw new UsageError(`--resume: the checkpoint's config has int8Grad "auto", which runs resolve before saving; the checkpoint in ${out} was not written by kdqat qat`);
    const r = resolveInt8GradAuto(c, built.prepared, built.rec.kind);
    c = { ...c, int8Grad: r.on };
    session.update(c);
    say(`--int8-grad auto: ${r.on ? `on (${r.why}; --int8-grad off for float32 input gradients)` : `off (${r.why})`}`);
  }
  const int8Grad = c.int8Grad ? checkInt8Grad(c, built.prepared, !!session.ckpt, out) : '';
  checkDistributed(c, built, data, dist);
  session.checkRanks('qat');
  const inputs = [
    { flag: '--teacher', path: c.teacher }, { flag: '--student-init', path: c.studentInit }, { flag: '--quant', path: c.quant },
    { flag: '--data', path: c.data }, { flag: '--task', path: c.task }, { flag: '--dev', path: c.dev },
  ];
  if (c.cacheTeacher) checkNotInput('--cache-teacher', c.cacheTeacher, inputs);
  session.prepareOutDir(inputs);
  // --freeze auto (src/train/freeze-auto.ts): a probe on a copy of the student chooses; the run's
  // config then holds the chosen patterns (checkpointed: a --resume does not probe again).
  const probe = auto ? probeFreeze({
    arch: built.arch, student: built.student, teacher: built.teacher, prepared: built.prepared, data, weights: built.weights, tau: c.tau,
    steps: c.freezeProbeSteps ?? PROBE_STEPS, ratio: auto.ratio, teacherPrec: prec.teacher, studentPrec: prec.student, studentHeadPrec: prec.studentHead, say,
    run: { seed: c.seed, batch: c.batch, lr: c.lr, warmup: c.warmup, totalSteps: c.steps, weightDecay: c.weightDecay, clip: c.clip },
  }) : null;
  if (probe) {
    c = { ...c, freeze: probe.patterns.join(','), freezeAuto: c.freeze };
    session.update(c);
    if (lead) writeJsonAtomic(path.join(out, FREEZE_AUTO_FILE), probe);
  }
  const m: Models = { ...built, frozen: built.frozen ?? freeze(c.freeze, built.arch, built.student.params, built.prepared.quantParams) };
  const freezeAuto = c.freezeAuto && lead ? probe ?? readFreezeAuto(out) : undefined;

  const t = trainables(m);
  const capture = captureFor(m.weights, m.arch);
  const teacher = teacherOutputs(c, m, capture, prec.teacher);
  const evaluating = run.evaluate !== false && lead;
  const full = evaluating && run.evaluate !== 'periodic'; // baselines and the final evaluation
  const evaluate: QatEvaluator = evaluating ? qatEvaluator(m.student, m.teacher, data, m.tok, c.batch) : () => ({});
  const metric = data.kind === 'decoder' ? 'valid_ppl' : 'dev_accuracy';
  say(`${m.arch} teacher ${c.teacher}: ${countParams(m.teacher.params).toLocaleString('en-US')} parameters` +
    `${m.teacherBf16Saved ? ` (weights held as bf16, ${m.teacherBf16Saved < 2 ** 20 ? `${(m.teacherBf16Saved / 1024).toFixed(0)} KiB` : `${(m.teacherBf16Saved / 2 ** 20).toFixed(0)} MiB`} less)` : ''}; ` +
    `${m.prepared.quantized.size} quantized weights (${c.quant}); frozen: ${m.frozen.params.length ? m.frozen.params.length + ' parameters' : 'none'}; ` +
    `loss ${Object.entries(m.weights).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (int8Grad) say(`--int8-grad: the input gradients of ${int8Grad} as int8 GEMMs`);
  if (data.kind === 'decoder' && !data.valid) say(`validation skipped: ${data.validNote}`);
  const base = baselines(session.saved<Baselines>('baselines'), full, say, evaluate, t.weight);

  const kd = distillation(c, session, {
    student: m.student, arch: m.arch, weights: m.weights, monitor: t.monitor, weight: t.weight, studentWeight: t.studentWeight,
    capture, teacherOut: teacher.outputs, studentPrec: prec.student, studentHeadPrec: prec.studentHead,
  });
  const keep = keepBest(c, m, session, metric, say);
  const result = session.train<QatBatch | ShareBatch>({
    params: t.params, totalSteps: c.steps, accumulate: c.accumulate, clipNorm: c.clip, seed: c.seed,
    storage: storagePolicyFor(recomputeModeOf(c.recompute)),
    lr: c.lr, optimizer: { weightDecay: c.weightDecay, noDecay: (n) => m.prepared.quantParams.has(n) || (t.params.get(n)?.ndim ?? 2) < 2 },
    schedule: { warmupSteps: c.warmup, decay: 'cosine', minRatio: 0.1 },
    epochBatches: (epoch) => dist.size === 1 ? epochBatches(data, c.batch, c.seed, epoch) : rankBatches(epochBatches(data, c.batch, c.seed, epoch), dist, data.kind === 'encoder'),
    tokens: (b) => b.tokens,
    distributed: { dist, share: (b) => (b as ShareBatch).share },
    loss: kd.loss, checkLoss: kd.checkLoss, hooks: kd.hooks,
    logFile: 'qat_log.jsonl', logRecord: kd.logRecord,
    evaluate: evaluating ? () => evaluate(t.weight, c.evalWindows) : undefined,
    onEval: keep.onEval,
    evalEvery: c.evalEvery, logEvery: c.logEvery, saveEvery: c.saveEvery,
    extraState: () => ({ baselines: base, pendingTerms: kd.pending(), best: keep.best() }),
    extraTensors: () => new Map([...t.monitor.crossState()].map(([k, v]) => [CROSS_PREFIX + k, v])),
  });

  const final = full ? evaluate(t.weight, Infinity, { onBatch: progress(say, 'KD-QAT student') }) : {};
  if (full) say(`final: ${fmt(final)} (teacher ${fmt(base.teacher)}; RTN ${fmt(base.rtn)})`);
  if (lead) writeStudent(out, m.student, m.prepared, c.teacher, m.teacherDir);
  const summary = summarize(run, session, { m, t, metric, base, final, best: keep.best(), cache: teacher.cache, result, freezeAuto });
  crashPoint('summary');
  if (lead) writeJsonAtomic(path.join(out, 'summary.json'), summary);
  return summary;
}

/** --bf16: the teacher's and the student's GEMM precision; refused up front on a CPU that cannot
 *  run it (never a silent float32 fallback), also when a run resumes on another CPU. */
function precisions(c: QatConfig, resumed: boolean, out: string): ReturnType<typeof bf16Precisions> {
  const bf16 = c.bf16 ?? 'off';  // checkpoints written before the option have none
  const why = bf16 === 'off' ? null : bf16Unavailable();
  if (why && resumed) {
    throw new Error(`--resume: the run in ${out} computes GEMMs in bf16 (bf16 "${bf16}" in its checkpoint's config) and this CPU cannot: ${why}; ` +
      'continuing in float32 would silently change the run: resume it on a CPU with avx512_bf16, or start a new run (--force)');
  }
  if (why) throw new Error(`--bf16 ${bf16}: bf16 GEMMs need a CPU with the avx512_bf16 instructions (AVX512_BF16) at SIMD level avx512: ${why}; run with --bf16 off (or auto)`);
  return bf16Precisions(bf16);
}

/** The full evaluations take a while: a line every 15 s. */
function progress(say: (m: string) => void, what: string): (done: number, total: number) => void {
  let last = performance.now();
  return (done, total) => {
    if (performance.now() - last < 15_000) return;
    last = performance.now();
    say(`evaluating the ${what}: ${done}/${total}`);
  };
}

/** What a run on several ranks cannot do. */
function checkDistributed(c: QatConfig, m: Built, data: QatData, dist: Distributed): void {
  if (c.batch < dist.size) throw new UsageError(`--batch ${c.batch} is smaller than the ${dist.size} MPI ranks: every rank takes at least one row of each batch; use --batch ≥ ${dist.size}`);
}

/** The trained parameters and the student's weight function (with the signal probes). */
interface Trainables {
  /** The student's weights and the quantizer parameters (all checkpointed, frozen ones too). */
  params: Params;
  /** Of which trained (only these get AdamW state). */
  trainable: Set<string>;
  /** Fake-quantized weights, the frozen ones computed once. */
  weight: WeightFn;
  monitor: SignalMonitor;
  /** `weight` instrumented by the monitor: the student's forward in training. */
  studentWeight: WeightFn;
}

function trainables(m: Models): Trainables {
  const { student, prepared } = m;
  const params: Params = new Map(student.params);
  for (const [n, p] of prepared.quantParams) {
    if (params.has(n)) throw new Error(`quantizer parameter "${n}" has the name of a model parameter`);
    params.set(n, p);
  }
  const trainable = new Set([...params].filter(([, p]) => p.requiresGrad).map(([n]) => n));
  const frozenSet = new Set(m.frozen.params);
  const weight = cacheFrozen(prepared.weight, frozenSet);
  const monitor = new SignalMonitor({
    params, quantized: prepared.quantized.keys(), trainable,
    // Crossings count integer codes (a moved absmax scale changes every ŵ of its row, not the codes).
    codes: (name, w) => {
      const t = prepared.targets.get(name)!;
      return quantizeCodes(w.f32, t.rows, t.cols, prepared.quantized.get(name)!, prepared.quantParams.get(`${name}.step`)?.f32).codes;
    },
  });
  return { params, trainable, weight, monitor, studentWeight: monitor.instrument(weight) };
}

/** The teacher's outputs for a batch: computed without gradients, or from --cache-teacher. */
function teacherOutputs(c: QatConfig, m: Models, capture: ReturnType<typeof captureFor>, prec: ComputePrecision):
  { outputs: (b: QatBatch) => DistillOutputs; cache: TeacherCache | null } {
  const { topk } = m;
  // A top-K cache depends on K and on τ (its logsumexp is at τ): both are part of its key; bf16
  // teacher outputs are not the float32 ones: their own key (float32 keys unchanged).
  const baseKey = topk ? { capture, topk, tau: c.tau } : capture;
  const cacheKey = prec === 'fp32' ? baseKey : { capture: baseKey, compute: prec };
  const cache = c.cacheTeacher ? new TeacherCache(c.cacheTeacher, teacherKey(c.teacher, cacheKey), { topk, tau: c.tau }) : null;
  // The previous batch's outputs are read by nothing once its backward has run (the loss is the
  // only reader): they go back to the storage pool when the next batch asks, instead of to the
  // collector. Not the cache's, which it keeps.
  let last: DistillOutputs | null = null;
  const outputs = (b: QatBatch): DistillOutputs => {
    if (last) releaseOutputs(last, m.teacher.params);
    last = null;
    const compute = (): DistillOutputs => noGrad(() => withCompute(prec, () => forward(m.teacher, b, capture)));
    if (cache) return cache.fetch(batchKey([b.ids.i32, b.mask?.i32 ?? null, b.typeIds?.i32 ?? null]), compute);
    return (last = compute());
  };
  return { outputs, cache };
}

interface Baselines { teacher: Record<string, number>; rtn: Record<string, number> }

/** The teacher and the student before training (RTN) on the whole evaluation set; a resumed run
 *  has them in its checkpoint; empty without the full evaluations. */
function baselines(saved: Baselines | undefined, full: boolean, say: (m: string) => void, evaluate: QatEvaluator, weight: WeightFn): Baselines {
  if (saved) return saved;
  if (!full) return { teacher: {}, rtn: {} };
  say('evaluating the teacher and the round-to-nearest student');
  const teacherMetrics: Record<string, number> = {};
  const rtn = evaluate(weight, Infinity, { onBatch: progress(say, 'teacher and the round-to-nearest student'), teacherMetrics });
  const base = { teacher: teacherMetrics, rtn };
  say(`teacher ${fmt(base.teacher)}; RTN ${fmt(base.rtn)}`);
  return base;
}

/** --keep-best: the best periodic evaluation so far (in checkpoints, so a resumed run compares
 *  against it; the student it names is already on disk in OUT/best-student). */
function keepBest(c: QatConfig, m: Models, session: Session<QatConfig>, metric: string, say: (m: string) => void):
  { onEval: (step: number, metrics: Record<string, number>) => void; best: () => QatBest | null } {
  let best = session.saved<QatBest | null>('best') ?? null;
  const improves = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) &&
    (best === null || (metric === 'valid_ppl' ? v < best.metrics[metric] : v > best.metrics[metric]));
  return {
    best: () => best,
    onEval: (step, metrics) => {
      if (!c.keepBest || !improves(metrics[metric])) return;
      writeStudent(session.out, m.student, m.prepared, c.teacher, m.teacherDir, BEST_STUDENT_DIR);
      best = { step, metrics };
      say(`best ${metric} so far, ${metrics[metric].toFixed(4)} at step ${step}: kept in ${path.join(session.out, BEST_STUDENT_DIR)}`);
    },
  };
}

function summarize(run: QatRun, session: Session<QatConfig>, r: {
  m: Models; t: Trainables; metric: string; base: Baselines; final: Record<string, number>; best: QatBest | null;
  cache: TeacherCache | null; result: LoopResult; freezeAuto?: FreezeAutoRecord;
}): QatSummary {
  const { m, t, metric, base, final, result } = r;
  const { dist } = session;
  // Only where RTN lost something: with RTN at or below the teacher's perplexity the ratio means nothing.
  const recovered = metric === 'valid_ppl' && base.rtn.valid_ppl !== undefined && final.valid_ppl !== undefined &&
    base.teacher.valid_ppl !== undefined && base.rtn.valid_ppl > base.teacher.valid_ppl
    ? (base.rtn.valid_ppl - final.valid_ppl) / (base.rtn.valid_ppl - base.teacher.valid_ppl) : null;
  const perStep = (s: number): number => Math.round(1e6 * s / Math.max(1, result.step - result.startStep)) / 1e3;
  return {
    arch: m.arch, steps: result.step, metric, teacher: base.teacher, rtn: base.rtn, final, best: r.best, recovered,
    frozen: [...m.frozen.params, ...m.frozen.quantParams], ...(r.freezeAuto ? { freeze_auto: r.freezeAuto } : {}), trainable_parameters: [...t.trainable].reduce((n, k) => n + t.params.get(k)!.size, 0),
    quantized_weights: m.prepared.quantized.size,
    teacher_cache: r.cache ? { dir: r.cache.dir, hits: r.cache.hits, misses: r.cache.misses, topk: m.topk } : null,
    tokens_seen: result.tokensSeen,
    wall_time_s: session.wallTime(),
    train_tokens_per_s: Math.round(result.tokensSeen / Math.max(result.trainSeconds, 1e-9)),
    ...(dist.size > 1 ? { distributed: { engine: dist.engine, ranks: dist.size, allreduce_ms_per_step: perStep(result.commSeconds), wait_ms_per_step: perStep(result.waitSeconds) } } : {}),
    config: session.config, command: run.commandLine ?? [],
  };
}

/** This rank's rows of every global batch (src/train/distributed.ts rankRows). An encoder's
 *  padded rows hold different token counts, and its token-averaged terms (rep, attn_*) are
 *  weighted by the rank's tokens (pairs for attn_score), not its rows. Decoder windows all hold
 *  T tokens: rows are tokens, and their slices stay bitwise one process's micro-batches. */
function* rankBatches(batches: Iterable<QatBatch>, dist: Distributed, encoder: boolean): Generator<RankBatch> {
  for (const b of batches) {
    const { lo, hi } = rankRows(b.ids.shape[0], dist.rank, dist.size);
    const slice = sliceRows(b, lo, hi);
    if (!encoder || slice.share === 0) yield slice;
    else yield { ...slice, termScale: Object.fromEntries(Object.entries(termShares(b, lo, hi)).map(([k, v]) => [k, v / slice.share])) };
  }
}

/** OUT/student (or OUT/best-student), written into a temp directory and renamed into place: an
 *  older one is first renamed aside (`.student.tmp-<pid>.old`, a temp name a resumed run removes),
 *  so a crash leaves the old student, or the new one, or neither — never a partial one. */
function writeStudent(out: string, student: Model, prepared: Prepared, teacherPath: string, teacher: LoadedModel, name = STUDENT_DIR): void {
  const dir = path.join(out, name), tmp = path.join(out, `.student.tmp-${process.pid}`), old = `${tmp}.old`;
  for (const t of [tmp, old]) fs.rmSync(t, { recursive: true, force: true });
  try {
    saveStudent(tmp, student, prepared, { tokenizerFrom: teacherPath, hf: teacher.hf });
    crashPoint('student:written');
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    crashPoint('student:moved-old');
    fs.renameSync(tmp, dir);
    crashPoint('student:published');
  } finally {
    for (const t of [tmp, old]) fs.rmSync(t, { recursive: true, force: true });
  }
}

const fmt = (m: Record<string, number>): string => Object.entries(m).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ') || '(no metrics)';
