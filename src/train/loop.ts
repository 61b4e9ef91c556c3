// The training loop shared by every command: the caller supplies the batches of an epoch and a
// loss function; the loop does backward, gradient accumulation, clipping, the optimizer update
// with the scheduled learning rate, logging, periodic evaluation and checkpoints.
//
// Reproducibility is the design constraint: a run stopped at a checkpoint and resumed gives the
// same losses and the same final parameters, bit for bit, as an uninterrupted run (with the same
// thread count). So everything random is a function of the run seed and a position: the batch
// order of epoch e comes from (seed, e), the micro-batch position (epoch, batch index) is saved,
// and per-step randomness (dropout, MLM masks) gets a seed derived from (seed, step, micro).
import type { Tensor } from '../tensor/tensor.js';
import { backward } from '../tensor/autograd.js';
import { scale } from '../tensor/ops/index.js';
import { hash32 } from '../tensor/rng.js';
import type { Params } from '../nn/params.js';
import { clipGradNorm, type Optimizer } from './optim.js';
import { withStoragePolicy, type StoragePolicy } from '../tensor/storage.js';
import {
  saveCheckpoint, restoreCheckpoint, CHECKPOINT_DIR, type Checkpoint, type CheckpointState, type PendingLog, type SaveHook,
} from './checkpoint.js';
import { TrainLog } from './train-log.js';
import { checkSameParams, gradientReducer, type Distributed } from './distributed.js';
import * as path from 'node:path';

export interface StepContext {
  /** 0-based index of the optimizer update being computed. */
  step: number;
  /** Micro-batch within the update (0 … accumulate-1). */
  micro: number;
  epoch: number;
  /** Position of this micro-batch in its epoch. */
  batchIndex: number;
  /** Seed for this micro-batch's randomness (dropout), from (run seed, step, micro). */
  seed: number;
}

/** What the loop tells the user as it goes (the CLI's progress bar or log lines). */
export interface Reporter {
  begin(totalSteps: number, startStep: number): void;
  step(info: { step: number; totalSteps: number; loss: number; lr: number; tokens: number; seconds: number }): void;
  eval(step: number, metrics: Record<string, number>): void;
  message(text: string): void;
  end(): void;
}

export interface LoopOptions<B> {
  params: Params;
  optimizer: Optimizer;
  /** Learning rate of the 0-based update `step`. */
  lr: (step: number) => number;
  totalSteps: number;
  /** Micro-batches per update; the loss of each is scaled by 1/accumulate (default 1). */
  accumulate?: number;
  /** Clip the global gradient norm to this (0 or absent: no clipping). */
  clipNorm?: number;
  /** Where storage given back goes during the run, the gradients after each update included
   *  (storage.ts StoragePolicy; default 'pool'; 'heap' for a forward that is recomputed:
   *  recompute.ts storagePolicyFor). */
  storage?: StoragePolicy;
  seed: number;
  /** The batches of one epoch, in an order that depends only on (seed, epoch). */
  epochBatches: (epoch: number) => Iterable<B>;
  /** Tokens in a batch, for tokens/s. */
  tokens?: (batch: B) => number;
  loss: (batch: B, ctx: StepContext) => Tensor;
  /** Evaluation (no gradients), every evalEvery updates and after the last one. */
  evaluate?: (step: number) => Record<string, number>;
  evalEvery?: number;
  /** Called after each evaluation, e.g. to keep the best model. */
  onEval?: (step: number, metrics: Record<string, number>) => void;
  logEvery?: number;
  /** Directory for train_log.jsonl and checkpoint/ (nothing is written without it). */
  outDir?: string;
  saveEvery?: number;
  /** Recorded in every checkpoint (the resolved command options). */
  config?: Record<string, unknown>;
  /** Command-specific state stored in each checkpoint. */
  extraState?: () => Record<string, unknown>;
  /** Command-specific tensors stored in each checkpoint (Checkpoint.tensors on resume). */
  extraTensors?: () => ReadonlyMap<string, Float32Array>;
  /** performance.now() when the command started, so the elapsed time (summed over resumed
   *  segments) counts its setup and baseline evaluations too; default: when the loop starts. */
  clockStart?: number;
  resume?: Checkpoint;
  reporter?: Reporter;
  saveHook?: SaveHook;
  /** Log file name inside outDir (default train_log.jsonl). */
  logFile?: string;
  /** Reshapes each log record (e.g. to add loss terms and statistics) before it is written. */
  logRecord?: (record: Record<string, unknown>, step: number) => Record<string, unknown>;
  /** Hooks around the update of 0-based step `step` (the analysis of signal propagation uses
   *  them): before its first forward pass, after the last backward (gradients complete, not yet
   *  clipped), just before and just after the optimizer update. */
  hooks?: StepHooks;
  /** After each micro-batch loss: a description of what went wrong (e.g. which loss term is
   *  NaN) to stop with, or null. The loop itself still stops on a non-finite total. */
  checkLoss?: (loss: Tensor, ctx: StepContext) => string | null;
  /** Data-parallel training (src/train/distributed.ts): the batches are this rank's slices of
   *  the global batches and share(batch, ctx) is the slice's fraction of the global batch's loss
   *  (its rows, or its masked tokens for masked-LM; 0: nothing to compute here). Each loss is scaled by its share before backward; the gradients,
   *  the loss and the token count are summed over the ranks before clipping (the hooks'
   *  afterBackward sees the sums), and the ranks' parameters are compared every checkEvery
   *  updates (default 10) and after the last. */
  distributed?: { dist: Distributed; share: (batch: B, ctx: StepContext) => number; checkEvery?: number };
}

export interface StepHooks {
  beforeStep?: (step: number) => void;
  afterBackward?: (step: number) => void;
  beforeUpdate?: (step: number) => void;
  afterUpdate?: (step: number) => void;
}

/** Is update `step` (0-based) one whose line goes to the log? (Evaluation steps add lines too.) */
export function isLoggedStep(step: number, totalSteps: number, logEvery: number): boolean {
  return step + 1 === totalSteps || (step + 1) % logEvery === 0;
}

export interface LoopResult {
  step: number;
  /** Loss of every update of this segment, in order (update startStep+1 first). */
  losses: number[];
  startStep: number;
  lastEval: Record<string, number> | null;
  elapsedSeconds: number;
  /** Of which in training steps (no evaluation or checkpointing). */
  trainSeconds: number;
  tokensSeen: number;
  /** Data parallel: seconds of this segment spent in the steps' all-reduces (gradients, loss),
   *  and before them waiting for the slowest rank to finish its backward (a barrier, so the
   *  two are told apart); 0 otherwise. */
  commSeconds: number;
  waitSeconds: number;
}

/** Seed of the micro-batch (step, micro): used for dropout masks. */
export function stepSeed(seed: number, step: number, micro: number, accumulate: number): number {
  return hash32(hash32(seed, 0x64726f70), step * accumulate + micro);
}

export class TrainingError extends Error {}

export function trainLoop<B>(o: LoopOptions<B>): LoopResult {
  return withStoragePolicy(o.storage ?? 'pool', () => loopUnder(o));
}

function loopUnder<B>(o: LoopOptions<B>): LoopResult {
  const accumulate = o.accumulate ?? 1;
  const logEvery = o.logEvery ?? 1;
  if (!Number.isInteger(accumulate) || accumulate < 1) throw new RangeError(`accumulate must be a positive integer, got ${accumulate}`);
  const log = o.outDir ? new TrainLog(path.join(o.outDir, o.logFile ?? 'train_log.jsonl')) : null;

  let step = 0, epoch = 0, batchIndex = 0, elapsedBefore = 0, trainSeconds = 0, tokensSeen = 0, commSeconds = 0, waitSeconds = 0;
  let pending: PendingLog = { lossSum: 0, steps: 0 };
  let lastSaved: { dir: string; step: number } | null = null;
  if (o.resume) {
    const s = o.resume.state;
    restoreCheckpoint(o.resume, o.params, o.optimizer);
    ({ step, epoch, batchIndex } = s);
    pending = { ...s.pending };
    elapsedBefore = s.elapsedSeconds;
    trainSeconds = s.trainSeconds;
    tokensSeen = s.tokensSeen;
    lastSaved = { dir: o.resume.dir, step };
    log?.truncate(s.logPosition);
  } else log?.reset();
  const startStep = step;

  // The data iterator, positioned at (epoch, batchIndex): batches before it are skipped.
  let it: Iterator<B> = o.epochBatches(epoch)[Symbol.iterator]();
  for (let i = 0; i < batchIndex; i++) {
    if (it.next().done) throw new Error(`checkpoint position (epoch ${epoch}, batch ${batchIndex}) is past the end of the epoch; the data changed since the checkpoint`);
  }
  const nextBatch = (): B => {
    let r = it.next();
    if (r.done) {
      if (batchIndex === 0) throw new TrainingError('the training data yields no batch; use a smaller --batch or --seq-len, or more text');
      epoch++;
      batchIndex = 0;
      it = o.epochBatches(epoch)[Symbol.iterator]();
      r = it.next();
      if (r.done) throw new TrainingError(`epoch ${epoch} yields no batch; the batches must not depend on anything but (seed, epoch)`);
    }
    return r.value;
  };

  const t0 = o.clockStart ?? performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;
  let intervalTokens = 0, intervalSeconds = 0;
  let lastEval: Record<string, number> | null = null;
  const losses: number[] = [];
  const stop = (what: string): never => {
    const where = lastSaved
      ? `the last good checkpoint is ${lastSaved.dir} (step ${lastSaved.step}); continue from it with --resume, perhaps with a lower --lr or longer --warmup`
      : 'no checkpoint was saved yet (see --save-every)';
    throw new TrainingError(`training stopped at step ${step + 1}: ${what}; nothing was written for this step — ${where}`);
  };

  const dp = o.distributed && o.distributed.dist.size > 1 ? o.distributed : null;
  const reduceGradients = dp ? gradientReducer(dp.dist, o.params) : null;
  // If another rank dies, mpirun ends this one (SIGTERM) while it waits in a collective: say
  // where the run can continue from. Rank 0 writes the checkpoints and knows which is on disk.
  const lastWords = (): void => {
    if (!dp) return;
    const { rank, size } = dp.dist;
    const where = !o.outDir ? 'rank 0 writes the checkpoints (see its message)'
      : lastSaved ? `the last good checkpoint is ${lastSaved.dir} (step ${lastSaved.step}); continue from it with the same mpirun -np ${size} command and --resume`
        : 'no checkpoint was saved yet (see --save-every)';
    dp.dist.lastWords(`kdqat: rank ${rank} of ${size}: ended by mpirun during step ${step + 1} (another rank failed or the job was stopped: see mpirun's message); ${where}\n`);
  };
  lastWords();

  o.reporter?.begin(o.totalSteps, startStep);
  try {
    while (step < o.totalSteps) {
      const tStep = performance.now();
      const lr = o.lr(step);
      let lossSum = 0, stepTokens = 0;
      o.hooks?.beforeStep?.(step);
      for (let micro = 0; micro < accumulate; micro++) {
        const batch = nextBatch();
        const ctx: StepContext = { step, micro, epoch, batchIndex, seed: stepSeed(o.seed, step, micro, accumulate) };
        batchIndex++;
        const share = dp ? dp.share(batch, ctx) : 1;
        if (share === 0) continue;
        const loss = o.loss(batch, ctx);
        const v = loss.item();
        const bad = o.checkLoss?.(loss, ctx);
        if (bad) stop(bad);
        if (!Number.isFinite(v)) stop(`the loss is ${v}`);
        lossSum += dp ? v * share : v;
        stepTokens += o.tokens?.(batch) ?? 0;
        // One process: 1/accumulate; a rank: its share of the batch too (distributed.ts).
        const k = share / accumulate;
        // The loss was read above; nothing else of the graph is: its storage goes back as backward
        // passes it (storage.ts).
        backward(k === 1 ? loss : scale(loss, k), null, { release: true });
      }
      if (dp) {
        const tWait = performance.now();
        dp.dist.barrier();
        const tComm = performance.now();
        waitSeconds += (tComm - tWait) / 1000;
        reduceGradients!();
        const sums = Float64Array.of(lossSum, stepTokens);
        dp.dist.allReduceSum(sums);
        [lossSum, stepTokens] = sums;
        commSeconds += (performance.now() - tComm) / 1000;
      }
      o.hooks?.afterBackward?.(step);
      // The norm is needed anyway to catch overflow before it reaches the weights.
      const norm = clipGradNorm(o.params, o.clipNorm ?? Infinity);
      if (!Number.isFinite(norm)) stop(`the gradient norm is ${norm}`);
      o.hooks?.beforeUpdate?.(step);
      o.optimizer.step(lr);
      o.hooks?.afterUpdate?.(step);
      o.optimizer.zeroGrad(true);
      step++;
      if (dp && (step % (dp.checkEvery ?? 10) === 0 || step === o.totalSteps)) {
        try {
          checkSameParams(dp.dist, o.params, step);
        } catch (e) {
          throw new TrainingError((e as Error).message);
        }
      }
      const stepLoss = lossSum / accumulate;
      losses.push(stepLoss);
      tokensSeen += stepTokens;
      const seconds = (performance.now() - tStep) / 1000;
      intervalTokens += stepTokens;
      intervalSeconds += seconds;
      trainSeconds += seconds;
      pending.lossSum += stepLoss;
      pending.steps++;
      o.reporter?.step({ step, totalSteps: o.totalSteps, loss: stepLoss, lr, tokens: stepTokens, seconds });

      const last = step === o.totalSteps;
      let metrics: Record<string, number> | null = null;
      if (o.evaluate && (last || (o.evalEvery && step % o.evalEvery === 0))) {
        metrics = o.evaluate(step);
        lastEval = metrics;
        o.reporter?.eval(step, metrics);
        o.onEval?.(step, metrics);
      }
      if (last || step % logEvery === 0 || metrics) {
        const record = {
          step, loss: pending.lossSum / pending.steps, lr,
          tokens_per_s: intervalSeconds > 0 ? Math.round(intervalTokens / intervalSeconds) : 0,
          grad_norm: norm, ...(metrics ?? {}),
        };
        // Called with or without a log file, so callers' per-interval bookkeeping stays in step.
        const line = o.logRecord ? o.logRecord(record, step) : record;
        log?.append(line);
        pending = { lossSum: 0, steps: 0 };
        intervalTokens = 0;
        intervalSeconds = 0;
      }
      if (o.outDir && o.saveEvery && (step % o.saveEvery === 0 || last)) {
        const state: CheckpointState = {
          step, totalSteps: o.totalSteps, epoch, batchIndex,
          seeds: { run: o.seed, data: o.seed, dropout: hash32(o.seed, 0x64726f70) },
          config: o.config ?? {}, logPosition: log ? log.syncedSize() : 0, pending: { ...pending },
          tokensSeen, elapsedSeconds: elapsed(), trainSeconds, extra: o.extraState?.() ?? {},
        };
        saveCheckpoint(o.outDir, o.params, o.optimizer, state, o.saveHook, o.extraTensors?.());
        lastSaved = { dir: path.join(o.outDir, CHECKPOINT_DIR), step };
      }
      lastWords(); // (a few hundred bytes copied: cheap enough every step)
    }
    if (o.evaluate && lastEval === null) {
      // Resumed at the end (nothing left to train): still report the final metrics.
      lastEval = o.evaluate(step);
      o.reporter?.eval(step, lastEval);
    }
  } finally {
    o.reporter?.end();
  }
  return { step, losses, startStep, lastEval, elapsedSeconds: elapsed(), trainSeconds, tokensSeen, commSeconds, waitSeconds };
}
