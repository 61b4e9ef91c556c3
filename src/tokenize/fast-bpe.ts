// A fast encoder/decoder for byte-level BPE tokenizer.json files (ours, GPT-2's and the like).
// @huggingface/tokenizers is the reference: this class reproduces its Tokenizer.encode/decode for
// the configurations it accepts (checked by `fastByteLevelSupport`), and the tests compare the two
// on whole corpora. It is ~10x faster because it works on integer ids, caches every pre-token and
// skips the library's per-token string/JSON keys. What it mirrors, step by step:
//   1. added tokens are cut out of the raw text, leftmost-longest (DictionarySplitter);
//   2. each other piece is split by the GPT-2 regex and mapped to byte-level characters;
//   3. BPE (Sennrich et al. 2016) applies merges by rank: repeatedly the lowest-rank adjacent pair,
//      leftmost first among equal ranks (bpe-apply.ts);
//   4. TemplateProcessing adds its special tokens (a ByteLevel post-processor adds nothing).
// Decoding: ids -> tokens (special ones dropped on request), byte-level runs -> UTF-8 (invalid
// sequences become U+FFFD, a BOM is kept), added tokens verbatim; no clean-up of spaces.
import { applyMerges, type MergeTable } from './bpe-apply.js';
import { BYTE_TO_CHAR, GPT2_SPLIT, byteLevelToBytes } from './bytes.js';
import { templateIds, withTemplate, type BpeModelJson, type TokenizerJson } from './schema.js';
import { forEachPiece, specialsPattern } from './words.js';

const SHIFT = 2097152; // pair key = a * 2^21 + b

/** Why `json` cannot use the fast path, or null when it can. */
export function fastByteLevelSupport(json: TokenizerJson): string | null {
  const m = json.model as Partial<BpeModelJson> & { type: string };
  if (m.type !== 'BPE') return `model type ${m.type}`;
  if (json.normalizer !== null) return 'a normalizer';
  const pre = json.pre_tokenizer;
  if (pre?.type !== 'ByteLevel' || pre.add_prefix_space === true || pre.use_regex === false) return 'a pre-tokenizer other than ByteLevel(add_prefix_space=false, use_regex=true)';
  if (json.decoder?.type !== 'ByteLevel') return 'a decoder other than ByteLevel';
  const post = json.post_processor;
  if (post !== null && post.type !== 'ByteLevel' && post.type !== 'TemplateProcessing') return `post-processor ${post.type}`;
  if (m.dropout != null || m.byte_fallback || m.ignore_merges || m.end_of_word_suffix || m.continuing_subword_prefix || m.fuse_unk) {
    return 'BPE options (dropout, byte_fallback, ignore_merges, prefixes/suffixes or fuse_unk)';
  }
  if (json.added_tokens.some((t) => t.lstrip || t.rstrip || t.content.length === 0)) return 'added tokens with lstrip/rstrip';
  const vocab = m.vocab ?? {};
  if (BYTE_TO_CHAR.some((c) => !Object.hasOwn(vocab, c))) return 'a vocab without all 256 byte tokens';
  if (Object.values(vocab).some((id) => id >= SHIFT)) return `token ids >= ${SHIFT}`;
  return null;
}

export class ByteLevelBpeCodec {
  private readonly table: MergeTable = { ranks: new Map(), merged: new Map() };
  private readonly encoder = new TextEncoder();
  private readonly byteId: Int32Array;
  private readonly idToToken: string[];
  private readonly specialContents = new Set<string>();
  private readonly addedByContent = new Map<string, number>();
  private readonly splitter: RegExp | null;
  private readonly cache = new Map<string, number[]>();
  private readonly single: number[] | null; // template for one sequence, -1 = the sequence
  private readonly text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(json: TokenizerJson) {
    const why = fastByteLevelSupport(json);
    if (why !== null) throw new Error(`fast byte-level BPE does not support ${why}`);
    const model = json.model as BpeModelJson;
    const tokenToId = new Map<string, number>(Object.entries(model.vocab));
    this.idToToken = [];
    for (const [t, id] of tokenToId) this.idToToken[id] = t;
    for (const a of json.added_tokens) {
      this.idToToken[a.id] = a.content;
      if (a.special) this.specialContents.add(a.content);
      this.addedByContent.set(a.content, a.id);
    }
    this.byteId = Int32Array.from(BYTE_TO_CHAR, (c) => tokenToId.get(c)!);
    model.merges.forEach((entry, rank) => {
      const [a, b] = typeof entry === 'string' ? entry.split(' ', 2) : entry;
      const ia = tokenToId.get(a), ib = tokenToId.get(b), it = tokenToId.get(a + b);
      if (ia === undefined || ib === undefined || it === undefined) {
        throw new Error(`model.merges: merge ${JSON.stringify(entry)} (rank ${rank}) uses a token missing from the vocab; every merge must join two vocab tokens: fix the merges or use the model's own tokenizer.json`);
      }
      this.table.ranks.set(ia * SHIFT + ib, rank); // a repeated pair keeps its last rank, as in the library
      this.table.merged.set(ia * SHIFT + ib, it);
    });
    this.splitter = specialsPattern(json.added_tokens.map((t) => t.content));
    this.single = templateIds(json, (t) => this.addedByContent.get(t) ?? tokenToId.get(t));
  }

  encode(text: string, addSpecialTokens = true): number[] {
    const ids: number[] = [];
    const emitPiece = (piece: string): void => {
      for (const m of piece.matchAll(GPT2_SPLIT)) {
        const word = m[0];
        let bpe = this.cache.get(word);
        if (bpe === undefined) {
          bpe = this.bpe(word);
          if (this.cache.size >= 500_000) this.cache.clear();
          this.cache.set(word, bpe);
        }
        for (let i = 0; i < bpe.length; i++) ids.push(bpe[i]);
      }
    };
    forEachPiece(text, this.splitter, emitPiece, (token) => ids.push(this.addedByContent.get(token)!));
    return withTemplate(this.single, ids, addSpecialTokens);
  }

  /** BPE of one pre-token: its bytes, then the merges by rank (bpe-apply.ts). */
  private bpe(word: string): number[] {
    return applyMerges(Array.from(this.encoder.encode(word), (b) => this.byteId[b]), this.table);
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    const parts: string[] = [];
    let buf = new Uint8Array(1024);
    let n = 0;
    const flush = (): void => {
      if (n > 0) { parts.push(this.text.decode(buf.subarray(0, n))); n = 0; }
    };
    for (const id of ids) {
      const tok = this.idToToken[id];
      if (tok === undefined) throw new RangeError(`token id ${id} is not in the vocab (size ${this.idToToken.length})`);
      if (this.addedByContent.has(tok)) { // the library matches added tokens by content
        if (skipSpecialTokens && this.specialContents.has(tok)) continue;
        flush();
        parts.push(tok);
        continue;
      }
      if (n + tok.length > buf.length) {
        const bigger = new Uint8Array(Math.max(buf.length * 2, n + tok.length));
        bigger.set(buf.subarray(0, n));
        buf = bigger;
      }
      n = byteLevelToBytes(tok, buf, n);
      if (n < 0) throw new Error(`token ${JSON.stringify(tok)} (id ${id}) is not a byte-level token`);
    }
    flush();
    return parts.join('');
  }
}
