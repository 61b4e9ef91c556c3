// JSON Lines in and out. Reading keeps 1-based line numbers for error messages; writing is
// atomic (temp file in the same directory, fsync, rename) so a crash never leaves half a file.
import { atomicWrite } from '../io/atomic.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors.js';
import { readUtf8File } from './text.js';

export interface JsonLine {
  line: number;
  value: unknown;
}

/** The line (1-based) on which each element of a top-level JSON array begins. */
function elementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1, depth = 0, inString = false, expect = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expect && c !== ']') {
      lines.push(line);
      expect = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expect = true;
  }
  return lines;
}

/** Parse every non-blank line; `example` shows the expected shape in the error's fix. A file
 *  holding one JSON array of objects (what datasets' to_json(lines=False) writes, and Alpaca's
 *  alpaca_data.json) is read as its elements, each numbered by the line it starts on. */
export function readJsonLines(file: string, example: string): JsonLine[] {
  const out: JsonLine[] = [];
  const text = readUtf8File(file);
  if (text.trimStart().startsWith('[')) {
    let all: unknown;
    try {
      all = JSON.parse(text);
    } catch (e) {
      throw new DataError(file, undefined, `starts with "[" but is not valid JSON (${(e as Error).message})`,
        `give one JSON array of objects, or one object per line, e.g. ${example}`);
    }
    const at = elementLines(text);
    (all as unknown[]).forEach((value, i) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new DataError(file, at[i], `element ${i} of the array is not a JSON object`, `e.g. ${example}`);
      }
      out.push({ line: at[i], value });
    });
    if (out.length === 0) throw new DataError(file, undefined, 'is an empty JSON array', `add objects like ${example}`);
    return out;
  }
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DataError(file, i + 1, `not valid JSON (${(e as Error).message})`,
        `each line must be one JSON object, e.g. ${example}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DataError(file, i + 1, 'expected a JSON object', `e.g. ${example}`);
    }
    out.push({ line: i + 1, value });
  });
  if (out.length === 0) throw new DataError(file, undefined, 'is empty (no JSON lines)', `add lines like ${example}`);
  return out;
}

export interface WriteOptions {
  /** Overwrite an existing file (default false: refuse). */
  force?: boolean;
}

/** Write records one JSON object per line, atomically; refuses to overwrite unless force. */
export function writeJsonl(file: string, records: readonly unknown[], opts: WriteOptions = {}): void {
  if (!opts.force && fs.existsSync(file)) {
    throw new DataError(file, undefined, 'already exists', 'pass { force: true } to overwrite it, or choose another path');
  }
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new DataError(file, undefined, `directory ${dir} does not exist`, 'create it first');
  atomicWrite(file, !!opts.force, (write) => write(records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '')));
}
