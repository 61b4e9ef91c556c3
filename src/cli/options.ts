// Option handling shared by the training commands: typed flag parsers, `--config FILE.json`
// (the same keys as the flags; flags win), and the rule that a resumed run keeps the settings
// saved in its checkpoint (a flag that contradicts them is an error, not silently ignored).
import * as fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { explainFsError } from '../io/files.js';
import { UsageError, flagName } from '../train/usage.js';
import { getThreads, setThreads } from '../tensor/index.js';
import { endJobOnError, initDistributed, type Distributed } from '../train/distributed.js';
import type { Reporter } from '../train/loop.js';
import { progressReporter } from './progress.js';

export { UsageError, flagName };

export const camel = (k: string): string => k.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());

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

// What each setting read from a config file was called there (key → the file's spelling), so an
// error about it names the key the user wrote (blameConfigFile).
const fileSpelling = new WeakMap<Record<string, Value>, ReadonlyMap<string, string>>();

/** Reads a JSON config file; keys may be spelled like the flags (kv-heads), snake or camel case,
 *  and in the flags' older spellings (`aliases`: camel-case spelling → key; flags.ts keyAliases).
 *  A file that cannot be read is a run-time failure; a key or value kdqat does not know is a
 *  usage error (status 2), as the same flag on the command line would be; `flagOf` names the
 *  known keys in that message (the command's flags). */
export function readConfigFile(
  file: string, allowed: Record<string, Value>, aliases: ReadonlyMap<string, string> = new Map(), flagOf: (key: string) => string = flagName,
): Record<string, Value> {
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
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`--config ${file}: must be a JSON object like {"steps": 1000}`);
  const out: Record<string, Value> = {};
  const spelled = new Map<string, string>();
  for (const [k, v] of Object.entries(raw)) {
    const key = aliases.get(camel(k)) ?? camel(k);
    if (!(key in allowed)) {
      throw new UsageError(`--config ${file}: unknown key "${k}"; known keys: ${Object.keys(allowed).map((a) => flagOf(a).slice(2)).join(', ')}`);
    }
    if (spelled.has(key)) throw new UsageError(`--config ${file}: "${spelled.get(key)}" and "${k}" are the same setting; give it once`);
    spelled.set(key, k);
    const want = allowed[key];
    const ok = Array.isArray(want) ? typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))
      : typeof v === typeof want;
    if (!ok) throw new UsageError(`--config ${file}: "${k}" must be ${Array.isArray(want) ? 'a string or a list of strings' : `a ${typeof want}`}, got ${JSON.stringify(v)}`);
    out[key] = Array.isArray(want) && typeof v === 'string' ? [v] : (v as Value);
  }
  fileSpelling.set(out, spelled);
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
  defaults: T, fromFile: Record<string, Value>, fromCli: Record<string, Value>, saved?: T, flag: (key: string) => string = flagName,
): T {
  const pick = (o: Record<string, Value>): Record<string, Value> =>
    Object.fromEntries(Object.entries(o).filter(([k]) => k in defaults));
  const given = { ...pick(fromFile), ...pick(fromCli) };
  if (!saved) return { ...defaults, ...given } as T;
  const s = saved as Record<string, unknown>;
  const diffs = Object.entries(given).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(s[k]));
  if (diffs.length) {
    throw new UsageError(`--resume: ${diffs.map(([k, v]) => `${flag(k)} ${JSON.stringify(v)} differs from the checkpoint's ${JSON.stringify(s[k])}`).join('; ')}; ` +
      'a resumed run keeps its saved settings: drop these options, or start a new run with --force');
  }
  return saved;
}

/**
 * Runs `f`; an error about a setting the run took from `--config FILE` (its message starts with
 * that setting's flag, as the range checks write them) is re-thrown naming the file and the key
 * as the file spells it (and the flag, when that is another name: "maxLen" (--seq-len)), since
 * the user never typed the flag.
 */
export function blameConfigFile<T>(
  file: string | undefined, fromFile: Record<string, Value>, fromCli: Record<string, Value>, f: () => T, flagOf: (key: string) => string = flagName,
): T {
  try {
    return f();
  } catch (e) {
    const msg = (e as Error).message;
    for (const k of file ? Object.keys(fromFile) : []) {
      const flag = flagOf(k);
      if (k in fromCli || !(msg.startsWith(`${flag} `) || msg.startsWith(`${flag}:`))) continue;
      const written = fileSpelling.get(fromFile)?.get(k) ?? flag.slice(2);
      const key = written === flag.slice(2) ? `"${written}"` : `"${written}" (${flag})`;
      throw new (e instanceof UsageError ? UsageError : Error)(`--config ${file}: key ${key}: ${msg.slice(flag.length).replace(/^:?\s*/, '')}; fix it in ${file}`);
    }
    throw e;
  }
}

/** --out, required by the command: its value, or a usage error saying what it is for. */
export function requireOut(out: string | undefined, what: string): string {
  if (!out) throw new UsageError(`--out is required: ${what}`);
  return out;
}

export const JSON_HELP = 'print the result as one JSON object on stdout (progress and messages stay on stderr)';

/** --json: the command's result as one JSON object on stdout (`kdqat … --json | jq`). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const EXIT_CODES_HELP = `
Exit status: 0 success; 1 failure at run time (an input that cannot be read, a loss that turns
NaN, …); 2 usage error (an unknown flag, a missing required flag, a bad or conflicting value).`;

/**
 * A training command's job around its run: the thread count set (`--threads` or the config
 * file's `threads`), the distributed job joined (before anything else can fail, so an error on
 * one rank can end the others), the lead rank's reporter announcing `kdqat <label> → <out> (n
 * threads[; rank r of s (engine)])` (`announce: 'distributed'`: only in a distributed job), then
 * `run(reporter, dist)` with the reporter on the lead rank only; the job finalized after, or
 * ended on every rank on an error. `reporter` is returned on the lead rank only.
 */
export function runTrainingJob<T>(
  label: string, out: string, o: { threads?: number; distributed?: string; announce?: 'always' | 'distributed' },
  run: (reporter: Reporter | undefined, dist: Distributed | undefined) => T,
): { result: T; reporter: Reporter | undefined } {
  if (o.threads !== undefined) {
    if (!(o.threads >= 1)) throw new UsageError(`--threads must be at least 1, got ${o.threads}`);
    setThreads(o.threads);
  }
  const dist = o.distributed ? initDistributed(o.distributed) : undefined;
  const reporter = !dist || dist.rank === 0 ? progressReporter({ label }) : undefined;
  if (reporter && (dist || (o.announce ?? 'always') === 'always')) {
    const ranks = dist ? `; rank ${dist.rank} of ${dist.size} (${dist.engine})` : '';
    reporter.message(`kdqat ${label} → ${out} (${getThreads()} thread${getThreads() === 1 ? '' : 's'}${ranks})`);
  }
  let result: T;
  try {
    result = run(reporter, dist);
  } catch (e) {
    endJobOnError(dist, e);
    throw e;
  }
  dist?.finalize();
  return { result, reporter };
}
