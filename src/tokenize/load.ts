// loadTokenizer: a small interface over @huggingface/tokenizers 0.2.0 (`new Tokenizer(json,
// config)`), which is the reference encoder. For byte-level BPE and BERT WordPiece files (ours,
// GPT-2's, BERT's) encode/decode go through our fast codecs, which give the same ids and text
// (tested on whole corpora) about 5-10x faster; pass { fast: false } to use the library alone.
// Library quirks handled here: it needs every top-level key present; decode([]) throws; its
// decode cleans up spaces (" ." -> ".") by default, which would break byte-level round trips, so
// clean_up_tokenization_spaces is off (the WordPiece decoder still does BERT's `cleanup`).
import { Tokenizer } from '@huggingface/tokenizers';
import { ByteLevelBpeCodec, fastByteLevelSupport } from './fast-bpe.js';
import { WordPieceCodec, fastWordPieceSupport } from './fast-wordpiece.js';
import { readTokenizerJson } from './io.js';
import type { TokenizerJson } from './schema.js';

export interface SpecialIds {
  bos?: number; eos?: number; pad?: number; unk?: number; cls?: number; sep?: number; mask?: number;
}

export interface LoadedTokenizer {
  readonly path: string;
  readonly json: TokenizerJson;
  /** Embedding rows needed: 1 + the largest id of the vocab and added tokens. */
  readonly vocabSize: number;
  readonly specials: SpecialIds;
  /** True when encode/decode use our fast codec rather than the library. */
  readonly fast: boolean;
  /** Token ids of `text`; with addSpecialTokens (default true) the post-processor's tokens too. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`; skipSpecialTokens (default false) drops special tokens first. */
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** Conventional spellings of each special role, most common first. */
const ROLE_NAMES: Record<keyof SpecialIds, string[]> = {
  bos: ['<s>', '<|begin_of_text|>', '<|startoftext|>', '<bos>', '[BOS]'],
  eos: ['</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>', '[EOS]'],
  pad: ['<pad>', '[PAD]', '<|pad|>', '<|padding|>'],
  unk: ['<unk>', '[UNK]', '<|unk|>'],
  cls: ['[CLS]', '<cls>'],
  sep: ['[SEP]', '<sep>'],
  mask: ['[MASK]', '<mask>'],
};

export function loadTokenizer(file: string, opts: { fast?: boolean } = {}): LoadedTokenizer {
  const json = readTokenizerJson(file);
  let lib: Tokenizer;
  try {
    lib = new Tokenizer(json, { clean_up_tokenization_spaces: false });
  } catch (e) {
    throw new Error(`${file}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`);
  }
  let codec: ByteLevelBpeCodec | WordPieceCodec | null = null;
  if (opts.fast !== false) {
    try {
      if (fastByteLevelSupport(json) === null) codec = new ByteLevelBpeCodec(json);
      else if (fastWordPieceSupport(json) === null) codec = new WordPieceCodec(json);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }

  let maxId = -1;
  for (const id of lib.get_vocab(true).values()) maxId = Math.max(maxId, id);
  const vocabSize = maxId + 1;
  const tokenToId = (token: string): number | undefined => lib.token_to_id(token);
  const idToToken = (id: number): string | undefined => lib.id_to_token(id);
  const checkIds = (ids: readonly number[]): void => {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize || idToToken(id) === undefined) {
        throw new RangeError(`${file}: token id ${id} is not in the vocab (ids 0..${vocabSize - 1})`);
      }
    }
  };

  return {
    path: file,
    json,
    vocabSize,
    specials: findSpecials(json, tokenToId),
    fast: codec !== null,
    encode(text, o = {}) {
      if (typeof text !== 'string') throw new TypeError(`encode expects a string, got ${typeof text}`);
      const add = o.addSpecialTokens ?? true;
      return codec !== null ? codec.encode(text, add) : lib.encode(text, { add_special_tokens: add }).ids;
    },
    decode(ids, o = {}) {
      checkIds(ids);
      if (ids.length === 0) return '';
      const skip = o.skipSpecialTokens ?? false;
      return codec !== null ? codec.decode(ids, skip) : lib.decode([...ids], { skip_special_tokens: skip });
    },
    tokenToId,
    idToToken,
  };
}

function findSpecials(json: TokenizerJson, tokenToId: (t: string) => number | undefined): SpecialIds {
  const out: SpecialIds = {};
  const specialContents = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.content));
  const unkToken = (json.model as { unk_token?: unknown }).unk_token;
  for (const role of Object.keys(ROLE_NAMES) as (keyof SpecialIds)[]) {
    const names = role === 'unk' && typeof unkToken === 'string' ? [unkToken, ...ROLE_NAMES.unk] : ROLE_NAMES[role];
    const name = names.find((n) => specialContents.has(n)) ?? names.find((n) => tokenToId(n) !== undefined);
    if (name !== undefined) out[role] = tokenToId(name);
  }
  // GPT-2 convention: <|endoftext|> is both the start and the end of a text.
  if (out.bos === undefined && out.eos !== undefined && out.eos === tokenToId('<|endoftext|>')) {
    out.bos = tokenToId('<|endoftext|>');
  }
  return out;
}
