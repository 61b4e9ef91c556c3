// Fuzz cases over GGUF files. kdqat writes GGUF (`kdqat export --format gguf`) and reads it back
// only through its library reader (src/io/gguf_read.ts: tests, inspecting exports), so each case
// runs that reader as a user of the library would: the header, then every tensor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../../src/tensor/rng.js';
import { readGgufHeader, readGgufTensor } from '../../src/io/gguf_read.js';
import type { Base } from './base.js';
import type { FuzzCase } from './case.js';

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

/** Byte positions of a GGUF file's fields (gguf_format.ts layout), to mutate them in place. */
interface Layout {
  nTensorsAt: number; nKvAt: number;
  kv: { key: string; keyLenAt: number; typeAt: number; valueAt: number; type: number }[];
  tensors: { name: string; nameLenAt: number; nDimsAt: number; neAt: number; typeAt: number; offsetAt: number }[];
  end: number;
}

function layout(b: Buffer): Layout {
  let p = 24;
  const nT = Number(b.readBigUInt64LE(8)), nKv = Number(b.readBigUInt64LE(16));
  const str = (): string => { const n = Number(b.readBigUInt64LE(p)); const s = b.subarray(p + 8, p + 8 + n).toString('utf8'); p += 8 + n; return s; };
  const SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t: number): void => {
    if (t === 8) { str(); return; }
    if (t === 9) { const it = b.readUInt32LE(p); const n = Number(b.readBigUInt64LE(p + 4)); p += 12; for (let i = 0; i < n; i++) skip(it); return; }
    p += SIZE[t];
  };
  const kv: Layout['kv'] = [];
  for (let i = 0; i < nKv; i++) {
    const keyLenAt = p;
    const key = str();
    const typeAt = p, type = b.readUInt32LE(p);
    p += 4;
    const valueAt = p;
    skip(type);
    kv.push({ key, keyLenAt, typeAt, valueAt, type });
  }
  const tensors: Layout['tensors'] = [];
  for (let i = 0; i < nT; i++) {
    const nameLenAt = p;
    const name = str();
    const nDimsAt = p, nd = b.readUInt32LE(p);
    p += 4;
    const neAt = p;
    p += 8 * nd;
    const typeAt = p;
    p += 4;
    const offsetAt = p;
    p += 8;
    tensors.push({ name, nameLenAt, nDimsAt, neAt, typeAt, offsetAt });
  }
  return { nTensorsAt: 8, nKvAt: 16, kv, tensors, end: p };
}

type GMut = (b: Buffer, L: Layout, r: Rng) => string | string[] | null;
const GGUF_MUTATIONS: Record<string, GMut> = {
  magic: (b, _L, r) => { b.write(pick(r, ['GGML', 'gguf', 'FUGG', '\0\0\0\0']), 0, 'latin1'); return 'magic'; },
  version: (b, _L, r) => { b.writeUInt32LE(pick(r, [0, 1, 4, 0xffffffff]), 4); return 'version'; },
  'tensor-count-huge': (b, L, r) => { b.writeBigUInt64LE(pick(r, [1n << 40n, (1n << 64n) - 1n, BigInt(b.length)]), L.nTensorsAt); return 'tensor'; },
  'kv-count-huge': (b, L, r) => { b.writeBigUInt64LE(pick(r, [1n << 40n, (1n << 64n) - 1n, BigInt(b.length)]), L.nKvAt); return 'metadata'; },
  'kv-count-high': (b, L, r) => { b.writeBigUInt64LE(BigInt(L.kv.length + 1 + r.int(5)), L.nKvAt); return []; },
  'key-length-huge': (b, L, r) => { const k = pick(r, L.kv); b.writeBigUInt64LE(pick(r, [1n << 31n, 1n << 62n, BigInt(b.length)]), k.keyLenAt); return 'metadata key'; },
  'value-type-unknown': (b, L, r) => { const k = pick(r, L.kv); b.writeUInt32LE(13 + r.int(1000), k.typeAt); return k.key; },
  'bool-invalid': (b, L, r) => { const ks = L.kv.filter((k) => k.type === 7); if (!ks.length) return null; const k = pick(r, ks); b[k.valueAt] = 2 + r.int(250); return k.key; },
  'string-length-huge': (b, L, r) => { const ks = L.kv.filter((k) => k.type === 8); const k = pick(r, ks); b.writeBigUInt64LE(pick(r, [1n << 40n, BigInt(b.length)]), k.valueAt); return k.key; },
  'string-bad-utf8': (b, L, r) => { const ks = L.kv.filter((k) => k.type === 8 && b.readBigUInt64LE(k.valueAt) > 0n); const k = pick(r, ks); b[k.valueAt + 8] = 0xff; return k.key; },
  'array-length-huge': (b, L, r) => { const ks = L.kv.filter((k) => k.type === 9); if (!ks.length) return null; const k = pick(r, ks); b.writeBigUInt64LE(pick(r, [1n << 40n, BigInt(b.length)]), k.valueAt + 4); return k.key; },
  'array-item-type': (b, L, r) => { const ks = L.kv.filter((k) => k.type === 9); if (!ks.length) return null; const k = pick(r, ks); b.writeUInt32LE(13 + r.int(100), k.valueAt); return k.key; },
  'alignment-bad': (b, L, r) => { const k = L.kv.find((x) => x.key === 'general.alignment'); if (!k) return null; b.writeUInt32LE(pick(r, [0, 7, 3, 12]), k.valueAt); return 'alignment'; },
  'tensor-name-length-huge': (b, L, r) => { const t = pick(r, L.tensors); b.writeBigUInt64LE(pick(r, [1n << 33n, BigInt(b.length)]), t.nameLenAt); return 'tensor'; },
  'n-dims-bad': (b, L, r) => { const t = pick(r, L.tensors); b.writeUInt32LE(pick(r, [0, 5, 1000, 0xffffffff]), t.nDimsAt); return t.name; },
  'ne-huge': (b, L, r) => { const t = pick(r, L.tensors); b.writeBigUInt64LE(pick(r, [1n << 40n, (1n << 63n), 1n << 53n]), t.neAt); return t.name; },
  'ggml-type-unknown': (b, L, r) => { const t = pick(r, L.tensors); b.writeUInt32LE(pick(r, [4, 5, 31, 99, 0xffff]), t.typeAt); return t.name; },
  'offset-misaligned': (b, L, r) => { const t = pick(r, L.tensors); b.writeBigUInt64LE(b.readBigUInt64LE(t.offsetAt) + BigInt(1 + r.int(31)), t.offsetAt); return t.name; },
  'offset-past-end': (b, L, r) => { const t = pick(r, L.tensors); b.writeBigUInt64LE(BigInt(Math.ceil((b.length + r.int(1 << 20)) / 32) * 32), t.offsetAt); return t.name; },
  'offset-overlap': (b, L, r) => {
    const i = 1 + r.int(L.tensors.length - 1);
    b.writeBigUInt64LE(b.readBigUInt64LE(L.tensors[i - 1].offsetAt), L.tensors[i].offsetAt);
    return 'overlaps';
  },
  'duplicate-key': (b, L, r) => {
    const ks = L.kv.filter((k, i) => i > 0 && k.key.length === L.kv[i - 1].key.length);
    if (!ks.length) return null;
    const k = pick(r, ks);
    const prev = L.kv[L.kv.indexOf(k) - 1];
    b.write(prev.key, k.keyLenAt + 8, 'utf8');
    return 'duplicate';
  },
};

/** 'truncated-header' cuts the file, the others edit in place; both apply to a copy of base.gguf. */
function mutated(src: Buffer, what: string, seed: number): { bytes: Buffer; field: string | string[] } | null {
  const b = Buffer.from(src);
  const L = layout(b);
  const r = new Rng(seed);
  if (what === 'truncated-header' || what === 'truncated-data') {
    const n = what === 'truncated-header' ? 1 + r.int(L.end - 1) : L.end + 1 + r.int(b.length - L.end - 2);
    return { bytes: b.subarray(0, n), field: [] };
  }
  const field = GGUF_MUTATIONS[what](b, L, r);
  return field === null ? null : { bytes: b, field };
}

/** Opens the file and reads every tensor, as a library user inspecting it would. */
function readAll(file: string): void {
  const g = readGgufHeader(file);
  for (const name of g.tensors.keys()) readGgufTensor(g, name);
}

export function ggufCases(rng: Rng, base: Base, out: FuzzCase[], count: number): void {
  const src = fs.readFileSync(base.gguf);
  const muts = [...Object.keys(GGUF_MUTATIONS), 'truncated-header', 'truncated-data'];
  for (let n = 0; out.length < count; n++) {
    const what = muts[n % muts.length];
    const seed = rng.nextU32();
    const r = mutated(src, what, seed);
    if (!r) continue;
    out.push({
      id: `gguf/${what}/read#${n}`, category: 'gguf', expect: 'error', file: 'model.gguf', field: ([] as string[]).concat(r.field).join('\u0000'),
      setup(ws) { fs.writeFileSync(path.join(ws, 'model.gguf'), mutated(src, what, seed)!.bytes); },
      run: { call: (ws) => readAll(path.join(ws, 'model.gguf')) },
    });
  }
}
