// Temp files for error-path tests: each test writes the bad input it needs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../util.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/data/', import.meta.url));

let dir: string | undefined;
let counter = 0;

/** Write `content` to a fresh file named like `name` in a per-process temp dir; return its path. */
export function tmpFile(name: string, content: string | Uint8Array): string {
  dir ??= tmpDir('data');
  const p = path.join(dir, `${counter++}-${name}`);
  fs.writeFileSync(p, content);
  return p;
}

export function tmpPath(name: string): string {
  dir ??= tmpDir('data');
  return path.join(dir, `${counter++}-${name}`);
}

export function cleanup(): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/** Each [content, line, text]: `load` of a file holding `content` throws an error that starts
 *  with the file (and line) and contains `text`. */
export function assertFileErrors(load: (file: string) => unknown, cases: [string, number | undefined, string][]): void {
  for (const [content, line, text] of cases) {
    const f = tmpFile('bad.jsonl', content);
    const where = line === undefined ? `${f}: ` : `${f}:${line}: `;
    assert.throws(() => load(f), (e: Error) => e.message.startsWith(where) && e.message.includes(text), `expected "${where}… ${text}"`);
  }
}
