// safetensors reader/writer, following the format spec (huggingface/safetensors README, "Format"):
//   - 8 bytes: N, a little-endian unsigned 64-bit integer, the size of the header;
//   - N bytes: a UTF-8 JSON object {name: {"dtype", "shape", "data_offsets": [BEGIN, END]}},
//     plus an optional "__metadata__" string→string map; it MUST start with '{' and MAY be padded
//     at the end with spaces (0x20). Offsets are relative to the start of the byte buffer;
//   - the rest of the file: the byte buffer, little-endian, row-major ('C'). The buffer must be
//     entirely indexed by the tensors, without holes or overlaps (no polyglot files).
// The reference implementation caps the header at 100 MB; so do we.
//
// Reading is lazy: openSafetensors parses and validates the header, then read(name) pulls one
// tensor with positioned reads, so files (and tensors) over 2 GiB work without ever holding the
// whole file. Writing is atomic: a temp file in the target directory, fsync, then link/rename.
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from './half.js';
import { atomicWrite } from './atomic.js';
import { kernel } from '../tensor/registry.js';
import { openFileChecked } from './files.js';

/** Every dtype of the spec, with its element size in bytes. */
const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
} as const;
export type DType = keyof typeof DTYPE_BYTES;
/** Dtypes writeSafetensors can produce. */
export type WriteDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TensorData =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array
  | Uint32Array | BigInt64Array | BigUint64Array;

/** One tensor in memory: data is row-major of `shape` (shape [] is a scalar, 1 element). */
export interface Tensor { dtype: DType; shape: number[]; data: TensorData }

/** One header entry; begin/end are byte offsets relative to the buffer start. */
export interface TensorInfo { name: string; dtype: DType; shape: number[]; begin: number; end: number }

export interface ReadOptions {
  /** Convert every tensor (ints, F64) to Float32Array (F16/BF16/F32 always are). */
  float32?: boolean;
  /** I64/U64: 'int32' (default, range-checked) or 'bigint' (BigInt64Array/BigUint64Array). */
  int64?: 'int32' | 'bigint';
}

export const MAX_HEADER_BYTES = 100_000_000;
const IO_CHUNK = 1 << 30; // a single read/write call is limited to < 2 GiB

function checkHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');
}
function fail(file: string, msg: string): never {
  throw new Error(`${file}: ${msg}`);
}
function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Number of elements of a shape; validates it (non-negative safe integers). */
function numel(shape: unknown, where: () => string): number {
  if (!Array.isArray(shape)) throw new Error(`${where()}: shape must be an array of integers`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Error(`${where()}: bad shape [${shape.join(', ')}]: dimensions must be integers ≥ 0`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${where()}: shape [${shape.join(', ')}] is too large`);
  return n;
}

/** Validates a parsed header against a buffer of `bufLen` bytes (spec rules, see top). */
export function parseHeader(
  file: string, json: unknown, bufLen: number,
): { infos: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (!isObj(json)) fail(file, 'safetensors header is not a JSON object; the file is damaged: re-save or re-download it');
  const infos = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObj(e)) fail(file, '__metadata__ must be an object of string values');
      for (const [k, v] of Object.entries(e)) {
        if (typeof v !== 'string') fail(file, `__metadata__["${k}"] is not a string (the spec allows only strings)`);
      }
      metadata = e as Record<string, string>;
      continue;
    }
    const at = `${file}: tensor "${name}"`;
    if (!isObj(e)) fail(file, `tensor "${name}": entry is not an object {"dtype", "shape", "data_offsets"}; the header is damaged: re-save the file`);
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in e)) throw new Error(`${at}: missing "${key}" (every entry needs dtype, shape and data_offsets); the header is damaged: re-save the file`);
    }
    const dtype = e.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new Error(`${at}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const n = numel(e.shape, () => at);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 ||
        !off.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0) || off[0] > off[1]) {
      throw new Error(`${at}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as number[];
    if (end > bufLen) {
      throw new Error(`${at}: data_offsets [${begin}, ${end}] run past the ${bufLen}-byte buffer (truncated file?)`);
    }
    const want = n * DTYPE_BYTES[dtype as DType];
    if (end - begin !== want) {
      throw new Error(`${at}: ${end - begin} bytes for ${dtype} [${(e.shape as number[]).join(', ')}], expected ${want}`);
    }
    infos.set(name, { name, dtype: dtype as DType, shape: [...(e.shape as number[])], begin, end });
  }
  // The buffer must be covered exactly: sorted by offset, each range starts where the last ended.
  const sorted = [...infos.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of sorted) {
    if (t.begin < pos) fail(file, `tensor "${t.name}" data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${pos}); the spec forbids overlaps: re-save the file`);
    if (t.begin > pos) fail(file, `bytes [${pos}, ${t.begin}) of the buffer belong to no tensor (a hole before "${t.name}": its data_offsets are wrong); the spec forbids holes: re-save the file`);
    pos = t.end;
  }
  if (pos !== bufLen) fail(file, `bytes [${pos}, ${bufLen}) at the end of the buffer belong to no tensor (extra bytes appended, or a tensor missing from the header); the spec forbids this: re-save the file`);
  return { infos, metadata };
}

/** Reads exactly dst.length bytes at `pos`, in chunks (each readSync call must be < 2 GiB). */
function readFully(fd: number, file: string, dst: Uint8Array, pos: number): void {
  let done = 0;
  while (done < dst.length) {
    const n = fs.readSync(fd, dst, done, Math.min(IO_CHUNK, dst.length - done), pos + done);
    if (n === 0) fail(file, `unexpected end of file at byte ${pos + done} (file truncated?)`);
    done += n;
  }
}


const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A safetensors file opened for lazy, per-tensor reading. Call close() when done. */
export class SafetensorsFile {
  private fd: number | null;
  private constructor(
    readonly path: string, fd: number, readonly dataStart: number,
    readonly infos: Map<string, TensorInfo>, readonly metadata: Record<string, string>,
  ) {
    this.fd = fd;
  }

  static open(file: string): SafetensorsFile {
    checkHost();
    const fd = openFileChecked(file);
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) fail(file, `file is ${size} bytes, shorter than the 8-byte header length; not a safetensors file (truncated?): re-save or re-download it`);
      const head = Buffer.alloc(8);
      readFully(fd, file, head, 0);
      const n64 = head.readBigUInt64LE(0);
      if (n64 > BigInt(MAX_HEADER_BYTES)) {
        fail(file, `header length ${n64} is absurd (> ${MAX_HEADER_BYTES} bytes); not a safetensors file, or a damaged one: re-save or re-download it`);
      }
      const n = Number(n64);
      if (8 + n > size) fail(file, `header length ${n} runs past the end of the ${size}-byte file (truncated?): re-save or re-download it`);
      const hdr = Buffer.alloc(n);
      readFully(fd, file, hdr, 8);
      if (n === 0 || hdr[0] !== 0x7b) fail(file, `header does not start with '{' (it must be a JSON object); not a safetensors file, or a damaged one: re-save or re-download it`);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hdr));
      } catch (e) {
        fail(file, `header is not valid UTF-8 JSON (${(e as Error).message}); the file is damaged: re-save or re-download it`);
      }
      const { infos, metadata } = parseHeader(file, json, size - 8 - n);
      return new SafetensorsFile(file, fd, 8 + n, infos, metadata);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Tensor names in header order. */
  names(): string[] { return [...this.infos.keys()]; }

  info(name: string): TensorInfo {
    const t = this.infos.get(name);
    if (!t) {
      const some = this.names().slice(0, 8).join(', ');
      throw new Error(`${this.path}: no tensor "${name}" (has ${this.infos.size}: ${some}${this.infos.size > 8 ? ', …' : ''})`);
    }
    return t;
  }

  /** Reads one tensor: F32/F16/BF16 → Float32Array; ints raw (see ReadOptions). */
  read(name: string, opts: ReadOptions = {}): Tensor {
    if (this.fd === null) throw new Error(`${this.path}: file already closed`);
    const t = this.info(name);
    const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
    const into = <A extends TensorData>(a: A): A => (readFully(this.fd!, this.path, bytesOf(a), this.dataStart + t.begin), a);
    let data: TensorData;
    switch (t.dtype) {
      case 'F32': data = into(new Float32Array(n)); break;
      case 'F16': data = f16ToF32Array(into(new Uint16Array(n))); break;
      case 'BF16': data = bf16ToF32Array(into(new Uint16Array(n))); break;
      case 'F64': data = into(new Float64Array(n)); break;
      case 'I32': data = into(new Int32Array(n)); break;
      case 'U32': data = into(new Uint32Array(n)); break;
      case 'I16': data = into(new Int16Array(n)); break;
      case 'U16': data = into(new Uint16Array(n)); break;
      case 'I8': data = into(new Int8Array(n)); break;
      case 'U8': case 'BOOL': data = into(new Uint8Array(n)); break;
      case 'I64': case 'U64': {
        const big = into(t.dtype === 'I64' ? new BigInt64Array(n) : new BigUint64Array(n));
        data = opts.int64 === 'bigint' ? big : toInt32(big, `${this.path}: tensor "${name}" (${t.dtype})`);
        break;
      }
      default:
        throw new Error(`${this.path}: tensor "${name}" has dtype ${t.dtype}, which kdqat cannot decode ` +
          `(supported: F32, F16, BF16, F64 and integer types); convert the file first`);
    }
    if (opts.float32 && !(data instanceof Float32Array)) data = Float32Array.from(data as ArrayLike<number>, Number);
    return { dtype: t.dtype, shape: [...t.shape], data };
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function toInt32(a: BigInt64Array | BigUint64Array, what: string): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v < -2147483648n || v > 2147483647n) {
      throw new Error(`${what}: element ${i} = ${v} does not fit in int32 (read with { int64: 'bigint' })`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** countNonFinite of the active kernel backend (native: SIMD over all threads), when one is set
 *  up; else null and checkFinite scans in JavaScript. */
function countNonFinite(data: Float32Array): number | null {
  try {
    return kernel('countNonFinite')(data);
  } catch {
    return null;
  }
}

/**
 * Throws, naming the file, the tensor and the first element, when `data` holds a NaN or an
 * infinity (a diverged or damaged checkpoint: it would make every output NaN). The count is one
 * pass of the countNonFinite kernel (native: ~memory bandwidth, far below the cost of reading
 * the bytes); only a tensor that has one is scanned again for its first index.
 */
export function checkFinite(data: Float32Array, file: string, tensor: string, shape: readonly number[]): void {
  if (countNonFinite(data) === 0) return;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x === 0) continue;
    const cols = shape.length >= 2 ? shape[shape.length - 1] : 0;
    const where = cols ? ` (row ${Math.floor(i / cols)}, column ${i % cols})` : '';
    throw new Error(`${file}: tensor "${tensor}" has ${x} at index ${i}${where}; the checkpoint is corrupt (a diverged ` +
      'run or a damaged file): restore a good copy or re-export the model');
  }
}

/** Opens a file for lazy reading: the header is parsed and validated, no tensor is read yet. */
export function openSafetensors(file: string): SafetensorsFile {
  return SafetensorsFile.open(file);
}

/** Reads every tensor (one positioned read each) and the metadata. */
export function readSafetensors(
  file: string, opts: ReadOptions & { names?: string[] } = {},
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const f = openSafetensors(file);
  try {
    const tensors = new Map<string, Tensor>();
    for (const name of opts.names ?? f.names()) tensors.set(name, f.read(name, opts));
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

// ---- writing ------------------------------------------------------------------------------------

/** A tensor to write. `data` may be a thunk, called once when its bytes are written (keeps peak
 *  memory at one tensor for big exports; needs a dtype). dtype here overrides WriteOptions.dtype. */
export interface WriteTensor { shape: number[]; data: TensorData | (() => TensorData); dtype?: WriteDType }

export interface WriteOptions {
  /** Target dtype: one for all tensors, or per name; default: inferred from the array type. */
  dtype?: WriteDType | Record<string, WriteDType>;
  metadata?: Record<string, string>;
  /** Overwrite an existing file. */
  force?: boolean;
}

const WRITE_DTYPES: readonly WriteDType[] = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'I16', 'I8', 'U8', 'BOOL'];

function inferDType(d: TensorData): WriteDType | undefined {
  if (d instanceof Float32Array) return 'F32';
  if (d instanceof Float64Array) return 'F64';
  if (d instanceof Int32Array) return 'I32';
  if (d instanceof BigInt64Array) return 'I64';
  if (d instanceof Int16Array) return 'I16';
  if (d instanceof Int8Array) return 'I8';
  if (d instanceof Uint8Array) return 'U8';
  return undefined;
}

/** Encodes data as `dtype` little-endian bytes, checking the length and the array kind. */
function encode(d: TensorData, dtype: WriteDType, n: number, what: string): Uint8Array {
  if (d.length !== n) throw new Error(`${what}: data has ${d.length} elements, shape needs ${n}`);
  const isFloat = d instanceof Float32Array || d instanceof Float64Array;
  const f32 = (): Float32Array => (d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>));
  const need = (ok: boolean, kind: string): void => {
    if (!ok) throw new Error(`${what}: cannot write ${d.constructor.name} as ${dtype} (needs ${kind})`);
  };
  switch (dtype) {
    case 'F32': need(isFloat, 'a Float32Array or Float64Array'); return bytesOf(f32());
    case 'F16': need(isFloat, 'a float array'); return bytesOf(f32ToF16Array(f32()));
    case 'BF16': need(isFloat, 'a float array'); return bytesOf(f32ToBf16Array(f32()));
    case 'F64': need(isFloat, 'a float array'); return bytesOf(d instanceof Float64Array ? d : Float64Array.from(d as Float32Array));
    case 'I64':
      if (d instanceof BigInt64Array) return bytesOf(d);
      need(d instanceof Int32Array, 'an Int32Array or BigInt64Array');
      return bytesOf(BigInt64Array.from(d as Int32Array, (v) => BigInt(v)));
    case 'I32': need(d instanceof Int32Array, 'an Int32Array'); return bytesOf(d);
    case 'I16': need(d instanceof Int16Array, 'an Int16Array'); return bytesOf(d);
    case 'I8': need(d instanceof Int8Array, 'an Int8Array'); return bytesOf(d);
    case 'U8': case 'BOOL':
      need(d instanceof Uint8Array, 'a Uint8Array');
      if (dtype === 'BOOL' && (d as Uint8Array).some((v) => v > 1)) throw new Error(`${what}: BOOL values must be 0 or 1`);
      return bytesOf(d);
  }
}

/**
 * Writes tensors to `file` atomically: a temp file next to it is written, fsynced and then moved
 * into place, so readers never see a partial file and an error leaves nothing behind. Refuses to
 * replace an existing file unless opts.force. Tensors are laid out by decreasing element size,
 * then name, so every tensor is aligned to its element size (the header is space-padded to a
 * multiple of 8, like the reference writer).
 */
export function writeSafetensors(
  file: string, tensors: Map<string, WriteTensor> | Record<string, WriteTensor>, opts: WriteOptions = {},
): void {
  checkHost();
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  if (!opts.force && fs.existsSync(file)) fail(file, 'already exists; refusing to overwrite it (use --force)');
  for (const [k, v] of Object.entries(opts.metadata ?? {})) {
    if (typeof v !== 'string') fail(file, `metadata "${k}" must be a string (JSON-encode other values)`);
  }
  const plan = entries.map(([name, t]) => {
    const what = `${file}: tensor "${name}"`;
    if (name === '' || name === '__metadata__') throw new Error(`${what}: invalid tensor name`);
    const n = numel(t.shape, () => what);
    const perName = typeof opts.dtype === 'object' ? opts.dtype[name] : opts.dtype;
    const dtype = t.dtype ?? perName ?? (typeof t.data === 'function' ? undefined : inferDType(t.data));
    if (!dtype || !WRITE_DTYPES.includes(dtype)) {
      throw new Error(`${what}: cannot write dtype ${dtype ?? '(none given, not inferable)'}; use one of ${WRITE_DTYPES.join(', ')}`);
    }
    return { name, t, n, dtype, what, bytes: n * DTYPE_BYTES[dtype] };
  });
  plan.sort((a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null); // so "__proto__" is a plain name
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let off = 0;
  for (const p of plan) {
    header[p.name] = { dtype: p.dtype, shape: p.t.shape, data_offsets: [off, off + p.bytes] };
    off += p.bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));

  atomicWrite(file, !!opts.force, (write) => {
    write(len);
    write(json);
    for (const p of plan) {
      const data = typeof p.t.data === 'function' ? p.t.data() : p.t.data;
      write(encode(data, p.dtype, p.n, p.what));
    }
  });
}
