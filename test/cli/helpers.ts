// Helpers for the CLI tests: a small text corpus, in-process `kdqat` runs with captured stderr,
// and child-process runs of bin/kdqat.js.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../../src/data/corpora.js';
import { splitSentences } from '../../src/data/sentences.js';
import { main } from '../../src/cli/main.js';

export const BIN = fileURLToPath(new URL('../../bin/kdqat.js', import.meta.url));

export { tmpDir } from '../util.js';

/** ~90 paragraphs of 4 sentences from the first SOTU addresses, blank-line separated. */
export function smallTextFile(dir: string): string {
  const paras: string[] = [];
  for (const d of loadCorpus('sotu').documents.slice(0, 6)) {
    const s = splitSentences(d.text);
    for (let i = 0; i < s.length; i += 4) paras.push(s.slice(i, i + 4).join(' '));
  }
  const file = path.join(dir, 'small.txt');
  fs.writeFileSync(file, paras.join('\n\n') + '\n');
  return file;
}

/** Tiny model flags (hidden 32, 2 layers, seq 32). */
export const TINY = ['--hidden', '32', '--layers', '2', '--heads', '4', '--kv-heads', '2', '--intermediate', '64', '--seq', '32'];

/** Runs `kdqat ...args` in this process; returns the exit code and what went to stderr. */
export async function kdqat(...args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await main(['node', 'kdqat', ...args]);
  } finally {
    process.stderr.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { code, stderr };
}

/** Spawns `node bin/kdqat.js ...args`; `done` resolves with the exit code/signal and stderr. */
export function spawnKdqat(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, done };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
