// Hugging Face tokenizer.json: the bits kdqat needs (vocabulary size, special tokens) and its
// conversion to llama.cpp's embedded GGUF vocabulary: byte-level BPE as "gpt2" (here, with
// tokenizer.ggml.pre from gguf_pretokenizer.ts) and SentencePiece-style BPE as "llama"
// (gguf_spm.ts), dispatched by gguf_vocab.ts; special tokens, add_*_token and chat_template are
// tokenizer_config.ts. For "gpt2",
// convert_hf_to_gguf.py (TextModel.get_vocab_base / _set_vocab_gpt2) and gguf-py's SpecialVocab:
//   tokens[i]     = the vocabulary string of id i (byte-level BPE symbols, e.g. "Ġthe"), for every
//                   i < config vocab_size; ids no token uses become "[PAD{i}]" of type UNUSED;
//   token_type[i] = 1 NORMAL, 3 CONTROL (added special token), 4 USER_DEFINED (added, not special),
//                   5 UNUSED (ggml docs/gguf.md, tokenizer.ggml.token_type);
//   merges        = "left right" strings in rank order (tokenizer.json may hold [left, right] pairs).
import * as fs from 'node:fs';
import type { HfModelConfig } from './hf-config.js';
import { mergeTokenizerConfig } from './tokenizer_config.js';
import { architecture } from '../models/registry.js';
import { readFileChecked } from './files.js';

export interface AddedToken { id: number; content: string; special: boolean }

export interface TokenizerInfo {
  /** Where it came from, for messages. */
  file: string;
  modelType: string;
  /** model.vocab: token → id (BPE, WordPiece, WordLevel) or index order (Unigram). */
  vocab: Map<string, number>;
  added: AddedToken[];
  merges: string[];
  byteLevel: boolean;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function hasByteLevel(node: unknown): boolean {
  if (!isObj(node)) return false;
  if (node.type === 'ByteLevel') return true;
  const kids = node.pretokenizers ?? node.decoders ?? node.processors;
  return Array.isArray(kids) && kids.some(hasByteLevel);
}

/** Parses tokenizer.json (text or already-parsed JSON), checking what kdqat relies on. */
export function parseTokenizerJson(json: unknown, file = 'tokenizer.json'): TokenizerInfo {
  let t = json;
  if (typeof t === 'string') {
    try {
      t = JSON.parse(t);
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message}); use the model's own tokenizer.json (re-save or re-download it)`);
    }
  }
  if (!isObj(t) || !isObj(t.model)) throw new Error(`${file}: no "model" object; not a Hugging Face tokenizer.json: use the model's own tokenizer.json`);
  const m = t.model;
  const modelType = typeof m.type === 'string' ? m.type : 'BPE'; // old files omit it for BPE
  const vocab = new Map<string, number>();
  if (Array.isArray(m.vocab)) { // Unigram: [[piece, score], ...], id = index
    m.vocab.forEach((e, i) => vocab.set(Array.isArray(e) ? String(e[0]) : String(e), i));
  } else if (isObj(m.vocab)) {
    for (const [k, v] of Object.entries(m.vocab)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${file}: model.vocab["${k}"] = ${JSON.stringify(v)} is not a token id (an integer ≥ 0); fix the vocab entry`);
      vocab.set(k, v);
    }
  } else {
    throw new Error(`${file}: model.vocab is missing or not an object/array; use the model's own tokenizer.json`);
  }
  const added: AddedToken[] = [];
  for (const a of Array.isArray(t.added_tokens) ? t.added_tokens : []) {
    if (!isObj(a) || typeof a.content !== 'string' || typeof a.id !== 'number') throw new Error(`${file}: malformed added_tokens entry ${JSON.stringify(a)} (needs a string "content" and an integer "id"); fix it`);
    added.push({ id: a.id, content: a.content, special: a.special === true });
  }
  const merges: string[] = [];
  for (const x of Array.isArray(m.merges) ? m.merges : []) {
    if (typeof x === 'string') merges.push(x);
    else if (Array.isArray(x) && x.length === 2 && x.every((s) => typeof s === 'string')) merges.push(`${x[0]} ${x[1]}`);
    else throw new Error(`${file}: model.merges has a malformed merge ${JSON.stringify(x)} (expected "a b" or ["a", "b"]); fix it or re-save the tokenizer`);
  }
  return { file, modelType, vocab, added, merges, byteLevel: hasByteLevel(t.pre_tokenizer) || hasByteLevel(t.decoder) };
}

export function readTokenizerJson(file: string): TokenizerInfo {
  return parseTokenizerJson(readFileChecked(file, 'utf8'), file);
}

/** Vocabulary size as Hugging Face counts it (len(tokenizer)): model.vocab plus the added
 *  tokens whose content is not already in it. */
export function tokenizerVocabSize(t: TokenizerInfo): number {
  return t.vocab.size + t.added.filter((a) => !t.vocab.has(a.content)).length;
}

/** id → token string over model.vocab and added_tokens (added tokens win, as in HF). */
export function idToToken(t: TokenizerInfo): Map<number, string> {
  const m = new Map<number, string>();
  for (const [s, id] of t.vocab) m.set(id, s);
  for (const a of t.added) m.set(a.id, a.content);
  return m;
}

/** The token id of `content` (added tokens first), or null. */
export function tokenId(t: TokenizerInfo, content: string): number | null {
  return t.added.find((a) => a.content === content)?.id ?? t.vocab.get(content) ?? null;
}

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The GGUF vocabulary arrays for a byte-level BPE tokenizer and a model of `vocabSize` rows. */
export function ggufBpeVocab(t: TokenizerInfo, vocabSize: number): { tokens: string[]; types: number[]; merges: string[] } {
  if (t.modelType !== 'BPE' || !t.byteLevel) {
    throw new Error(`${t.file}: only byte-level BPE tokenizers (GPT-2 style: model.type "BPE" with a ByteLevel ` +
      `pre-tokenizer or decoder) can be exported to GGUF as tokenizer.ggml.model "gpt2"; this one is ` +
      `${t.modelType}${t.modelType === 'BPE' ? ' without ByteLevel' : ''}`);
  }
  const byId = idToToken(t);
  let maxId = -1;
  for (const id of byId.keys()) maxId = Math.max(maxId, id);
  if (maxId >= vocabSize) {
    throw new Error(`${t.file}: token id ${maxId} (${JSON.stringify(byId.get(maxId))}) is ≥ the model's vocab_size ${vocabSize}; ` +
      `the embedding has no row for it (fix the tokenizer or resize the model's vocabulary)`);
  }
  const addedById = new Map(t.added.map((a) => [a.id, a]));
  const tokens: string[] = [], types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const s = byId.get(i);
    if (s === undefined) {
      tokens.push(`[PAD${i}]`); // convert_hf_to_gguf.py: ids without a token
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    tokens.push(s);
    const a = addedById.get(i);
    types.push(a ? (a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL);
  }
  return { tokens, types, merges: t.merges };
}

/** tokenizer_config.json for a PreTrainedTokenizerFast over `raw` (tokenizer.json), as
 *  save_pretrained writes it: special tokens as strings, added_tokens_decoder by id, and
 *  model_max_length. Special tokens come from the config's ids (LLaMA) or the usual BERT names.
 *  `user` (the source model's tokenizer_config.json) is kept field for field on top. */
export function tokenizerConfigJson(hf: HfModelConfig, t: TokenizerInfo, raw: Record<string, unknown>,
  user?: Record<string, unknown> | null): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const a of Array.isArray(raw.added_tokens) ? raw.added_tokens : []) {
    decoder[String(a.id)] = {
      content: a.content, lstrip: !!a.lstrip, normalized: !!a.normalized, rstrip: !!a.rstrip,
      single_word: !!a.single_word, special: !!a.special,
    };
  }
  const out: Record<string, unknown> = {
    added_tokens_decoder: decoder, clean_up_tokenization_spaces: false,
    model_max_length: hf.config.maxPositionEmbeddings, tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const byId = idToToken(t);
  const text = (id: number | null): string | null => (id === null ? null : byId.get(id) ?? null);
  const rec = architecture(hf.arch);
  const ids = rec.specialIds(hf.meta);
  if (rec.kind === 'decoder') {
    out.bos_token = text(ids.bos);
    out.eos_token = text(Array.isArray(ids.eos) ? ids.eos[0] ?? null : ids.eos);
    out.pad_token = text(ids.pad);
  } else {
    for (const [key, s] of [['cls_token', '[CLS]'], ['sep_token', '[SEP]'], ['mask_token', '[MASK]'], ['unk_token', '[UNK]']]) {
      if (tokenId(t, s) !== null) out[key] = s;
    }
    out.pad_token = text(ids.pad) ?? (tokenId(t, '[PAD]') === null ? null : '[PAD]');
  }
  const m = (raw.model ?? {}) as Record<string, unknown>;
  if (typeof m.unk_token === 'string' && out.unk_token === undefined) out.unk_token = m.unk_token;
  return mergeTokenizerConfig(out, user);
}
