// Arrow IPC files (tables.ts): the stream format `datasets`' save_to_disk and its cache write
// (`data-00000-of-00001.arrow`), read with apache-arrow (whose reader takes the IPC file format
// as well).
// Lists, structs and dictionary-encoded columns come back as plain arrays, objects and values.
import { tableFromIPC, type Table } from 'apache-arrow';
import type { TableFormat } from './tables.js';

/** Vectors (lists) and struct rows as arrays and objects, recursively. */
function plainArrow(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Date || ArrayBuffer.isView(v)) return v;
  const o = v as { toJSON?: () => unknown };
  if (typeof o.toJSON === 'function') return plainArrow(o.toJSON());
  if (Array.isArray(v)) return v.map(plainArrow);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainArrow(x)]));
}

const tables = new WeakMap<Uint8Array, Table>();
function table(bytes: Uint8Array): Table {
  let t = tables.get(bytes);
  if (!t) tables.set(bytes, t = tableFromIPC(bytes));
  return t;
}

export const arrowFormat: TableFormat = {
  name: 'Arrow',
  test: (f) => /\.arrow$/i.test(f),
  columns: (bytes) => {
    const t = table(bytes);
    if (t.schema.fields.length === 0) throw new Error('no schema: not an Arrow IPC stream or file');
    // A stream cut between two messages still parses, with fewer rows; its writers (Arrow ≥ 0.15,
    // whose messages start with 0xFFFFFFFF) end it with the end-of-stream marker 0xFFFFFFFF, 0.
    const u32 = (at: number): number => new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
    if (u32(0) === 0xffffffff && (u32(bytes.length - 8) !== 0xffffffff || u32(bytes.length - 4) !== 0)) {
      throw new Error('the stream ends without its end-of-stream marker: the file is cut short');
    }
    return t.schema.fields.map((f) => f.name);
  },
  rows: async (bytes, columns) => {
    const t = table(bytes).select(columns);
    const out: Record<string, unknown>[] = [];
    for (const row of t) out.push(plainArrow(row) as Record<string, unknown>);
    return out;
  },
};
