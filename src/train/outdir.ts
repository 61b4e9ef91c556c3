// A training run's output directory: created fresh (with kdqat's marker, io/outputs.ts), or
// replaced only with --force and only if kdqat made it, or reused by --resume (which first
// removes the temp files of a writer that died and recovers an interrupted checkpoint save).
// A run that fails or is killed before its first checkpoint leaves nothing that needs --force. The final model files are written next to the log and checkpoint, each moved into
// place by rename, so a crash never leaves a half-written model.json/safetensors behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OUTPUT_MARKER, checkNotInput, isOwnDir, removeStaleTemps, tempOwner, writeMarker, type NamedInput } from '../io/outputs.js';
import { recoverCheckpoint } from './checkpoint.js';
import { crashPoint } from '../io/test-hooks.js';

/** What a kdqat run writes into its directory; --force removes exactly these, nothing else. */
export const RUN_OUTPUTS = [
  'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json',
  'train_log.jsonl', 'summary.json', 'checkpoint', 'checkpoint.old',
  // kdqat qat
  'qat_log.jsonl', 'student', 'best-student',
];
/** The outputs worth keeping: a run whose directory has none of them saved nothing useful. */
const KEEPERS = ['checkpoint', 'checkpoint.old', 'summary.json', 'model.safetensors', 'student', 'best-student'];
/** Run directories written before the marker (io/outputs.ts) are recognised by these. */
const LEGACY = ['checkpoint/state.json', 'qat_log.jsonl', 'train_log.jsonl'];

export interface OutDirOptions {
  force?: boolean;
  resume?: boolean;
  /** The run's inputs: --out may not be, contain or lie inside any of them. */
  inputs?: readonly NamedInput[];
}

/** A run directory kdqat made that holds nothing to keep (a run that failed or was killed before
 *  its first checkpoint): a new run may reuse it without --force. */
function isAbandoned(out: string): boolean {
  return isOwnDir(out, LEGACY) && !KEEPERS.some((k) => fs.existsSync(path.join(out, k)));
}

/** Makes `out` ready for a new run (resume: it must already hold the run). */
export function prepareOutDir(out: string, opts: OutDirOptions): void {
  const st = fs.statSync(out, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) throw new Error(`--out ${out}: is a file, not a directory; choose another --out`);
  if (opts.resume) {
    if (!st) throw new Error(`--out ${out}: does not exist, so there is nothing to resume; drop --resume to start a new run`);
    return;
  }
  checkNotInput('--out', out, opts.inputs ?? []);
  if (st && fs.readdirSync(out).length > 0) {
    if (!isAbandoned(out)) {
      if (!opts.force) {
        throw new Error(`--out ${out}: already exists and is not empty; use --force to replace the run in it, --resume to continue it, or choose another --out`);
      }
      if (!isOwnDir(out, LEGACY)) {
        throw new Error(`--out ${out}: exists and was not written by kdqat (it has no ${OUTPUT_MARKER} marker); --force only replaces ` +
          `kdqat's own outputs — remove it yourself if it can go, or choose another --out`);
      }
    }
    removeRunOutputs(out);
  }
  fs.mkdirSync(out, { recursive: true });
  writeMarker(out);
}

/**
 * The checkpoint a resumed run continues from (null: none), after putting `out` back in order:
 * temp files of a writer that died are removed and an interrupted checkpoint save is recovered
 * (checkpoint.ts), so nothing a crash left behind survives the resumed run.
 */
export function resumeCheckpoint(out: string): string | null {
  const st = fs.statSync(out, { throwIfNoEntry: false });
  if (!st) throw new Error(`--out ${out}: does not exist, so there is nothing to resume; drop --resume to start a new run`);
  if (!st.isDirectory()) throw new Error(`--out ${out}: is a file, not a directory; choose another --out`);
  removeStaleTemps(out);
  return recoverCheckpoint(out);
}

function removeRunOutputs(out: string): void {
  for (const name of fs.readdirSync(out)) {
    if (RUN_OUTPUTS.includes(name) || tempOwner(name) !== null) fs.rmSync(path.join(out, name), { recursive: true, force: true });
  }
}

/**
 * Runs `body` (a command writing into `out`); if it throws, a new run's directory that holds
 * nothing worth keeping is removed (or emptied of kdqat's files, if it existed before), so the
 * retry needs no --force and nothing half-made is left behind. A resumed run's is never touched.
 */
export function cleanUpOnFailure<T>(out: string, resume: boolean | undefined, body: () => T): T {
  const existed = fs.existsSync(out);
  try {
    return body();
  } catch (e) {
    if (!resume && fs.statSync(out, { throwIfNoEntry: false })?.isDirectory() && isOwnDir(out) && isAbandoned(out)) {
      try {
        removeRunOutputs(out);
        if (!existed && fs.readdirSync(out).every((n) => n === OUTPUT_MARKER)) fs.rmSync(out, { recursive: true, force: true });
      } catch { /* the original error matters more */ }
    }
    throw e;
  }
}

/** Writes files with `write(tmpDir)` into a temp directory inside `out`, then renames each into
 *  `out` (replacing older versions, e.g. the tokenizer.json saved at the start). A crash between
 *  two renames leaves whole files of two versions; the checkpoint of the run's last step is saved
 *  before, so --resume publishes them again. */
export function publishFiles(out: string, write: (tmpDir: string) => void): void {
  const tmp = path.join(out, `.final.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    write(tmp);
    for (const name of fs.readdirSync(tmp)) {
      fs.renameSync(path.join(tmp, name), path.join(out, name));
      crashPoint('publish:file');
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  fsyncDir(out);
}

/** JSON written to a temp file, fsynced, renamed over `file`. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`); // hidden, like every temp
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch { /* best effort */ }
}
