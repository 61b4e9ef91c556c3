// GGUF export of a kdqat decoder for llama.cpp, doing what llama.cpp's convert_hf_to_gguf.py does
// for the family (its model class: LlamaModel for LLaMA and Mistral, Qwen2Model, Qwen3Model,
// Phi3MiniModel) with --outtype f32/f16. What differs per family is data in the family's record
// (architecture.ts GgufLayout): general.architecture, tensor names, the <arch>.* hyperparameter
// keys, extra tensors (llama3 RoPE scaling: rope_freqs.weight), fused tensors (Phi-3 attn_qkv,
// ffn_up: models/fused.ts), whether q/k rows are permuted, and notes where llama.cpp's model
// differs (sliding windows). Common to all:
//   - metadata: the hyperparameters with the types gguf-py's GGUFWriter uses (u32 counts, f32
//     epsilon/base: llama.cpp checks them), the embedded vocabulary: "gpt2" (byte-level BPE,
//     tokenizer.ggml.pre from the pre_tokenizer) or "llama" (SentencePiece style)
//     (gguf_tokenizer.ts), special token ids, add_bos/eos and chat_template (tokenizer_config.ts);
//   - tensors renamed per gguf-py's TensorNameMap (constants.py MODEL_TENSOR names);
//   - for the "llama" layout, q_proj/k_proj rows permuted (LlamaModel.permute) so llama.cpp's
//     RoPE, which rotates adjacent pairs (x[2i], x[2i+1]) (GPT-J style), matches HF's
//     rotate_half, which rotates (x[i], x[i+D/2]); the NEOX-RoPE architectures take HF's order;
//   - 1-D tensors (norms, biases) always F32 ("n_dims <= 1 → F32" in the converter), others F32
//     or F16;
//   - output.weight omitted when tie_word_embeddings (llama.cpp then reuses token_embd).
// and, for the low-bit types, what llama.cpp's quantize tool (src/llama-quant.cpp) does to such
// a file, with kdqat's bit-exact block quantizers (src/quant/formats.ts ≡ ggml-quants.c):
//   - the 7 projection matrices of every layer (attn_q/k/v/output, ffn_gate/up/down; a fused
//     tensor takes its parts' common type) in Q8_0,
//     Q4_0, TQ2_0 or a K-quant (Q2_K … Q6_K), blocks along the input dimension (GGUF ne[0]);
//     q/k rows are permuted first (a permutation of whole rows, so it commutes with the
//     per-row blocks);
//   - norms F32; token_embd and output in `embedType`, Q8_0 by default (llama-quantize would
//     write output as Q6_K, token_embd as the file's type; pass embedType or `types` for that);
//   - general.file_type = LLAMA_FTYPE_MOSTLY_{Q8_0,Q4_0,TQ2_0,Q2_K,Q3_K_M,Q4_K_M,Q5_K_M,Q6_K}
//     (llama.h; a Q4_K/Q5_K/Q3_K file is labelled with llama-quantize's default recipe for
//     that type, M, as its "Q4_K" alias is Q4_K_M; llama.cpp uses the label only for display).
// A student trained on the same grid (fake quantization ≡ formats.ts) exports losslessly: its
// fake-quantized weights are fixed points of quantize→dequantize, so the blocks written here
// dequantize to exactly the weights the student was evaluated with.
// The container format itself is gguf_format.ts (writer) and gguf_read.ts (reader).
import type { LlamaConfig } from '../models/llama.js';
import type { Params } from '../nn/params.js';
import type { Architecture } from '../models/architecture.js';
import { architecture } from '../models/registry.js';
import { stackRows, storedLayout } from '../models/fused.js';
import type { HfModelConfig, LlamaMeta } from './hf-config.js';
import { writeGguf, type GgmlType, type GgufTensorIn, type GgufValue } from './gguf_format.js';
import { readGgufTensor, type GgufFile } from './gguf_read.js';
import { parseTokenizerJson } from './gguf_tokenizer.js';
import { ggufVocabKv } from './gguf_vocab.js';
import { specialVocab, specialVocabKv, type SpecialType } from './tokenizer_config.js';
import { FORMATS, type FormatName } from '../quant/formats.js';

export * from './gguf_format.js';
export * from './gguf_read.js';

/** general.file_type (llama.h enum llama_ftype, llama.cpp v0.4.0): ALL_F32 = 0,
 *  MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7, MOSTLY_Q2_K = 10, MOSTLY_Q3_K_M = 12,
 *  MOSTLY_Q4_K_M = 15, MOSTLY_Q5_K_M = 17, MOSTLY_Q6_K = 18, MOSTLY_TQ2_0 = 37. */
export const FILE_TYPE = {
  F32: 0, F16: 1, ...Object.fromEntries(Object.values(FORMATS).map((f) => [f.name, f.fileType])), // the format table
} as Readonly<Record<'F32' | 'F16' | FormatName, number>>;
/** Types the projection matrices can be exported in. */
export type GgufWeightType = keyof typeof FILE_TYPE;
export const GGUF_WEIGHT_TYPES = Object.keys(FILE_TYPE) as GgufWeightType[];
/** Types for token_embd / output. */
export type GgufEmbedType = 'F32' | 'F16' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';
export const GGUF_EMBED_TYPES: readonly GgufEmbedType[] = ['F32', 'F16', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'];

/** Default token_embd / output type for a weight type: the same for F32/F16, else Q8_0. */
export function defaultEmbedType(dtype: GgufWeightType): GgufEmbedType {
  return dtype === 'F32' || dtype === 'F16' ? dtype : 'Q8_0';
}

/** The GGUF type of one LLaMA parameter under (dtype, embedType): see the top of this file. */
export function ggufTensorType(hfName: string, ndim: number, dtype: GgufWeightType, embedType: GgufEmbedType): GgmlType {
  if (ndim === 1) return 'F32';
  if (hfName === 'model.embed_tokens.weight' || hfName === 'lm_head.weight') return embedType;
  return dtype;
}

/** Throws unless a row of `cols` elements is whole blocks of `type` (F32/F16: always). */
function checkBlocks(type: GgmlType, cols: number, what: string): void {
  if (!Object.hasOwn(FORMATS, type)) return;
  const block = FORMATS[type as FormatName].block;
  if (cols % block !== 0) {
    const other = cols % 32 === 0 ? 'q8_0 or q4_0' : 'f16';
    throw new Error(`${what}: input dimension ${cols} is not a multiple of the ${type} block size ${block}; ` +
      `export with --type ${other}${type === 'Q8_0' ? ' (or --embed-type f16 for token_embd/output)' : ''}`);
  }
}

/** Row-major (rows, cols) float weights → the raw blocks of a llama.cpp block format. Blocks run
 *  along each row (GGUF ne[0]); cols must be whole blocks. */
export function quantizeTensor(type: FormatName, w: Float32Array, rows: number, cols: number, what: string): Uint8Array {
  const f = FORMATS[type];
  checkBlocks(type, cols, what);
  if (w.length !== rows * cols) throw new RangeError(`${what}: ${w.length} elements for (${rows}, ${cols})`);
  // Rows are contiguous and hold whole blocks, so the matrix is one long row of blocks.
  return f.quantizeRef(w);
}

/** Throws unless `blocks` dequantize to exactly `w` (bitwise; −0 and +0 count as equal, as the
 *  product in a matmul cannot tell them apart). */
function checkLossless(type: FormatName, blocks: Uint8Array, w: Float32Array, what: string): void {
  const back = FORMATS[type].dequantizeRef(blocks);
  for (let i = 0; i < w.length; i++) {
    if (back[i] !== w[i] && !(Number.isNaN(back[i]) && Number.isNaN(w[i]))) {
      throw new Error(`${what}: not on the ${type} grid: element ${i} is ${w[i]}, its ${type} block gives ${back[i]} ` +
        `(the weight was not quantized with ${type.toLowerCase()}, or was changed after quantization)`);
    }
  }
}

/** A GGUF tensor as float32 (row-major of its shape): F32/F16 as read, block formats
 *  dequantized with formats.ts (≡ ggml's dequantize_row_*). */
export function readGgufTensorF32(g: GgufFile, name: string): Float32Array {
  const t = g.tensors.get(name);
  const raw = readGgufTensor(g, name);
  if (raw instanceof Float32Array) return raw;
  const type = t!.type;
  if (!Object.hasOwn(FORMATS, type)) throw new Error(`${g.path}: tensor "${name}" has type ${type}, which kdqat cannot dequantize`);
  return FORMATS[type as FormatName].dequantizeRef(raw);
}

/** general.quantization_version the converter always writes (gguf-py GGML_QUANT_VERSION). */
export const GGML_QUANT_VERSION = 2;

/**
 * convert_hf_to_gguf.py LlamaModel.permute for a row-major (rows, cols) weight:
 *   w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
 * i.e. within each head the rows [first half | second half] are interleaved to
 * [h0, h_{D/2}, h1, h_{D/2+1}, …]. Pass n_head for q_proj and n_head_kv for k_proj (the
 * converter's permute(w, n_head, n_head_kv) uses n_head_kv when they differ).
 */
export function permuteQK(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  if (w.length !== rows * cols) throw new RangeError(`permuteQK: ${w.length} elements for (${rows}, ${cols})`);
  if (rows % (2 * nHead) !== 0) throw new RangeError(`permuteQK: ${rows} rows do not split into ${nHead} heads of even size`);
  const half = rows / nHead / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const src = (h * 2 + s) * half + i; // index into (n_head, 2, half)
        const dst = (h * half + i) * 2 + s; // index into (n_head, half, 2)
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** HF parameter name → GGUF tensor name of a LLaMA (the llama record's gguf.tensorName). */
export function ggufTensorName(hfName: string): string {
  return architecture('llama').gguf!.tensorName(hfName);
}

export interface LlamaGgufOptions {
  /** A LlamaConfig (of `arch`), or a parsed config.json of a decoder family (its bos/eos/pad
   *  ids are then used, and its record picks the layout). */
  config: LlamaConfig | HfModelConfig;
  /** The decoder family (registry name) when `config` is a bare LlamaConfig; default "llama". */
  arch?: string;
  params: Params;
  /** tokenizer.json (text or parsed): byte-level BPE. */
  tokenizerJson: string | object;
  /** Type of the 7 projection matrices (default F32); also general.file_type. */
  dtype?: GgufWeightType;
  /** Type of token_embd and output (default: defaultEmbedType(dtype)). */
  embedType?: GgufEmbedType;
  /** Per-parameter type overrides (HF names), e.g. a student's own block format per weight. */
  types?: ReadonlyMap<string, GgmlType>;
  /** HF names that must export losslessly: their blocks are dequantized after quantizing and
   *  must equal the given weights bit for bit (a QAT student on the same grid), else an error. */
  lossless?: ReadonlySet<string>;
  force?: boolean;
  /** general.name; default `defaultName`. */
  name?: string;
  /** general.name when `name` is not given (default "kdqat-<family>"); unlike `name` it yields to
   *  "kdqat-model" where llama.cpp would misread it (generalName). */
  defaultName?: string;
  /** Special token ids; override those of `config`. */
  special?: Partial<Pick<LlamaMeta, 'bosTokenId' | 'eosTokenId' | 'padTokenId'>>;
  /** tokenizer.ggml.add_bos_token; overrides tokenizer_config.json / the post-processor. */
  addBosToken?: boolean;
  /** tokenizer.ggml.pre: llama.cpp's name for the pre-tokenizer. Default: detected from the
   *  tokenizer.json pre_tokenizer (gguf_pretokenizer.ts); an unknown one is refused. */
  pre?: string;
  /** The model's tokenizer_config.json (parsed): special tokens, add_bos/eos_token, chat_template. */
  tokenizerConfig?: Record<string, unknown> | null;
}

/** llama.cpp (llama-vocab.cpp) sets Phi-3 token attributes when general.name contains "phi-3"
 *  or "phi3", and aborts loading unless the vocabulary has </s>, <unk>, <s> and <|endoftext|>
 *  (Phi-3's own tokenizer has them). Such a name is kept only with those tokens: a default name
 *  falls back to "kdqat-model", a given one is refused. */
function generalName(path: string, given: string | undefined, dflt: string, tokJson: Record<string, unknown>): string {
  const name = given ?? dflt;
  if (!/phi-?3/i.test(name)) return name;
  const model = tokJson.model as { vocab?: unknown } | undefined;
  const have = new Set<string>([
    ...(model?.vocab && typeof model.vocab === 'object' && !Array.isArray(model.vocab) ? Object.keys(model.vocab) : []),
    ...(Array.isArray(tokJson.added_tokens) ? tokJson.added_tokens.map((t: { content?: string }) => String(t.content)) : []),
  ]);
  const missing = ['</s>', '<unk>', '<s>', '<|endoftext|>'].filter((t) => !have.has(t));
  if (!missing.length) return name;
  if (given === undefined) return 'kdqat-model';
  throw new Error(`${path}: general.name "${given}" contains "phi3"/"phi-3", for which llama.cpp looks up the tokens ${missing.join(' ')} ` +
    'that this tokenizer does not have (it would refuse to load the file); export under another name');
}

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });
const str = (value: string): GgufValue => ({ type: 'string', value });

/** Writes `path` as a GGUF v3 file llama.cpp loads (see top), in the layout of the family's
 *  record (architecture.ts GgufLayout: arch name, tensor names, q/k permutation, hyperparameter
 *  keys, extra tensors, fused tensors stacked). Atomic; an existing file is replaced only with
 *  `force`. Returns the record's notes (where llama.cpp's model differs beyond rounding). */
export function exportLlamaGguf(path: string, opts: LlamaGgufOptions): string[] {
  const hf = 'meta' in opts.config ? opts.config as HfModelConfig : null; // a parsed config.json
  const rec: Architecture = architecture(hf?.arch ?? opts.arch ?? 'llama');
  if (!rec.gguf) throw new Error(`${path}: ${rec.label} models cannot be exported to GGUF (llama.cpp runs kdqat's decoders only)`);
  const layout = rec.gguf;
  const cfg = (hf ? hf.config : opts.config) as LlamaConfig;
  const meta: Partial<LlamaMeta> = { ...(hf ? hf.meta as LlamaMeta : {}), ...opts.special };
  const dtype = opts.dtype ?? 'F32';
  if (!GGUF_WEIGHT_TYPES.includes(dtype)) throw new Error(`${path}: GGUF export supports types ${GGUF_WEIGHT_TYPES.join(', ')}, not ${dtype}`);
  const embedType = opts.embedType ?? defaultEmbedType(dtype);
  if (!GGUF_EMBED_TYPES.includes(embedType)) throw new Error(`${path}: token_embd/output type must be one of ${GGUF_EMBED_TYPES.join(', ')}, not ${embedType}`);
  const H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads;
  const hyper = layout.kv(cfg); // first: it refuses configs llama.cpp would run differently
  const tokJson = (typeof opts.tokenizerJson === 'string' ? JSON.parse(opts.tokenizerJson) : opts.tokenizerJson) as Record<string, unknown>;
  const tok = parseTokenizerJson(tokJson, 'tokenizer.json');
  const vocabKv = ggufVocabKv(tok, tokJson, cfg.vocabSize, opts.pre);
  const sv = specialVocab(tokJson, opts.tokenizerConfig ?? null);
  if (opts.addBosToken !== undefined) sv.add.bos = opts.addBosToken;
  // Always written: without the keys llama.cpp falls back to a per-pre-tokenizer default
  // (llama-bpe adds BOS), while a Hugging Face tokenizer with neither a template nor the
  // tokenizer_config.json flag adds nothing.
  sv.add.bos ??= false;
  sv.add.eos ??= false;

  const spec = rec.paramSpec(cfg, rec.headsOf(rec.config.defaultMeta()));
  for (const [name, { shape }] of spec) {
    const p = opts.params.get(name);
    if (!p) throw new Error(`${path}: parameter "${name}" is missing from the model being exported`);
    if (p.shape.length !== shape.length || !p.shape.every((d, i) => d === shape[i])) {
      throw new Error(`${path}: parameter "${name}" has shape [${p.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
    }
  }
  // Q/K rows are permuted (llama layout) before quantizing: blocks run along a row, so each
  // block's values (and hence its scale and codes) are unchanged, only the row order.
  const rowsOf = (name: string): Float32Array => {
    const p = opts.params.get(name)!;
    if (!layout.permuteQK || p.ndim !== 2) return p.f32;
    const [rows, cols] = p.shape;
    return name.endsWith('self_attn.q_proj.weight') ? permuteQK(p.f32, rows, cols, H)
      : name.endsWith('self_attn.k_proj.weight') ? permuteQK(p.f32, rows, cols, Hkv) : p.f32;
  };
  const tensors: GgufTensorIn[] = [];
  for (const [name, { shape, parts }] of storedLayout(spec, rec.fused?.(cfg) ?? [])) {
    const cols = shape[shape.length - 1];
    const gname = layout.tensorName(name);
    // A fused tensor (Phi-3 attn_qkv, ffn_up) takes its parts' type, which must agree.
    const typeOf = (n: string): GgmlType => opts.types?.get(n) ?? ggufTensorType(n, shape.length, dtype, embedType);
    const type = typeOf(parts ? parts[0].name : name);
    if (parts && parts.some((q) => typeOf(q.name) !== type)) {
      throw new Error(`${path}: ${gname} stacks ${parts.map((q) => `${q.name} (${typeOf(q.name)})`).join(', ')}; llama.cpp stores them as one tensor of one type`);
    }
    if (!Object.hasOwn(FORMATS, type) && type !== 'F32' && type !== 'F16') throw new Error(`${path}: ${name}: cannot export as ${type}`);
    if (shape.length === 1 && type !== 'F32') throw new Error(`${path}: ${name} is 1-D and stays F32 (llama.cpp norms, biases), not ${type}`);
    checkBlocks(type, cols, `${path}: ${gname} (${name})`); // now, not halfway through writing
    const floats = (): Float32Array => (parts ? stackRows(parts.map((q) => rowsOf(q.name))) : rowsOf(name));
    const what = `${path}: ${gname} (${name})`;
    const lossless = (parts ?? [{ name }]).some((q) => opts.lossless?.has(q.name));
    const data = Object.hasOwn(FORMATS, type) ? () => {
      const w = floats();
      const blocks = quantizeTensor(type as FormatName, w, shape[0], cols, what);
      if (lossless) checkLossless(type as FormatName, blocks, w, what);
      return blocks;
    } : floats;
    if (lossless && type !== 'F32' && !Object.hasOwn(FORMATS, type)) {
      throw new Error(`${what}: a lossless export needs F32 or the weight's own block format, not ${type}`);
    }
    tensors.push({ name: gname, shape, type, data });
  }
  for (const t of layout.extraTensors?.(cfg) ?? []) tensors.push({ name: t.name, shape: t.shape, type: 'F32', data: () => t.data });

  // Special ids: explicit `special` first, then tokenizer_config.json, then config.json (the first
  // source that names one wins, as in gguf-py SpecialVocab).
  const eos = Array.isArray(meta.eosTokenId) ? meta.eosTokenId[0] : meta.eosTokenId;
  const fromCfg: Partial<Record<SpecialType, number | null | undefined>> = { bos: meta.bosTokenId, eos, pad: meta.padTokenId };
  const pick = (typ: SpecialType): number | null | undefined =>
    (typ === 'bos' && opts.special?.bosTokenId !== undefined) || (typ === 'pad' && opts.special?.padTokenId !== undefined) ||
    (typ === 'eos' && opts.special?.eosTokenId !== undefined) ? fromCfg[typ] : sv.ids[typ] ?? fromCfg[typ];
  const ids: [string, number | null | undefined][] = [
    ['tokenizer.ggml.bos_token_id', pick('bos')], ['tokenizer.ggml.eos_token_id', pick('eos')],
    ['tokenizer.ggml.unknown_token_id', pick('unk')], ['tokenizer.ggml.seperator_token_id', pick('sep')], // sic: llama-arch.cpp
    ['tokenizer.ggml.padding_token_id', pick('pad')], ['tokenizer.ggml.mask_token_id', pick('mask')],
  ];
  for (const [k, id] of ids) {
    if (id != null && (id < 0 || id >= cfg.vocabSize)) throw new Error(`${path}: ${k} ${id} is outside the vocabulary [0, ${cfg.vocabSize})`);
  }
  const kv: [string, GgufValue][] = [
    ['general.architecture', str(layout.arch)],
    ['general.type', str('model')],
    ['general.name', str(generalName(path, opts.name, opts.defaultName ?? `kdqat-${rec.name}`, tokJson))],
    ['general.file_type', u32(FILE_TYPE[dtype])],
    ['general.quantization_version', u32(GGML_QUANT_VERSION)],
    ...hyper as [string, GgufValue][],
    ...vocabKv,
  ];
  for (const [k, id] of ids) if (id != null) kv.push([k, u32(id)]);
  kv.push(...specialVocabKv(sv));
  writeGguf(path, { kv, tensors, force: opts.force });
  return layout.notes?.(cfg) ?? [];
}
