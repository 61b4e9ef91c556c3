// The embedded GGUF vocabulary of a tokenizer.json: which kind llama.cpp runs it as ("gpt2" for
// byte-level BPE, "llama" for SentencePiece-style BPE) and the tokenizer.ggml.* keys for it. The
// kinds themselves are gguf_tokenizer.ts (+ gguf_pretokenizer.ts) and gguf_spm.ts.
import type { GgufValue } from './gguf_format.js';
import { tokenizerPre } from './gguf_pretokenizer.js';
import { ggufSpmVocab, sentencePieceStyle } from './gguf_spm.js';
import { ggufBpeVocab, type TokenizerInfo } from './gguf_tokenizer.js';

/** Which GGUF vocabulary a tokenizer.json exports as: "llama" (SentencePiece style, gguf_spm.ts)
 *  or "gpt2" (byte-level BPE, with tokenizer.ggml.pre from gguf_pretokenizer.ts); else an error. */
export function ggufTokenizerModel(t: TokenizerInfo, json: Record<string, unknown>): 'llama' | 'gpt2' {
  if (sentencePieceStyle(json)) return 'llama';
  if (t.modelType === 'BPE' && t.byteLevel) return 'gpt2';
  const what = t.modelType === 'Unigram'
    ? 'a Unigram model (llama.cpp runs Unigram vocabularies only as T5 "t5", which LLaMA export does not write)'
    : t.modelType === 'BPE' ? 'BPE without a ByteLevel pre-tokenizer and without SentencePiece-style byte_fallback + "▁" spaces'
      : `a ${t.modelType} model`;
  throw new Error(`${t.file}: is ${what}. GGUF export writes byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM style) as ` +
    'tokenizer.ggml.model "gpt2" and SentencePiece-style BPE (Llama-2 style: byte_fallback, Metaspace or Prepend+Replace "▁") ' +
    'as "llama"; retrain or convert the tokenizer to one of these');
}

/** llama.cpp's name for SentencePiece vocabularies (tokenizer.ggml.model), not an architecture. */
const SPM_TOKENIZER_MODEL = 'llama';

/** The tokenizer.ggml.* vocabulary keys (model, pre, tokens, token_type, and merges or scores
 *  plus add_space_prefix) for a model of `vocabSize` rows. `pre` overrides the detected
 *  pre-tokenizer (byte-level BPE only). */
export function ggufVocabKv(t: TokenizerInfo, json: Record<string, unknown>, vocabSize: number, pre?: string): [string, GgufValue][] {
  const kind = ggufTokenizerModel(t, json);
  const str = (value: string): GgufValue => ({ type: 'string', value });
  if (kind === SPM_TOKENIZER_MODEL) {
    if (pre !== undefined && pre !== 'default') {
      throw new Error(`--tokenizer-pre ${pre}: ${t.file} is a SentencePiece-style vocabulary, which llama.cpp tokenizes ` +
        'without a pre-tokenizer (tokenizer.ggml.pre "default"); drop --tokenizer-pre');
    }
    const v = ggufSpmVocab(t, json, vocabSize);
    return [
      ['tokenizer.ggml.model', str('llama')],
      ['tokenizer.ggml.pre', str('default')], // what convert_hf_to_gguf.py writes for SentencePiece
      ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: v.tokens }],
      ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: v.scores }],
      ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: v.types }],
      ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: v.addSpacePrefix }],
    ];
  }
  const name = tokenizerPre(json, t.file, pre);
  const v = ggufBpeVocab(t, vocabSize);
  return [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(name)],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: v.tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: v.types }],
    // llama.cpp refuses a "gpt2" vocabulary without this key, so it is written even if empty.
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: v.merges }],
  ];
}
