// Output safety, shared by every command that writes (qat, pretrain, finetune, quantize, export,
// reproduce, demo, bench --plot, plot):
// - an output never is, contains, or lies inside one of the command's inputs (the teacher or
//   model directory, data files, the tokenizer, a quantization config), with or without --force;
// - an existing output is replaced only with --force, and a directory only if kdqat marked it as
//   its own: every directory kdqat creates gets OUTPUT_MARKER (model directories, students, run
//   directories), so `--force` can never delete a directory someone else made;
// - temp files and directories carry the writer's pid, so a later run removes those of a writer
//   that died (kill -9, power loss) and leaves those of one still running.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Written into every directory kdqat creates; --force replaces only directories that have it. */
export const OUTPUT_MARKER = '.kdqat-output';

/** The marker's content: constant, so two identical runs write identical directories. */
export const MARKER_TEXT = '{"written_by":"kdqat"}\n';

/** Writes the marker into `dir` (a directory kdqat is creating). */
export function writeMarker(dir: string): void {
  const file = path.join(dir, OUTPUT_MARKER);
  if (fs.existsSync(file)) return;
  const fd = fs.openSync(file, 'wx');
  try { fs.writeFileSync(fd, MARKER_TEXT); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** Did kdqat write this directory? (its marker, or `legacy` files of an older kdqat.) */
export function isOwnDir(dir: string, legacy: readonly string[] = []): boolean {
  return [OUTPUT_MARKER, ...legacy].some((f) => fs.existsSync(path.join(dir, f)));
}

/** A command's input, as the user named it: `--teacher`, `--model`, `--data` … */
export interface NamedInput {
  flag: string;
  path: string | null | undefined;
}

/** `p` resolved through symlinks as far as it exists (so `a/../b` and links compare equal). */
export function realish(p: string): string {
  let head = path.resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.resolve(p);
      tail.push(path.basename(head));
      head = up;
    }
  }
}

const within = (inner: string, outer: string): boolean => {
  const rel = path.relative(outer, inner);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** Throws when the output `out` is, contains or lies inside an existing input. */
export function checkNotInput(outFlag: string, out: string, inputs: readonly NamedInput[]): void {
  const o = realish(out);
  for (const { flag, path: p } of inputs) {
    if (!p || !fs.existsSync(p)) continue; // a corpus or preset name, or a missing file (reported by its reader)
    const i = realish(p);
    const how = o === i ? 'is' : within(o, i) ? 'is inside' : within(i, o) ? 'contains' : null;
    if (how) {
      throw new Error(`${outFlag} ${out}: ${how} the input ${flag} ${p}; kdqat never writes over or into its inputs, ` +
        `even with --force — choose another ${outFlag}`);
    }
  }
}

export interface OutputCheck {
  /** The flag naming the output, for messages (default --out). */
  flag?: string;
  inputs?: readonly NamedInput[];
  force?: boolean;
  /** 'dir': a directory kdqat creates; 'file': one file. */
  kind: 'dir' | 'file';
  /** Files that mark a directory written by an older kdqat (before OUTPUT_MARKER). */
  legacy?: readonly string[];
}

/**
 * Checks an output path before any work: not an input; an existing output only with --force, of
 * the right kind (a directory where a directory is written, a file where a file is), and a
 * directory only if kdqat marked it. Returns whether something is there to replace.
 */
export function checkOutput(out: string, o: OutputCheck): 'new' | 'replace' {
  const flag = o.flag ?? '--out';
  // Messages name the option and the path (or only the path, for a library call: flag '').
  const at = flag ? `${flag} ${out}` : out, other = flag ? `another ${flag}` : 'another path';
  checkNotInput(flag || 'the output', out, o.inputs ?? []);
  const st = statOrNull(out);
  if (!st) {
    // A file where a directory is expected on the way: say which.
    for (let up = path.dirname(path.resolve(out)); ; up = path.dirname(up)) {
      const s = statOrNull(up);
      if (s && !s.isDirectory()) throw new Error(`${at}: ${up} is a file, not a directory; choose ${other}`);
      if (s || path.dirname(up) === up) break;
    }
    return 'new';
  }
  if (o.kind === 'dir') {
    if (!st.isDirectory()) throw new Error(`${at}: is a file, not a directory; choose ${other} (or remove the file)`);
    if (fs.readdirSync(out).length === 0) return 'new';
    if (!o.force) throw new Error(`${at}: already exists; refusing to overwrite it (pass --force to replace it, or choose ${other})`);
    if (!isOwnDir(out, o.legacy)) {
      throw new Error(`${at}: exists and was not written by kdqat (it has no ${OUTPUT_MARKER} marker); --force only replaces ` +
        `kdqat's own outputs — remove it yourself if it can go, or choose ${other}`);
    }
    return 'replace';
  }
  if (st.isDirectory()) throw new Error(`${at}: is a directory, but a file is written there; choose ${other} (a file name)`);
  if (!o.force) throw new Error(`${at}: already exists; refusing to overwrite it (pass --force to replace it, or choose ${other})`);
  return 'replace';
}

/** fs.stat, or null when nothing is there (also when a file is on the way: ENOTDIR). */
function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** The pid in a kdqat temp name, or null. Temp names are hidden (a leading dot) and carry the
 *  writer's pid: `.student.tmp-123`, `.student.tmp-123.old`, `.x.tmp-123-ab`, `.x.123.ab.tmp`. */
export function tempOwner(name: string): number | null {
  const m = /^\..+\.tmp-(\d+)(?:-[0-9A-Za-z]+)?(?:\.old)?$/.exec(name) ?? /^\..+\.(\d+)\.[0-9a-z]+\.tmp$/.exec(name);
  return m ? Number(m[1]) : null;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, someone else's
  }
}

/** Removes the temp files and directories in `dir` left by kdqat writers that are no longer
 *  running (only those whose names start with `prefix`, if given); returns their names. */
export function removeStaleTemps(dir: string, prefix = ''): string[] {
  const removed: string[] = [];
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return removed; }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = tempOwner(name);
    if (pid === null || alive(pid)) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
