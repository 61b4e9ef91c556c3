// Parquet files — how the Hugging Face Hub stores datasets (`train-00000-of-00001.parquet`) —
// read with hyparquet (and hyparquet-compressors: snappy, gzip, zstd, brotli, lz4) into rows of
// plain objects, of the columns a text corpus uses (TEXT_COLUMNS). Reading is asynchronous and the
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

const rowsOf = new Map<string, Record<string, unknown>[]>();

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
export async function preloadParquet(specs: readonly string[]): Promise<void> {
  for (const file of parquetFiles(specs)) {
    if (rowsOf.has(file)) continue;
    const bytes = fs.readFileSync(file);
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    let columns: string[];
    try {
      columns = parquetSchema(parquetMetadata(buf)).children.map((c) => c.element.name);
    } catch (e) {
      throw new DataError(file, undefined, `not a readable Parquet file (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
    const wanted = columns.filter((c) => (TEXT_COLUMNS as readonly string[]).includes(c));
    if (wanted.length === 0) {
      throw new DataError(file, undefined, `has no text column (columns: ${columns.join(', ')})`,
        `a text corpus needs one of ${TEXT_COLUMNS.join(', ')}; rename the column that holds the text to "text"`);
    }
    try {
      rowsOf.set(file, await parquetReadObjects({ file: buf, columns: wanted, compressors }) as Record<string, unknown>[]);
    } catch (e) {
      throw new DataError(file, undefined, `cannot read its columns ${wanted.join(', ')} (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
  }
}

/** The rows of a preloaded Parquet file (its TEXT_COLUMNS only). */
export function parquetRows(file: string): Record<string, unknown>[] {
  const rows = rowsOf.get(path.resolve(file));
  if (!rows) throw new Error(`${file}: a Parquet file must be read with preloadParquet before the corpus is loaded (a kdqat bug if a command did not)`);
  return rows;
}
