// A training run's output directory: created fresh, or replaced only with --force, or reused by
// --resume. The final model files are written next to the log and checkpoint, each moved into
// place by rename, so a crash never leaves a half-written model.json/safetensors behind.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What a kdqat run writes into its directory; --force removes exactly these, nothing else. */
export const RUN_OUTPUTS = [
  'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json',
  'train_log.jsonl', 'summary.json', 'checkpoint', 'checkpoint.old',
  // kdqat qat
  'qat_log.jsonl', 'student', 'best-student',
];

/** Makes `out` ready for a new run (resume: it must already hold the run). */
export function prepareOutDir(out: string, opts: { force?: boolean; resume?: boolean }): void {
  const exists = fs.existsSync(out);
  if (exists && !fs.statSync(out).isDirectory()) throw new Error(`--out ${out}: is a file, not a directory; choose another --out`);
  if (opts.resume) {
    if (!exists) throw new Error(`--out ${out}: does not exist, so there is nothing to resume; drop --resume to start a new run`);
    return;
  }
  if (exists && fs.readdirSync(out).length > 0) {
    if (!opts.force) {
      throw new Error(`--out ${out}: already exists and is not empty; use --force to replace the run in it, --resume to continue it, or choose another --out`);
    }
    for (const name of fs.readdirSync(out)) {
      if (RUN_OUTPUTS.includes(name) || /^\.(checkpoint|final|student)\.tmp-/.test(name)) {
        fs.rmSync(path.join(out, name), { recursive: true, force: true });
      }
    }
  }
  fs.mkdirSync(out, { recursive: true });
}

/** Writes files with `write(tmpDir)` into a temp directory inside `out`, then renames each into
 *  `out` (replacing older versions, e.g. the tokenizer.json saved at the start). */
export function publishFiles(out: string, write: (tmpDir: string) => void): void {
  const tmp = path.join(out, `.final.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    write(tmp);
    for (const name of fs.readdirSync(tmp)) fs.renameSync(path.join(tmp, name), path.join(out, name));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  fsyncDir(out);
}

/** JSON written to a temp file, fsynced, renamed over `file`. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
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
