// WordPiece vocab trainer (BERT-style encoder), the way HF's WordPieceTrainer does it: run the BPE
// trainer (Sennrich et al. 2016) on BERT-normalized, BERT-pre-tokenized words where every
// character but the first of a word carries the continuing prefix "##", then take the resulting
// symbols as the WordPiece vocab (WordPiece::from_bpe). Merging "x" + "##y" gives "xy", and
// "##x" + "##y" gives "##xy". Encoding is then WordPiece's greedy longest-match-first, with [UNK]
// for a word that cannot be covered (Schuster & Nakajima 2012; Wu et al. 2016).
// Vocab order: special tokens (default [PAD]=0, [UNK], [CLS], [SEP], [MASK]), the alphabet sorted
// by code point, the "##" forms of the characters seen inside words (sorted), then merges.
// Against tokenizers 0.23's WordPieceTrainer on SOTU (vocab 30000) the vocabs differ in 14 tokens,
// all ties: HF numbers the "##" characters in hash-map order, so its tie-breaking is not stable.
import { learnMerges } from './bpe-core.js';
import { bertNormalize, bertPreTokenize, type BertNormalizerOptions } from './bert-text.js';
import {
  seq, special, specialToken, templateProcessing, vocabFromTokens, type TokenizerJson,
} from './schema.js';
import { checkSpecials, checkVocabSize, countWords, sortedWords } from './words.js';

export interface WordPieceOptions {
  /** Total vocab size, special tokens included. */
  vocabSize: number;
  /** Special tokens, ids 0, 1, ... in order. Must contain unk, cls and sep. Default BERT's five. */
  specialTokens?: string[];
  /** Pairs seen fewer times are not merged (default 2, as HF's BertWordPieceTokenizer.train). */
  minFrequency?: number;
  /** Keep at most this many distinct characters, the most frequent (default 1000, as HF). */
  limitAlphabet?: number;
  /** Lowercase (and strip accents) in the normalizer (default true: an "uncased" model). */
  lowercase?: boolean;
  unkToken?: string;
  clsToken?: string;
  sepToken?: string;
}

export const DEFAULT_WORDPIECE_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
export const CONTINUING_PREFIX = '##';
export const MAX_INPUT_CHARS_PER_WORD = 100;

export function trainWordPiece(texts: Iterable<string>, options: WordPieceOptions): TokenizerJson {
  const specials = options.specialTokens ?? DEFAULT_WORDPIECE_SPECIALS;
  checkSpecials(specials);
  const unk = options.unkToken ?? '[UNK]', cls = options.clsToken ?? '[CLS]', sep = options.sepToken ?? '[SEP]';
  for (const t of [unk, cls, sep]) {
    if (!specials.includes(t)) throw new Error(`specialTokens must include ${t} (or pass unkToken/clsToken/sepToken)`);
  }
  const limitAlphabet = options.limitAlphabet ?? 1000;
  const normalizer: BertNormalizerOptions = {
    clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: options.lowercase ?? true,
  };

  const counts = countWords(texts, specials, (piece) => bertPreTokenize(bertNormalize(piece, normalizer)));
  // Words longer than max_input_chars_per_word always encode as [UNK]: learn nothing from them.
  for (const w of counts.keys()) if (charCount(w) > MAX_INPUT_CHARS_PER_WORD) counts.delete(w);

  // Alphabet: the limitAlphabet most frequent characters (ties by code point), sorted by code point.
  const charFreq = new Map<string, number>();
  for (const [w, c] of counts) for (const ch of w) charFreq.set(ch, (charFreq.get(ch) ?? 0) + c);
  const byCodePoint = (a: string, b: string): number => a.codePointAt(0)! - b.codePointAt(0)!;
  const alphabet = [...charFreq.keys()]
    .sort((a, b) => charFreq.get(b)! - charFreq.get(a)! || byCodePoint(a, b))
    .slice(0, limitAlphabet)
    .sort(byCodePoint);
  const kept = new Set(alphabet);

  // Words with a character outside the alphabet encode as [UNK] whole: they are left out (HF's
  // trainer would silently drop just the missing characters and learn pairs that never occur).
  const words: string[][] = [];
  const freqs: number[] = [];
  const inner = new Set<string>();
  for (const w of sortedWords(counts)) {
    const chars = [...w];
    if (!chars.every((ch) => kept.has(ch))) continue;
    const syms = chars.map((ch, i) => (i === 0 ? ch : CONTINUING_PREFIX + ch));
    for (let i = 1; i < syms.length; i++) inner.add(syms[i]);
    words.push(syms);
    freqs.push(counts.get(w)!);
  }
  const initial = [...specials];
  const seen = new Set(initial);
  for (const t of [...alphabet, ...[...inner].sort((a, b) => byCodePoint(a.slice(2), b.slice(2)))]) {
    if (!seen.has(t)) { seen.add(t); initial.push(t); }
  }
  checkVocabSize(options.vocabSize, initial.length,
    `${specials.length} special tokens + ${initial.length - specials.length} characters and ##characters`);
  const index = new Map(initial.map((t, i) => [t, i] as [string, number]));

  const { vocab } = learnMerges({
    words: words.map((syms) => syms.map((s) => index.get(s)!)),
    counts: freqs,
    vocab: initial,
    vocabSize: options.vocabSize,
    minFrequency: options.minFrequency ?? 2,
    join: (a, b) => a + (b.startsWith(CONTINUING_PREFIX) ? b.slice(CONTINUING_PREFIX.length) : b),
  });
  if (vocab.length < options.vocabSize) {
    throw new Error(`the corpus yields only ${vocab.length} tokens, fewer than vocabSize ${options.vocabSize}: ` +
      'add text, lower minFrequency or lower vocabSize');
  }

  const ids = new Map(specials.map((s, i) => [s, i] as [string, number]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => specialToken(i, s)),
    normalizer: { type: 'BertNormalizer', ...normalizer },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    // BERT's template: [CLS] $A [SEP] and [CLS] $A [SEP] $B:1 [SEP]:1.
    post_processor: templateProcessing(
      [special(cls), seq('A'), special(sep)],
      [special(cls), seq('A'), special(sep), seq('B', 1), special(sep, 1)],
      ids,
    ),
    decoder: { type: 'WordPiece', prefix: CONTINUING_PREFIX, cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: unk,
      continuing_subword_prefix: CONTINUING_PREFIX,
      max_input_chars_per_word: MAX_INPUT_CHARS_PER_WORD,
      vocab: vocabFromTokens(vocab),
    },
  };
}

function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
