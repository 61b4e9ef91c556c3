// SentencePiece-style vocabularies (Llama-2, Mistral-7B-v0.1, TinyLlama: HF LlamaTokenizerFast's
// tokenizer.json, model.type "BPE" with byte_fallback, "▁" for spaces, <0xXX> byte tokens) as
// llama.cpp's "llama" (SPM) GGUF vocabulary: tokens, scores and token types, no merges.
//
// How llama.cpp tokenizes such a vocabulary (src/llama-vocab.cpp, llm_tokenizer_spm_session):
// spaces become "▁", a " " is prepended to the first fragment when add_space_prefix, the text is
// split into UTF-8 characters, and adjacent symbols are merged whenever their concatenation is a
// token, the token with the highest *score* first (ties: the leftmost); a final symbol that is not
// a token is emitted as its <0xXX> byte tokens. Hugging Face's BPE merges by the *rank* of the
// pair in model.merges (ties: leftmost) and only pairs listed there. The two agree when
//   (1) every split t = a + b of a vocabulary token into two vocabulary tokens is a merge
//       ("complete" merges: what transformers' SentencePieceExtractor writes when it converts a
//       tokenizer.model, merges for every split, ordered by the merged token's score), and
//   (2) the merges producing one token are contiguous in rank order,
// and score(t) = −(rank of t's first merge). Both are checked; a tokenizer.json that fails them
// (a BPE trained by HF's BpeTrainer with byte_fallback, say) is refused, since llama.cpp would
// tokenize it differently. Upstream convert_hf_to_gguf.py reads scores from tokenizer.model
// (_set_vocab_sentencepiece); without one it falls back to LlamaHfVocab, which gives every
// token the placeholder score −1000 (gguf-py vocab.py get_token_score), so llama.cpp then merges
// left to right; deriving the scores from the merge ranks is what makes the two tokenizers equal.
// Unigram models (T5, some SentencePiece exports) are refused: llama.cpp's SPM merging is not the
// Viterbi search Unigram needs.
import { TOKEN_TYPE, idToToken, type TokenizerInfo } from './gguf_tokenizer.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const SPACE = '\u2581'; // "▁", SentencePiece's whitespace symbol

/** How a tokenizer.json turns text into "▁" form, if it is SentencePiece style; else null. */
export function sentencePieceStyle(json: Record<string, unknown>): { addSpacePrefix: boolean } | null {
  const model = isObj(json.model) ? json.model : {};
  if (model.type !== 'BPE' || model.byte_fallback !== true) return null;
  const norm = json.normalizer, pre = json.pre_tokenizer;
  const list = (n: unknown): unknown[] => (isObj(n) && n.type === 'Sequence' && Array.isArray(n.normalizers) ? n.normalizers : n == null ? [] : [n]);
  // Legacy LlamaTokenizerFast: normalizer Prepend("▁") + Replace(" " → "▁"), no pre-tokenizer.
  if (pre == null) {
    const steps = list(norm);
    const isReplace = (s: unknown): boolean => isObj(s) && s.type === 'Replace' && isObj(s.pattern) && s.pattern.String === ' ' && s.content === SPACE;
    const isPrepend = (s: unknown): boolean => isObj(s) && s.type === 'Prepend' && s.prepend === SPACE;
    if (steps.length === 2 && isPrepend(steps[0]) && isReplace(steps[1])) return { addSpacePrefix: true };
    if (steps.length === 1 && isReplace(steps[0])) return { addSpacePrefix: false };
    return null;
  }
  // transformers ≥ 4.41 (legacy=false): Metaspace pre-tokenizer, no normalizer.
  if (norm == null && isObj(pre) && pre.type === 'Metaspace' && (pre.replacement ?? SPACE) === SPACE && pre.split !== true) {
    const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? 'never' : 'always');
    return { addSpacePrefix: scheme !== 'never' };
  }
  return null;
}

export interface SpmVocab { tokens: string[]; scores: number[]; types: number[]; addSpacePrefix: boolean }

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

/** The GGUF "llama" vocabulary of a SentencePiece-style tokenizer.json (see top) for a model of
 *  `vocabSize` rows. */
export function ggufSpmVocab(t: TokenizerInfo, json: Record<string, unknown>, vocabSize: number): SpmVocab {
  const style = sentencePieceStyle(json);
  if (!style) throw new Error(`${t.file}: not a SentencePiece-style tokenizer (BPE with byte_fallback and "▁" spaces)`);
  const byId = idToToken(t);
  for (const id of byId.keys()) {
    if (id >= vocabSize) {
      throw new Error(`${t.file}: token id ${id} (${JSON.stringify(byId.get(id))}) is ≥ the model's vocab_size ${vocabSize}; ` +
        `the embedding has no row for it (fix the tokenizer or resize the model's vocabulary)`);
    }
  }
  for (let b = 0; b < 256; b++) {
    const s = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (!t.vocab.has(s)) {
      throw new Error(`${t.file}: byte_fallback is on but the byte token ${s} is missing; llama.cpp's SPM tokenizer needs ` +
        'all 256 <0xXX> tokens (retrain the tokenizer with the byte tokens in its vocabulary)');
    }
  }
  const model = isObj(json.model) ? json.model : {};
  const unk = typeof model.unk_token === 'string' ? model.unk_token : null;
  const addedById = new Map(t.added.map((a) => [a.id, a]));

  // Scores from merge ranks, checking condition (2): one contiguous block of ranks per token.
  const firstRank = new Map<string, number>();
  const pairs = new Set<string>();
  let prev: string | null = null;
  const split: string[] = [];
  t.merges.forEach((m, rank) => {
    const sp = m.indexOf(' ', 1); // as llama.cpp and HF read legacy merges: first space after char 0
    const a = m.slice(0, sp), b = m.slice(sp + 1), tok = a + b;
    pairs.add(`${a} ${b}`);
    if (tok !== prev && firstRank.has(tok) && split.length < 3) {
      split.push(`"${tok}" (merges ${firstRank.get(tok)} and ${rank}, with other tokens' merges between)`);
    }
    if (!firstRank.has(tok)) firstRank.set(tok, rank);
    prev = tok;
  });
  // Condition (1): every split of a normal token into two tokens is a merge.
  const missing: string[] = [];
  let nMissing = 0;
  for (const [s, id] of t.vocab) {
    if (addedById.has(id) || BYTE_TOKEN.test(s)) continue;
    const cps = Array.from(s);
    let left = '';
    for (let i = 1; i < cps.length; i++) {
      left += cps[i - 1];
      const right = cps.slice(i).join('');
      if (t.vocab.has(left) && t.vocab.has(right) && !pairs.has(`${left} ${right}`)) {
        nMissing++;
        if (missing.length < 3) missing.push(`"${left}" + "${right}" → "${s}"`);
      }
    }
  }
  if (split.length || nMissing) {
    const why = [
      ...(nMissing ? [`${nMissing} pair(s) of tokens join into a token but are not merges (e.g. ${missing.join(', ')})`] : []),
      ...(split.length ? [`merges of one token are not contiguous in rank order: ${split.join('; ')}`] : []),
    ].join('; and ');
    throw new Error(`${t.file}: llama.cpp's SentencePiece tokenizer merges any two symbols that form a token, by score, ` +
      `so it cannot reproduce these merges: ${why}. Export a tokenizer whose merges list every split of every token in ` +
      `score order (what transformers writes when converting a SentencePiece tokenizer.model; kdqat's ` +
      `trainSentencePieceBpe does the same)`);
  }

  const tokens: string[] = [], scores: number[] = [], types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const s = byId.get(i);
    if (s === undefined) { // convert_hf_to_gguf.py: ids without a token
      tokens.push(`[PAD${i}]`); scores.push(-10000); types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    tokens.push(s);
    const a = addedById.get(i);
    const type = s === unk ? TOKEN_TYPE.UNKNOWN
      : a ? (a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED)
        : BYTE_TOKEN.test(s) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL;
    types.push(type);
    // Tokens no merge produces (characters, bytes, specials) are never a merge result; 0 is
    // what SentencePiece gives its characters' pieces relative to the merged ones.
    scores.push(type === TOKEN_TYPE.NORMAL && firstRank.has(s) ? -1 - firstRank.get(s)! : 0);
  }
  return { tokens, scores, types, addSpacePrefix: style.addSpacePrefix };
}
