// The files of a model directory, read safely (issue 16 point 4):
//   - a path kdqat takes from inside a model file (a shard of model.safetensors.index.json) is a
//     plain file name: no directory part, no `..`, not absolute;
//   - every file read must resolve (symlinks followed) to a file inside the model directory, so a
//     link cannot make kdqat read elsewhere. One exception, the Hugging Face hub cache, where
//     every file of snapshots/<revision>/ is a link into the repository's own ../../blobs/;
//   - a directory where a file is expected is an error naming it (not EISDIR);
//   - nothing is ever executed or unpickled: PyTorch/TF/Flax checkpoints (pickles and their
//     indexes) are refused by name, and kdqat has no code path for config.json's auto_map.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Checkpoint formats kdqat refuses to open: unpickling runs code (torch.load), the others are
 *  not safetensors either. */
const UNSAFE_WEIGHTS = /^(pytorch_model.*\.bin|.*\.(bin|pt|pth|ckpt|pkl|pickle|h5|msgpack))$|^pytorch_model\.bin\.index\.json$/;

/** Is `real` (a resolved path) inside the resolved directory `dirReal`, or in the hub cache's
 *  blobs/ of the repository whose snapshot `dirReal` is? */
function within(dirReal: string, real: string): boolean {
  const rel = path.relative(dirReal, real);
  if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return true;
  const snap = path.dirname(dirReal);
  if (path.basename(snap) !== 'snapshots') return false;
  const blobs = path.join(path.dirname(snap), 'blobs');
  const r = path.relative(blobs, real);
  return !!r && !r.startsWith('..') && !path.isAbsolute(r) && !r.includes(path.sep);
}

/**
 * `dir/name` if it exists (null if not), after checking that it is a regular file that resolves
 * inside `dir` (see top). `what` names where the name came from, for messages.
 */
export function modelFile(dir: string, name: string, what = 'the model directory'): string | null {
  const file = path.join(dir, name);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st) return null;
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    throw new Error(`${file}: is a broken symbolic link (${fs.readlinkSync(file)}); replace it with the file itself`);
  }
  if (!within(fs.realpathSync(dir), real)) {
    throw new Error(`${file}: is a link to ${real}, outside the model directory ${dir}; kdqat reads only files inside ${what} ` +
      '(a model file must not reach elsewhere): copy the file into the directory instead of linking it');
  }
  if (!fs.statSync(real).isFile()) {
    throw new Error(`${file}: is a directory (or another non-file), where ${what} needs the file ${name}; remove it or put the file there`);
  }
  return file;
}

/** A file's text, strict UTF-8 (an invalid byte is an error naming the file and the offset). */
export function readModelText(file: string): string {
  const buf = fs.readFileSync(file);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    // The first replacement character of a lenient decode marks the first bad byte (a U+FFFD
    // already in the text would be reported instead: the offset is a hint).
    const lenient = buf.toString('utf8');
    const at = Buffer.byteLength(lenient.slice(0, Math.max(0, lenient.indexOf('\ufffd'))));
    throw new Error(`${file}: is not valid UTF-8 (byte 0x${(buf[at] ?? 0).toString(16)} at offset ${at}); it must be UTF-8 JSON: re-save or re-download it`);
  }
}

/** JSON text of a model file, parsed; errors name the file and say what to do. */
export function readModelJson(file: string, expect = 'a JSON object'): unknown {
  const text = readModelText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); it must be ${expect}: fix it, or re-save or re-download the file`);
  }
}

/** Checks a shard file name from model.safetensors.index.json's weight_map (see top). */
export function checkShardName(index: string, tensor: string, shard: unknown): string {
  const bad = (why: string): never => {
    throw new Error(`${index}: weight_map["${tensor}"] = ${JSON.stringify(shard)} ${why}; each value must be the file name of a ` +
      '.safetensors shard in the same directory (e.g. "model-00001-of-00002.safetensors")');
  };
  if (typeof shard !== 'string') bad('is not a string');
  const s = shard as string;
  if (s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || path.isAbsolute(s) || s.includes('\0')) {
    bad('is not a plain file name (a path out of the model directory is refused)');
  }
  if (UNSAFE_WEIGHTS.test(s)) {
    bad('is a PyTorch/TensorFlow checkpoint, which kdqat never opens (unpickling can run code); convert the model to safetensors first');
  }
  if (!s.endsWith('.safetensors')) bad('does not end in .safetensors');
  return s;
}

/** The checkpoint files of `dir` kdqat refuses (pickles and other non-safetensors formats). */
export function unsafeWeightFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => UNSAFE_WEIGHTS.test(n)).sort();
}
