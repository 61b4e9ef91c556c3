// GGUF reader (layout: see gguf_format.ts, after ggml docs/gguf.md). Parses and validates the
// header, metadata and tensor infos with buffered positioned reads; tensor data is read on
// demand. Accepts versions 2 and 3 (v2 differs from v3 only by lacking big-endian support;
// v1 used 32-bit counts and is rejected). For tests and for inspecting exported files.
import * as fs from 'node:fs';
import { f16ToF32Array } from './half.js';
import { openFileChecked } from './files.js';
import {
  DEFAULT_ALIGNMENT, GGML_TYPES, MAX_DIMS, VALUE_TYPES, tensorBytes,
  type GgmlType, type GgufValue, type ScalarTypeName, type ValueTypeName,
} from './gguf_format.js';

export interface GgufTensorInfo {
  name: string;
  /** Row-major shape (PyTorch order) = GGML ne[] reversed. */
  shape: number[];
  /** GGML order as stored: ne[0] innermost. */
  ne: number[];
  type: GgmlType;
  /** Offset relative to the data section. */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  kv: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  /** Absolute file offset of the data section. */
  dataStart: number;
}

const TYPE_BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([k, v]) => [v.id, k as GgmlType]));
const VT_BY_ID = new Map<number, ValueTypeName>(Object.entries(VALUE_TYPES).map(([k, v]) => [v, k as ValueTypeName]));
const MAX_STRING = 1 << 30; // sanity bound; a larger length means a corrupt file
/** What to do about a damaged file, for every message below. */
const REDO = 'the file is damaged or not GGUF: re-export it (kdqat export --format gguf) or re-download it';

/** Sequential little-endian reads over a file descriptor, refilled in 1 MiB chunks. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufPos = 0; // file offset of buf[0]
  pos = 0;
  constructor(private fd: number, readonly size: number, readonly file: string) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.size) throw new Error(`${this.file}: unexpected end of file reading ${what} at byte ${this.pos} (truncated?); ${REDO}`);
    if (this.pos >= this.bufPos && this.pos + n <= this.bufPos + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    fs.readSync(this.fd, this.buf, 0, len, this.pos);
    this.bufPos = this.pos;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const s = this.pos - this.bufPos;
    this.pos += n;
    return this.buf.subarray(s, s + n);
  }
  u8(w: string): number { return this.bytes(1, w)[0]; }
  u32(w: string): number { return this.bytes(4, w).readUInt32LE(0); }
  u64(w: string): bigint { return this.bytes(8, w).readBigUInt64LE(0); }
  /** u64 that must fit a JS number (counts, lengths, offsets). */
  count(w: string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.u64(w);
    if (v > BigInt(max)) throw new Error(`${this.file}: ${w} = ${v} is implausible (> ${max}); ${REDO}`);
    return Number(v);
  }
  str(w: string): string {
    const n = this.count(`${w} length`, MAX_STRING);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(n, w));
    } catch {
      throw new Error(`${this.file}: ${w} is not valid UTF-8; ${REDO}`);
    }
  }
}

function readScalar(c: Cursor, t: ScalarTypeName, w: string): number | bigint | boolean | string {
  switch (t) {
    case 'u8': return c.u8(w);
    case 'i8': return c.bytes(1, w).readInt8(0);
    case 'u16': return c.bytes(2, w).readUInt16LE(0);
    case 'i16': return c.bytes(2, w).readInt16LE(0);
    case 'u32': return c.u32(w);
    case 'i32': return c.bytes(4, w).readInt32LE(0);
    case 'u64': return c.u64(w);
    case 'i64': return c.bytes(8, w).readBigInt64LE(0);
    case 'f32': return c.bytes(4, w).readFloatLE(0);
    case 'f64': return c.bytes(8, w).readDoubleLE(0);
    case 'string': return c.str(w);
    case 'bool': {
      const b = c.u8(w);
      // spec: "Anything else is invalid, and should be treated as ... the model being invalid"
      if (b > 1) throw new Error(`${c.file}: ${w} is a bool with byte value ${b} (must be 0 or 1); ${REDO}`);
      return b === 1;
    }
  }
}

function valueType(c: Cursor, w: string): ValueTypeName {
  const id = c.u32(`${w} type`);
  const t = VT_BY_ID.get(id);
  if (!t) throw new Error(`${c.file}: ${w} has unknown value type ${id} (known: 0..12); ${REDO}`);
  return t;
}

function readValue(c: Cursor, t: ValueTypeName, w: string): GgufValue {
  if (t !== 'array') return { type: t, value: readScalar(c, t, w) } as GgufValue;
  const itemType = valueType(c, `${w} item`);
  const n = c.count(`${w} length`, c.size); // every item takes ≥ 1 byte
  if (itemType === 'array') {
    const items: GgufValue[] = [];
    for (let i = 0; i < n; i++) items.push(readValue(c, 'array', `${w}[${i}]`));
    return { type: 'array', itemType, value: items };
  }
  const items: (number | bigint | boolean | string)[] = new Array(n);
  for (let i = 0; i < n; i++) items[i] = readScalar(c, itemType, `${w}[${i}]`);
  return { type: 'array', itemType, value: items };
}

/** Parses and validates a GGUF file's header, metadata and tensor infos. */
export function readGgufHeader(file: string): GgufFile {
  const fd = openFileChecked(file);
  try {
    const c = new Cursor(fd, fs.fstatSync(fd).size, file);
    if (c.size < 24) throw new Error(`${file}: ${c.size} bytes is too short for a GGUF header; ${REDO}`);
    const magic = c.bytes(4, 'magic').toString('latin1');
    if (magic !== 'GGUF') throw new Error(`${file}: magic is ${JSON.stringify(magic)}, not "GGUF"; ${REDO}`);
    const version = c.u32('version');
    if (version !== 2 && version !== 3) throw new Error(`${file}: GGUF version ${version} is not supported (2 or 3): re-export it with a current converter`);
    const nTensors = c.count('tensor_count', c.size);
    const nKv = c.count('metadata_kv_count', c.size);
    const kv = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str(`metadata key #${i}`);
      if (kv.has(key)) throw new Error(`${file}: duplicate metadata key ${key}; ${REDO}`);
      kv.set(key, readValue(c, valueType(c, `metadata ${key}`), `metadata ${key}`));
    }
    const al = kv.get('general.alignment');
    let alignment = DEFAULT_ALIGNMENT;
    if (al) {
      if (al.type !== 'u32' || al.value === 0 || al.value % 8 !== 0) {
        throw new Error(`${file}: general.alignment must be a u32 multiple of 8, got ${al.type} ${String(al.value)}; ${REDO}`);
      }
      alignment = al.value;
    }
    const tensors = new Map<string, GgufTensorInfo>();
    for (let i = 0; i < nTensors; i++) {
      const name = c.str(`tensor #${i} name`);
      const w = `tensor "${name}"`;
      if (tensors.has(name)) throw new Error(`${file}: duplicate ${w}; ${REDO}`);
      const nd = c.u32(`${w} n_dims`);
      if (nd < 1 || nd > MAX_DIMS) throw new Error(`${file}: ${w} has ${nd} dimensions (1..${MAX_DIMS} allowed); ${REDO}`);
      const ne: number[] = [];
      for (let d = 0; d < nd; d++) ne.push(c.count(`${w} ne[${d}]`));
      const tid = c.u32(`${w} type`);
      const type = TYPE_BY_ID.get(tid);
      if (!type) throw new Error(`${file}: ${w} has ggml type ${tid}, which kdqat cannot read (supported: ${[...TYPE_BY_ID.values()].join(', ')}); ${REDO}`);
      const offset = c.count(`${w} offset`);
      if (offset % alignment !== 0) throw new Error(`${file}: ${w} offset ${offset} is not a multiple of the alignment ${alignment}; ${REDO}`);
      const shape = [...ne].reverse();
      tensors.set(name, { name, shape, ne, type, offset, bytes: tensorBytes(type, shape, `${file}: ${w}`) });
    }
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const dataLen = c.size - dataStart;
    const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 0; i < sorted.length; i++) {
      const t = sorted[i], end = t.offset + t.bytes;
      if (end > dataLen) throw new Error(`${file}: tensor "${t.name}" [${t.offset}, ${end}) runs past the ${dataLen}-byte data section (truncated?); ${REDO}`);
      if (i + 1 < sorted.length && end > sorted[i + 1].offset) throw new Error(`${file}: tensor "${t.name}" overlaps "${sorted[i + 1].name}"; ${REDO}`);
    }
    return { path: file, version, kv, tensors, alignment, dataStart };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads one tensor: F32/F16 → Float32Array (row-major of info.shape); quantized → raw bytes. */
export function readGgufTensor(g: GgufFile, name: string): Float32Array | Uint8Array {
  const t = g.tensors.get(name);
  if (!t) throw new Error(`${g.path}: no tensor "${name}" (has ${[...g.tensors.keys()].slice(0, 8).join(', ')}${g.tensors.size > 8 ? ', …' : ''})`);
  const raw = new Uint8Array(t.bytes);
  const fd = fs.openSync(g.path, 'r');
  try {
    for (let done = 0; done < raw.length;) {
      const n = fs.readSync(fd, raw, done, Math.min(1 << 30, raw.length - done), g.dataStart + t.offset + done);
      if (n === 0) throw new Error(`${g.path}: unexpected end of file in tensor "${name}"; ${REDO}`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (t.type === 'F32') return new Float32Array(raw.buffer);
  if (t.type === 'F16') return f16ToF32Array(new Uint16Array(raw.buffer));
  return raw;
}

/** A metadata value as a plain JS value (arrays unwrapped), or undefined. */
export function ggufGet(g: GgufFile, key: string): unknown {
  const v = g.kv.get(key);
  if (!v) return undefined;
  const plain = (x: GgufValue): unknown => (x.type === 'array' && x.itemType === 'array' ? (x.value as GgufValue[]).map(plain) : x.value);
  return plain(v);
}
