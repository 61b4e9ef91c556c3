// Plain-text corpora from the user's own files: one UTF-8 file (documents = blank-line-separated
// blocks), a JSON Lines file of {"text": …} objects (one document per line: what Hugging Face
// datasets' to_json writes) or of conversations (chat.ts), a Parquet or Arrow file (tables.ts), or a
// directory of .txt files (one document per file), .jsonl, .parquet and .arrow files (one per line or
// row), searched recursively; a text file may be gzipped (.gz) or zstd-compressed (.zst).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { DataError } from './errors.js';
import { CHAT_LAYOUTS, chatLayoutOf, chatLineText, type ChatRenderer } from './chat.js';
import { isTableFile, tableRows, textColumns } from './tables.js';
import { readJsonLines } from './jsonl.js';
import { splitParagraphs } from './sentences.js';
import type { Corpus, Document } from './types.js';

/** Byte offset of the first invalid UTF-8 sequence (only called once isUtf8 said there is one). */
function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    const n = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    if (n > 0 && !isUtf8(buf.subarray(i, i + n + 1))) return i;
    i += n + 1;
  }
  return buf.length;
}

/** 'utf-16le' / 'utf-16be' when at least a quarter of the odd / even bytes among the first 4 KiB
 *  (and at least 8) are zero and the other positions have at most an eighth as many: what UTF-16
 *  text looks like (every Latin character has a zero high byte), and UTF-8 text never does. */
function utf16Guess(buf: Uint8Array): 'utf-16le' | 'utf-16be' | null {
  const n = Math.min(buf.length, 4096) & ~1;
  if (n < 4) return null;
  let even = 0, odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (buf[i] === 0) even++;
    if (buf[i + 1] === 0) odd++;
  }
  const half = n / 2;
  const enough = Math.max(8, half / 4);  // a stray NUL in a short file is not UTF-16
  if (odd >= enough && even <= odd / 8) return 'utf-16le';
  if (even >= enough && odd <= even / 8) return 'utf-16be';
  return null;
}

/** Read a file as UTF-8 text (or UTF-16 with a byte-order mark; gzip-compressed or not), strict:
 *  invalid bytes are an error naming the line, not U+FFFD. */
export function readUtf8File(file: string): string {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(file, undefined, 'file not found', 'check the path');
    if (code === 'EISDIR') throw new DataError(file, undefined, 'is a directory, expected a file');
    throw new DataError(file, undefined, `cannot read (${code ?? String(e)})`);
  }
  // gzip (corpus shards are often .txt.gz / .json.gz) and zstd (.jsonl.zst, as the Pile's and many
  // Hub datasets' shards ship): read through, whatever the name says.
  const zstd = buf[0] === 0x28 && buf[1] === 0xb5 && buf[2] === 0x2f && buf[3] === 0xfd;
  if ((buf[0] === 0x1f && buf[1] === 0x8b) || zstd) {
    try {
      buf = zstd ? Buffer.from(zstdDecompress(buf)) : gunzipSync(buf);
    } catch (e) {
      throw new DataError(file, undefined, `is ${zstd ? 'zstd' : 'gzip'}-compressed but does not decompress (${(e as Error).message})`,
        'the file is truncated or damaged: check its size, or download or copy it again');
    }
  }
  // UTF-16 with a byte-order mark (what Windows tools write as "Unicode text"): unambiguous, so
  // decoded, as strictly as UTF-8 (an unpaired surrogate is an error).
  const utf16 = buf[0] === 0xff && buf[1] === 0xfe ? 'utf-16le' : buf[0] === 0xfe && buf[1] === 0xff ? 'utf-16be' : null;
  if (utf16) {
    let text: string;
    try {
      text = new TextDecoder(utf16, { fatal: true }).decode(buf);
    } catch {
      throw new DataError(file, undefined, `starts with a ${utf16.toUpperCase()} byte-order mark but is not valid ${utf16.toUpperCase()}`,
        `convert the file to UTF-8, e.g. \`iconv -f ${utf16} -t utf-8\``);
    }
    return checkedText(file, text);
  }
  // UTF-16 without a mark: text in it has a zero byte in every other position (ASCII) or often.
  const guess = utf16Guess(buf);
  if (guess) {
    throw new DataError(file, undefined, `looks like ${guess.toUpperCase()} without a byte-order mark (zero bytes at every other offset), not UTF-8`,
      `convert it to UTF-8, e.g. \`iconv -f ${guess} -t utf-8\``);
  }
  if (!isUtf8(buf)) {
    const at = firstInvalidUtf8(buf);
    let line = 1;
    for (let i = 0; i < at; i++) if (buf[i] === 0x0a) line++;
    throw new DataError(file, line, `not valid UTF-8 (byte 0x${buf[at].toString(16)} at offset ${at})`,
      'convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8` for a Latin-1 file');
  }
  return checkedText(file, buf.toString('utf8'));
}

/** Decoded text, checked (no NUL) and normalised: BOM dropped, Windows and old Mac line ends → \n. */
function checkedText(file: string, text: string): string {
  // A NUL is valid UTF-8 but never part of text: the file is binary (or UTF-16 without a BOM).
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    const line = text.slice(0, nul).split('\n').length;
    throw new DataError(file, line, `contains a NUL character (character ${nul}); a text file has none`,
      'is it binary, or UTF-16 without a byte-order mark? convert it to plain UTF-8 text');
  }
  // Drop a BOM and normalise Windows line ends so blank-line detection works everywhere.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.replace(/\r\n?/g, '\n');
}

// JSON Lines by name: .jsonl, .ndjson, and .json (what Hugging Face datasets' to_json writes),
// each also gzipped (.json.gz: how C4-style shards ship) or zstd-compressed (.jsonl.zst).
export const isJsonl = (f: string): boolean => /\.(jsonl|ndjson|json)(\.gz|\.zst)?$/i.test(f);

function listTextFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTextFiles(p));
    // .json files in a directory are more often metadata than text: only .jsonl / .ndjson there.
    else if (e.isFile() && (/\.(txt|jsonl|ndjson)(\.gz|\.zst)?$/i.test(e.name) || isTableFile(e.name))) out.push(p);
  }
  return out.sort();
}

const JSONL_TEXT_EXAMPLE = '{"text": "The river flows to the sea."}';

/** The lines of a JSON Lines corpus as texts: each line's "text" (or "content"; or the user's
 *  `field`, --text-field), or, when the first line is a conversation (chat.ts: messages, ShareGPT
 *  conversations, prompt-completion), each line's conversation rendered by `chat`. Blank texts
 *  are skipped; `rendered` marks a text a chat template wrote (it writes its own BOS, so a packer
 *  must not add one). */
export function readJsonlTexts(file: string, chat?: ChatRenderer, field?: string): { text: string; rendered: boolean }[] {
  return rowTexts(file, readJsonLines(file, JSONL_TEXT_EXAMPLE), chat, field);
}

/** The texts of a table file's rows (Parquet, Arrow; preloaded: tables.ts), as readJsonlTexts reads lines; a
 *  row's number (from 1) stands where a line's would. */
export function readTableTexts(file: string, chat?: ChatRenderer, field?: string): { text: string; rendered: boolean }[] {
  const rows = tableRows(file, textColumns(field));
  if (rows.length === 0) throw new DataError(file, undefined, 'has no rows', 'point to a file with text');
  return rowTexts(file, rows.map((value, i) => ({ line: i + 1, value })), chat, field);
}

function rowTexts(file: string, lines: { line: number; value: unknown }[], chat?: ChatRenderer, field?: string): { text: string; rendered: boolean }[] {
  const first = lines[0].value as Record<string, unknown>;
  const key = field ?? ('text' in first || !('content' in first) ? 'text' : 'content');
  const layout = key === 'text' && !field ? chatLayoutOf(first) : undefined;
  const out: { text: string; rendered: boolean }[] = [];
  for (const { line, value } of lines) {
    const o = value as Record<string, unknown>;
    if (layout) {
      // A rendered conversation is kept byte for byte (its template's whitespace is part of it).
      const r = chatLineText(layout, o, file, line, chat);
      if (r.text.trim()) out.push(r.rendered ? r : { text: r.text.replace(/\r\n?/g, '\n').trim(), rendered: false });
      continue;
    }
    if (!(key in o) && field) {
      throw new DataError(file, line, `missing field "${key}" (--text-field ${key})`, `the line's fields are ${Object.keys(o).map((k) => `"${k}"`).join(', ') || 'none'}; name the one holding the text`);
    }
    if (!(key in o)) {
      throw new DataError(file, line, `missing field "${key}"`, `every line of a text corpus in JSON Lines needs a "text" string, e.g. ${JSONL_TEXT_EXAMPLE}, ` +
        `or a conversation: ${CHAT_LAYOUTS.map((l) => l.fields.map((f) => `"${f}"`).join(' + ')).join(', ')}, or name its field with --text-field`);
    }
    const v = o[key];
    if (typeof v !== 'string') throw new DataError(file, line, `"${key}" must be a string, got ${JSON.stringify(v)?.slice(0, 80)}`);
    if (v.trim()) out.push({ text: v.replace(/\r\n?/g, '\n').trim(), rendered: false });
  }
  return out;
}

/** The texts of a JSON Lines corpus (readJsonlTexts). */
export function jsonlTexts(file: string, chat?: ChatRenderer, field?: string): string[] {
  return readJsonlTexts(file, chat, field).map((d) => d.text);
}

/** A `datasets` DatasetDict saved with save_to_disk (dataset_dict.json beside one directory per
 *  split) holds its splits side by side: read whole, its test split would be trained on. */
function refuseDatasetDict(dir: string): void {
  const file = path.join(dir, 'dataset_dict.json');
  if (!fs.existsSync(file)) return;
  let splits: string[] = [];
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { splits?: unknown };
    if (Array.isArray(j.splits)) splits = j.splits.filter((x): x is string => typeof x === 'string');
  } catch { /* the split names are only for the message */ }
  const first = splits[0] ?? 'train';
  throw new DataError(dir, undefined, `is a datasets DatasetDict${splits.length ? ` (splits: ${splits.join(', ')})` : ''}; read whole, its splits would be mixed`,
    `point at one split's directory, e.g. ${path.join(dir, first)} (kdqat makes its own validation split)`);
}

const docId = (name: string, text: string): string => `${name}:${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;

/**
 * Load a text file, a JSON Lines file or a directory of them as a corpus.
 * - Text file: each blank-line-separated block is a document; its id is `<file name>:<12 hex of
 *   sha256(text)>`, so inserting or reordering blocks does not move other blocks between splits
 *   (identical blocks share an id — ids are not unique — and so always land in the same split,
 *   which keeps repeated boilerplate from leaking between train and test).
 * - .jsonl / .ndjson / .json file: each line's "text" (or "content", or opts.field) is a document, with an id made
 *   the same way; or each line's conversation rendered by opts.chat (readJsonlTexts; meta.rendered).
 * - .parquet / .arrow file (preloaded, tables.ts): each row, as a line of JSON Lines.
 * - Directory: one document per .txt file (recursive), id = path relative to the directory; and
 *   the lines (rows) of each .jsonl / .ndjson / .parquet / .arrow file in it, ids `<relative path>:<12 hex>`.
 */
export function loadTextCorpus(p: string, opts: { chat?: ChatRenderer; field?: string } = {}): Corpus {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    throw new DataError(p, undefined, 'file or directory not found', 'check the path');
  }
  const name = path.basename(p);
  const documents: Document[] = [];
  if (stat.isDirectory()) {
    refuseDatasetDict(p);
    const files = listTextFiles(p);
    if (files.length === 0) throw new DataError(p, undefined, 'contains no .txt, .jsonl, .parquet or .arrow files', 'point to a directory of UTF-8 .txt (or JSON Lines .jsonl, Parquet, Arrow) files');
    for (const f of files) {
      const rel = path.relative(p, f).split(path.sep).join('/');
      if (isJsonl(f) || isTableFile(f)) {
        for (const { text, rendered } of (isTableFile(f) ? readTableTexts : readJsonlTexts)(f, opts.chat, opts.field)) {
          documents.push({ id: docId(rel, text), text, meta: rendered ? { file: f, rendered: 1 } : { file: f } });
        }
        continue;
      }
      const text = readUtf8File(f).trim();
      if (text) documents.push({ id: rel, text, meta: { file: f } });
    }
  } else if (isJsonl(p) || isTableFile(p)) {
    for (const { text, rendered } of (isTableFile(p) ? readTableTexts : readJsonlTexts)(p, opts.chat, opts.field)) {
      documents.push({ id: docId(name, text), text, meta: rendered ? { file: p, rendered: 1 } : { file: p } });
    }
  } else {
    for (const block of splitParagraphs(readUtf8File(p))) documents.push({ id: docId(name, block), text: block, meta: { file: p } });
  }
  if (documents.length === 0) {
    throw new DataError(p, undefined, 'contains no text (the corpus is empty)', 'add text, or point to another file');
  }
  return { name, documents };
}
