// Byte-level BPE trainer (GPT-2 / LLaMA-3 style; HF ByteLevelBPETokenizer.train equivalent):
//   pre-tokenize with the GPT-2 regex, map each pre-token's UTF-8 bytes to the byte-level alphabet,
//   start from all 256 byte symbols (so every string encodes, with no unknown token), and learn
//   merges (Sennrich et al. 2016) until the vocab, special tokens included, has exactly vocabSize
//   entries. Special tokens get ids 0..k-1 in the order given, then the 256 bytes, then the merges.
//   The merge order is HF BpeTrainer's (checked: identical merges on the whole SOTU corpus).
//   decode(encode(s)) === s for every well-formed string s (a lone surrogate has no UTF-8 form and
//   comes back as U+FFFD, as with every byte-level tokenizer).
// Other byte-level families (Llama-3, Qwen2, SmolLM: a Split regex, Digits, NFC before ByteLevel)
// train with their own pre-tokenizer (options.preTokenizer/normalizer): the text is then split by
// @huggingface/tokenizers running that very pre_tokenizer, so the merges are learned on the same
// pre-tokens the shipped tokenizer.json will produce.
// Output: a tokenizer.json object with the ByteLevel pre-tokenizer and decoder, a BPE model with
// legacy "a b" merges (readable by every tokenizers version; byte-level tokens never contain a
// space) and either a ByteLevel post-processor (GPT-2) or a TemplateProcessing adding BOS/EOS
// (LLaMA-3).
import * as hfTokenizers from '@huggingface/tokenizers';
import { learnMerges } from './bpe-core.js';
import { BYTE_ALPHABET, BYTE_TO_CHAR, GPT2_SPLIT } from './bytes.js';
import {
  seq, special, specialToken, templateProcessing, vocabFromTokens,
  type ComponentJson, type TemplatePiece, type TokenizerJson,
} from './schema.js';
import { checkSpecials, checkVocabSize, countWords, sortedWords } from './words.js';

export interface ByteLevelBpeOptions {
  /** Total vocab size: special tokens + 256 bytes + merges. */
  vocabSize: number;
  /** Special tokens, given ids 0, 1, ... in this order. Default ['<s>', '</s>', '<pad>']. */
  specialTokens?: string[];
  /** Pairs seen fewer times are not merged (default 2, as HF's ByteLevelBPETokenizer.train). */
  minFrequency?: number;
  /**
   * Post-processor. 'byte-level' (default): GPT-2's, adds nothing. {bos, eos}: TemplateProcessing
   * that adds these special tokens around each sequence (LLaMA-3 adds bos only). null: none.
   */
  postProcessor?: 'byte-level' | { bos?: string; eos?: string } | null;
  /** pre_tokenizer to train with and write (default GPT-2's ByteLevel with its regex); must
   *  end in a ByteLevel step (use_regex false when a Split before it does the splitting). */
  preTokenizer?: ComponentJson;
  /** normalizer to train with and write (default none), e.g. Qwen2's {type: "NFC"}. */
  normalizer?: ComponentJson | null;
  /** decoder to write (default ByteLevel). */
  decoder?: ComponentJson;
  /** model.ignore_merges (Llama-3: true; look whole pre-tokens up in the vocab first). */
  ignoreMerges?: boolean;
}

// The library exports these classes at runtime, but its types/index.d.ts re-exports them with
// extensionless paths that NodeNext resolution drops, so they are typed here.
const lib = hfTokenizers as unknown as {
  SequencePreTokenizer: new (config: ComponentJson) => { pre_tokenize(text: string): string[] };
  SequenceNormalizer: new (config: ComponentJson) => { normalize(text: string): string };
};

export const DEFAULT_BPE_SPECIALS = ['<s>', '</s>', '<pad>'];

const byteLevelComponent = (type: string, addPrefixSpace: boolean, trimOffsets: boolean): ComponentJson =>
  ({ type, add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true });

export function trainByteLevelBpe(texts: Iterable<string>, options: ByteLevelBpeOptions): TokenizerJson {
  const specials = options.specialTokens ?? DEFAULT_BPE_SPECIALS;
  checkSpecials(specials);
  for (const s of specials) {
    if (BYTE_ALPHABET.includes(s)) throw new Error(`special token ${JSON.stringify(s)} is also a byte token; pick another spelling`);
  }
  checkVocabSize(options.vocabSize, specials.length + 256, `${specials.length} special tokens + 256 bytes`);
  const minFrequency = options.minFrequency ?? 2;
  const ids = new Map(specials.map((s, i) => [s, i] as [string, number]));
  const post = postProcessor(options.postProcessor === undefined ? 'byte-level' : options.postProcessor, ids);

  const initial = [...specials, ...BYTE_ALPHABET];
  const words: number[][] = [];
  const freqs: number[] = [];
  if (options.preTokenizer === undefined && !options.normalizer) {
    const counts = countWords(texts, specials, (piece) => piece.match(GPT2_SPLIT) ?? []);
    const symbolOfByte = BYTE_TO_CHAR.map((ch) => initial.indexOf(ch));
    const encoder = new TextEncoder();
    for (const w of sortedWords(counts)) {
      const bytes = encoder.encode(w);
      const ids = new Array<number>(bytes.length);
      for (let i = 0; i < bytes.length; i++) ids[i] = symbolOfByte[bytes[i]];
      words.push(ids);
      freqs.push(counts.get(w)!);
    }
  } else {
    // Pre-tokens come out of the library already in the byte-level alphabet.
    const pre = new lib.SequencePreTokenizer({ type: 'Sequence', pretokenizers: [options.preTokenizer ?? byteLevelComponent('ByteLevel', false, true)] });
    const norm = options.normalizer ? new lib.SequenceNormalizer({ type: 'Sequence', normalizers: [options.normalizer] } as never) : null;
    const counts = countWords(texts, specials, (piece) => pre.pre_tokenize(norm ? norm.normalize(piece) : piece));
    const symbolOf = new Map(initial.map((s, i) => [s, i]));
    for (const w of sortedWords(counts)) {
      words.push(Array.from(w, (ch) => {
        const id = symbolOf.get(ch);
        if (id === undefined) throw new Error(`preTokenizer ${JSON.stringify(options.preTokenizer)} yields ${JSON.stringify(ch)}, which is not a byte-level symbol; it must end in a ByteLevel step`);
        return id;
      }));
      freqs.push(counts.get(w)!);
    }
  }

  const { vocab, merges } = learnMerges({
    words, counts: freqs, vocab: initial, vocabSize: options.vocabSize, minFrequency, join: (a, b) => a + b,
  });
  if (vocab.length < options.vocabSize) {
    throw new Error(
      `the corpus yields only ${vocab.length} tokens (no pair left seen >= ${Math.max(1, minFrequency)} times), ` +
      `fewer than vocabSize ${options.vocabSize}: add text, lower minFrequency or lower vocabSize`);
  }

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => specialToken(i, s)),
    normalizer: options.normalizer ?? null,
    pre_tokenizer: options.preTokenizer ?? byteLevelComponent('ByteLevel', false, true),
    post_processor: post,
    decoder: options.decoder ?? byteLevelComponent('ByteLevel', true, true),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: options.ignoreMerges ?? false,
      vocab: vocabFromTokens(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

function postProcessor(opt: ByteLevelBpeOptions['postProcessor'], ids: Map<string, number>): ComponentJson | null {
  if (opt === null || opt === undefined) return null;
  if (opt === 'byte-level') return byteLevelComponent('ByteLevel', true, false);
  const { bos, eos } = opt;
  for (const t of [bos, eos]) {
    if (t !== undefined && !ids.has(t)) throw new Error(`postProcessor token ${JSON.stringify(t)} is not in specialTokens`);
  }
  // LLaMA-3's template: `<bos> $A` and `<bos> $A <bos>:1 $B:1`, here with an optional eos too.
  const around = (s: 'A' | 'B', typeId: number): TemplatePiece[] => [
    ...(bos !== undefined ? [special(bos, typeId)] : []), seq(s, typeId), ...(eos !== undefined ? [special(eos, typeId)] : []),
  ];
  return templateProcessing(around('A', 0), [...around('A', 0), ...around('B', 1)], ids);
}
