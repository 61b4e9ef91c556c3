// Settings of a KD-QAT run (`kdqat qat`), their defaults and checks, and the --loss syntax.
import { UsageError, flagName as flag } from './usage.js';
import type { ComputePrecision, HeadPrecision } from '../tensor/compute.js';
import { RECOMPUTE_MODES } from '../tensor/recompute.js';
import { PROBE_STEPS, parseFreezeAuto } from './freeze-auto.js';
import { kernelSource } from '../tensor/registry.js';
import { nativeIsaInfo } from '../backend/index.js';
import { int8GradGrid } from '../quant/ops.js';
import type { Prepared } from '../quant/prepare.js';

export interface QatConfig {
  /** Teacher model directory (absolute). */
  teacher: string;
  /** Decoder: corpus name or text file/directory. */
  data: string;
  /** Encoder: built-in classification task or a JSONL/TSV training file; dev: its dev file. */
  task: string;
  dev: string;
  /** Encoder: the task files' own names for the text ("A" or "A,B") and the label ('' = recognized ones). */
  textField: string;
  labelField: string;
  /** Quantization preset name or JSON file (src/quant/config.ts). */
  quant: string;
  /** Loss weights, 'pred=1,rep=1,attn_map=1'. */
  loss: string;
  tau: number;
  /** '', a preset (ov), comma-separated name patterns, or `auto` / `auto:R` (a probe chooses:
   *  src/train/freeze-auto.ts). */
  freeze: string;
  /** --freeze auto: the probe's KD-QAT steps. */
  freezeProbeSteps: number;
  /** Written by the run, not given: the `auto…` spec whose probe chose `freeze` (then the
   *  resolved patterns, so a --resume does not probe again); '' otherwise. */
  freezeAuto: string;
  /** Start the student from this model directory instead of the teacher's weights. */
  studentInit: string;
  steps: number;
  lr: number;
  warmup: number;
  batch: number;
  /** Tokens per window (decoder) / maximum length (encoder); 0: min(128, max positions). */
  seqLen: number;
  accumulate: number;
  clip: number;
  weightDecay: number;
  evalEvery: number;
  /** Also keep the student of the best periodic evaluation (lowest valid_ppl / highest
   *  dev_accuracy) in OUT/best-student; needs evalEvery > 0. */
  keepBest: boolean;
  /** Validation windows of a periodic evaluation (the baselines and the final one use all). */
  evalWindows: number;
  logEvery: number;
  saveEvery: number;
  seed: number;
  /** Directory of the on-disk teacher-output cache ('' = off). */
  cacheTeacher: string;
  /** Keep only the top K teacher logits per token in the cache (0 = all; decoders; the `pred`
   *  loss then uses the top-K approximation of docs/distillation.md). */
  cacheTeacherTopk: number;
  /** GEMMs in bf16 with float32 accumulation (AVX512_BF16; src/tensor/compute.ts): 'off',
   *  'teacher' (the teacher's forward), 'layers' (also the student's forward and backward but
   *  for a decoder's LM head, which stays float32) or 'all' (every GEMM);
   *  'auto' (the default) is 'layers' where the CPU runs bf16 GEMMs faster than float32 ones
   *  (AMX; AVX512_BF16 but on Intel, where it measured slower) and 'off' elsewhere, and
   *  the run's config holds what it resolved to (so --resume keeps the precision or refuses).
   *  Evaluations stay float32. */
  bf16: string;
  /** Recompute the student's layers in backward (src/tensor/recompute.ts): 'off'; 'all' (the
   *  forward keeps only the layer inputs; one more student forward per step); 'selective' (it
   *  also keeps the GEMM outputs, and backward runs the rest again). true and false, in the
   *  configs of runs from before 'selective', are 'all' and 'off'. */
  recompute: string | boolean;
  /** The student's input gradients dX = dY·Ŵ as int8 GEMMs, dY rounded to 8 bits per row
   *  (Kernels.matmulQ8Grad; compute.ts withInt8Grad): from the codes of weights on TWN or sym
   *  ≤ 7-bit grids per tensor or channel, from ŵ rounded to a 7-bit grid per row for every other
   *  quantizer (ops.ts int8GradGrid). true is refused where nothing is quantized or the CPU has no
   *  SIMD path for it; 'auto' (the default) is true where neither holds and the student's GEMMs
   *  are float32 (resolveInt8GradAuto), false elsewhere, and the run's config holds what it
   *  resolved to.
   *  Absent in the configs of runs from before the option: false. */
  int8Grad: boolean | 'auto';
}

export const BF16_MODES = ['auto', 'off', 'teacher', 'layers', 'all'] as const;

/** --bf16 auto on this CPU: 'layers' where bf16 GEMMs run and are the faster (validation KL and
 *  perplexity or dev accuracy within the seed spread of float32 on two decoders and an encoder,
 *  3 seeds each: docs/performance.md; 'all' was not, its bf16 LM head is the difference), 'off'
 *  elsewhere; bf16Why: why not (bf16Unavailable() ?? bf16Slower()), null when they do. */
export function resolveBf16Auto(bf16Why: string | null): 'layers' | 'off' {
  return bf16Why === null ? 'layers' : 'off';
}

/** The GEMM precisions of a resolved --bf16 mode (not 'auto'): the teacher's forward, the
 *  student's forward and backward, and the student's LM head. */
export function bf16Precisions(mode: string): { teacher: ComputePrecision; student: ComputePrecision; studentHead: HeadPrecision } {
  const student = mode === 'layers' || mode === 'all' ? 'bf16' : 'fp32';
  return {
    teacher: mode === 'off' ? 'fp32' : 'bf16',
    student,
    // `layers`: the student's logits in float32, their backward (∂x, ∂W of the head) in bf16.
    studentHead: { forward: mode === 'all' ? 'bf16' : 'fp32', backward: student },
  };
}

export const QAT_DEFAULTS: QatConfig = {
  teacher: '', data: '', task: '', dev: '', textField: '', labelField: '', quant: 'w4-channel', loss: 'pred=1', tau: 1, freeze: '', freezeProbeSteps: PROBE_STEPS, freezeAuto: '', studentInit: '',
  steps: 200, lr: 1e-4, warmup: 10, batch: 8, seqLen: 0, accumulate: 1, clip: 1, weightDecay: 0,
  evalEvery: 50, keepBest: false, evalWindows: 32, logEvery: 10, saveEvery: 50, seed: 0, cacheTeacher: '',
  cacheTeacherTopk: 0,
  bf16: 'auto',
  recompute: 'off',
  int8Grad: 'auto',
};


export function checkQatConfig(c: QatConfig): void {
  if (!c.teacher) throw new UsageError('--teacher DIR is required: the full-precision model to distill from');
  for (const k of ['steps', 'batch', 'accumulate', 'logEvery'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new UsageError(`${flag(k)} must be a positive integer, got ${c[k]}`);
  }
  if (c.freezeProbeSteps !== undefined && (!Number.isInteger(c.freezeProbeSteps) || c.freezeProbeSteps < 1)) {
    throw new UsageError(`--freeze-probe-steps must be a positive integer, got ${c.freezeProbeSteps}`);
  }
  parseFreezeAuto(c.freeze ?? '');
  for (const k of ['warmup', 'seqLen', 'evalEvery', 'evalWindows', 'saveEvery', 'seed', 'cacheTeacherTopk'] as const) {
    if (k === 'cacheTeacherTopk' && c[k] === undefined) continue; // a checkpoint from before the option
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new UsageError(`${flag(k)} must be a non-negative integer, got ${c[k]}`);
  }
  if (c.cacheTeacherTopk > 0 && !c.cacheTeacher) throw new UsageError(`--cache-teacher-topk ${c.cacheTeacherTopk} needs --cache-teacher DIR: it sets what the teacher cache keeps`);
  if (c.keepBest && c.evalEvery === 0) throw new UsageError('--keep-best needs --eval-every n > 0: the best student is chosen among the periodic evaluations');
  if (!(c.lr > 0)) throw new UsageError(`--lr must be positive, got ${c.lr}`);
  if (!(c.tau > 0)) throw new UsageError(`--tau must be positive, got ${c.tau}`);
  if (!(c.clip >= 0)) throw new UsageError(`--clip must be ≥ 0 (0 = off), got ${c.clip}`);
  if (!(BF16_MODES as readonly string[]).includes(c.bf16 ?? 'off')) {
    throw new UsageError(`--bf16 must be one of ${BF16_MODES.join(', ')}, got ${JSON.stringify(c.bf16)}`);
  }
  if (c.recompute !== undefined && typeof c.recompute !== 'boolean' && !(RECOMPUTE_MODES as readonly unknown[]).includes(c.recompute)) {
    throw new UsageError(`--recompute must be one of ${RECOMPUTE_MODES.join(', ')} (a bare --recompute is all), got ${JSON.stringify(c.recompute)}`);
  }
  if (c.int8Grad !== undefined && typeof c.int8Grad !== 'boolean' && c.int8Grad !== 'auto') {
    throw new UsageError(`--int8-grad must be auto, on or off, got ${JSON.stringify(c.int8Grad)}`);
  }
  if (!(c.weightDecay >= 0)) throw new UsageError(`--weight-decay must be ≥ 0, got ${c.weightDecay}`);
}

/** Why this process cannot run int8 input gradients (no SIMD path for matmulQ8Grad), or null. */
function int8GradUnavailable(): string | null {
  if (kernelSource('matmulQ8Grad') === 'native') return null;
  return 'int8 input gradients need the native addon\'s SIMD path for integer GEMMs (AVX2, or AVX-512 with VNNI), ' +
    `which this run does not have (kernel matmulQ8Grad: ${kernelSource('matmulQ8Grad') ?? 'none'}, gemmQ8 path ${nativeIsaInfo()?.families.gemmQ8?.selected ?? 'not loaded'})`;
}

/** The quantized weights int8 input gradients take by their own codes and those whose ŵ they
 *  round to a 7-bit grid per row first (ops.ts int8GradGrid). */
function int8GradWeights(prepared: Prepared): { codes: number; regrid: number } {
  const n = { codes: 0, regrid: 0 };
  for (const [name, q] of prepared.quantized) {
    const t = prepared.targets.get(name)!;
    n[int8GradGrid(q, t.rows, t.cols)]++;
  }
  return n;
}

/** --int8-grad auto for this run (c.bf16 resolved) of a `kind` model: on where the CPU has the
 *  SIMD path and the student's GEMMs are float32 — validation KL and perplexity or dev accuracy
 *  within the seed spread of float32 input gradients, 3 seeds each (docs/performance.md), on two
 *  decoders and two encoders for weights taken by their codes (w4-channel, ternary), on two
 *  decoders for ŵ rounded to 7 bits per row (w4-g32, q4_k) — except: beside bf16 student GEMMs
 *  (`--bf16 layers`: it raised the KL on every seed of a decoder and an encoder) and in an
 *  encoder with a weight it would round (bert-brown-genre at w4-g32: the final training loss rose
 *  on every seed), off, saying why (`on` still runs either). */
export function resolveInt8GradAuto(c: QatConfig, prepared: Prepared, kind: 'decoder' | 'encoder'): { on: boolean; why: string } {
  const cpu = int8GradUnavailable();
  if (cpu) return { on: false, why: cpu };
  if (bf16Precisions(c.bf16).student !== 'fp32') return { on: false, why: `the student's GEMMs are bf16 (--bf16 ${c.bf16}); beside those, int8 input gradients raised the KL on every seed of a decoder and an encoder (docs/performance.md); --int8-grad on runs them anyway` };
  if (prepared.quantized.size === 0) return { on: false, why: `--quant ${c.quant} quantizes no weight` };
  const n = int8GradWeights(prepared);
  if (kind === 'encoder' && n.regrid > 0) {
    return { on: false, why: `${n.regrid} of the ${prepared.quantized.size} quantized weights of --quant ${c.quant} are on no grid it takes (TWN or sym ≤ 7 bits, per tensor or channel) and would be rounded to 7 bits per row first, ` +
      'which in an encoder raised the final training loss on every seed (docs/performance.md); --int8-grad on runs it anyway' };
  }
  return { on: true, why: `${describeInt8Grad(n, prepared.quantized.size)}, float32 GEMMs, integer GEMMs on this CPU` };
}

/** "N of M quantized weights (K of them rounded to 7 bits per row first)". */
function describeInt8Grad(n: { codes: number; regrid: number }, of: number): string {
  return `${n.codes + n.regrid} of ${of} quantized weights` +
    (n.regrid ? ` (${n.regrid} of them with ŵ rounded to a 7-bit grid per row first: not on a ≤ 7-bit grid per tensor or channel)` : '');
}

/** --int8-grad (true): what it takes, as a phrase for the run's log; refused where the CPU has no
 *  SIMD path for matmulQ8Grad or nothing is quantized, as either would silently run a different
 *  backward than the config says. */
export function checkInt8Grad(c: QatConfig, prepared: Prepared, resumed: boolean, out: string): string {
  const where = resumed ? `--resume: the run in ${out} has int8Grad true in its checkpoint's config, and ` : '--int8-grad: ';
  const cpu = int8GradUnavailable();
  if (cpu) throw new UsageError(`${where}${cpu}; ${resumed ? 'resume on such a CPU, or start a new run (--force)' : 'run with --int8-grad off'}`);
  if (prepared.quantized.size === 0) throw new UsageError(`--int8-grad: --quant ${c.quant} quantizes no weight, so no input gradient is an int8 GEMM; run with --int8-grad off`);
  return describeInt8Grad(int8GradWeights(prepared), prepared.quantized.size);
}
