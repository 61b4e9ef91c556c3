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
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { withCompute, type ComputePrecision } from '../tensor/compute.js';
import { withRecompute } from '../tensor/recompute.js';
import { bf16Unavailable } from '../backend/index.js';
import type { Params, WeightFn } from '../nn/params.js';
import { countParams } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import { inputLayout } from '../eval/classification.js';
import type { ArchName } from '../models/registry.js';
import { asModel, loadModelDir, type LoadedModel } from '../io/model-dir.js';
import { loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { loadQuantConfig } from '../quant/config.js';
import { prepare, type Prepared } from '../quant/prepare.js';
import { saveStudent } from '../quant/student.js';
import { quantizeCodes } from '../quant/rules.js';
import { LOSS_NAMES, captureFor, distillLoss, parseLossWeights, type DistillOutputs, type LossWeights } from '../distill/losses.js';
import { SignalMonitor } from '../analysis/signal.js';
import { AdamW } from './optim.js';
import { learningRate } from './schedule.js';
import { isLoggedStep, trainLoop, type Reporter } from './loop.js';
import { readCheckpoint } from './checkpoint.js';
import { cleanUpOnFailure, prepareOutDir, resumeCheckpoint, writeJsonAtomic } from './outdir.js';
import { crashPoint } from '../io/test-hooks.js';
import { checkNotInput } from '../io/outputs.js';
import { cacheFrozen, freeze } from './freeze.js';
import { FREEZE_AUTO_FILE, PROBE_STEPS, parseFreezeAuto, probeFreeze, readFreezeAuto, type FreezeAutoRecord } from './freeze-auto.js';
import { decoderData, encoderData, epochBatches, sliceRows, type QatBatch, type QatData, type ShareBatch } from './qat-data.js';
import { SINGLE, rankRows, type Distributed } from './distributed.js';
import { TeacherCache, batchKey, teacherKey } from './teacher-cache.js';
import { checkQatConfig, type QatConfig } from './qat-config.js';
import { qatEvaluator, type QatEvaluator } from './qat-eval.js';

export { QAT_DEFAULTS, type QatConfig } from './qat-config.js';

/** The student's directory inside --out. */
export const STUDENT_DIR = 'student';
/** --keep-best: the student of the best periodic evaluation. */
export const BEST_STUDENT_DIR = 'best-student';

export interface QatRun {
  out: string;
  config: QatConfig;
  resume?: boolean;
  force?: boolean;
  reporter?: Reporter;
  commandLine?: string[];
  /** false: no evaluation at all (baselines, periodic, final) — for a caller that measures the
   *  student itself (kdqat reproduce); the summary's metrics are then empty. 'periodic': only the
   *  periodic evaluations (for --keep-best). Default true. */
  evaluate?: boolean | 'periodic';
  /** Data parallel (`--distributed mpi`, src/train/distributed.ts): this process's rank. Rank 0
   *  alone evaluates and writes; every rank trains on its rows of each batch. Default: SINGLE. */
  dist?: Distributed;
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
  /** Decoder: (ppl_rtn − ppl_qat) / (ppl_rtn − ppl_teacher), the part of the loss recovered. */
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

function loadTeacher(dir: string): { loaded: LoadedModel; tok: LoadedTokenizer } {
  if (!fs.existsSync(dir)) throw new Error(`--teacher ${dir}: no such directory`);
  let loaded: LoadedModel;
  try {
    loaded = loadModelDir(dir);
  } catch (e) {
    throw new Error(`--teacher ${dir}: cannot load the model: ${(e as Error).message}`);
  }
  const rec = archOf(loaded.hf);
  if (rec.kind === 'encoder' && !rec.headsOf(loaded.hf.meta).classifier) {
    throw new Error(`--teacher ${dir}: is a ${rec.label} model without a classifier head; KD-QAT of an encoder needs a fine-tuned classifier (kdqat finetune)`);
  }
  if (!loaded.tokenizerPath) throw new Error(`--teacher ${dir}: has no tokenizer.json; the data is tokenized with the teacher's own tokenizer`);
  const tok = loadTokenizer(loaded.tokenizerPath);
  if (tok.vocabSize > loaded.config.vocabSize) {
    throw new Error(`--teacher ${dir}: vocabulary mismatch: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${loaded.config.vocabSize}`);
  }
  for (const p of loaded.params.values()) p.requiresGrad = false;
  return { loaded, tok };
}

/** The student's starting weights: a copy of the teacher's, or of --student-init (same model). */
function studentParams(teacher: LoadedModel, tok: LoadedTokenizer, init: string): Params {
  let src = teacher.params;
  if (init) {
    let s: LoadedModel;
    try {
      s = loadModelDir(init);
    } catch (e) {
      throw new Error(`--student-init ${init}: cannot load the model: ${(e as Error).message}`);
    }
    if (s.arch !== teacher.arch) throw new Error(`--student-init ${init}: is a ${s.arch} model, the teacher is ${teacher.arch}`);
    const vs = s.config.vocabSize, vt = teacher.config.vocabSize;
    const st = s.tokenizerPath ? loadTokenizer(s.tokenizerPath) : null;
    if (vs !== vt || (st && JSON.stringify(st.json) !== JSON.stringify(tok.json))) {
      throw new Error(`--student-init ${init}: teacher/student vocabulary mismatch: the student has vocab_size ${vs}` +
        `${st ? ` and a tokenizer of ${st.vocabSize} tokens` : ''}, the teacher vocab_size ${vt} and a tokenizer of ${tok.vocabSize} tokens` +
        `${vs === vt ? ' (the tokenizers differ)' : ''}; distillation compares outputs token by token, so both must use the same vocabulary`);
    }
    for (const [name, p] of teacher.params) {
      const q = s.params.get(name);
      if (!q) throw new Error(`--student-init ${init}: has no "${name}"; it must have the teacher's architecture and sizes`);
      if (q.shape.join() !== p.shape.join()) throw new Error(`--student-init ${init}: "${name}" is [${q.shape}], the teacher's is [${p.shape}]`);
    }
    src = s.params;
  }
  const out: Params = new Map();
  for (const name of teacher.params.keys()) {
    const p = src.get(name)!;
    const t = new Tensor(p.f32.slice(), p.shape, true);
    t.name = name;
    out.set(name, t);
  }
  return out;
}

/** The record's forward pass (decoder: LM logits; encoder: classifier logits) with its taps. */
function forward(model: Model, b: QatBatch, capture: ReturnType<typeof captureFor>, weight?: WeightFn): DistillOutputs {
  return archOf(model).forward(model, { ids: b.ids, mask: b.mask, tokenTypeIds: b.typeIds }, { weight, capture });
}

/** Checkpointed tensors: the codes the next cross_rate compares with (SignalMonitor.crossState). */
const CROSS_PREFIX = 'signal.cross:';

export function runQat(run: QatRun): QatSummary {
  return cleanUpOnFailure(run.out, run.resume, () => qat(run));
}

function qat(run: QatRun): QatSummary {
  const t0 = performance.now();
  const { out } = run;
  const ckptDir = run.resume ? resumeCheckpoint(out) : null;
  if (run.resume && !ckptDir) throw new Error(`--out ${out}: has no checkpoint/ to resume from; run without --resume (and with --force) to start over`);
  const ckpt = ckptDir ? readCheckpoint(ckptDir) : undefined;
  let c = ckpt ? (ckpt.state.config as unknown as QatConfig) : run.config;
  checkQatConfig(c);
  // --bf16: refused up front on a CPU that cannot run it (never a silent float32 fallback).
  const bf16 = c.bf16 ?? 'off';  // checkpoints written before the option have none
  const why = bf16 === 'off' ? null : bf16Unavailable();
  if (why) throw new Error(`--bf16 ${bf16}: bf16 GEMMs need a CPU with the avx512_bf16 instructions (AVX512_BF16) at SIMD level avx512: ${why}; run with --bf16 off`);
  const teacherPrec: ComputePrecision = bf16 === 'off' ? 'fp32' : 'bf16';
  const studentPrec: ComputePrecision = bf16 === 'all' ? 'bf16' : 'fp32';
  const dist = run.dist ?? SINGLE;
  const lead = dist.rank === 0; // the rank that evaluates and writes
  const say = (m: string): void => run.reporter?.message(m);
  // The full evaluations take a while: a line every 15 s.
  const progress = (what: string) => {
    let last = performance.now();
    return (done: number, total: number): void => {
      if (performance.now() - last < 15_000) return;
      last = performance.now();
      say(`evaluating the ${what}: ${done}/${total}`);
    };
  };

  // Everything that can be wrong is checked before --force clears an old run out of the way.
  const { loaded: teacherDir, tok } = loadTeacher(c.teacher);
  const arch = teacherDir.arch;
  const rec = archOf(teacherDir.hf);
  const teacher = asModel(teacherDir);
  const student = asModel(teacherDir, studentParams(teacherDir, tok, c.studentInit));
  const { config: quant, source } = loadQuantConfig(c.quant);
  let prepared: Prepared;
  try {
    prepared = prepare(student, quant, { source });
  } catch (e) {
    // prepare's messages name the config's source; otherwise say which option it came from.
    const m = (e as Error).message;
    throw new Error(m.includes(c.quant) ? m : `--quant ${c.quant}: ${m}`);
  }
  const weights: LossWeights = parseLossWeights(c.loss, '--loss');
  const topk = c.cacheTeacherTopk ?? 0; // absent in the checkpoints of older runs
  if (topk && rec.kind !== 'decoder') throw new Error(`--cache-teacher-topk ${topk}: top-K logits are for a decoder teacher's token logits; ${c.teacher} is a ${rec.label} classifier`);
  if (topk >= teacher.config.vocabSize) throw new Error(`--cache-teacher-topk ${topk} must be below the teacher's vocab_size ${teacher.config.vocabSize} (0 keeps the full logits)`);
  const maxPos = teacher.config.maxPositionEmbeddings;
  const seqLen = c.seqLen || Math.min(128, maxPos);
  if (seqLen > maxPos) throw new Error(`--seq-len ${seqLen} exceeds the teacher's max_position_embeddings ${maxPos}`);
  let data: QatData;
  if (rec.kind === 'decoder') {
    if (!c.data) throw new Error('--data NAME|FILE is required for a decoder teacher: sotu, brown, moby-dick, or a text file');
    if (c.task || c.dev) throw new Error(`--task/--dev are for a classifier teacher; ${c.teacher} is a ${rec.label} decoder: give --data`);
    data = decoderData(c.data, tok, seqLen);
    if (data.train.count < c.batch) throw new Error(`--data ${c.data}: ${data.train.count} training windows of ${seqLen} tokens cannot fill one --batch of ${c.batch}`);
  } else {
    if (!c.task) throw new Error(`--task NAME|FILE is required for an encoder (classifier) teacher, e.g. --task brown-genre`);
    if (c.data) throw new Error(`--data is for a decoder teacher; ${c.teacher} is a ${rec.label} classifier: give --task (and --dev for a file)`);
    const labels = rec.labels(teacherDir.hf.meta) ?? [];
    const K = 'numLabels' in teacher.config ? teacher.config.numLabels : 0;
    data = encoderData(c.task, c.dev, tok, labels.length ? labels : Array.from({ length: K }, (_, i) => String(i)), seqLen, inputLayout(teacher));
  }
  if (dist.size > 1 && data.kind === 'encoder') {
    throw new Error(`--distributed: ${c.teacher} is a ${rec.label} classifier; KD-QAT of an encoder is not supported on several ranks yet: its padded batches ` +
      `hold different token counts per rank, and the token-averaged loss terms (rep, attn_*) would be weighted wrongly; run it in one process`);
  }
  if (c.batch < dist.size) throw new Error(`--batch ${c.batch} is smaller than the ${dist.size} MPI ranks: every rank takes at least one row of each batch; use --batch ≥ ${dist.size}`);
  const ranksBefore = (ckpt?.state.extra.ranks as number | undefined) ?? 1;
  if (ckpt && ranksBefore !== dist.size) {
    throw new Error(`--resume: the checkpoint in ${out} was written by a run on ${ranksBefore} rank${ranksBefore > 1 ? 's' : ''}, this run has ${dist.size}; ` +
      `resume with the same count (${ranksBefore > 1 ? `mpirun -np ${ranksBefore} kdqat qat … --distributed mpi` : 'one process, without --distributed'}) so the run stays bitwise reproducible`);
  }
  // --freeze auto (src/train/freeze-auto.ts): a probe on a copy of the student chooses; the run's
  // config then holds the chosen patterns (checkpointed: a --resume does not probe again).
  if (!ckpt && c.freezeAuto) throw new Error(`freezeAuto ${JSON.stringify(c.freezeAuto)}: is written by the run, not given; use --freeze auto`);
  const auto = parseFreezeAuto(c.freeze);
  let frozen = auto ? null : freeze(c.freeze, arch, student.params, prepared.quantParams);
  const inputs = [
    { flag: '--teacher', path: c.teacher }, { flag: '--student-init', path: c.studentInit }, { flag: '--quant', path: c.quant },
    { flag: '--data', path: c.data }, { flag: '--task', path: c.task }, { flag: '--dev', path: c.dev },
  ];
  if (c.cacheTeacher) checkNotInput('--cache-teacher', c.cacheTeacher, inputs);
  if (lead) prepareOutDir(out, { force: run.force, resume: run.resume, inputs });
  const probe = auto ? probeFreeze({ arch, student, teacher, prepared, data, weights, tau: c.tau, steps: c.freezeProbeSteps ?? PROBE_STEPS, ratio: auto.ratio, teacherPrec, studentPrec, say,
    run: { seed: c.seed, batch: c.batch, lr: c.lr, warmup: c.warmup, totalSteps: c.steps, weightDecay: c.weightDecay, clip: c.clip } }) : null;
  if (probe) c = { ...c, freeze: probe.patterns.join(','), freezeAuto: c.freeze };
  if (lead && probe) writeJsonAtomic(path.join(out, FREEZE_AUTO_FILE), probe);
  frozen ??= freeze(c.freeze, arch, student.params, prepared.quantParams);

  // Trainable: the student's weights and the quantizer parameters, minus the frozen ones. All of
  // them are in the checkpoint (frozen ones unchanged); only trained ones have AdamW state.
  const params: Params = new Map(student.params);
  for (const [n, p] of prepared.quantParams) {
    if (params.has(n)) throw new Error(`quantizer parameter "${n}" has the name of a model parameter`);
    params.set(n, p);
  }
  const trainable = new Set([...params].filter(([, p]) => p.requiresGrad).map(([n]) => n));
  const frozenSet = new Set(frozen.params);
  const weight = cacheFrozen(prepared.weight, frozenSet);
  const monitor = new SignalMonitor({
    params, quantized: prepared.quantized.keys(), trainable,
    // Crossings count integer codes (a moved absmax scale changes every ŵ of its row, not the codes).
    codes: (name, w) => {
      const t = prepared.targets.get(name)!;
      return quantizeCodes(w.f32, t.rows, t.cols, prepared.quantized.get(name)!, prepared.quantParams.get(`${name}.step`)?.f32).codes;
    },
  });
  const studentWeight = monitor.instrument(weight);
  const capture = captureFor(weights, arch);
  // A top-K cache depends on K and on τ (its logsumexp is at τ): both are part of its key; bf16
  // teacher outputs are not the float32 ones: their own key (float32 keys unchanged).
  const baseKey = topk ? { capture, topk, tau: c.tau } : capture;
  const cacheKey = teacherPrec === 'fp32' ? baseKey : { capture: baseKey, compute: teacherPrec };
  const cache = c.cacheTeacher ? new TeacherCache(c.cacheTeacher, teacherKey(c.teacher, cacheKey), { topk, tau: c.tau }) : null;
  const teacherOut = (b: QatBatch): DistillOutputs => {
    const compute = (): DistillOutputs => noGrad(() => withCompute(teacherPrec, () => forward(teacher, b, capture)));
    return cache ? cache.fetch(batchKey([b.ids.i32, b.mask?.i32 ?? null, b.typeIds?.i32 ?? null]), compute) : compute();
  };

  const evaluating = run.evaluate !== false && lead;
  const full = evaluating && run.evaluate !== 'periodic'; // baselines and the final evaluation
  const evaluate: QatEvaluator = evaluating ? qatEvaluator(student, teacher, data, tok, c.batch) : () => ({});
  const metric = data.kind === 'decoder' ? 'valid_ppl' : 'dev_accuracy';
  say(`${arch} teacher ${c.teacher}: ${countParams(teacher.params).toLocaleString('en-US')} parameters; ` +
    `${prepared.quantized.size} quantized weights (${c.quant}); frozen: ${frozen.params.length ? frozen.params.length + ' parameters' : 'none'}; ` +
    `loss ${Object.entries(weights).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (data.kind === 'decoder' && !data.valid) say(`validation skipped: ${data.validNote}`);
  // Baselines, on the whole evaluation set: the teacher, and the student before training (RTN).
  let base = ckpt?.state.extra.baselines as { teacher: Record<string, number>; rtn: Record<string, number> } | undefined;
  if (!base && !full) base = { teacher: {}, rtn: {} };
  if (!base) {
    say('evaluating the teacher and the round-to-nearest student');
    const teacherMetrics: Record<string, number> = {};
    const rtn = evaluate(weight, Infinity, { onBatch: progress('teacher and the round-to-nearest student'), teacherMetrics });
    base = { teacher: teacherMetrics, rtn };
    say(`teacher ${fmt(base.teacher)}; RTN ${fmt(base.rtn)}`);
  }

  const optimizer = new AdamW(params, {
    lr: c.lr, weightDecay: c.weightDecay, noDecay: (n) => prepared.quantParams.has(n) || (params.get(n)?.ndim ?? 2) < 2,
  });
  const schedule = { lr: c.lr, totalSteps: c.steps, warmupSteps: c.warmup, decay: 'cosine' as const, minRatio: 0.1 };
  // Loss terms summed since the last log line (saved in checkpoints, so a resumed log is equal).
  let pending = (ckpt?.state.extra.pendingTerms as { steps: number; sums: Record<string, number> }) ?? { steps: 0, sums: {} };
  let lastTerms: Record<string, number> = {};
  let signalStep = -1;
  // --keep-best: the best periodic evaluation so far (in checkpoints, so a resumed run compares
  // against it; the student it names is already on disk in OUT/best-student).
  let best = (ckpt?.state.extra.best as QatBest | null | undefined) ?? null;
  const improves = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) &&
    (best === null || (metric === 'valid_ppl' ? v < best.metrics[metric] : v > best.metrics[metric]));

  // The codes the next cross_rate compares with, as checkpointed (exact at any resume point).
  const cross = new Map([...(ckpt?.tensors ?? [])].filter(([k]) => k.startsWith(CROSS_PREFIX)).map(([k, v]) => [k.slice(CROSS_PREFIX.length), v]));
  monitor.restoreCrossState(cross);
  const restoredCross = cross.size > 0;

  // Data parallel: each rank's loss terms of a step, weighted by its share, summed over the ranks
  // after the backward passes (afterBackward) so rank 0 logs the global means; [sums…, counts…].
  const stepTerms = new Float64Array(2 * LOSS_NAMES.length);
  const result = trainLoop<QatBatch | ShareBatch>({
    params, optimizer, totalSteps: c.steps, accumulate: c.accumulate, clipNorm: c.clip, seed: c.seed,
    lr: (s) => learningRate(schedule, s),
    epochBatches: (epoch) => dist.size === 1 ? epochBatches(data, c.batch, c.seed, epoch) : rankBatches(epochBatches(data, c.batch, c.seed, epoch), dist),
    tokens: (b) => b.tokens,
    distributed: { dist, share: (b) => (b as ShareBatch).share },
    loss: (b) => {
      const t = teacherOut(b);
      const s = withRecompute(c.recompute ?? false, () => withCompute(studentPrec, () => forward(student, b, capture, studentWeight)));
      const r = distillLoss(s, t, weights, { arch, tau: c.tau, mask: b.mask, labels: b.labels });
      lastTerms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, (v as Tensor).item()]));
      if (dist.size === 1) {
        for (const [k, v] of Object.entries(lastTerms)) pending.sums[k] = (pending.sums[k] ?? 0) + v / c.accumulate;
      } else {
        const share = (b as ShareBatch).share;
        for (const [k, v] of Object.entries(lastTerms)) {
          const i = LOSS_NAMES.indexOf(k as (typeof LOSS_NAMES)[number]);
          stepTerms[i] += v * share / c.accumulate;
          stepTerms[LOSS_NAMES.length + i] = 1;
        }
      }
      return r.total;
    },
    checkLoss: (loss) => {
      const bad = Object.entries(lastTerms).filter(([, v]) => !Number.isFinite(v));
      if (bad.length === 0) return null;
      const ok = Object.entries(lastTerms).filter(([, v]) => Number.isFinite(v));
      return `the loss term${bad.length > 1 ? 's' : ''} ${bad.map(([k, v]) => `'${k}' ${v}`).join(', ')} ` +
        `(total ${loss.item()}${ok.length ? `; finite: ${ok.map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(', ')}` : ''})`;
    },
    hooks: {
      beforeStep: (step) => {
        pending.steps++;
        // A checkpoint of an older kdqat has no codes for the first cross_rate after it: resumed
        // at a logged step, recompute them from the restored weights; otherwise that rate is null.
        if (ckpt && !restoredCross && step === ckpt.state.step && step > 0 && isLoggedStep(step - 1, c.steps, c.logEvery)) {
          noGrad(() => monitor.afterUpdate(weight));
          monitor.take();
        }
        monitor.active = isLoggedStep(step, c.steps, c.logEvery);
        if (monitor.active) signalStep = step + 1;
      },
      afterBackward: () => {
        if (dist.size > 1) {
          dist.allReduceSum(stepTerms);
          LOSS_NAMES.forEach((k, i) => {
            if (stepTerms[LOSS_NAMES.length + i] > 0) pending.sums[k] = (pending.sums[k] ?? 0) + stepTerms[i];
          });
          stepTerms.fill(0);
          if (monitor.active) monitor.poolInputs((x) => dist.allReduceSum(x));
        }
        if (monitor.active) monitor.afterBackward();
      },
      beforeUpdate: () => { if (monitor.active) monitor.beforeUpdate(); },
      afterUpdate: () => {
        if (!monitor.active) return;
        noGrad(() => monitor.afterUpdate(weight));
        monitor.active = false;
      },
    },
    logFile: 'qat_log.jsonl',
    logRecord: (rec, step) => {
      const { loss, lr, ...rest } = rec;
      // Each term averaged over the steps since the last line, as the loop averages the total.
      const terms = Object.fromEntries(Object.entries(pending.sums).map(([k, v]) => [k, v / pending.steps]));
      pending = { steps: 0, sums: {} };
      const line: Record<string, unknown> = { step, lr, loss: { total: loss, ...terms }, ...rest };
      if (signalStep === step) line.signal = monitor.take();
      return line;
    },
    evaluate: evaluating ? () => evaluate(weight, c.evalWindows) : undefined,
    onEval: (step, m) => {
      if (!c.keepBest || !improves(m[metric])) return;
      writeStudent(out, student, prepared, c.teacher, teacherDir, BEST_STUDENT_DIR);
      best = { step, metrics: m };
      say(`best ${metric} so far, ${m[metric].toFixed(4)} at step ${step}: kept in ${path.join(out, BEST_STUDENT_DIR)}`);
    },
    evalEvery: c.evalEvery, logEvery: c.logEvery, outDir: lead ? out : undefined, saveEvery: c.saveEvery,
    config: c as unknown as Record<string, unknown>,
    extraState: () => ({ baselines: base, pendingTerms: pending, best, ...(dist.size > 1 ? { ranks: dist.size } : {}) }),
    extraTensors: () => new Map([...monitor.crossState()].map(([k, v]) => [CROSS_PREFIX + k, v])),
    clockStart: t0, resume: ckpt, reporter: run.reporter,
  });

  const final = full ? evaluate(weight, Infinity, { onBatch: progress('KD-QAT student') }) : {};
  if (full) say(`final: ${fmt(final)} (teacher ${fmt(base.teacher)}; RTN ${fmt(base.rtn)})`);
  if (lead) writeStudent(out, student, prepared, c.teacher, teacherDir);
  const recovered = metric === 'valid_ppl' && base.rtn.valid_ppl !== undefined && final.valid_ppl !== undefined
    ? (base.rtn.valid_ppl - final.valid_ppl) / (base.rtn.valid_ppl - base.teacher.valid_ppl) : null;
  const perStep = (s: number): number => Math.round(1e6 * s / Math.max(1, result.step - result.startStep)) / 1e3;
  const summary: QatSummary = {
    arch, steps: result.step, metric, teacher: base.teacher, rtn: base.rtn, final, best, recovered,
    frozen: [...frozen.params, ...frozen.quantParams], ...(c.freezeAuto && lead ? { freeze_auto: probe ?? readFreezeAuto(out) } : {}), trainable_parameters: [...trainable].reduce((n, k) => n + params.get(k)!.size, 0),
    quantized_weights: prepared.quantized.size,
    teacher_cache: cache ? { dir: cache.dir, hits: cache.hits, misses: cache.misses, topk } : null,
    tokens_seen: result.tokensSeen,
    wall_time_s: Math.round(((ckpt?.state.elapsedSeconds ?? 0) + (performance.now() - t0) / 1000) * 10) / 10,
    train_tokens_per_s: Math.round(result.tokensSeen / Math.max(result.trainSeconds, 1e-9)),
    ...(dist.size > 1 ? { distributed: { engine: dist.engine, ranks: dist.size, allreduce_ms_per_step: perStep(result.commSeconds), wait_ms_per_step: perStep(result.waitSeconds) } } : {}),
    config: c, command: run.commandLine ?? [],
  };
  crashPoint('summary');
  if (lead) writeJsonAtomic(path.join(out, 'summary.json'), summary);
  return summary;
}

/** This rank's rows of every global batch (src/train/distributed.ts rankRows). */
function* rankBatches(batches: Iterable<QatBatch>, dist: Distributed): Generator<ShareBatch> {
  for (const b of batches) {
    const { lo, hi } = rankRows(b.ids.shape[0], dist.rank, dist.size);
    yield sliceRows(b, lo, hi);
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
