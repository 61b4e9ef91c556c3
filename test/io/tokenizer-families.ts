// The tokenizer.json settings of real model families, as they appear in the families' published
// tokenizer.json files (normalizer, pre_tokenizer, decoder, model flags), and a test text that
// exercises what pre-tokenizers disagree on. kdqat trains a small vocabulary with each family's
// settings on the SOTU corpus (no checkpoint can be downloaded here), exports it to GGUF and checks
// that llama.cpp tokenizes like Hugging Face.
import type { ComponentJson } from '../../src/tokenize/schema.js';

const SPACE = '\u2581';
const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean, useRegex: boolean): ComponentJson =>
  ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: useRegex });
const split = (regex: string): ComponentJson => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });

export interface ByteLevelFamily {
  kind: 'byte-level';
  /** tokenizer.ggml.pre llama.cpp must get. */
  pre: string;
  normalizer: ComponentJson | null;
  preTokenizer: ComponentJson;
  decoder: ComponentJson;
  ignoreMerges: boolean;
  specials: string[];
  bos?: string;
}

/** openai-community/gpt2 tokenizer.json. */
export const GPT2: ByteLevelFamily = {
  kind: 'byte-level', pre: 'gpt-2', normalizer: null, preTokenizer: byteLevel(false, true, true),
  decoder: byteLevel(true, true, true), ignoreMerges: false, specials: ['<|endoftext|>'],
};

/** meta-llama/Meta-Llama-3-8B tokenizer.json (also 3.1 / 3.2). */
export const LLAMA3: ByteLevelFamily = {
  kind: 'byte-level', pre: 'llama-bpe', normalizer: null,
  preTokenizer: {
    type: 'Sequence', pretokenizers: [
      split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
      byteLevel(false, true, false),
    ],
  },
  decoder: byteLevel(true, true, true), ignoreMerges: true,
  specials: ['<|begin_of_text|>', '<|end_of_text|>'], bos: '<|begin_of_text|>',
};

/** Qwen/Qwen2.5-0.5B tokenizer.json (Qwen2 has the same). */
export const QWEN2: ByteLevelFamily = {
  kind: 'byte-level', pre: 'qwen2', normalizer: { type: 'NFC' },
  preTokenizer: {
    type: 'Sequence', pretokenizers: [
      split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
      byteLevel(false, false, false),
    ],
  },
  decoder: byteLevel(false, false, false), ignoreMerges: false, specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
};

/** HuggingFaceTB/SmolLM2-135M tokenizer.json. */
export const SMOLLM: ByteLevelFamily = {
  kind: 'byte-level', pre: 'smollm', normalizer: null,
  preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(false, true, true)] },
  decoder: byteLevel(true, true, true), ignoreMerges: false, specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
};

/** meta-llama/Llama-2-7b-hf tokenizer.json (LlamaTokenizerFast, legacy): BPE with byte_fallback,
 *  unk_token "<unk>", fuse_unk true. */
export const LLAMA2 = {
  kind: 'sentencepiece' as const,
  normalizer: {
    type: 'Sequence',
    normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }],
  } as ComponentJson,
  preTokenizer: null,
  decoder: {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  } as ComponentJson,
  specials: ['<unk>', '<s>', '</s>'],
};

/** ≥ 2,000 characters: long digit runs, runs of spaces and newlines, tabs, accents (NFC), CJK,
 *  emoji, code and contractions. It starts with a letter: Metaspace-style tokenizers and
 *  llama.cpp differ on a leading space (see src/io/gguf_spm.ts). */
export const TEST_TEXT = [
  "Mr. Speaker, we've come a long way since 1790; it's 2024 now and the debt is $31,415,926,535,897.93.",
  "They'll say we can't, I'm sure — but we'd do it again. DON'T SHOUT, it's RUDE! You're right, isn't it?",
  'Numbers: 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 98765432109876543210.',
  'Phone +1 (555) 010-9999, ISBN 978-3-16-148410-0, π ≈ 3.14159265358979323846264338327950288.',
  '',
  '',
  '   Indented by three spaces, then    four, then\ttabs\t\tand\t \tmixed.   ',
  'Trailing spaces here:      ',
  '\n\n\n\nAfter four newlines.\r\nWindows line end, then a form feed-free line.',
  'Accents: café, naïve, façade, coöperate, Ångström, São Paulo, Zürich, Dvořák, Łódź, İstanbul, résumé.',
  'Greek: Ἀθῆναι, Ελλάδα; Cyrillic: Москва, Київ; Arabic: مرحبا بالعالم; Hebrew: שלום; Hindi: नमस्ते दुनिया.',
  'CJK: 你好，世界！今天是2024年5月17日。日本語のテキスト、カタカナとひらがな。한국어 문장입니다.',
  'Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇫🇷 ❤️ 🚀✨ — and a lone ☃ snowman.',
  'Code:',
  'function fib(n) {',
  '    if (n < 2) return n;',
  '    return fib(n - 1) + fib(n - 2);  // exponential, but fine for n <= 30',
  '}',
  '\tconst xs = [1, 2, 3].map((x) => x ** 2).filter((y) => y % 2 === 1);',
  'def main(argv: list[str]) -> int:',
  '    for i, arg in enumerate(argv):',
  "        print(f\"{i:03d}: {arg!r}\")",
  '    return 0',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  'SELECT id, name FROM users WHERE created_at >= \'2021-01-01\' ORDER BY id DESC LIMIT 10;',
  'URLs: https://example.com/path?q=a+b&x=1#frag, mailto:someone@example.org, C:\\Program Files\\x.',
  'Punctuation runs: ... !!! ??? ?!?! --- *** ((( ))) [[[ ]]] {{{ }}} <<< >>> ||| &&& ;;; ::: ,,, .',
  "Contractions: I'm, you're, he's, she'd, we'll, they've, it'd, y'all, o'clock, rock 'n' roll, 'quoted'.",
  'Fellow citizens: the state of the Union is strong, and the strength of our economy depends on the',
  'industry of our people, the fairness of our laws, and the wisdom of our choices for 250 years.',
  'In 1803 the Louisiana Purchase added 828,000 square miles for $15,000,000 — about 3 cents per acre.',
  'We hold these truths to be self-evident, that all men are created equal; that they are endowed',
  'by their Creator with certain unalienable Rights, that among these are Life, Liberty and the',
  'pursuit of Happiness. — 4th of July, 1776.   The end.\n',
].join('\n');
