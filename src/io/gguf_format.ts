// GGUF v3 container: typed metadata key/values and tensors, after the spec
// (ggml docs/gguf.md, "File Structure"):
//   header   : magic "GGUF" (bytes 47 47 55 46) · u32 version (3) · u64 tensor_count · u64 kv_count
//   kv       : kv_count × (gguf_string key · u32 value_type · value)
//   infos    : tensor_count × (gguf_string name · u32 n_dims · u64 ne[n_dims] · u32 ggml_type · u64 offset)
//   padding  : zeros up to a multiple of ALIGNMENT (general.alignment, default 32)
//   data     : each tensor at `offset` from here, offsets multiples of ALIGNMENT, zero padding between.
// gguf_string = u64 byte length + UTF-8 bytes (no NUL). Everything little-endian.
// Dimensions are in GGML order: ne[0] is the innermost (contiguous) one, so a row-major PyTorch
// shape [out, in] is written as ne = [in, out]. Callers here always pass row-major shapes.
import * as fs from 'node:fs';
import { f32ToF16Array } from './half.js';
import { atomicWrite } from './atomic.js';

/** ggml_type ids and block layouts (ggml docs/gguf.md `enum ggml_type`; sizes as gguf-py's
 *  GGML_QUANT_SIZES: a block of `blockSize` elements takes `typeSize` bytes). The block formats'
 *  bytes come from src/quant/formats.ts (see gguf.ts). */
export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4 },
  F16: { id: 1, blockSize: 1, typeSize: 2 },
  Q4_0: { id: 2, blockSize: 32, typeSize: 2 + 16 }, // f16 scale + 32 × 4-bit
  Q8_0: { id: 8, blockSize: 32, typeSize: 2 + 32 }, // f16 scale + 32 × int8
  Q2_K: { id: 10, blockSize: 256, typeSize: 16 + 64 + 4 }, // 16 × (4-bit scale, min), 2-bit codes, f16 d, dmin
  Q3_K: { id: 11, blockSize: 256, typeSize: 32 + 64 + 12 + 2 }, // high bits, 2 low bits, 16 × 6-bit scales, f16 d
  Q4_K: { id: 12, blockSize: 256, typeSize: 4 + 12 + 128 }, // f16 d, dmin, 8 × 6-bit (scale, min), 4-bit codes
  Q5_K: { id: 13, blockSize: 256, typeSize: 4 + 12 + 32 + 128 }, // as Q4_K + 5th bits
  Q6_K: { id: 14, blockSize: 256, typeSize: 128 + 64 + 16 + 2 }, // 4 + 2 bits, 16 × int8 scales, f16 d
  TQ2_0: { id: 35, blockSize: 256, typeSize: 64 + 2 }, // 256 × 2-bit + f16 scale
} as const;
export type GgmlType = keyof typeof GGML_TYPES;

/** gguf_metadata_value_type ids (spec). */
export const VALUE_TYPES = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type ValueTypeName = keyof typeof VALUE_TYPES;
export type ScalarTypeName = Exclude<ValueTypeName, 'array'>;

/** A typed metadata value. 64-bit integers are read back as bigint; writing accepts numbers. */
export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: ScalarTypeName; value: readonly (number | bigint | boolean | string)[] }
  | { type: 'array'; itemType: 'array'; value: readonly GgufValue[] };

export const DEFAULT_ALIGNMENT = 32; // spec: "If the alignment is not specified, assume it is 32"
export const MAX_DIMS = 4; // spec: n_dimensions "currently at most 4" (GGML_MAX_DIMS)

const INT_RANGES: Record<string, [number, number]> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};

// ---- encoding -----------------------------------------------------------------------------------

/** Appends little-endian bytes to a growing list of chunks. */
class Sink {
  chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
}

function scalar(sink: Sink, type: ScalarTypeName, v: unknown, what: string): void {
  const bad = (need: string): never => { throw new Error(`${what}: ${need}, got ${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)}`); };
  if (type === 'string') return typeof v === 'string' ? sink.str(v) : bad('a string');
  if (type === 'bool') return typeof v === 'boolean' ? sink.push(Buffer.of(v ? 1 : 0)) : bad('a boolean');
  if (type === 'f32' || type === 'f64') {
    if (typeof v !== 'number') bad('a number');
    const b = Buffer.alloc(type === 'f32' ? 4 : 8);
    if (type === 'f32') b.writeFloatLE(v as number); else b.writeDoubleLE(v as number);
    return sink.push(b);
  }
  if (type === 'u64' || type === 'i64') {
    if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) bad('an integer');
    const big = BigInt(v as number | bigint), b = Buffer.alloc(8);
    const ok = type === 'u64' ? big >= 0n && big < 1n << 64n : big >= -(1n << 63n) && big < 1n << 63n;
    if (!ok) bad(`a value in ${type} range`);
    if (type === 'u64') b.writeBigUInt64LE(big); else b.writeBigInt64LE(big);
    return sink.push(b);
  }
  const [lo, hi] = INT_RANGES[type];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(`an integer in ${type} range [${lo}, ${hi}]`);
  const b = Buffer.alloc(type.endsWith('8') ? 1 : type.endsWith('16') ? 2 : 4);
  ({ u8: () => b.writeUInt8(v as number), i8: () => b.writeInt8(v as number), u16: () => b.writeUInt16LE(v as number),
    i16: () => b.writeInt16LE(v as number), u32: () => b.writeUInt32LE(v as number), i32: () => b.writeInt32LE(v as number) })[type]();
  sink.push(b);
}

function value(sink: Sink, v: GgufValue, what: string): void {
  if (v.type !== 'array') return scalar(sink, v.type, v.value, what);
  if (!Object.hasOwn(VALUE_TYPES, v.itemType)) throw new Error(`${what}: unknown array item type ${v.itemType}`);
  sink.u32(VALUE_TYPES[v.itemType]);
  sink.u64(v.value.length);
  v.value.forEach((x, i) => {
    if (v.itemType !== 'array') return scalar(sink, v.itemType, x, `${what}[${i}]`);
    // A nested item is a bare array value (its own item type + length + items): the outer
    // array's item type already says "array" (spec: "Arrays can be nested").
    const inner = x as GgufValue;
    if (inner?.type !== 'array') throw new Error(`${what}[${i}]: an array of arrays needs array items`);
    value(sink, inner, `${what}[${i}]`);
  });
}

/** One tensor to write. `shape` is row-major (PyTorch order); written reversed as GGML ne[].
 *  data: F32 → Float32Array; F16 → Float32Array (rounded to nearest even) or Uint16Array bits;
 *  quantized → the raw blocks as Uint8Array. A thunk is called once, when its bytes are written. */
export interface GgufTensorIn {
  name: string;
  shape: readonly number[];
  type: GgmlType;
  data: Float32Array | Uint16Array | Uint8Array | (() => Float32Array | Uint16Array | Uint8Array);
}

/** Bytes of a tensor of `type` with row-major `shape` (the last dim must be whole blocks). */
export function tensorBytes(type: GgmlType, shape: readonly number[], what = 'tensor'): number {
  const t = GGML_TYPES[type];
  const inner = shape.length ? shape[shape.length - 1] : 1;
  if (inner % t.blockSize !== 0) {
    throw new Error(`${what}: innermost dimension ${inner} is not a multiple of the ${type} block size ${t.blockSize}`);
  }
  return (shape.reduce((a, b) => a * b, 1) / t.blockSize) * t.typeSize;
}

function encodeTensor(t: GgufTensorIn, bytes: number, what: string): Uint8Array {
  const d = typeof t.data === 'function' ? t.data() : t.data;
  let out: Uint8Array;
  if (t.type === 'F32') {
    if (!(d instanceof Float32Array)) throw new Error(`${what}: F32 data must be a Float32Array`);
    out = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  } else if (t.type === 'F16') {
    const h = d instanceof Float32Array ? f32ToF16Array(d) : d instanceof Uint16Array ? d : null;
    if (!h) throw new Error(`${what}: F16 data must be a Float32Array or Uint16Array of f16 bits`);
    out = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  } else {
    if (!(d instanceof Uint8Array)) throw new Error(`${what}: ${t.type} data must be the raw blocks as a Uint8Array`);
    out = d;
  }
  if (out.byteLength !== bytes) throw new Error(`${what}: ${out.byteLength} bytes of data, ${t.type} [${t.shape.join(', ')}] needs ${bytes}`);
  return out;
}

export interface GgufWriteOptions {
  /** Metadata in file order. general.alignment is added (u32) unless given. */
  kv: readonly (readonly [string, GgufValue])[];
  tensors: readonly GgufTensorIn[];
  alignment?: number;
  /** Replace an existing file. */
  force?: boolean;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Writes a GGUF v3 file atomically (temp file in the same directory, fsync, then link/rename);
 *  refuses to replace an existing file unless `force`. Tensors are written one at a time. */
export function writeGguf(file: string, opts: GgufWriteOptions): void {
  const align = opts.alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(align) || align <= 0 || align % 8 !== 0) throw new Error(`${file}: alignment ${align} must be a positive multiple of 8 (spec)`);
  if (!opts.force && fs.existsSync(file)) throw new Error(`${file}: already exists; refusing to overwrite it (use --force)`);
  const kv = [...opts.kv];
  const given = kv.find(([k]) => k === 'general.alignment');
  if (!given) kv.push(['general.alignment', { type: 'u32', value: align }]);
  else if (given[1].type !== 'u32' || given[1].value !== align) throw new Error(`${file}: general.alignment must be u32 ${align}`);
  const keys = new Set<string>();
  const head = new Sink();
  head.push(Buffer.from('GGUF', 'latin1'));
  head.u32(3);
  head.u64(opts.tensors.length);
  head.u64(kv.length);
  for (const [k, v] of kv) {
    // spec: keys are ASCII, lower_snake_case segments separated by '.', at most 65535 bytes
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(k) || k.length > 65535) throw new Error(`${file}: invalid metadata key ${JSON.stringify(k)}`);
    if (keys.has(k)) throw new Error(`${file}: duplicate metadata key ${k}`);
    keys.add(k);
    head.str(k);
    head.u32(VALUE_TYPES[v.type]);
    value(head, v, `${file}: metadata ${k}`);
  }
  const names = new Set<string>();
  let off = 0;
  const plan = opts.tensors.map((t) => {
    const what = `${file}: tensor "${t.name}"`;
    if (!Object.hasOwn(GGML_TYPES, t.type)) throw new Error(`${what}: unknown type ${t.type} (known: ${Object.keys(GGML_TYPES).join(', ')})`);
    if (Buffer.byteLength(t.name) > 64) throw new Error(`${what}: name longer than 64 bytes (spec limit)`);
    if (names.has(t.name)) throw new Error(`${what}: duplicate tensor name`);
    names.add(t.name);
    if (t.shape.length < 1 || t.shape.length > MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new Error(`${what}: shape [${t.shape.join(', ')}] must have 1..${MAX_DIMS} positive dimensions`);
    }
    const bytes = tensorBytes(t.type, t.shape, what);
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d); // GGML order: ne[0] innermost
    head.u32(GGML_TYPES[t.type].id);
    head.u64(off);
    const p = { t, bytes, offset: off, what };
    off = alignUp(off + bytes, align);
    return p;
  });
  const pad = alignUp(head.length, align) - head.length;
  head.push(Buffer.alloc(pad));
  atomicWrite(file, !!opts.force, (write) => {
    for (const c of head.chunks) write(c);
    let pos = 0;
    for (const p of plan) {
      if (p.offset > pos) write(Buffer.alloc(p.offset - pos));
      write(encodeTensor(p.t, p.bytes, p.what));
      pos = p.offset + p.bytes;
    }
    if (off > pos) write(Buffer.alloc(off - pos)); // pad the last tensor too, like gguf-py
  });
}

