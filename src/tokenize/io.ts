// Reading and writing tokenizer.json files.
// Writing: pretty JSON with 2-space indents and the vocab in id order, like the Rust crate's
// `save(pretty=true)` (a plain JSON.stringify would put integer-like tokens such as "1990" first);
// the same object always gives the same bytes. The write is atomic: temp file in the target
// directory, fsync, then link (no overwrite) or rename (force).
// Reading: clear errors naming the file for a missing file, bad JSON, or a tokenizer.json that
// @huggingface/tokenizers 0.2.0 cannot run faithfully (the component types it implements are
// listed below, from its create_* factories).
import { atomicWrite } from '../io/atomic.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TokenizerJson } from './schema.js';

const SUPPORTED = {
  model: ['BPE', 'WordPiece', 'Unigram'],
  normalizer: ['BertNormalizer', 'Precompiled', 'Sequence', 'Replace', 'NFC', 'NFD', 'NFKC', 'NFKD', 'Strip',
    'StripAccents', 'Lowercase', 'Prepend'],
  pre_tokenizer: ['BertPreTokenizer', 'Sequence', 'Whitespace', 'WhitespaceSplit', 'Metaspace', 'ByteLevel', 'Split',
    'Punctuation', 'Digits', 'Replace', 'FixedLength'],
  post_processor: ['TemplateProcessing', 'ByteLevel', 'BertProcessing', 'RobertaProcessing', 'Sequence'],
  decoder: ['ByteLevel', 'WordPiece', 'Metaspace', 'BPEDecoder', 'CTC', 'Sequence', 'Replace', 'Fuse', 'Strip',
    'ByteFallback'],
} as const;
/** Where a Sequence keeps its children, per component kind. */
const SEQUENCE_KEY = { normalizer: 'normalizers', pre_tokenizer: 'pretokenizers', post_processor: 'processors', decoder: 'decoders' } as const;
type Kind = keyof typeof SEQUENCE_KEY;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string, msg: string): never {
  throw new Error(`${file}: ${msg}`);
}

/** The text saveTokenizer writes for `json`. */
export function serializeTokenizer(json: TokenizerJson): string {
  const model = json.model as { vocab?: unknown };
  if (!isObj(model.vocab)) return JSON.stringify(json, null, 2) + '\n';
  const MARK = `\u0000vocab:${Math.random()}`; // replaced below; random so no token can collide
  const text = JSON.stringify({ ...json, model: { ...json.model, vocab: MARK } }, null, 2);
  const entries = Object.entries(model.vocab as Record<string, number>).sort((a, b) => a[1] - b[1]);
  const vocab = entries.length === 0 ? '{}'
    : `{\n${entries.map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`).join(',\n')}\n    }`;
  return text.replace(JSON.stringify(MARK), () => vocab) + '\n';
}

export interface SaveOptions {
  /** Replace an existing file. */
  force?: boolean;
}

/**
 * Writes `json` to `file` atomically. Refuses to replace an existing file unless opts.force. The
 * object is checked first as the loader would check it, so a file we write can be loaded.
 */
export function saveTokenizer(file: string, json: TokenizerJson, opts: SaveOptions = {}): void {
  checkTokenizerJson(json, file);
  if (!opts.force && fs.existsSync(file)) fail(file, 'already exists; refusing to overwrite it (use --force)');
  const data = serializeTokenizer(json);
  atomicWrite(file, !!opts.force, (write) => write(data));
}

/** Reads and checks a tokenizer.json file; errors name the file and say what to do. */
export function readTokenizerJson(file: string): TokenizerJson {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(file, 'no such tokenizer file; check the path (train one with trainByteLevelBpe or trainWordPiece, then saveTokenizer)');
    if (code === 'EISDIR') fail(file, 'is a directory; pass the tokenizer.json file inside it');
    fail(file, `cannot read the tokenizer file: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `invalid JSON (${(e as Error).message}); the file is truncated or not a tokenizer.json`);
  }
  return checkTokenizerJson(json, file);
}

/**
 * Checks that `json` is a tokenizer.json the loader can run, and returns it with the optional
 * top-level keys filled in (null components, empty added_tokens). Throws "<file>: unsupported
 * tokenizer.json: <what>" for anything @huggingface/tokenizers would reject or silently ignore.
 */
export function checkTokenizerJson(json: unknown, file: string): TokenizerJson {
  const bad = (what: string): never => fail(file, `unsupported tokenizer.json: ${what}; fix the file, or re-save the tokenizer with the tokenizers library`);
  if (!isObj(json)) bad('the top level is not a JSON object');
  const j = json as Record<string, unknown>;
  const model = j.model;
  if (!isObj(model)) bad('no "model" object');
  const m = model as Record<string, unknown>;
  const type = m.type ?? inferModelType(m);
  if (typeof type !== 'string' || !(SUPPORTED.model as readonly string[]).includes(type)) {
    bad(`model type ${JSON.stringify(type)} (supported: ${SUPPORTED.model.join(', ')})`);
  }
  if (type !== 'Unigram' && !isObj(m.vocab)) bad(`the ${type} model has no "vocab" object`);
  if (type === 'Unigram' && !Array.isArray(m.vocab)) bad('the Unigram model has no "vocab" array');
  if (type === 'BPE') {
    if (!Array.isArray(m.merges)) bad('the BPE model has no "merges" array');
    if (typeof m.dropout === 'number' && m.dropout > 0) bad(`BPE dropout ${m.dropout} (set "dropout": null for inference)`);
  }
  if (isObj(m.vocab)) {
    for (const [t, id] of Object.entries(m.vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) bad(`vocab entry ${JSON.stringify(t)} has id ${JSON.stringify(id)}, not an integer >= 0`);
    }
  }
  // Each merge joins two vocab tokens into a vocab token (the tokenizers library refuses
  // others: MergeTokenOutOfVocabulary).
  if (type === 'BPE' && isObj(m.vocab)) {
    const vocab = m.vocab as Record<string, unknown>;
    (m.merges as unknown[]).forEach((entry, rank) => {
      const pair = typeof entry === 'string' ? entry.split(' ') : entry;
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => typeof x === 'string')) {
        bad(`model.merges[${rank}] = ${JSON.stringify(entry)} is not "a b" or ["a", "b"]`);
      }
      const [a, b] = pair as string[];
      for (const t of [a, b, a + b]) {
        if (!Object.hasOwn(vocab, t)) bad(`model.merges[${rank}] = ${JSON.stringify(entry)} uses ${JSON.stringify(t)}, which is not in model.vocab`);
      }
    });
  }
  const added = j.added_tokens ?? [];
  if (!Array.isArray(added)) bad('"added_tokens" is not an array');
  for (const t of added as unknown[]) {
    if (!isObj(t) || typeof t.content !== 'string' || !Number.isInteger(t.id)) bad(`added_tokens entry ${JSON.stringify(t)} needs a string "content" and an integer "id"`);
  }
  const out: Record<string, unknown> = { ...j, added_tokens: added, model: { ...m, type } };
  for (const kind of Object.keys(SEQUENCE_KEY) as Kind[]) {
    out[kind] = j[kind] ?? null;
    if (out[kind] !== null) checkComponent(kind, out[kind], kind, bad);
  }
  return out as unknown as TokenizerJson;
}

function checkComponent(kind: Kind, c: unknown, where: string, bad: (what: string) => never): void {
  if (!isObj(c)) bad(`${where} is not an object`);
  const comp = c as Record<string, unknown>;
  const type = comp.type;
  if (typeof type !== 'string' || !(SUPPORTED[kind] as readonly string[]).includes(type)) {
    bad(`${where} type ${JSON.stringify(type)} (supported: ${SUPPORTED[kind].join(', ')})`);
  }
  if (kind === 'pre_tokenizer' && type === 'Split' && comp.invert !== true) {
    const behavior = String(comp.behavior ?? 'Isolated');
    if (!['Isolated', 'Removed'].includes(behavior)) bad(`${where} Split behavior ${behavior} (supported: Isolated, Removed)`);
  }
  if (type === 'Sequence') {
    const children = comp[SEQUENCE_KEY[kind]];
    if (!Array.isArray(children)) bad(`${where} Sequence has no "${SEQUENCE_KEY[kind]}" array`);
    (children as unknown[]).forEach((child, i) => checkComponent(kind, child, `${where}[${i}]`, bad));
  }
}

/** Old files without model.type: the same inference as @huggingface/tokenizers. */
function inferModelType(m: Record<string, unknown>): string | undefined {
  if (Array.isArray(m.vocab)) return 'Unigram';
  if (isObj(m.vocab) && 'continuing_subword_prefix' in m && 'unk_token' in m) return 'merges' in m ? 'BPE' : 'WordPiece';
  return undefined;
}
