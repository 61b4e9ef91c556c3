// A fast encoder/decoder for BERT-style WordPiece tokenizer.json files. It reproduces
// @huggingface/tokenizers' Tokenizer.encode/decode (the reference; the tests compare them on
// corpora) for the configurations `fastWordPieceSupport` accepts:
//   1. added tokens (normalized: false) are cut out of the raw text, leftmost-longest;
//   2. each other piece: BertNormalizer, BertPreTokenizer (bert-text.ts);
//   3. WordPiece: greedy longest-match-first over the word's characters, "##" on every piece but
//      the first; a word with an uncoverable part, or over max_input_chars_per_word characters,
//      is [UNK] (Wu et al. 2016, google-research/bert WordpieceTokenizer);
//   4. TemplateProcessing adds [CLS] ... [SEP].
// Decoding is the WordPiece decoder: pieces starting with "##" are glued to the previous one,
// others get a space before them; with cleanup, " ." -> "." etc. (HF decoders::wordpiece).
import { bertNormalize, bertPreTokenize, type BertNormalizerOptions } from './bert-text.js';
import { templateIds, withTemplate, type TokenizerJson, type WordPieceModelJson } from './schema.js';
import { forEachPiece, specialsPattern } from './words.js';

export function fastWordPieceSupport(json: TokenizerJson): string | null {
  const m = json.model as Partial<WordPieceModelJson> & { type: string };
  if (m.type !== 'WordPiece') return `model type ${m.type}`;
  if (json.normalizer !== null && json.normalizer.type !== 'BertNormalizer') return `normalizer ${json.normalizer.type}`;
  if (json.pre_tokenizer?.type !== 'BertPreTokenizer') return 'a pre-tokenizer other than BertPreTokenizer';
  const post = json.post_processor;
  if (post !== null && post.type !== 'TemplateProcessing') return `post-processor ${post.type}`;
  if (json.decoder?.type !== 'WordPiece') return 'a decoder other than WordPiece';
  if (json.added_tokens.some((t) => t.lstrip || t.rstrip || t.normalized || t.content.length === 0)) {
    return 'added tokens with lstrip/rstrip or normalized: true';
  }
  if (m.unk_token === undefined || m.vocab === undefined || !Object.hasOwn(m.vocab, m.unk_token)) return 'an unk_token missing from the vocab';
  return null;
}

/** The library's clean_up_tokenization (the WordPiece decoder's `cleanup`). */
export const cleanUpTokenization = (text: string): string => text
  .replace(/ \./g, '.').replace(/ \?/g, '?').replace(/ !/g, '!').replace(/ ,/g, ',')
  .replace(/ ' /g, "'").replace(/ n't/g, "n't").replace(/ 'm/g, "'m").replace(/ 's/g, "'s")
  .replace(/ 've/g, "'ve").replace(/ 're/g, "'re");

/** Every clean-up pattern starts with a space and one of these: skip the 10 replaces otherwise. */
const CLEANUP_HINT = / [.?!,'n]/;

export class WordPieceCodec {
  private readonly vocab: Map<string, number>;
  private readonly idToToken: string[] = [];
  private readonly addedByContent = new Map<string, number>();
  private readonly specialContents = new Set<string>();
  private readonly splitter: RegExp | null;
  private readonly normalizer: BertNormalizerOptions | null;
  private readonly prefix: string;
  private readonly decodePrefix: string;
  private readonly cleanup: boolean;
  private readonly unkId: number;
  private readonly maxChars: number;
  private readonly single: number[] | null;
  private readonly cache = new Map<string, number[]>();

  constructor(json: TokenizerJson) {
    const why = fastWordPieceSupport(json);
    if (why !== null) throw new Error(`fast WordPiece does not support ${why}`);
    const model = json.model as WordPieceModelJson;
    this.vocab = new Map(Object.entries(model.vocab));
    for (const [t, id] of this.vocab) this.idToToken[id] = t;
    for (const a of json.added_tokens) {
      this.idToToken[a.id] = a.content;
      this.addedByContent.set(a.content, a.id);
      if (a.special) this.specialContents.add(a.content);
    }
    this.splitter = specialsPattern(json.added_tokens.map((t) => t.content));
    this.normalizer = json.normalizer as unknown as BertNormalizerOptions | null;
    this.prefix = model.continuing_subword_prefix;
    this.decodePrefix = String(json.decoder!.prefix ?? '');
    this.cleanup = json.decoder!.cleanup === true;
    this.unkId = this.vocab.get(model.unk_token)!;
    this.maxChars = model.max_input_chars_per_word ?? 100;
    this.single = templateIds(json, (t) => this.addedByContent.get(t) ?? this.vocab.get(t));
  }

  encode(text: string, addSpecialTokens = true): number[] {
    const ids: number[] = [];
    const emitPiece = (piece: string): void => {
      const norm = this.normalizer === null ? piece : bertNormalize(piece, this.normalizer);
      for (const word of bertPreTokenize(norm)) {
        let pieces = this.cache.get(word);
        if (pieces === undefined) {
          pieces = this.wordPiece(word);
          if (this.cache.size >= 500_000) this.cache.clear();
          this.cache.set(word, pieces);
        }
        for (let i = 0; i < pieces.length; i++) ids.push(pieces[i]);
      }
    };
    forEachPiece(text, this.splitter, emitPiece, (token) => ids.push(this.addedByContent.get(token)!));
    return withTemplate(this.single, ids, addSpecialTokens);
  }

  /** Greedy longest-match-first split of one word into vocab pieces, or [unk]. */
  private wordPiece(word: string): number[] {
    const chars = [...word];
    if (chars.length > this.maxChars) return [this.unkId];
    const out: number[] = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length, found = -1;
      for (; end > start; end--) {
        const sub = chars.slice(start, end).join('');
        const id = this.vocab.get(start > 0 ? this.prefix + sub : sub);
        if (id !== undefined) { found = id; break; }
      }
      if (found < 0) return [this.unkId];
      out.push(found);
      start = end;
    }
    return out;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    let out = '';
    let first = true;
    for (const id of ids) {
      let tok = this.idToToken[id];
      if (tok === undefined) throw new RangeError(`token id ${id} is not in the vocab (size ${this.idToToken.length})`);
      if (skipSpecialTokens && this.specialContents.has(tok)) continue;
      if (!first) {
        if (this.decodePrefix && tok.startsWith(this.decodePrefix)) tok = tok.slice(this.decodePrefix.length);
        else tok = ' ' + tok;
      }
      first = false;
      out += this.cleanup && CLEANUP_HINT.test(tok) ? cleanUpTokenization(tok) : tok;
    }
    return out;
  }
}
