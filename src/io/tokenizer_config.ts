// tokenizer_config.json: what of it reaches a GGUF file, and how kdqat keeps a user's copy when it
// writes a new model directory.
//   GGUF: gguf-py's SpecialVocab (vocab.py _try_load_from_tokenizer_json, add_to_gguf) reads
//   {bos,eos,unk,sep,pad,cls,mask}_token (a string or an AddedToken {content}) and finds its id
//   among tokenizer.json's added_tokens; add_{bos,eos,sep}_token (booleans) become
//   tokenizer.ggml.add_{bos,eos,sep}_token, and when tokenizer_config.json does not say, they are
//   read off tokenizer.json's TemplateProcessing post-processor (a leading bos / trailing eos);
//   chat_template (a string, or a list of {name, template}) becomes tokenizer.chat_template
//   (and tokenizer.chat_template.NAME / tokenizer.chat_templates for the named ones).
//   Ids found this way win over config.json's *_token_id (the first source to set one wins).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GgufValue } from './gguf_format.js';
import { readFileChecked } from './files.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const SPECIAL_TYPES = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'] as const;
export type SpecialType = (typeof SPECIAL_TYPES)[number];

export interface SpecialVocab {
  ids: Partial<Record<SpecialType, number>>;
  add: Partial<Record<'bos' | 'eos' | 'sep', boolean>>;
  chatTemplate: string | { name: string; template: string }[] | null;
}

/** tokenizer_config.json next to `tokenizerJsonFile` (or in directory `dir`), parsed; null if absent.
 *  The fields kdqat reads (see top) are checked here, so a malformed one is refused whichever
 *  command reads the file. */
export function readTokenizerConfig(fileOrDir: string): Record<string, unknown> | null {
  const dir = fs.statSync(fileOrDir, { throwIfNoEntry: false })?.isDirectory() ? fileOrDir : path.dirname(fileOrDir);
  const file = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(file)) return null;
  if (!fs.statSync(file).isFile()) throw new Error(`${file}: is a directory, not a file; remove it or put the tokenizer's tokenizer_config.json there`);
  let j: unknown;
  const bytes = readFileChecked(file);
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`${file}: not valid UTF-8 JSON (${(e as Error).message}); fix or remove it`);
  }
  if (!isObj(j)) throw new Error(`${file}: must be a JSON object ({"bos_token": ..., "chat_template": ...}); fix or remove it`);
  checkTokenizerConfig(j, file);
  return j;
}

/** The types of the fields kdqat reads (a wrong type would be silently ignored otherwise). */
function checkTokenizerConfig(j: Record<string, unknown>, file: string): void {
  const bad = (key: string, want: string): never => {
    throw new Error(`${file}: "${key}" must be ${want}, got ${JSON.stringify(j[key])?.slice(0, 80)}; fix or remove the key`);
  };
  for (const typ of SPECIAL_TYPES) {
    const v = j[`${typ}_token`];
    if (v != null && typeof v !== 'string' && !(isObj(v) && typeof v.content === 'string')) bad(`${typ}_token`, 'a token string or {"content": string}');
  }
  for (const typ of ['bos', 'eos', 'sep'] as const) {
    const v = j[`add_${typ}_token`];
    if (v != null && typeof v !== 'boolean') bad(`add_${typ}_token`, 'true or false');
  }
  const ct = j.chat_template;
  if (ct != null && typeof ct !== 'string' && !(Array.isArray(ct) && ct.every((c) => isObj(c) && typeof c.name === 'string' && typeof c.template === 'string'))) {
    bad('chat_template', 'a string or a list of {"name": string, "template": string}');
  }
}

/** A special token as tokenizer_config.json writes it: a string or an AddedToken {content}. */
export const contentOf = (v: unknown): string | null => (typeof v === 'string' ? v : isObj(v) && typeof v.content === 'string' ? v.content : null);

/** SpecialVocab (see top) from tokenizer.json (parsed) and tokenizer_config.json (or null). */
export function specialVocab(tokenizer: Record<string, unknown>, config: Record<string, unknown> | null, file = 'tokenizer_config.json'): SpecialVocab {
  const added = (Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : []).filter(isObj);
  const idOf = (content: string): number | undefined => added.find((a) => a.content === content)?.id as number | undefined;
  const out: SpecialVocab = { ids: {}, add: {}, chatTemplate: null };
  const cfg = config ?? {};
  for (const typ of SPECIAL_TYPES) {
    const content = contentOf(cfg[`${typ}_token`]);
    const id = content === null ? undefined : idOf(content);
    if (typeof id === 'number') out.ids[typ] = id;
  }
  // TemplateProcessing: a special token first → add_bos, last → add_eos (gguf-py's crude reading).
  const post = tokenizer.post_processor;
  const procs = isObj(post) ? (post.type === 'Sequence' && Array.isArray(post.processors) ? post.processors : [post]) : [];
  for (const p of procs.filter(isObj)) {
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single) || p.single.length < 2) continue;
    const special = (x: unknown): string | null => (isObj(x) && isObj(x.SpecialToken) && typeof x.SpecialToken.id === 'string' ? x.SpecialToken.id : null);
    const first = special(p.single[0]), last = special(p.single[p.single.length - 1]);
    // gguf-py: a leading token that is not bos (or cls) while bos is named → add_bos false; an
    // unnamed bos becomes the leading token. A trailing token always becomes eos (the named eos
    // then goes to eot), so add_eos is true.
    const bos = contentOf(cfg.bos_token) ?? first, cls = contentOf(cfg.cls_token);
    if (first !== null) {
      out.add.bos = first === bos || first === cls;
      if (out.ids.bos === undefined && out.add.bos && idOf(first) !== undefined) out.ids.bos = idOf(first);
    }
    if (last !== null) {
      out.add.eos = true;
      if (idOf(last) !== undefined && contentOf(cfg.eos_token) !== last) out.ids.eos = idOf(last);
    }
  }
  for (const typ of ['bos', 'eos', 'sep'] as const) {
    const v = cfg[`add_${typ}_token`];
    if (typeof v === 'boolean') out.add[typ] = v;
  }
  const ct = cfg.chat_template;
  if (typeof ct === 'string') out.chatTemplate = ct;
  else if (Array.isArray(ct)) {
    out.chatTemplate = ct.map((c) => {
      if (!isObj(c) || typeof c.name !== 'string' || typeof c.template !== 'string') {
        throw new Error(`${file}: chat_template list entries must be {"name": string, "template": string}, got ${JSON.stringify(c)}`);
      }
      return { name: c.name, template: c.template };
    });
  } else if (ct != null) {
    throw new Error(`${file}: chat_template must be a string or a list of {name, template}, got ${typeof ct}`);
  }
  return out;
}

/** The GGUF keys of add_*_token and chat_template (gguf-py GGUFWriter.add_add_*_token /
 *  add_chat_template; template names keep only [A-Za-z0-9], others become "_"). */
export function specialVocabKv(sv: SpecialVocab): [string, GgufValue][] {
  const kv: [string, GgufValue][] = [];
  for (const typ of ['bos', 'eos', 'sep'] as const) {
    const v = sv.add[typ];
    if (v !== undefined) kv.push([`tokenizer.ggml.add_${typ}_token`, { type: 'bool', value: v }]);
  }
  const ct = sv.chatTemplate;
  if (typeof ct === 'string') kv.push(['tokenizer.chat_template', { type: 'string', value: ct }]);
  else if (ct) {
    const names: string[] = [];
    for (const { name, template } of ct) {
      const n = name.replace(/[^A-Za-z0-9]/g, '_');
      if (!n) continue;
      if (n === 'default') kv.push(['tokenizer.chat_template', { type: 'string', value: template }]);
      else if (!names.includes(n)) {
        names.push(n);
        kv.push([`tokenizer.chat_template.${n}`, { type: 'string', value: template }]);
      }
    }
    if (names.length) kv.push(['tokenizer.chat_templates', { type: 'array', itemType: 'string', value: names }]);
  }
  return kv;
}

/** A user's tokenizer_config.json over the one kdqat generates: every field the user wrote is
 *  kept as written (chat_template, add_bos_token, special tokens, padding_side, ...); generated
 *  fields fill in only what the user's file lacks. */
export function mergeTokenizerConfig(generated: Record<string, unknown>, user: Record<string, unknown> | null | undefined): Record<string, unknown> {
  return user ? { ...generated, ...user } : generated;
}
