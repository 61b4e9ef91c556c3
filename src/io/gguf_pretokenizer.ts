// tokenizer.ggml.pre: which pre-tokenizer llama.cpp runs before its BPE merges. llama.cpp does not
// read tokenizer.json's pre_tokenizer; it maps the name in the GGUF to a hard-coded list of
// regexes (src/llama-vocab.cpp, llm_tokenizer_bpe constructor and the tokenizer_pre → pre_type
// chain in llama_vocab::impl::load). convert_hf_to_gguf.py picks the name by hashing the
// tokenization of a test string (get_vocab_base_pre); kdqat has no hub checkpoint to hash against,
// so it reads the pre_tokenizer structure instead: each row of PRE_TOKENIZERS is one llama.cpp name
// and the pre_tokenizer steps (as in that family's real tokenizer.json) that identify it.
//
// A step is written as a short canonical string (see `steps`):
//   "split:<regex>"        Split {pattern: {Regex}, behavior: "Isolated", invert: false}
//   "bytelevel"            ByteLevel {use_regex: false}  (bytes → GPT-2 alphabet only)
//   "bytelevel:gpt2"       ByteLevel {use_regex: true}   (also splits with GPT-2's regex)
//   "digits" / "digits:individual"   Digits {individual_digits}
//   "punctuation:<behavior>"         Punctuation {behavior}
// ByteLevel's add_prefix_space must be false: llama.cpp's BPE never adds a leading space.

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** GPT-2's split (openai/gpt-2 encoder.py; HF pre_tokenizers::byte_level). */
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Meta-Llama-3 tokenizer.json (also Llama 3.1/3.2, DBRX, Smaug, GLM-4: same regex). */
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2 / Qwen2.5 tokenizer.json: Llama-3's regex with single digits (\p{N} instead of \p{N}{1,3}). */
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** GPT-4o's o200k split, as in Llama-4's tokenizer.json (llama.cpp's "gpt-4o"/"llama4"). */
const GPT4O = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface PreTokenizerRow {
  /** The tokenizer.ggml.pre value llama.cpp knows. */
  name: string;
  /** The pre_tokenizer steps that identify it (canonical form, see top). */
  steps: readonly string[];
  /** llama.cpp ignores merges for this name (whole pre-token looked up first, ignore_merges in
   *  llama-vocab.cpp); the tokenizer.json's model.ignore_merges must agree or tokenization differs. */
  ignoreMerges: boolean;
  /** Which family's tokenizer.json this is, and what was checked against llama.cpp. */
  note: string;
}

/**
 * One row per llama.cpp name, in the order tried. Several llama.cpp names share one regex list
 * (llama-vocab.cpp handles them in the same `case`): any of them tokenizes identically, so the
 * table carries one representative per distinct pre-tokenizer:
 *   - "llama-bpe" for the Llama-3 regex (llama3, llama-v3, falcon3, pixtral, dbrx, smaug-bpe,
 *     chatglm-bpe are the same regex; llama-bpe is what convert_hf_to_gguf.py writes for Llama 3);
 *   - "smollm" for Digits(individual) + GPT-2 ByteLevel (starcoder, refact, command-r, codeshell,
 *     exaone, minerva-7b map to the same case; SmolLM/SmolLM2 is the family kdqat's users meet);
 *   - "gpt-2" for plain ByteLevel (mpt, olmo, phi-2, jais: same case). GPT-2 and SmolLM are told
 *     apart by the Digits step: without it GPT-2 keeps " 2024" together, SmolLM splits each digit.
 */
export const PRE_TOKENIZERS: readonly PreTokenizerRow[] = [
  { name: 'gpt-2', steps: ['bytelevel:gpt2'], ignoreMerges: false, note: 'GPT-2, and kdqat trainByteLevelBpe (tested with llama.cpp)' },
  { name: 'llama-bpe', steps: [`split:${LLAMA3}`, 'bytelevel'], ignoreMerges: true, note: 'Llama-3 (tested with llama.cpp)' },
  { name: 'qwen2', steps: [`split:${QWEN2}`, 'bytelevel'], ignoreMerges: false, note: 'Qwen2/2.5 (tested with llama.cpp)' },
  { name: 'smollm', steps: ['digits:individual', 'bytelevel:gpt2'], ignoreMerges: false, note: 'SmolLM/SmolLM2, StarCoder (tested with llama.cpp)' },
  {
    name: 'falcon', steps: ['punctuation:contiguous', 'bytelevel:gpt2', 'digits', 'split:[0-9][0-9][0-9]'],
    ignoreMerges: false, note: 'Falcon-7B/40B (structure from the Falcon tokenizer.json; not run through llama.cpp here)',
  },
  { name: 'gpt-4o', steps: [`split:${GPT4O}`, 'bytelevel'], ignoreMerges: false, note: 'Llama-4 / GPT-4o (not run through llama.cpp here)' },
];

/**
 * Every tokenizer.ggml.pre value llama.cpp's tokenizer (the build node-llama-cpp ships) accepts,
 * from the tokenizer_pre chain in llama_vocab::impl::load; anything else makes llama.cpp refuse
 * the file ("unknown pre-tokenizer type"). --tokenizer-pre is checked against this list.
 */
export const LLAMA_CPP_PRE_NAMES: readonly string[] = [
  'default', 'minicpm5', 'llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0',
  'lfm2', 'jina-v5-nano', 'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'youtu', 'falcon', 'mpt',
  'starcoder', 'gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0',
  'mellum', 'modern-bert', 'jais-2', 'gemma4', 'granite-embed-multi-311m', 'sarvam-moe', 'jina-v1-en',
  'jina-v2-code', 'roberta-bpe', 'whitespace', 'refact', 'command-r', 'qwen2', 'deepseek-r1-qwen', 'kormo',
  'f2llmv2', 'qwen35', 'stablelm2', 'olmo', 'dbrx', 'smaug-bpe', 'poro-chat', 'glm4', 'chatglm-bpe',
  'viking', 'jais', 'tekken', 'smollm', 'codeshell', 'bloom', 'gpt3-finnish', 'exaone', 'exaone4',
  'exaone-moe', 'chameleon', 'minerva-7b', 'megrez', 'gpt-4o', 'llama4', 'kanana2', 'talkie',
  'granite-embed-multi-97m', 'tiny_aya', 'cohere2moe', 'superbpe', 'trillion', 'granite-docling',
  'bailingmoe', 'bailingmoe2', 'llada-moe', 'seed-coder', 'hunyuan', 'hunyuan-dense', 'joyai-llm', 'kimi-k2',
  'grok-2', 'afmoe', 'laguna', 'minimax-m2', 'solar-open', 'mellum2',
];

/** The pre_tokenizer of a tokenizer.json as canonical steps (see top); Sequence is flattened. */
export function preTokenizerSteps(node: unknown): string[] {
  if (node === null || node === undefined) return [];
  if (!isObj(node)) return [JSON.stringify(node)];
  switch (node.type) {
    case 'Sequence':
      return (Array.isArray(node.pretokenizers) ? node.pretokenizers : []).flatMap(preTokenizerSteps);
    case 'ByteLevel':
      return [`bytelevel${node.use_regex === false ? '' : ':gpt2'}${node.add_prefix_space === true ? ':add_prefix_space' : ''}`];
    case 'Digits':
      return [node.individual_digits === true ? 'digits:individual' : 'digits'];
    case 'Punctuation':
      return [`punctuation:${String(node.behavior ?? 'isolated').toLowerCase()}`];
    case 'Split': {
      const p = isObj(node.pattern) ? node.pattern : {};
      const pattern = typeof p.Regex === 'string' ? p.Regex : typeof p.String === 'string' ? `string:${p.String}` : JSON.stringify(p);
      const plain = String(node.behavior ?? '').toLowerCase() === 'isolated' && node.invert !== true;
      return [plain ? `split:${pattern}` : `split(${String(node.behavior)}, invert=${String(node.invert)}):${pattern}`];
    }
    default:
      return [JSON.stringify(node)];
  }
}

const sameSteps = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((s, i) => s === b[i]);

/** The table row whose steps equal this pre_tokenizer's, or null. */
export function matchPreTokenizer(preTokenizer: unknown): PreTokenizerRow | null {
  const steps = preTokenizerSteps(preTokenizer);
  return PRE_TOKENIZERS.find((r) => sameSteps(r.steps, steps)) ?? null;
}

/** Throws unless `name` is a tokenizer.ggml.pre value llama.cpp accepts. */
export function checkTokenizerPre(name: string, flag = '--tokenizer-pre'): string {
  if (!LLAMA_CPP_PRE_NAMES.includes(name)) {
    throw new Error(`${flag} ${JSON.stringify(name)} is not a pre-tokenizer llama.cpp knows; llama.cpp would refuse the file. ` +
      `Use one of: ${LLAMA_CPP_PRE_NAMES.join(', ')}`);
  }
  return name;
}

/**
 * tokenizer.ggml.pre for a byte-level BPE tokenizer.json: `given` (validated) if the user named
 * one, else the row matching its pre_tokenizer. No match, or a match whose ignore_merges differs
 * from llama.cpp's, is refused: llama.cpp would split text differently from Hugging Face.
 */
export function tokenizerPre(json: Record<string, unknown>, file: string, given?: string): string {
  if (given !== undefined) return checkTokenizerPre(given);
  // llama.cpp's BPE path applies no normalizer. NFC (Qwen2's) is the identity on NFC text, which
  // is nearly all text (precomposed accents); anything else (Lowercase, NFKC, ...) changes the text.
  const norm = json.normalizer;
  if (norm != null && !(isObj(norm) && norm.type === 'NFC')) {
    throw new Error(`${file}: normalizer ${JSON.stringify(norm)} is not applied by llama.cpp's BPE tokenizer, which ` +
      'would then see different text from Hugging Face (only none or NFC is exported). Remove the normalizer if the ' +
      'model was trained without it, or pass --tokenizer-pre NAME to export anyway');
  }
  const row = matchPreTokenizer(json.pre_tokenizer);
  const fix = 'If you know which llama.cpp pre-tokenizer implements it, pass --tokenizer-pre NAME ' +
    `(known to kdqat: ${PRE_TOKENIZERS.map((r) => r.name).join(', ')}; llama.cpp accepts more, see llama-vocab.cpp)`;
  if (!row) {
    throw new Error(`${file}: its pre_tokenizer ${JSON.stringify(json.pre_tokenizer)} matches none of the llama.cpp ` +
      `pre-tokenizers kdqat recognises, so tokenizer.ggml.pre cannot be chosen and llama.cpp could split text differently ` +
      `from Hugging Face. ${fix}`);
  }
  const model = isObj(json.model) ? json.model : {};
  const ignore = model.ignore_merges === true;
  if (ignore !== row.ignoreMerges) {
    throw new Error(`${file}: the pre_tokenizer is llama.cpp's "${row.name}", but model.ignore_merges is ${ignore} and ` +
      `llama.cpp's "${row.name}" ${row.ignoreMerges ? 'ignores' : 'applies'} merges for whole-word tokens, so some words ` +
      `would tokenize differently. Set "ignore_merges": ${row.ignoreMerges} in ${file} if that is what the model was ` +
      `trained with, or pass --tokenizer-pre ${row.name} to export anyway`);
  }
  return row.name;
}
