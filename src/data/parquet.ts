// Parquet files — how the Hugging Face Hub stores datasets (`train-00000-of-00001.parquet`) —
// read with hyparquet (and hyparquet-compressors: snappy, gzip, zstd, brotli, lz4) into rows of
// plain objects: the columns a text corpus uses (TEXT_COLUMNS), or all of a labelled file's
// (classification, multiple choice; int64 as numbers). Reading is asynchronous and the
// data layer is not: a command preloads the Parquet files of its inputs (preloadParquet) before it
// builds its data, and the loaders take the rows from here (parquetRows).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError } from './errors.js';

export const isParquet = (f: string): boolean => /\.parquet$/i.test(f);

/** The columns a text corpus reads: "text" or "content", or a conversation (chat.ts). */
export const TEXT_COLUMNS = ['text', 'content', 'messages', 'conversations', 'prompt', 'completion'] as const;

/** Which columns a loader needs: a text corpus's (TEXT_COLUMNS), or every column (a labelled file:
 *  classification or multiple choice, whose fields depend on the dataset). */
export type ParquetColumns = 'text' | 'all';

const rowsOf = new Map<string, Record<string, unknown>[]>();
const key = (file: string, columns: ParquetColumns): string => `${columns}:${path.resolve(file)}`;

/** int64 columns (Hugging Face's ClassLabel) come back as BigInt: numbers where exact, else text. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Every .parquet file among `specs` (files, or directories searched recursively). */
function parquetFiles(specs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    else if (st?.isFile() && isParquet(p)) out.push(path.resolve(p));
  };
  for (const s of specs) walk(s);
  return out;
}

/** Reads the Parquet files among `specs` (not yet read) into memory for parquetRows. */
export async function preloadParquet(specs: readonly string[], columns: ParquetColumns = 'text'): Promise<void> {
  for (const file of parquetFiles(specs)) {
    if (rowsOf.has(key(file, columns))) continue;
    const bytes = fs.readFileSync(file);
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    let names: string[];
    try {
      names = parquetSchema(parquetMetadata(buf)).children.map((c) => c.element.name);
    } catch (e) {
      throw new DataError(file, undefined, `not a readable Parquet file (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
    const wanted = names.filter((c) => columns === 'all' || (TEXT_COLUMNS as readonly string[]).includes(c));
    if (wanted.length === 0) {
      throw new DataError(file, undefined, `has no text column (columns: ${names.join(', ')})`,
        `a text corpus needs one of ${TEXT_COLUMNS.join(', ')}; rename the column that holds the text to "text"`);
    }
    try {
      const rows = await parquetReadObjects({ file: buf, columns: wanted, compressors }) as Record<string, unknown>[];
      rowsOf.set(key(file, columns), rows.map((r) => plain(r) as Record<string, unknown>));
    } catch (e) {
      throw new DataError(file, undefined, `cannot read its columns ${wanted.join(', ')} (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
  }
}

/** The rows of a preloaded Parquet file (its TEXT_COLUMNS, or every column). */
export function parquetRows(file: string, columns: ParquetColumns = 'text'): Record<string, unknown>[] {
  const rows = rowsOf.get(key(file, columns));
  if (!rows) throw new Error(`${file}: a Parquet file must be read with preloadParquet before the corpus is loaded (a kdqat bug if a command did not)`);
  return rows;
}
