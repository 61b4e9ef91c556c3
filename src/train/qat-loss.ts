// The KD-QAT loss (src/train/qat.ts): the distillation loss of a batch between the student's and
// the teacher's outputs (src/distill/losses.ts), and its bookkeeping across steps: the loss terms
// averaged per qat_log.jsonl line (summed over the ranks of a distributed run), the check that
// names a non-finite term, and the signal-propagation monitor's hooks on the logged steps. The
// per-line sums and the monitor's crossing codes are checkpointed, so a resumed log is equal.
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { withCompute, withInt8Grad, type ComputePrecision, type HeadPrecision } from '../tensor/compute.js';
import { recomputeModeOf, withRecompute } from '../tensor/recompute.js';
import type { WeightFn } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import type { ArchName } from '../models/registry.js';
import { LOSS_NAMES, distillLoss, type captureFor, type DistillOutputs, type LossName, type LossWeights } from '../distill/losses.js';
import type { SignalMonitor } from '../analysis/signal.js';
import { isLoggedStep } from './loop.js';
import type { Session, TrainSpec } from './session.js';
import type { QatBatch, RankBatch, ShareBatch } from './qat-data.js';
import type { QatConfig } from './qat-config.js';

/** The record's forward pass (decoder: LM logits; encoder: classifier logits) with its taps. */
export function forward(model: Model, b: QatBatch, capture: ReturnType<typeof captureFor>, weight?: WeightFn): DistillOutputs {
  return archOf(model).forward(model, { ids: b.ids, mask: b.mask, tokenTypeIds: b.typeIds }, { weight, capture });
}

/** What the loss needs of the student, the teacher and the monitor. */
export interface DistillationInputs {
  student: Model;
  arch: ArchName;
  weights: LossWeights;
  monitor: SignalMonitor;
  /** The student's fake-quantized weights, and the same instrumented by the monitor. */
  weight: WeightFn;
  studentWeight: WeightFn;
  capture: ReturnType<typeof captureFor>;
  teacherOut: (b: QatBatch) => DistillOutputs;
  studentPrec: ComputePrecision;
  /** The student's LM head (--bf16 layers: float32 logits, bf16 backward, under a bf16 body). */
  studentHeadPrec: HeadPrecision;
}

/** Checkpointed tensors: the codes the next cross_rate compares with (SignalMonitor.crossState). */
export const CROSS_PREFIX = 'signal.cross:';

/**
 * The distillation loss of a batch (student vs teacher outputs, --loss weights), with its
 * bookkeeping: the loss terms averaged per log line (qat_log.jsonl "loss"), a check that names a
 * non-finite term, and the signal statistics of the logged steps (the monitor's hooks).
 */
export function distillation(c: QatConfig, session: Session<QatConfig>, o: DistillationInputs):
  Pick<TrainSpec<QatBatch | ShareBatch>, 'loss' | 'checkLoss' | 'hooks' | 'logRecord'> & { pending: () => PendingTerms } {
  const { ckpt, dist } = session;
  const { monitor, weight } = o;
  // Loss terms summed since the last log line (saved in checkpoints, so a resumed log is equal).
  let pending = session.saved<PendingTerms>('pendingTerms') ?? { steps: 0, sums: {} };
  let lastTerms: Record<string, number> = {};
  let signalStep = -1;
  // The codes the next cross_rate compares with, as checkpointed (exact at any resume point).
  const cross = new Map([...(ckpt?.tensors ?? [])].filter(([k]) => k.startsWith(CROSS_PREFIX)).map(([k, v]) => [k.slice(CROSS_PREFIX.length), v]));
  monitor.restoreCrossState(cross);
  const restoredCross = cross.size > 0;
  // Data parallel: each rank's loss terms of a step, weighted by its share, summed over the ranks
  // after the backward passes (afterBackward) so rank 0 logs the global means; [sums…, counts…].
  const stepTerms = new Float64Array(2 * LOSS_NAMES.length);
  return {
    pending: () => pending,
    loss: (b) => {
      const tOut = o.teacherOut(b);
      const s = withInt8Grad(c.int8Grad === true, () => withRecompute(recomputeModeOf(c.recompute),
        () => withCompute(o.studentPrec, () => forward(o.student, b, o.capture, o.studentWeight), { head: o.studentHeadPrec })));
      const r = distillLoss(s, tOut, o.weights, { arch: o.arch, tau: c.tau, mask: b.mask, labels: b.labels, termScale: (b as RankBatch).termScale });
      lastTerms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, (v as Tensor).item()]));
      if (dist.size === 1) {
        for (const [k, v] of Object.entries(lastTerms)) pending.sums[k] = (pending.sums[k] ?? 0) + v / c.accumulate;
      } else {
        const share = (b as ShareBatch).share, termScale = (b as RankBatch).termScale;
        for (const [k, v] of Object.entries(lastTerms)) {
          const i = LOSS_NAMES.indexOf(k as (typeof LOSS_NAMES)[number]);
          stepTerms[i] += v * share * (termScale?.[k as LossName] ?? 1) / c.accumulate;
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
    logRecord: (rec, step) => {
      const { loss, lr, ...rest } = rec;
      // Each term averaged over the steps since the last line, as the loop averages the total.
      const terms = Object.fromEntries(Object.entries(pending.sums).map(([k, v]) => [k, v / pending.steps]));
      pending = { steps: 0, sums: {} };
      const line: Record<string, unknown> = { step, lr, loss: { total: loss, ...terms }, ...rest };
      if (signalStep === step) line.signal = monitor.take();
      return line;
    },
  };
}

export interface PendingTerms { steps: number; sums: Record<string, number> }

