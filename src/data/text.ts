// Plain-text corpora from the user's own files: one UTF-8 file (documents = blank-line-separated
// blocks) or a directory of .txt files (one document per file, searched recursively).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { DataError } from './errors.js';
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

/** Read a file as UTF-8 text, strict: invalid bytes are an error naming the line, not U+FFFD. */
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
  if (!isUtf8(buf)) {
    const at = firstInvalidUtf8(buf);
    let line = 1;
    for (let i = 0; i < at; i++) if (buf[i] === 0x0a) line++;
    throw new DataError(file, line, `not valid UTF-8 (byte 0x${buf[at].toString(16)} at offset ${at})`,
      'convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`');
  }
  // A NUL byte is valid UTF-8 but never part of text: the file is binary (or UTF-16).
  const nul = buf.indexOf(0);
  if (nul >= 0) {
    let line = 1;
    for (let i = 0; i < nul; i++) if (buf[i] === 0x0a) line++;
    throw new DataError(file, line, `contains a NUL byte (offset ${nul}); a text file has none`,
      'is it binary or UTF-16? convert it to plain UTF-8 text');
  }
  // Drop a BOM and normalise Windows line ends so blank-line detection works everywhere.
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.replace(/\r\n?/g, '\n');
}

function listTxtFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTxtFiles(p));
    else if (e.isFile() && e.name.toLowerCase().endsWith('.txt')) out.push(p);
  }
  return out.sort();
}

/**
 * Load a text file or a directory of .txt files as a corpus.
 * - File: each blank-line-separated block is a document; its id is `<file name>:<12 hex of
 *   sha256(text)>`, so inserting or reordering blocks does not move other blocks between splits
 *   (identical blocks share an id — ids are not unique — and so always land in the same split,
 *   which keeps repeated boilerplate from leaking between train and test).
 * - Directory: one document per .txt file (recursive), id = path relative to the directory.
 */
export function loadTextCorpus(p: string): Corpus {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    throw new DataError(p, undefined, 'file or directory not found', 'check the path');
  }
  const name = path.basename(p);
  const documents: Document[] = [];
  if (stat.isDirectory()) {
    const files = listTxtFiles(p);
    if (files.length === 0) throw new DataError(p, undefined, 'contains no .txt files', 'point to a directory of UTF-8 .txt files');
    for (const f of files) {
      const text = readUtf8File(f).trim();
      if (text) documents.push({ id: path.relative(p, f).split(path.sep).join('/'), text, meta: { file: f } });
    }
  } else {
    for (const block of splitParagraphs(readUtf8File(p))) {
      const id = `${name}:${createHash('sha256').update(block).digest('hex').slice(0, 12)}`;
      documents.push({ id, text: block, meta: { file: p } });
    }
  }
  if (documents.length === 0) {
    throw new DataError(p, undefined, 'contains no text (the corpus is empty)', 'add text, or point to another file');
  }
  return { name, documents };
}
