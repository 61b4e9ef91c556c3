// One vocabulary of flags: a concept has one spelling in every command (docs/cli.md). The older
// spellings some commands used stay accepted, on the command line and as --config keys, but are
// hidden from --help; giving two spellings of one option at once is a usage error.
//
// A command's option may store its value under another key than the flag's (pretrain's
// --seq-len under `seq`, finetune's under `maxLen`): the key is what its settings, checkpoints
// and summary.json have always called it, so old runs resume and summaries stay as they were.
import { Option, type Command } from 'commander';
import { UsageError } from '../train/usage.js';

export interface FlagSpelling {
  /** The flag every command uses (without the dashes). */
  canonical: string;
  /** Older spellings, still accepted. */
  aliases: readonly string[];
  meaning: string;
}

export const FLAG_VOCABULARY: readonly FlagSpelling[] = [
  { canonical: 'seq-len', aliases: ['seq', 'max-len'], meaning: 'tokens per sequence: a training or perplexity window, or an example\'s maximum length' },
  { canonical: 'batch', aliases: ['batch-size'], meaning: 'sequences per (micro-)batch or forward pass' },
  { canonical: 'accumulate', aliases: ['accum'], meaning: 'micro-batches per optimizer step (gradient accumulation)' },
  { canonical: 'steps', aliases: ['max-steps'], meaning: 'optimizer steps (finetune: 0 = epochs × batches per epoch)' },
  { canonical: 'eval-items', aliases: ['limit'], meaning: 'items of each evaluation task scored (the first n)' },
];

const camel = (k: string): string => k.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());

/** Per command: option key → its canonical flag, and every spelling (camel case) → key. */
interface Vocab { flagOf: Map<string, string>; keyOf: Map<string, string> }
const vocabs = new WeakMap<Command, Vocab>();
function vocabOf(cmd: Command): Vocab {
  let v = vocabs.get(cmd);
  if (!v) vocabs.set(cmd, v = { flagOf: new Map(), keyOf: new Map() });
  return v;
}

/**
 * Adds `flags` (e.g. '--seq-len <n>') to `cmd`, stored under `key` (default: the flag in camel
 * case), with the vocabulary's older spellings as hidden aliases storing under the same key.
 */
export function addFlag<T>(cmd: Command, flags: string, description: string, parse?: (v: string, prev?: T) => T, key?: string): Command {
  const m = /^--([a-z][a-z0-9-]*)(\s+.*)?$/.exec(flags);
  if (!m) throw new Error(`addFlag: '${flags}' is not a long flag`);
  const [, name, arg = ''] = m;
  const entry = FLAG_VOCABULARY.find((f) => f.canonical === name);
  if (!entry) throw new Error(`addFlag: --${name} is not in FLAG_VOCABULARY; use .option()`);
  const attr = key ?? camel(name);
  const v = vocabOf(cmd);
  v.flagOf.set(attr, `--${name}`);
  let given: string | null = null; // the spelling on this command line
  for (const spelling of [name, ...entry.aliases]) {
    v.keyOf.set(camel(spelling), attr);
    const opt = new Option(`--${spelling}${arg}`, spelling === name ? description : `old spelling of --${name}`);
    if (spelling !== name) opt.hideHelp();
    opt.attributeName = () => attr;
    opt.argParser((value: string, prev: T) => {
      if (given !== null && given !== spelling) {
        throw new UsageError(`--${spelling} and --${given} are the same option (--${name}); give it once`);
      }
      given = spelling;
      return parse ? parse(value, prev) : (value as unknown as T);
    });
    cmd.addOption(opt);
  }
  return cmd;
}

/** The canonical flag of a settings key of `cmd` ('seq' in pretrain → '--seq-len'). */
export function flagOf(cmd: Command, key: string): string | undefined {
  return vocabs.get(cmd)?.flagOf.get(key);
}

/** Spellings (camel case) that name another settings key in `cmd`: for --config files. */
export function keyAliases(cmd: Command): Map<string, string> {
  return new Map([...(vocabs.get(cmd)?.keyOf ?? [])].filter(([s, k]) => s !== k));
}

/** The vocabulary as help text (kdqat --help). */
export function vocabularyHelp(): string {
  return FLAG_VOCABULARY.map((f) => `  --${f.canonical.padEnd(11)} ${f.meaning}\n  ${''.padEnd(13)} (also: ${f.aliases.map((a) => `--${a}`).join(', ')})`).join('\n');
}
