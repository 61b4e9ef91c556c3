// One training session: what pretrain, finetune and qat share around the step loop (loop.ts).
// A session is opened on the run's output directory (resume: its checkpoint is read and the run's
// saved settings replace the given ones), prepares that directory once the runner has checked its
// inputs, and trains: AdamW and the learning-rate schedule come from one small spec, and the loop
// gets the checkpoint (config, extra state, resume position) and evaluation hooks wired in. The
// runners keep only what is theirs: the model, the data, the loss and the summary.
//
//   const s = openSession(run, run.config, { hint: '…' });     // s.config: given or saved
//   …check inputs…; s.prepareOutDir(inputs);
//   const result = s.train({ params, optimizer: {…}, schedule: {…}, epochBatches, loss, … });
import type { Params } from '../nn/params.js';
import { AdamW } from './optim.js';
import { learningRate, type ScheduleConfig } from './schedule.js';
import { trainLoop, type LoopOptions, type LoopResult, type Reporter } from './loop.js';
import { readCheckpoint, type Checkpoint, type SaveHook } from './checkpoint.js';
import { prepareOutDir, resumeCheckpoint } from './outdir.js';
import type { NamedInput } from '../io/outputs.js';
import { SINGLE, type Distributed } from './distributed.js';
import { UsageError } from './usage.js';

/** What every runner is asked to do (PretrainRun, FinetuneRun, QatRun extend it). */
export interface SessionRun {
  out: string;
  resume?: boolean;
  force?: boolean;
  reporter?: Reporter;
  saveHook?: SaveHook;
  /** Data parallel: this process's rank; rank 0 alone evaluates and writes. Default SINGLE. */
  dist?: Distributed;
}

/** AdamW's settings: weight decay, except on the parameters `noDecay` names. */
export interface OptimizerSpec {
  weightDecay: number;
  noDecay: (name: string) => boolean;
}

/** The schedule: linear warmup, then linear or cosine decay to minRatio × lr (schedule.ts). */
export type ScheduleSpec = Omit<ScheduleConfig, 'lr' | 'totalSteps'>;

/** The loop's options the session fills in itself are left out. */
export type TrainSpec<B> = Omit<LoopOptions<B>, 'optimizer' | 'lr' | 'resume' | 'clockStart' | 'config' | 'reporter' | 'outDir' | 'saveHook'> & {
  params: Params;
  /** Peak learning rate. */
  lr: number;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
};

export interface Session<C> {
  readonly out: string;
  /** The run's settings: the given ones, or on --resume the checkpoint's (then `update`d). */
  readonly config: C;
  readonly ckpt: Checkpoint | undefined;
  readonly dist: Distributed;
  /** The rank that evaluates and writes (rank 0; the only one without --distributed). */
  readonly lead: boolean;
  /** performance.now() when the session was opened (the command's clock start). */
  readonly t0: number;
  /** A value the runner stored in the checkpoint's extra state (undefined: a new run). */
  saved<T>(key: string): T | undefined;
  /** Settings the run resolves while it runs (--freeze auto's choice) replace the given ones:
   *  the checkpoints and `config` then hold them, so a --resume does not resolve them again. */
  update(config: C): void;
  /** --resume on another rank count than the checkpoint's is refused (bitwise reproducibility). */
  checkRanks(command: string): void;
  /** Prepares --out for a new run (lead rank only; after every input has been checked). */
  prepareOutDir(inputs: readonly NamedInput[]): void;
  train<B>(spec: TrainSpec<B>): LoopResult;
  /** Seconds of the whole run: this process from the session's start plus earlier segments. */
  wallTime(): number;
}

/**
 * Opens the session of `run`. `config` is the given settings; with --resume the checkpoint's
 * replace them (the CLI has already refused flags that contradict them). `hint` ends the error
 * of a --resume without a checkpoint.
 */
export function openSession<C>(run: SessionRun, config: C, o: { hint: string }): Session<C> {
  const t0 = performance.now();
  const { out } = run;
  const ckptDir = run.resume ? resumeCheckpoint(out) : null;
  if (run.resume && !ckptDir) throw new Error(`--out ${out}: has no checkpoint/ to resume from${o.hint}`);
  const ckpt = ckptDir ? readCheckpoint(ckptDir) : undefined;
  let c = ckpt ? (ckpt.state.config as unknown as C) : config;
  const dist = run.dist ?? SINGLE;
  const lead = dist.rank === 0;
  return {
    out, ckpt, dist, lead, t0,
    get config() { return c; },
    update(config) { c = config; },
    saved: <T>(key: string) => ckpt?.state.extra[key] as T | undefined,
    checkRanks(command) {
      const ranksBefore = (ckpt?.state.extra.ranks as number | undefined) ?? 1;
      if (ckpt && ranksBefore !== dist.size) {
        throw new UsageError(`--resume: the checkpoint in ${out} was written by a run on ${ranksBefore} rank${ranksBefore > 1 ? 's' : ''}, this run has ${dist.size}; ` +
          `resume with the same count (${ranksBefore > 1 ? `mpirun -np ${ranksBefore} kdqat ${command} … --distributed mpi` : 'one process, without --distributed'}) so the run stays bitwise reproducible`);
      }
    },
    prepareOutDir(inputs) {
      if (lead) prepareOutDir(out, { force: run.force, resume: run.resume, inputs });
    },
    train<B>(spec: TrainSpec<B>): LoopResult {
      const { params, lr, optimizer: opt, schedule: sched, extraState, ...loop } = spec;
      const optimizer = new AdamW(params, { lr, weightDecay: opt.weightDecay, noDecay: opt.noDecay });
      const schedule: ScheduleConfig = { lr, totalSteps: spec.totalSteps, ...sched };
      return trainLoop<B>({
        ...loop, params, optimizer, lr: (s) => learningRate(schedule, s),
        outDir: lead ? out : undefined, config: c as unknown as Record<string, unknown>,
        // Runs on several ranks record their count, so a resume on another count is refused.
        extraState: () => ({ ...(extraState?.() ?? {}), ...(dist.size > 1 ? { ranks: dist.size } : {}) }),
        clockStart: t0, resume: ckpt, reporter: run.reporter, saveHook: run.saveHook,
      });
    },
    wallTime: () => Math.round(((ckpt?.state.elapsedSeconds ?? 0) + (performance.now() - t0) / 1000) * 10) / 10,
  };
}
