// Training checkpoints: everything a run needs to continue bit for bit, in `<out>/checkpoint/`:
//   model.safetensors      parameters by name (F32, exactly as in memory)
//   optimizer.safetensors  "<param>.exp_avg" / "<param>.exp_avg_sq" (AdamW moments), metadata
//                          {"step": optimizer step count, "optimizer": "adamw"}
//   state.json             step, data position (epoch, batch index), seeds, run config, the
//                          train_log.jsonl byte offset at this step, and loop bookkeeping
//   extra.safetensors      command-specific tensors (kdqat qat: the codes its cross_rate compares
//                          with), only when there are any
//
// Writing is atomic: the files go into a fresh temp directory, each file and the directory are
// fsynced, then the old checkpoint is renamed aside, the new one renamed into place and the old
// one removed. Linux cannot rename a directory over a non-empty one, so there is a moment with
// only `checkpoint.old/`: the reader falls back to it, so a crash at any point leaves a complete
// checkpoint (the new one or the previous one), never a mixture. A resumed run first puts it
// back (recoverCheckpoint). A save that fails (a full disk) removes its temp directory and leaves
// the previous checkpoint as it was.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Params } from '../nn/params.js';
import type { Optimizer } from './optim.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';
import { removeStaleTemps } from '../io/outputs.js';
import { FsError, explainFsError } from '../io/files.js';
import { crashPoint } from '../io/test-hooks.js';

export const CHECKPOINT_DIR = 'checkpoint';
const OLD_DIR = 'checkpoint.old';
const TMP_PREFIX = '.checkpoint.tmp-';
const FORMAT = 'kdqat-checkpoint';
const VERSION = 1;
const FILES = ['model.safetensors', 'optimizer.safetensors', 'state.json'];
const EXTRA = 'extra.safetensors';

/** The loop's bookkeeping between logged steps (so a resumed run logs the same averages). */
export interface PendingLog {
  lossSum: number;
  steps: number;
}

export interface CheckpointState {
  /** Optimizer updates done. */
  step: number;
  totalSteps: number;
  /** Data position: the next micro-batch is batch `batchIndex` of epoch `epoch`. */
  epoch: number;
  batchIndex: number;
  /** The run seed and what is derived from it (data order: (seed, epoch); dropout: (seed, step)). */
  seeds: Record<string, number>;
  /** The run's resolved configuration (command options), so --resume needs no flags. */
  config: Record<string, unknown>;
  /** Byte length of train_log.jsonl after this step's line; a resumed run truncates to it. */
  logPosition: number;
  pending: PendingLog;
  /** Tokens trained on so far (all segments). */
  tokensSeen: number;
  /** Training wall time before this checkpoint, seconds (summed over resumed segments). */
  elapsedSeconds: number;
  /** Of which spent in training steps (no evaluation or saving), for tokens/s. */
  trainSeconds: number;
  /** Command-specific state (e.g. the best dev accuracy so far). */
  extra: Record<string, unknown>;
}

export interface Checkpoint {
  dir: string;
  state: CheckpointState;
  params: Map<string, Float32Array>;
  optimizer: { step: number; buffers: Map<string, Float32Array> };
  /** extra.safetensors (empty when the save had none). */
  tensors: Map<string, Float32Array>;
}

/** Test hook: called after each stage of a save ('model.safetensors', 'optimizer.safetensors',
 *  'state.json', 'synced', 'moved-old', 'published'), so tests can crash the writer there. */
export type SaveHook = (stage: string) => void;

function fsyncPath(p: string): void {
  try {
    const fd = fs.openSync(p, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch { /* not every platform can fsync a directory */ }
}

/** Writes `<outDir>/checkpoint/` atomically (see the top of the file). */
export function saveCheckpoint(
  outDir: string, params: Params, optimizer: Optimizer, state: CheckpointState, hook?: SaveHook,
  tensors?: ReadonlyMap<string, Float32Array>,
): string {
  const stage = (name: string): void => {
    hook?.(name);
    crashPoint(`checkpoint:${name}`);
  };
  removeStaleTemps(outDir);
  const target = path.join(outDir, CHECKPOINT_DIR), old = path.join(outDir, OLD_DIR);
  const tmp = path.join(outDir, `${TMP_PREFIX}${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    const model = new Map<string, WriteTensor>();
    for (const [name, p] of params) model.set(name, { shape: [...p.shape], data: p.f32 });
    writeSafetensors(path.join(tmp, 'model.safetensors'), model, { dtype: 'F32', metadata: { format: FORMAT } });
    stage('model.safetensors');
    const opt = optimizer.state();
    const buffers = new Map<string, WriteTensor>();
    for (const [key, buf] of opt.buffers) buffers.set(key, { shape: [buf.length], data: buf });
    writeSafetensors(path.join(tmp, 'optimizer.safetensors'), buffers, {
      dtype: 'F32', metadata: { format: FORMAT, optimizer: optimizer.constructor.name.toLowerCase(), step: String(opt.step) },
    });
    stage('optimizer.safetensors');
    if (tensors?.size) {
      const extra = new Map<string, WriteTensor>();
      for (const [key, buf] of tensors) extra.set(key, { shape: [buf.length], data: buf });
      writeSafetensors(path.join(tmp, EXTRA), extra, { dtype: 'F32', metadata: { format: FORMAT } });
    }
    const json = JSON.stringify({ format: FORMAT, version: VERSION, ...state }, null, 2) + '\n';
    const fd = fs.openSync(path.join(tmp, 'state.json'), 'wx');
    try { fs.writeFileSync(fd, json); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    stage('state.json');
    fsyncPath(tmp);
    stage('synced');
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const intact = isComplete(target) || isComplete(old);
    // Explained again with the advice for a run (an FsError from atomicWrite names the file).
    const raw = e instanceof FsError ? Object.assign(new Error(e.message), { code: e.code }) : e;
    const why = explainFsError(raw, e instanceof FsError ? e.file : tmp, 'write', intact
      ? `the previous checkpoint in ${outDir} is intact — free some space and continue from it with --resume`
      : 'no checkpoint was saved yet — free some space and run again');
    if (why === e) throw e;
    throw new Error(`cannot save the checkpoint of step ${state.step}: ${why.message}`);
  }
  // A leftover checkpoint.old is only needed while `checkpoint` is missing (see readCheckpoint).
  if (fs.existsSync(target)) {
    fs.rmSync(old, { recursive: true, force: true });
    fs.renameSync(target, old);
    stage('moved-old');
  }
  fs.renameSync(tmp, target);
  fsyncPath(outDir);
  stage('published');
  fs.rmSync(old, { recursive: true, force: true });
  return target;
}

/** The checkpoint directory to resume from: `checkpoint/`, or `checkpoint.old/` when a crash
 *  came between the two renames of a save; null when there is none. */
export function findCheckpoint(outDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, OLD_DIR]) {
    const dir = path.join(outDir, name);
    if (isComplete(dir)) return dir;
  }
  return null;
}

/** Has `dir` every file of a checkpoint? (A save publishes only complete directories; this also
 *  rejects one damaged by hand or by a file system without ordered renames.) */
function isComplete(dir: string): boolean {
  return FILES.every((f) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.isFile());
}

/**
 * Before a resumed run: puts back the state a crash in saveCheckpoint left. `checkpoint.old/`
 * alone (killed between the two renames) becomes `checkpoint/` again; a complete `checkpoint/`
 * makes a leftover `checkpoint.old/` unneeded; an incomplete `checkpoint/` beside a complete
 * `checkpoint.old/` is replaced by it. Returns the checkpoint directory, or null.
 */
export function recoverCheckpoint(outDir: string): string | null {
  const target = path.join(outDir, CHECKPOINT_DIR), old = path.join(outDir, OLD_DIR);
  if (isComplete(target)) {
    fs.rmSync(old, { recursive: true, force: true });
    return target;
  }
  if (!isComplete(old)) return null;
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(old, target);
  fsyncPath(outDir);
  return target;
}

/** Reads only state.json of a checkpoint directory (cheap: no tensors). */
export function readCheckpointState(dir: string): CheckpointState {
  const stateFile = path.join(dir, 'state.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch (e) {
    throw new Error(`${stateFile}: cannot read the checkpoint state (${(e as Error).message}); start a new run with --force`);
  }
  if (raw.format !== FORMAT || raw.version !== VERSION) {
    throw new Error(`${stateFile}: not a kdqat checkpoint of version ${VERSION} (format ${JSON.stringify(raw.format)}, version ${JSON.stringify(raw.version)})`);
  }
  const { format: _f, version: _v, ...state } = raw;
  return state as unknown as CheckpointState;
}

/** Reads a checkpoint directory written by saveCheckpoint. */
export function readCheckpoint(dir: string): Checkpoint {
  const state = readCheckpointState(dir);
  const params = new Map<string, Float32Array>();
  for (const [name, t] of readSafetensors(path.join(dir, 'model.safetensors')).tensors) params.set(name, t.data as Float32Array);
  const opt = readSafetensors(path.join(dir, 'optimizer.safetensors'));
  const buffers = new Map<string, Float32Array>();
  for (const [name, t] of opt.tensors) buffers.set(name, t.data as Float32Array);
  const tensors = new Map<string, Float32Array>();
  if (fs.existsSync(path.join(dir, EXTRA))) {
    for (const [name, t] of readSafetensors(path.join(dir, EXTRA)).tensors) tensors.set(name, t.data as Float32Array);
  }
  return {
    dir, state, params, tensors,
    optimizer: { step: Number(opt.metadata.step ?? 0), buffers },
  };
}

/** Copies checkpointed values into the live parameters and optimizer (names and sizes must match). */
export function restoreCheckpoint(ckpt: Checkpoint, params: Params, optimizer: Optimizer): void {
  const file = path.join(ckpt.dir, 'model.safetensors');
  for (const [name, p] of params) {
    const v = ckpt.params.get(name);
    if (!v) throw new Error(`${file}: has no parameter "${name}"; the checkpoint is from a different model — start a new run with --force`);
    if (v.length !== p.size) throw new Error(`${file}: "${name}" has ${v.length} values, the model needs ${p.size}; the checkpoint is from a different model`);
    p.f32.set(v);
  }
  const extra = [...ckpt.params.keys()].filter((n) => !params.has(n));
  if (extra.length) throw new Error(`${file}: has parameters the model lacks (${extra.slice(0, 3).join(', ')}); the checkpoint is from a different model`);
  optimizer.loadState(ckpt.optimizer);
}
