// SentencePiece-style BPE trainer (Llama-2 / Mistral-7B-v0.1 / TinyLlama vocabularies, as HF's
// LlamaTokenizerFast stores them in tokenizer.json):
//   - spaces are "▁" and every word starts with one (SentencePiece's whitespace handling, Kudo &
//     Richardson 2018); words are the whitespace-separated pieces of the text, so no merge spans
//     two words; other whitespace (\n, \t) is left to the byte fallback, as in Llama-2's vocab;
//   - the vocabulary is the special tokens (ids 0..k-1, "<unk>" first), the 256 byte tokens
//     <0x00>..<0xFF> (byte_fallback: a character outside the vocabulary becomes its UTF-8 bytes),
//     the characters of the corpus (most frequent first), then the learned merges (bpe-core.ts);
//   - model.merges are *complete*: for every token, every split into two tokens, ordered by the
//     token's id (its SentencePiece score rank). This is what transformers' SentencePieceExtractor
//     writes when it converts a tokenizer.model, and what makes Hugging Face's rank-ordered BPE
//     equal to SentencePiece / llama.cpp's score-ordered merging (see src/io/gguf_spm.ts).
// The normalizer / pre_tokenizer / decoder written are the caller's (the real Llama-2 ones by
// default: Prepend("▁") + Replace(" " → "▁"); Replace, ByteFallback, Fuse, Strip).
import { learnMerges } from './bpe-core.js';
import {
  seq, special, specialToken, templateProcessing, vocabFromTokens,
  type ComponentJson, type TemplatePiece, type TokenizerJson,
} from './schema.js';
import { checkSpecials, checkVocabSize, forEachPiece, sortedWords, specialsPattern } from './words.js';

const SPACE = '\u2581';

export interface SentencePieceBpeOptions {
  vocabSize: number;
  /** Default ['<unk>', '<s>', '</s>'] (Llama-2's ids 0, 1, 2); the first is model.unk_token. */
  specialTokens?: string[];
  /** Pairs seen fewer times are not merged (default 2). */
  minFrequency?: number;
  /** TemplateProcessing adding these around each sequence (default {bos: '<s>'}, as Llama-2); null: none. */
  postProcessor?: { bos?: string; eos?: string } | null;
  normalizer?: ComponentJson | null;
  preTokenizer?: ComponentJson | null;
  decoder?: ComponentJson | null;
}

export const LLAMA2_NORMALIZER: ComponentJson = {
  type: 'Sequence',
  normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }],
};
export const LLAMA2_DECODER: ComponentJson = {
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};

const byteToken = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

export function trainSentencePieceBpe(texts: Iterable<string>, options: SentencePieceBpeOptions): TokenizerJson {
  const specials = options.specialTokens ?? ['<unk>', '<s>', '</s>'];
  checkSpecials(specials);
  if (specials.length === 0) throw new Error('specialTokens needs at least the unknown token (model.unk_token), e.g. ["<unk>", "<s>", "</s>"]');
  const bytes = Array.from({ length: 256 }, (_, b) => byteToken(b));
  const base = [...specials, ...bytes];
  // Words: "▁" + each whitespace-separated piece, with frequencies; characters with frequencies.
  const counts = new Map<string, number>();
  const chars = new Map<string, number>();
  const pattern = specialsPattern(specials);
  for (const text of texts) {
    if (typeof text !== 'string') throw new TypeError(`training texts must be strings, got ${typeof text}`);
    forEachPiece(text, pattern, (piece) => {
      for (const w of piece.split(/\s+/)) {
        if (!w) continue;
        const word = SPACE + w;
        counts.set(word, (counts.get(word) ?? 0) + 1);
        for (const ch of word) chars.set(ch, (chars.get(ch) ?? 0) + 1);
      }
    });
  }
  const alphabet = [...chars.keys()].filter((c) => !base.includes(c))
    .sort((a, b) => chars.get(b)! - chars.get(a)! || a.codePointAt(0)! - b.codePointAt(0)!);
  const initial = [...base, ...alphabet];
  checkVocabSize(options.vocabSize, initial.length, `${specials.length} special tokens + 256 bytes + ${alphabet.length} characters`);
  const idOf = new Map(initial.map((s, i) => [s, i]));
  const words: number[][] = [], freqs: number[] = [];
  for (const w of sortedWords(counts)) {
    words.push(Array.from(w, (ch) => idOf.get(ch)!));
    freqs.push(counts.get(w)!);
  }
  const { vocab } = learnMerges({
    words, counts: freqs, vocab: initial, vocabSize: options.vocabSize, minFrequency: options.minFrequency ?? 2, join: (a, b) => a + b,
  });
  if (vocab.length < options.vocabSize) {
    throw new Error(`the corpus yields only ${vocab.length} tokens, fewer than vocabSize ${options.vocabSize}: add text, lower minFrequency or lower vocabSize`);
  }

  // Complete merges (see top): every split of every learned token, in token-id order.
  const ids = new Map(vocab.map((s, i) => [s, i]));
  const merges: [string, string][] = [];
  for (let id = initial.length; id < vocab.length; id++) {
    const cps = Array.from(vocab[id]);
    const splits: [string, string][] = [];
    for (let i = 1; i < cps.length; i++) {
      const a = cps.slice(0, i).join(''), b = cps.slice(i).join('');
      const ia = ids.get(a), ib = ids.get(b);
      if (ia !== undefined && ib !== undefined && ia >= specials.length + 256 && ib >= specials.length + 256) splits.push([a, b]);
    }
    splits.sort((x, y) => ids.get(x[0])! - ids.get(y[0])! || ids.get(x[1])! - ids.get(y[1])!);
    merges.push(...splits);
  }

  const tokenIds = new Map(specials.map((s, i) => [s, i] as [string, number]));
  const pp = options.postProcessor === undefined ? { bos: '<s>' } : options.postProcessor;
  let post: ComponentJson | null = null;
  if (pp) {
    for (const t of [pp.bos, pp.eos]) if (t !== undefined && !tokenIds.has(t)) throw new Error(`postProcessor token ${JSON.stringify(t)} is not in specialTokens`);
    const around = (s: 'A' | 'B', typeId: number): TemplatePiece[] => [
      ...(pp.bos !== undefined ? [special(pp.bos, typeId)] : []), seq(s, typeId), ...(pp.eos !== undefined ? [special(pp.eos, typeId)] : []),
    ];
    post = templateProcessing(around('A', 0), [...around('A', 0), ...around('B', 1)], tokenIds);
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => specialToken(i, s)),
    normalizer: options.normalizer === undefined ? LLAMA2_NORMALIZER : options.normalizer,
    pre_tokenizer: options.preTokenizer ?? null,
    post_processor: post,
    decoder: options.decoder === undefined ? LLAMA2_DECODER : options.decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: specials[0],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabFromTokens(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}
