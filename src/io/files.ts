// Reading a file kdqat was told to read, with errors that name it: a directory where a file is
// expected (Node's bare "EISDIR: illegal operation on a directory, read" names nothing, and
// opening a directory for reading even succeeds), a missing path, a file where a directory is
// expected on the way (ENOTDIR), and on writing a full disk.
import * as fs from 'node:fs';

/** The error codes of a full disk (or a file-size limit, RLIMIT_FSIZE / quota). */
export const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** An fs error explained by explainFsError (not explained twice). */
export class FsError extends Error {
  constructor(message: string, readonly code: string, readonly file: string) {
    super(message);
  }
}

/** An fs error as a sentence naming `file` and what to do; other errors unchanged. `fix`
 *  replaces the advice after a full disk (e.g. how to continue a run). */
export function explainFsError(e: unknown, file: string, doing: 'read' | 'write', fix = 'free some space and run again'): Error {
  if (e instanceof FsError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code) return e as Error;
  const what = doing === 'read' ? 'reading' : 'writing';
  const msg =
    code === 'EISDIR' ? `is a directory, but kdqat expects a file there (${what} it)` :
    code === 'ENOTDIR' ? `a part of this path is a file, but kdqat expects a directory there (${what} it)` :
    code === 'ENOENT' ? `no such file or directory (${what} it)` :
    code === 'EACCES' || code === 'EPERM' ? `permission denied (${what} it)` :
    NO_SPACE.has(code) ? `no space left while writing it (${code}: the disk is full, or a quota or file-size limit was reached); ${fix}` :
    null;
  return msg ? new FsError(`${file}: ${msg}`, code, file) : e as Error;
}

/** fs.readFileSync with a clear error naming the file (a directory, a missing file …). */
export function readFileChecked(file: string): Buffer;
export function readFileChecked(file: string, encoding: 'utf8'): string;
export function readFileChecked(file: string, encoding?: 'utf8'): Buffer | string {
  try {
    if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    return encoding ? fs.readFileSync(file, encoding) : fs.readFileSync(file);
  } catch (e) {
    throw explainFsError(e, file, 'read');
  }
}

/** fs.openSync(file, 'r') of a regular file (or a device), with readFileChecked's errors. */
export function openFileChecked(file: string): number {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'r');
    if (fs.fstatSync(fd).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    return fd;
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    throw explainFsError(e, file, 'read');
  }
}
