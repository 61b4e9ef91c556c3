// Tabular dataset files — Parquet (how the Hugging Face Hub stores datasets:
// `train-00000-of-00001.parquet`) and Arrow IPC (what `datasets`' save_to_disk writes:
// `data-00000-of-00001.arrow`, and its cache) — read into rows of plain objects: the columns a
// text corpus uses (TEXT_COLUMNS), or all of a labelled file's (classification, multiple choice;
// int64 as numbers). A format is one file and one line of FORMATS. Reading is asynchronous and the
// data layer is not: a command preloads the table files of its inputs (preloadTables) before it
// builds its data, and the loaders take the rows from here (tableRows).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors.js';
import { parquetFormat } from './parquet.js';
import { arrowFormat } from './arrow.js';

/** The columns a text corpus reads: "text" or "content", or a conversation (chat.ts). */
export const TEXT_COLUMNS = ['text', 'content', 'messages', 'conversations', 'prompt', 'completion'] as const;

/** Which columns a loader needs: a text corpus's (TEXT_COLUMNS), or every column (a labelled file:
 *  classification or multiple choice, whose fields depend on the dataset; a text corpus whose
 *  text is in a column the user names, --text-field). */
export type TableColumns = 'text' | 'all';

/** The columns a text corpus reads: its own (TEXT_COLUMNS), or all when the user names the field. */
export const textColumns = (field?: string): TableColumns => (field ? 'all' : 'text');

/** One table file format. */
export interface TableFormat {
  name: string;
  /** Its files, by name. */
  test(file: string): boolean;
  /** The file's column names, or an Error when it is not a readable file of the format. */
  columns(bytes: Uint8Array): string[];
  /** The rows of the named columns (values as the format's reader gives them; plain() follows). */
  rows(bytes: Uint8Array, columns: string[]): Promise<Record<string, unknown>[]>;
}

const FORMATS: readonly TableFormat[] = [parquetFormat, arrowFormat];

const formatOf = (f: string): TableFormat | undefined => FORMATS.find((x) => x.test(f));
export const isTableFile = (f: string): boolean => formatOf(f) !== undefined;

const rowsOf = new Map<string, Record<string, unknown>[]>();
const key = (file: string, columns: TableColumns): string => `${columns}:${path.resolve(file)}`;

/** int64 columns (Hugging Face's ClassLabel) come back as BigInt: numbers where exact, else text. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Every table file among `specs` (files, or directories searched recursively). */
function tableFiles(specs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    else if (st?.isFile() && isTableFile(p)) out.push(path.resolve(p));
  };
  for (const s of specs) walk(s);
  return out;
}

/** Reads the table files among `specs` (not yet read) into memory for tableRows. */
export async function preloadTables(specs: readonly string[], columns: TableColumns = 'text'): Promise<void> {
  for (const file of tableFiles(specs)) {
    if (rowsOf.has(key(file, columns))) continue;
    const format = formatOf(file)!;
    const bytes = fs.readFileSync(file);
    let names: string[];
    try {
      names = format.columns(bytes);
    } catch (e) {
      throw new DataError(file, undefined, `not a readable ${format.name} file (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
    const wanted = names.filter((c) => columns === 'all' || (TEXT_COLUMNS as readonly string[]).includes(c));
    if (wanted.length === 0) {
      throw new DataError(file, undefined, `has no text column (columns: ${names.join(', ')})`,
        `a text corpus needs one of ${TEXT_COLUMNS.join(', ')}; rename the column that holds the text to "text"`);
    }
    try {
      const rows = await format.rows(bytes, wanted);
      rowsOf.set(key(file, columns), rows.map((r) => plain(r) as Record<string, unknown>));
    } catch (e) {
      throw new DataError(file, undefined, `cannot read its columns ${wanted.join(', ')} (${(e as Error).message})`, 'check that the download is complete, or convert it to JSON Lines');
    }
  }
}

/** The rows of a preloaded table file (its TEXT_COLUMNS, or every column). */
export function tableRows(file: string, columns: TableColumns = 'text'): Record<string, unknown>[] {
  const rows = rowsOf.get(key(file, columns));
  if (!rows) throw new Error(`${file}: a table file must be read with preloadTables before the corpus is loaded (a kdqat bug if a command did not)`);
  return rows;
}
