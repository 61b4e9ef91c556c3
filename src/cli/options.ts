// Option handling shared by the training commands: typed flag parsers, `--config FILE.json`
// (the same keys as the flags; flags win), and the rule that a resumed run keeps the settings
// saved in its checkpoint (a flag that contradicts them is an error, not silently ignored).
import * as fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { explainFsError } from '../io/files.js';

export const camel = (k: string): string => k.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
export const flagName = (k: string): string => `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;

export function intArg(v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`expected an integer, got '${v}'`);
  return Number(v);
}

export function numArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
}

/** Repeatable list option: "--x a,b --x c" → ['a,b', 'c'] (split later). */
export function listArg(v: string, prev?: string[]): string[] {
  return [...(prev ?? []), v];
}

let argv: string[] = [];

/** Records the command line (main does this) for summary.json. */
export function setCommandLine(args: string[]): void {
  argv = ['kdqat', ...args];
}

export function commandLine(): string[] {
  return [...argv];
}

type Value = number | string | boolean | string[];

/** Reads a JSON config file; keys may be spelled like the flags (kv-heads), snake or camel case. */
export function readConfigFile(file: string, allowed: Record<string, Value>): Record<string, Value> {
  let raw: unknown;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`--config ${code === 'ENOENT' ? `${file}: file not found; check the path` : explainFsError(e, file, 'read').message}`);
  }
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--config ${file}: not valid JSON (${(e as Error).message}); fix it: an object like {"steps": 1000}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`--config ${file}: must be a JSON object like {"steps": 1000}`);
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(raw)) {
    const key = camel(k);
    if (!(key in allowed)) {
      throw new Error(`--config ${file}: unknown key "${k}"; known keys: ${Object.keys(allowed).map((a) => flagName(a).slice(2)).join(', ')}`);
    }
    const want = allowed[key];
    const ok = Array.isArray(want) ? typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))
      : typeof v === typeof want;
    if (!ok) throw new Error(`--config ${file}: "${k}" must be ${Array.isArray(want) ? 'a string or a list of strings' : `a ${typeof want}`}, got ${JSON.stringify(v)}`);
    out[key] = Array.isArray(want) && typeof v === 'string' ? [v] : (v as Value);
  }
  return out;
}

/** Options the user gave on the command line (not commander defaults). */
export function givenOptions(cmd: Command, keys: string[]): Record<string, Value> {
  const opts = cmd.opts();
  const out: Record<string, Value> = {};
  for (const k of keys) if (cmd.getOptionValueSource(k) === 'cli' && opts[k] !== undefined) out[k] = opts[k] as Value;
  return out;
}

/**
 * The run's settings: defaults ← config file ← flags. With `saved` (resuming) the saved settings
 * are kept, and any option given that disagrees with them is an error naming it.
 */
export function resolveSettings<T extends object>(
  defaults: T, fromFile: Record<string, Value>, fromCli: Record<string, Value>, saved?: T,
): T {
  const pick = (o: Record<string, Value>): Record<string, Value> =>
    Object.fromEntries(Object.entries(o).filter(([k]) => k in defaults));
  const given = { ...pick(fromFile), ...pick(fromCli) };
  if (!saved) return { ...defaults, ...given } as T;
  const s = saved as Record<string, unknown>;
  const diffs = Object.entries(given).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(s[k]));
  if (diffs.length) {
    throw new Error(`--resume: ${diffs.map(([k, v]) => `${flagName(k)} ${JSON.stringify(v)} differs from the checkpoint's ${JSON.stringify(s[k])}`).join('; ')}; ` +
      'a resumed run keeps its saved settings: drop these options, or start a new run with --force');
  }
  return saved;
}

/**
 * Runs `f`; an error about a setting the run took from `--config FILE` (its message starts with
 * that setting's flag, as the range checks write them) is re-thrown naming the file and the key,
 * since the user never typed the flag.
 */
export function blameConfigFile<T>(file: string | undefined, fromFile: Record<string, Value>, fromCli: Record<string, Value>, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const msg = (e as Error).message;
    for (const k of file ? Object.keys(fromFile) : []) {
      const flag = flagName(k);
      if (k in fromCli || !(msg.startsWith(`${flag} `) || msg.startsWith(`${flag}:`))) continue;
      throw new Error(`--config ${file}: key "${flag.slice(2)}": ${msg.slice(flag.length).replace(/^:?\s*/, '')}; fix it in ${file}`);
    }
    throw e;
  }
}
