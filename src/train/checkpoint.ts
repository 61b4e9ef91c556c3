// Training checkpoints: everything a run needs to continue bit for bit, in `<out>/checkpoint/`:
//   model.safetensors      parameters by name (F32, exactly as in memory)
//   optimizer.safetensors  "<param>.exp_avg" / "<param>.exp_avg_sq" (AdamW moments), metadata
//                          {"step": optimizer step count, "optimizer": "adamw"}
//   state.json             step, data position (epoch, batch index), seeds, run config, the
//                          train_log.jsonl byte offset at this step, and loop bookkeeping
//
// Writing is atomic: the files go into a fresh temp directory, each file and the directory are
// fsynced, then the old checkpoint is renamed aside, the new one renamed into place and the old
// one removed. Linux cannot rename a directory over a non-empty one, so there is a moment with
// only `checkpoint.old/`: the reader falls back to it, so a crash at any point leaves a complete
// checkpoint (the new one or the previous one), never a mixture.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Params } from '../nn/params.js';
import type { Optimizer } from './optim.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';

export const CHECKPOINT_DIR = 'checkpoint';
const OLD_DIR = 'checkpoint.old';
const TMP_PREFIX = '.checkpoint.tmp-';
const FORMAT = 'kdqat-checkpoint';
const VERSION = 1;

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

/** Removes temp directories left by a writer that crashed. */
function removeStaleTemps(outDir: string): void {
  for (const name of fs.readdirSync(outDir)) {
    if (name.startsWith(TMP_PREFIX)) fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
  }
}

/** Writes `<outDir>/checkpoint/` atomically (see the top of the file). */
export function saveCheckpoint(
  outDir: string, params: Params, optimizer: Optimizer, state: CheckpointState, hook?: SaveHook,
): string {
  removeStaleTemps(outDir);
  const target = path.join(outDir, CHECKPOINT_DIR), old = path.join(outDir, OLD_DIR);
  const tmp = path.join(outDir, `${TMP_PREFIX}${process.pid}`);
  fs.mkdirSync(tmp);
  try {
    const model = new Map<string, WriteTensor>();
    for (const [name, p] of params) model.set(name, { shape: [...p.shape], data: p.f32 });
    writeSafetensors(path.join(tmp, 'model.safetensors'), model, { dtype: 'F32', metadata: { format: FORMAT } });
    hook?.('model.safetensors');
    const opt = optimizer.state();
    const buffers = new Map<string, WriteTensor>();
    for (const [key, buf] of opt.buffers) buffers.set(key, { shape: [buf.length], data: buf });
    writeSafetensors(path.join(tmp, 'optimizer.safetensors'), buffers, {
      dtype: 'F32', metadata: { format: FORMAT, optimizer: optimizer.constructor.name.toLowerCase(), step: String(opt.step) },
    });
    hook?.('optimizer.safetensors');
    const json = JSON.stringify({ format: FORMAT, version: VERSION, ...state }, null, 2) + '\n';
    const fd = fs.openSync(path.join(tmp, 'state.json'), 'wx');
    try { fs.writeFileSync(fd, json); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    hook?.('state.json');
    fsyncPath(tmp);
    hook?.('synced');
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  // A leftover checkpoint.old is only needed while `checkpoint` is missing (see readCheckpoint).
  if (fs.existsSync(target)) {
    fs.rmSync(old, { recursive: true, force: true });
    fs.renameSync(target, old);
    hook?.('moved-old');
  }
  fs.renameSync(tmp, target);
  fsyncPath(outDir);
  hook?.('published');
  fs.rmSync(old, { recursive: true, force: true });
  return target;
}

/** The checkpoint directory to resume from: `checkpoint/`, or `checkpoint.old/` when a crash
 *  came between the two renames of a save; null when there is none. */
export function findCheckpoint(outDir: string): string | null {
  for (const name of [CHECKPOINT_DIR, OLD_DIR]) {
    const dir = path.join(outDir, name);
    if (fs.existsSync(path.join(dir, 'state.json'))) return dir;
  }
  return null;
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
  return {
    dir, state, params,
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
