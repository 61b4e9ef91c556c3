// BERT text handling (Devlin et al. 2019, google-research/bert tokenization.py BasicTokenizer),
// as the tokenizer.json components BertNormalizer and BertPreTokenizer. These functions reproduce
// @huggingface/tokenizers' implementations (the reference encoder) with whole-string regexes
// instead of per-character tests; the tests check they agree on corpora and random Unicode.
//   BertNormalizer: clean_text (drop NUL, U+FFFD and control/format/private-use/surrogate chars
//   except \t \n \r; any other whitespace -> ' '), handle_chinese_chars (' ' around CJK
//   ideographs), lowercase, strip_accents (NFD, then drop nonspacing marks; by default on when
//   lowercasing, as strip_accents: null means in HF).
//   BertPreTokenizer: split on whitespace, and make every punctuation char its own token.

export interface BertNormalizerOptions {
  clean_text: boolean;
  handle_chinese_chars: boolean;
  strip_accents: boolean | null;
  lowercase: boolean;
}

// Cc is U+0000-001F and U+007F-009F; \t \n \r are kept (they are whitespace).
const DROPPED = /[\0-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uFFFD\p{Cf}\p{Co}\p{Cs}]/gu;
const OTHER_WHITESPACE = /[^\S ]/g; // whitespace but ' ' (rewriting ' ' to ' ' is slow)
// CJK Unified Ideographs (+ Extension A, Compatibility Ideographs), tested per UTF-16 unit as the
// library does (so supplementary-plane ideographs are not spaced out).
const CJK = /[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]/g;
const NONSPACING_MARK = /\p{Mn}/gu;
const NON_ASCII_RUN = /[^\x00-\x7F]+/g;

/**
 * NFD then drop nonspacing marks. Done on non-ASCII runs only: ASCII characters are starters that
 * NFD leaves alone, and canonical reordering never crosses a starter, so this equals doing it on
 * the whole text, ~10x faster on mostly-ASCII text.
 */
const stripAccents = (text: string): string =>
  text.replace(NON_ASCII_RUN, (run) => run.normalize('NFD').replace(NONSPACING_MARK, ''));

export function bertNormalize(text: string, o: BertNormalizerOptions): string {
  if (o.clean_text) text = text.replace(DROPPED, '').replace(OTHER_WHITESPACE, ' ');
  if (o.handle_chinese_chars) text = text.replace(CJK, ' $& ');
  if (o.lowercase) {
    text = text.toLowerCase();
    if (o.strip_accents !== false) text = stripAccents(text);
  } else if (o.strip_accents) {
    text = stripAccents(text);
  }
  return text;
}

/** ASCII punctuation counts as punctuation too (BERT's _is_punctuation), e.g. '$', '+', '^'. */
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const BERT_SPLIT = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');

export function bertPreTokenize(text: string): string[] {
  return text.trim().match(BERT_SPLIT) ?? [];
}
