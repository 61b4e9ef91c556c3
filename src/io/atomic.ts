// Atomic file output, shared by every writer (safetensors, GGUF, tokenizer.json, JSONL):
// write a temp file next to the target, fsync, then publish it. Without `force`, publishing
// uses link(), which fails atomically if the target appeared meanwhile, so nothing is ever
// overwritten by accident; with `force`, rename() replaces it. An error leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { explainFsError } from './files.js';

export class ExistsError extends Error {}

/** Writes through `fill(write)` into `file` atomically. */
export function atomicWrite(file: string, force: boolean, fill: (write: (b: Uint8Array | string) => void) => void): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new Error(`${file}: directory ${dir} does not exist; create it first`);
  if (!force && fs.existsSync(file)) throw new ExistsError(`${file}: already exists; refusing to overwrite it (use --force)`);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  let fd: number | null = fs.openSync(tmp, 'wx');
  try {
    const write = (data: Uint8Array | string): void => {
      const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      // One write call is limited to < 2 GiB.
      for (let done = 0; done < b.length;) done += fs.writeSync(fd!, b, done, Math.min(1 << 30, b.length - done));
    };
    fill(write);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    publish(tmp, file, force);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw explainFsError(e, file, 'write'); // a full disk names the file, not a bare ENOSPC
  }
  try { // make the rename durable; not every platform can fsync a directory
    const dfd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* best effort */ }
}

function publish(tmp: string, file: string, force: boolean): void {
  if (force) return fs.renameSync(tmp, file);
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ExistsError(`${file}: already exists; refusing to overwrite it (use --force)`);
    if (fs.existsSync(file)) throw e;
    return fs.renameSync(tmp, file); // file system without hard links
  }
  fs.rmSync(tmp, { force: true });
}
