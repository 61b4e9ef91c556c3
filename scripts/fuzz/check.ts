// Runs one fuzz case in this process, the way `kdqat` runs (src/cli/main.ts: its error handling,
// exit code and stderr), and judges the outcome. What a case must end with (issue 16):
//   - a non-zero exit code;
//   - one error line (`kdqat: …`, or commander's `error: …` for a bad flag) that names the file,
//     the field (key, tensor, line…) and says what to do;
//   - no stack trace, no JavaScript-internal message (a TypeError's "Cannot read properties…");
//   - nothing new in the workspace (no output file or directory, no temp file left behind).
// 'ok' cases (the remote-code and HF-cache cases) must succeed, and pass their own `after` check.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main.js';
import type { Base } from './base.js';
import type { FuzzCase } from './case.js';

export interface CaseResult {
  id: string;
  category: string;
  pass: boolean;
  problems: string[];
  code: number;
  /** The error line(s) (or the first stderr lines of a run that failed otherwise). */
  message: string;
  ms: number;
}

/** Words that say what to do (a fix) or what was expected (which implies it). */
const FIX = /\b(use|add|set|remove|fix|pass|convert|re-?save|re-?export|check|give|point|replace|rename|choose|drop|make|restore|expected|must|should|needs?|only|supported|allowed|known|required|e\.g\.|at least|at most|one of|is not|are not|refus|raise|lower|write|split|run)/i;
/** Messages that are a JavaScript accident, not an explanation. */
const INTERNAL = /Cannot read propert|is not a function|is not iterable|is not defined|Maximum call stack|\[object Object\]|Invalid array length|Invalid typed array length|out of memory|RangeError: Array buffer|undefined \(reading/;
const STACK = /^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m;

/** Every path under dir (symlinks not followed), relative. */
function listing(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    out.push(r);
    if (e.isDirectory()) out.push(...listing(dir, r));
  }
  return out;
}

async function capture(fn: () => Promise<void>): Promise<{ stdout: string; stderr: string }> {
  const w = { out: process.stdout.write, err: process.stderr.write };
  let stdout = '', stderr = '';
  const grab = (f: (s: string) => void) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    f(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = grab((s) => { stdout += s; });
  process.stderr.write = grab((s) => { stderr += s; });
  try {
    await fn();
  } finally {
    process.stdout.write = w.out;
    process.stderr.write = w.err;
  }
  return { stdout, stderr };
}

export async function runCase(c: FuzzCase, base: Base): Promise<CaseResult> {
  const t0 = performance.now();
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-fuzz-case-'));
  const problems: string[] = [];
  let code = 0;
  let message = '';
  try {
    c.setup(ws, base);
    const before = new Set(listing(ws));
    let errorText = '';
    if ('argv' in c.run) {
      const argv = c.run.argv(ws);
      const saved = process.exitCode;
      process.exitCode = 0;
      const { stderr } = await capture(() => main(['node', 'kdqat', ...argv]));
      code = Number(process.exitCode ?? 0);
      process.exitCode = saved;
      errorText = stderr;
    } else {
      try {
        await c.run.call(ws);
      } catch (e) {
        code = 1;
        // A library caller sees the Error: its message is what must be clear; a non-Error
        // throw, or an error that is not an Error instance, is a problem of its own.
        errorText = e instanceof Error ? `kdqat: ${e.message}\n` : `thrown non-Error: ${String(e)}\n`;
      }
    }
    const errLines = errorText.split('\n').filter((l) => /^(kdqat|error): /.test(l));
    message = errLines.join('\n') || errorText.split('\n').slice(0, 3).join('\n');
    if (c.expect === 'ok') {
      if (code !== 0) problems.push(`expected success, got exit code ${code}`);
      const bad = c.after?.(ws);
      if (bad) problems.push(bad);
    } else {
      if (code === 0) problems.push('exit code 0 (the malformed input was accepted)');
      if (errLines.length !== 1) problems.push(`${errLines.length} error lines (want exactly one)`);
      if (STACK.test(errorText)) problems.push('stack trace printed');
      const msg = errLines[0] ?? '';
      if (INTERNAL.test(msg)) problems.push('an internal JavaScript error, not an explanation');
      if (c.file && !msg.includes(c.file)) problems.push(`does not name the file ${c.file}`);
      for (const f of c.field.split('\u0000').filter(Boolean)) {
        if (!msg.toLowerCase().includes(f.toLowerCase())) problems.push(`does not name ${JSON.stringify(f)}`);
      }
      if (msg && !FIX.test(msg.replace(/^(kdqat|error): /, ''))) problems.push('says nothing about what to do');
      const after = listing(ws).filter((p) => !before.has(p));
      if (after.length) problems.push(`left behind: ${after.slice(0, 4).join(', ')}`);
      const gone = [...before].filter((p) => !fs.existsSync(path.join(ws, p)) && !isDanglingLink(path.join(ws, p)));
      if (gone.length) problems.push(`removed inputs: ${gone.slice(0, 4).join(', ')}`);
      const bad = c.after?.(ws);
      if (bad) problems.push(bad);
    }
  } catch (e) {
    problems.push(`the harness failed: ${(e as Error).stack ?? e}`);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
  return { id: c.id, category: c.category, pass: problems.length === 0, problems, code, message, ms: Math.round(performance.now() - t0) };
}

function isDanglingLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
