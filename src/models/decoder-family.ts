// The shared part of the LLaMA-family decoder records (llama-arch.ts, mistral-arch.ts,
// qwen2-arch.ts, qwen3-arch.ts, phi3-arch.ts): they all run llama.ts's forward and differ only
// in data (DecoderFeatures), their config.json keys, HF class and GGUF layout. A family file
// is a DecoderFamily — what is its own — and `decoderRecord` makes the Architecture of it.
//
// config.json: every key the family's real config.json has is written back (toJson), numerics
// from the config, the rest from meta. Keys the parser does not know are kept verbatim in
// meta.extra and written back, so loading and saving returns the same keys and values; keys that
// would change the model kdqat cannot build are refused naming key and value (refuseKeys).
import { trainByteLevelBpe } from '../tokenize/train-bpe.js';
import type { Params } from '../nn/params.js';
import type { ConfigReader, Obj } from './config-reader.js';
import { headDimOf, llamaForward, llamaParamSpec, rotaryDimOf, type DecoderFeatures, type LlamaConfig, type RopeScaling } from './llama.js';
import { decoderOnnxSpec } from './decoder-onnx.js';
import { lazyLogits, type Architecture, type FusedTensor, type GgufKv, type GgufLayout, type Heads, type ModelSizes, type Taps } from './architecture.js';
import { inverseFrequencies } from './rope-scaling.js';
import { ropeScalingJson } from './rope-config.js';

export interface LlamaMeta {
  bosTokenId: number | null;
  /** HF allows a list (several end tokens); the first is the one GGUF gets. */
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  torchDtype: string;
  /** Keys of the source config.json this record does not interpret and that do not change the
   *  model, written back verbatim (auto_map, is_llama_config, …). */
  extra?: Obj;
  /** Keys toJson writes that the source config.json did not have (an older transformers wrote
   *  it: Mistral-7B-v0.1 has no head_dim or attention_dropout), left out again on save. */
  absent?: string[];
}
export type DecoderMeta = LlamaMeta;

/** What one decoder family is (the rest is shared). */
export interface DecoderFamily {
  name: string;
  label: string;
  /** The HF causal-LM class (config.json "architectures"). */
  cls: string;
  /** Family defaults of the common keys (transformers' <Family>Config defaults). */
  defaults: { ropeTheta: number; rmsNormEps: number; maxPositionEmbeddings: number; tieWordEmbeddings: boolean };
  /** The family's own keys → DecoderFeatures (errors name key and value). `base` holds the common
   *  numbers already read. */
  features(r: ConfigReader, base: LlamaConfig): DecoderFeatures;
  /** Every key config.json has for this family that is not common (written from the config). */
  json(k: LlamaConfig): Obj;
  /** Keys of the real config.json that do not change the model kdqat runs (dropout rates, the
   *  window settings of a window that is off), with the value written when the source had
   *  none; a source's own value is kept (meta.extra). */
  kept?: Obj;
  /** Features of a model built by `kdqat pretrain` (sizes only). */
  pretrainFeatures?(s: ModelSizes): DecoderFeatures;
  fused?(config: LlamaConfig): FusedTensor[];
  /** Keys of the common refusal list (REFUSE) this family reads itself (Phi-3: partial_rotary_factor). */
  reads?: readonly string[];
  gguf: GgufLayout<LlamaConfig>;
}

/** Keys read by the common parser (and so never in meta.extra). */
const COMMON_KEYS = [
  'architectures', 'model_type', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers',
  'num_attention_heads', 'num_key_value_heads', 'rms_norm_eps', 'rope_theta', 'max_position_embeddings',
  'tie_word_embeddings', 'initializer_range', 'hidden_act', 'bos_token_id', 'eos_token_id', 'pad_token_id',
  'torch_dtype', 'dtype',
];

/** Keys every decoder config has that do not change the model kdqat runs (inference cache,
 *  training-time attention dropout): kept as the source gives them (DecoderFamily.kept). */
const COMMON_KEPT: Obj = { attention_dropout: 0.0, use_cache: true };

/** Keys that change the model in ways no decoder here implements: refused unless at their
 *  harmless value. */
const REFUSE: [key: string, ok: (v: unknown) => boolean, why: string][] = [
  ['rope_interleaved', (v) => v === false, 'kdqat applies RoPE in HF\'s rotate_half layout only'],
  ['partial_rotary_factor', (v) => v === 1 || v === 1.0, 'kdqat rotates the whole head (partial_rotary_factor 1) but for Phi-3'],
  ['pretraining_tp', (v) => v === 1, 'pretraining_tp > 1 changes the rounding of the Linears (HF slices them); kdqat supports 1'],
  ['rope_parameters', () => false, 'this is a transformers ≥ 5 config; kdqat reads rope_theta / rope_scaling (transformers 4.x); re-save it with transformers 4.x'],
  ['mlp_bias', (v) => v === false, 'kdqat\'s decoder MLP has no biases'],
];

/** `head_dim` when config.json gives it (even, for RoPE), else hidden / heads. */
export function parseHeadDim(r: ConfigReader, base: LlamaConfig): number | undefined {
  if (!r.has('head_dim')) return undefined;
  const D = r.int('head_dim');
  if (D % 2 !== 0) r.fail(`"head_dim": ${D} must be even for RoPE`);
  return D === base.hiddenSize / base.numAttentionHeads ? undefined : D;
}

/** The sliding window of a family whose attention has one (null: full attention). */
export function parseWindow(r: ConfigReader, key = 'sliding_window'): number | null {
  return r.has(key) ? r.int(key) : null;
}

const LM: Heads = { lm: true, mlm: false, classifier: false };
type DecoderModel = { arch: string; config: LlamaConfig; params: Params };

/** Module kinds of the LLaMA-layout parameter names (every decoder record here). */
const DECODER_RULES: readonly (readonly [RegExp, string])[] = [
  [/\.self_attn\.q_proj\./, 'q'],
  [/\.self_attn\.k_proj\./, 'k'],
  [/\.self_attn\.v_proj\./, 'v'],
  [/\.self_attn\.o_proj\./, 'o'],
  [/\.mlp\.gate_proj\./, 'gate'],
  [/\.mlp\.up_proj\./, 'up'],
  [/\.mlp\.down_proj\./, 'down'],
  [/\.input_layernorm\.|\.post_attention_layernorm\.|\.self_attn\.[qk]_norm\./, 'norm'],
  [/embed_tokens\./, 'embed'],
  [/^lm_head\./, 'head'],
  [/^model\.norm\./, 'norm'],
];

/** The Architecture record of a decoder family. */
export function decoderRecord(f: DecoderFamily): Architecture<LlamaConfig, LlamaMeta, object> {
  const known = new Set([...COMMON_KEYS, ...Object.keys(f.json(pretrainConfig(f, PROBE)))]);
  const kept: Obj = { ...COMMON_KEPT, ...f.kept };
  function parse(r: ConfigReader): { config: LlamaConfig; meta: LlamaMeta } {
    r.architectures([f.cls]);
    for (const [k, ok, why] of REFUSE) {
      if (!f.reads?.includes(k) && r.j[k] !== undefined && r.j[k] !== null && !ok(r.j[k])) r.fail(`"${k}": ${JSON.stringify(r.j[k])} is not supported (${why})`);
    }
    const C = r.int('hidden_size'), H = r.int('num_attention_heads');
    const Hkv = r.int('num_key_value_heads', H);
    if (H % Hkv !== 0) r.fail(`num_attention_heads ${H} is not divisible by num_key_value_heads ${Hkv}; fix one of them`);
    const act = r.str('hidden_act', 'silu');
    if (act !== 'silu') r.fail(`hidden_act "${act}" is not supported for ${f.name}; kdqat supports "silu"`);
    const eos = r.j.eos_token_id;
    let eosTokenId: number | number[] | null;
    if (Array.isArray(eos)) {
      if (!eos.every((x) => Number.isSafeInteger(x) && x >= 0)) r.fail(`"eos_token_id" must be a token id or a list of ids`);
      eosTokenId = eos as number[];
    } else eosTokenId = r.tokenId('eos_token_id');
    const base: LlamaConfig = {
      vocabSize: r.int('vocab_size'),
      hiddenSize: C,
      intermediateSize: r.int('intermediate_size'),
      numHiddenLayers: r.int('num_hidden_layers'),
      numAttentionHeads: H,
      numKeyValueHeads: Hkv,
      rmsNormEps: r.num('rms_norm_eps', f.defaults.rmsNormEps),
      ropeTheta: r.num('rope_theta', f.defaults.ropeTheta, Number.MIN_VALUE),
      maxPositionEmbeddings: r.int('max_position_embeddings', f.defaults.maxPositionEmbeddings),
      tieWordEmbeddings: r.bool('tie_word_embeddings', f.defaults.tieWordEmbeddings),
      initializerRange: r.num('initializer_range', 0.02),
    };
    const config: LlamaConfig = { ...base };
    for (const [k, v] of Object.entries(f.features(r, base))) if (v !== undefined && v !== null && v !== false) (config as unknown as Obj)[k] = v;
    if (config.headDim === undefined) {
      if (C % H !== 0) r.fail(`hidden_size ${C} is not divisible by num_attention_heads ${H}; fix one of them or give "head_dim"`);
      if ((C / H) % 2 !== 0) r.fail(`head dimension hidden_size/num_attention_heads = ${C / H} must be even for RoPE`);
    }
    const extra: Obj = {};
    // A kept key at the value kdqat writes anyway is not extra (so configs compare equal).
    const isKeptDefault = (k: string, v: unknown): boolean => Object.hasOwn(kept, k) && JSON.stringify(kept[k]) === JSON.stringify(v);
    for (const [k, v] of Object.entries(r.j)) if (!known.has(k) && !isKeptDefault(k, v)) extra[k] = v;
    const meta: LlamaMeta = {
      bosTokenId: r.tokenId('bos_token_id'), eosTokenId, padTokenId: r.tokenId('pad_token_id'),
      torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')),
      ...(Object.keys(extra).length ? { extra } : {}),
    };
    const absent = Object.keys(toJson(config, meta)).filter((k) => !(k in r.j) && k !== 'architectures' && k !== 'torch_dtype');
    if (absent.length) meta.absent = absent;
    return { config, meta };
  }
  function toJson(k: LlamaConfig, m: LlamaMeta): Obj {
    const out: Obj = {
      ...kept,
      ...m.extra,
      architectures: [f.cls], bos_token_id: m.bosTokenId, eos_token_id: m.eosTokenId,
      hidden_act: 'silu', hidden_size: k.hiddenSize, initializer_range: k.initializerRange,
      intermediate_size: k.intermediateSize, max_position_embeddings: k.maxPositionEmbeddings,
      model_type: f.name, num_attention_heads: k.numAttentionHeads, num_hidden_layers: k.numHiddenLayers,
      num_key_value_heads: k.numKeyValueHeads, rms_norm_eps: k.rmsNormEps, rope_theta: k.ropeTheta,
      tie_word_embeddings: k.tieWordEmbeddings, torch_dtype: m.torchDtype, vocab_size: k.vocabSize,
      ...f.json(k),
      ...(m.padTokenId === null ? {} : { pad_token_id: m.padTokenId }),
    };
    for (const key of m.absent ?? []) delete out[key];
    return out;
  }
  return {
    name: f.name,
    label: f.label,
    kind: 'decoder',
    hfClasses: { [f.cls]: 'lm' },
    canCarry: LM,
    attnOutTap: 'saOut',
    config: {
      parse,
      toJson,
      defaultMeta: (p = {}) => ({ bosTokenId: null, eosTokenId: null, padTokenId: null, torchDtype: 'float32', ...p }),
      extraFiles: (m) => ({
        'generation_config.json': {
          _from_model_config: true,
          ...(m.bosTokenId === null ? {} : { bos_token_id: m.bosTokenId }),
          ...(m.eosTokenId === null ? {} : { eos_token_id: m.eosTokenId }),
          ...(m.padTokenId === null ? {} : { pad_token_id: m.padTokenId }),
        },
      }),
    },
    pretrain: {
      check(s) {
        if (s.heads % s.kvHeads) throw new Error(`--heads ${s.heads} must be divisible by --kv-heads ${s.kvHeads}`);
        if ((s.hidden / s.heads) % 2) throw new Error(`head size --hidden/--heads = ${s.hidden / s.heads} must be even for RoPE`);
      },
      config: (s) => pretrainConfig(f, s),
      tokenizer: { name: 'byte-level BPE', train: (texts, vocabSize) => trainByteLevelBpe(texts, { vocabSize }) },
      meta: (sp) => ({ bosTokenId: sp.bos ?? null, eosTokenId: sp.eos ?? null }),
    },

    headsOf: () => LM,
    modelFields: () => ({}),
    modelHeads: () => LM,
    metaForHeads: () => ({}),
    labels: () => null,
    specialIds: (m) => ({ bos: m.bosTokenId, eos: m.eosTokenId, pad: m.padTokenId }),
    describe: () => `a ${f.label} decoder (causal LM`,

    paramSpec: (config) => llamaParamSpec(config),
    forward(model: DecoderModel, x, o = {}): Taps {
      const r = llamaForward(model.params, model.config, x.ids, { attentionMask: x.mask, weight: o.weight, capture: o.capture });
      return lazyLogits({ hidden: r.hidden, probs: r.probs, scores: r.scores, context: r.context, saOut: r.saOut, attnOut: r.saOut }, r.head);
    },
    lmLogits: (model: DecoderModel, ids, o = {}) => llamaForward(model.params, model.config, ids, o).logits,

    modules: {
      kinds: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'],
      rules: DECODER_RULES,
      freezePresets: { ov: ['self_attn.v_proj', 'self_attn.o_proj'] },
      // The head: with tied embeddings its weight is model.embed_tokens.weight, which the forward
      // reads through the WeightFn for the head only (quant/prepare.ts); patterns call it lm_head.
      extraTargets: (c) => ({ first: [], last: [{ name: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', logical: 'lm_head.weight' }] }),
      untie: (c, stored) => (stored === 'lm_head.weight' ? { ...c, tieWordEmbeddings: false } : null),
      defaultQuant: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    },
    ...(f.fused ? { fused: f.fused } : {}),
    load: {
      tied: { 'lm_head.weight': 'model.embed_tokens.weight' },
      tiedReason: () => 'tie_word_embeddings is true in config.json',
    },
    gguf: f.gguf,
    onnx: { spec: decoderOnnxSpec },
  };
}

const PROBE: ModelSizes = { vocab: 8, hidden: 8, layers: 1, heads: 2, kvHeads: 1, intermediate: 8, seq: 8, dropout: 0 };

function pretrainConfig(f: DecoderFamily, s: ModelSizes): LlamaConfig {
  return {
    vocabSize: s.vocab, hiddenSize: s.hidden, intermediateSize: s.intermediate, numHiddenLayers: s.layers,
    numAttentionHeads: s.heads, numKeyValueHeads: s.kvHeads, rmsNormEps: 1e-5, ropeTheta: 10000,
    maxPositionEmbeddings: s.seq, tieWordEmbeddings: true, initializerRange: 0.02,
    ...f.pretrainFeatures?.(s),
  };
}

// ---- GGUF (convert_hf_to_gguf.py) -----------------------------------------------------------

const u32 = (value: number): GgufKv[1] => ({ type: 'u32', value });
const f32 = (value: number): GgufKv[1] => ({ type: 'f32', value });
const str = (value: string): GgufKv[1] => ({ type: 'string', value });

/** The hyperparameter keys every decoder writes (TextModel.set_gguf_parameters): counts, ε, RoPE
 *  base and dimension, key/value length when head_dim ≠ hidden/heads, and the RoPE scaling keys
 *  (linear/yarn: type, factor, original context; llama3 goes into rope_freqs.weight instead). */
export function commonGgufKv(arch: string, k: LlamaConfig): GgufKv[] {
  const D = headDimOf(k), s = k.ropeScaling;
  const kv: GgufKv[] = [
    [`${arch}.vocab_size`, u32(k.vocabSize)],
    [`${arch}.context_length`, u32(k.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(k.hiddenSize)],
    [`${arch}.block_count`, u32(k.numHiddenLayers)],
    [`${arch}.feed_forward_length`, u32(k.intermediateSize)],
    [`${arch}.rope.dimension_count`, u32(rotaryDimOf(k))],
    [`${arch}.attention.head_count`, u32(k.numAttentionHeads)],
    [`${arch}.attention.head_count_kv`, u32(k.numKeyValueHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(k.rmsNormEps)],
    [`${arch}.rope.freq_base`, f32(k.ropeTheta)],
  ];
  if (k.headDim !== undefined) kv.push([`${arch}.attention.key_length`, u32(D)], [`${arch}.attention.value_length`, u32(D)]);
  if (s?.type === 'linear' || s?.type === 'yarn') {
    kv.push([`${arch}.rope.scaling.type`, str(s.type)], [`${arch}.rope.scaling.factor`, f32(s.factor)]);
    if (s.type === 'yarn') kv.push([`${arch}.rope.scaling.original_context_length`, u32(s.originalMaxPositionEmbeddings)]);
  }
  return kv;
}

/** llama3 RoPE scaling as llama.cpp takes it: `rope_freqs.weight`, per pair the divisor of its
 *  frequency (LlamaModel.generate_extra_tensors: 1, factor, or 1/((1−s)/factor + s)), i.e.
 *  inv_freq / inv_freq_llama3. */
export function ropeFreqsTensor(k: LlamaConfig): { name: string; shape: number[]; data: Float32Array }[] {
  if (k.ropeScaling?.type !== 'llama3') return [];
  const D = headDimOf(k), plain = inverseFrequencies(D, k.ropeTheta, null), scaled = inverseFrequencies(D, k.ropeTheta, k.ropeScaling);
  return [{ name: 'rope_freqs.weight', shape: [D / 2], data: Float32Array.from(plain, (p, i) => p / scaled[i]) }];
}

/** The YaRN llama.cpp computes: attention factor 0.1·ln(factor) + 1, correction dims floored and
 *  ceiled, beta 32/1. A config off that (attention_factor, mscale, beta, truncate) is refused. */
export function checkGgufYarn(k: LlamaConfig): void {
  const s = k.ropeScaling;
  if (s?.type !== 'yarn') return;
  const dflt = 0.1 * Math.log(s.factor) + 1;
  if (Math.abs(s.attentionFactor - dflt) > 1e-7 || s.betaFast !== 32 || s.betaSlow !== 1 || !s.truncate) {
    throw new Error(`rope_scaling ${JSON.stringify(ropeScalingJson(s))}: llama.cpp's YaRN uses attention factor 0.1·ln(factor)+1, ` +
      'beta_fast 32, beta_slow 1 and truncated correction dims; this config differs, so its GGUF would be a different model');
  }
}

/** HF → GGUF tensor names of the LLaMA layout (gguf-py TensorNameMap), `block` extended per family. */
export function tensorNamer(label: string, block: Record<string, string>): (hfName: string) => string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  return (hfName) => {
    if (fixed[hfName]) return fixed[hfName];
    const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
    if (m && block[m[2]]) return `blk.${m[1]}.${block[m[2]]}.${m[3]}`;
    throw new Error(`no GGUF name for ${label} parameter "${hfName}"`);
  };
}

export const LLAMA_BLOCK_NAMES: Readonly<Record<string, string>> = {
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down', input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
};
