// The LLaMA record (architecture.ts): Hugging Face LlamaForCausalLM. Config keys and defaults
// follow transformers' LlamaConfig (models/llama/configuration_llama.py); the GGUF names follow
// gguf-py's TensorNameMap for MODEL_ARCH.LLAMA.
import { trainByteLevelBpe } from '../tokenize/train-bpe.js';
import { isObj, type ConfigReader, type Obj } from './config-reader.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from './llama.js';
import type { Architecture, Heads, Taps } from './architecture.js';
import type { DecoderOnnxSpec } from './onnx-spec.js';
import { ropeTables } from '../tensor/ops/index.js';

export interface LlamaMeta {
  bosTokenId: number | null;
  /** HF allows a list (several end tokens); the first is the one GGUF gets. */
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  torchDtype: string;
}

const LM: Heads = { lm: true, mlm: false, classifier: false };

function parse(r: ConfigReader): { config: LlamaConfig; meta: LlamaMeta } {
  r.architectures(Object.keys(llama.hfClasses));
  const C = r.int('hidden_size'), H = r.int('num_attention_heads');
  r.heads(C, H);
  const Hkv = r.int('num_key_value_heads', H);
  if (H % Hkv !== 0) r.fail(`num_attention_heads ${H} is not divisible by num_key_value_heads ${Hkv}; fix one of them`);
  if ((C / H) % 2 !== 0) r.fail(`head dimension hidden_size/num_attention_heads = ${C / H} must be even for RoPE`);
  if (r.has('head_dim') && r.int('head_dim') !== C / H) r.fail(`head_dim ${r.j.head_dim} ≠ hidden_size/num_attention_heads = ${C / H}; kdqat supports only head_dim = hidden_size/num_attention_heads`);
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu') r.fail(`hidden_act "${act}" is not supported for llama; kdqat supports "silu"`);
  const rs = r.j.rope_scaling;
  // {"rope_type": "default"} is how newer transformers spell "no scaling".
  if (rs !== undefined && rs !== null && !(isObj(rs) && (rs.rope_type ?? rs.type) === 'default')) {
    r.fail(`rope_scaling ${JSON.stringify(rs)} is not supported; kdqat supports only rope_scaling null (plain RoPE)`);
  }
  for (const k of ['attention_bias', 'mlp_bias']) if (r.bool(k, false)) r.fail(`"${k}": true is not supported; kdqat's LLaMA has no biases`);
  const eos = r.j.eos_token_id;
  let eosTokenId: number | number[] | null;
  if (Array.isArray(eos)) {
    if (!eos.every((x) => Number.isSafeInteger(x) && x >= 0)) r.fail(`"eos_token_id" must be a token id or a list of ids`);
    eosTokenId = eos as number[];
  } else eosTokenId = r.tokenId('eos_token_id');
  const config: LlamaConfig = {
    vocabSize: r.int('vocab_size'),
    hiddenSize: C,
    intermediateSize: r.int('intermediate_size'),
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads: H,
    numKeyValueHeads: Hkv,
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: r.num('rope_theta', 10000, Number.MIN_VALUE),
    maxPositionEmbeddings: r.int('max_position_embeddings', 2048),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    initializerRange: r.num('initializer_range', 0.02),
  };
  const meta: LlamaMeta = {
    bosTokenId: r.tokenId('bos_token_id'), eosTokenId, padTokenId: r.tokenId('pad_token_id'),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')),
  };
  return { config, meta };
}

/** The config.json object HF's save_pretrained writes for LlamaForCausalLM. */
function toJson(k: LlamaConfig, m: LlamaMeta): Obj {
  return {
    architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0,
    bos_token_id: m.bosTokenId, eos_token_id: m.eosTokenId, head_dim: k.hiddenSize / k.numAttentionHeads,
    hidden_act: 'silu', hidden_size: k.hiddenSize, initializer_range: k.initializerRange,
    intermediate_size: k.intermediateSize, max_position_embeddings: k.maxPositionEmbeddings, mlp_bias: false,
    model_type: 'llama', num_attention_heads: k.numAttentionHeads, num_hidden_layers: k.numHiddenLayers,
    num_key_value_heads: k.numKeyValueHeads, pretraining_tp: 1, rms_norm_eps: k.rmsNormEps, rope_scaling: null,
    rope_theta: k.ropeTheta, tie_word_embeddings: k.tieWordEmbeddings, torch_dtype: m.torchDtype, use_cache: true,
    vocab_size: k.vocabSize,
    ...(m.padTokenId === null ? {} : { pad_token_id: m.padTokenId }),
  };
}

const GGUF_FIXED: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const GGUF_BLOCK: Record<string, string> = {
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down', input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
};

/** ONNX export data (onnx-spec.ts): plain RoPE tables, no biases, no q/k norms. */
function onnxSpec(c: LlamaConfig): DecoderOnnxSpec {
  const D = c.hiddenSize / c.numAttentionHeads;
  return {
    kind: 'decoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
    headDim: D, vocab: c.vocabSize, rmsEps: c.rmsNormEps, act: 'silu',
    embed: 'model.embed_tokens.weight', finalNorm: 'model.norm.weight',
    head: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
    layer: (l) => {
      const p = `model.layers.${l}.`;
      return {
        inputNorm: `${p}input_layernorm.weight`, postAttnNorm: `${p}post_attention_layernorm.weight`,
        q: `${p}self_attn.q_proj.weight`, k: `${p}self_attn.k_proj.weight`, v: `${p}self_attn.v_proj.weight`,
        o: `${p}self_attn.o_proj.weight`, gate: `${p}mlp.gate_proj.weight`, up: `${p}mlp.up_proj.weight`, down: `${p}mlp.down_proj.weight`,
      };
    },
    rope: () => {
      // ropeTables gives (T, D) rows [c_0..c_{D/2−1}, c_0..c_{D/2−1}]: keep the first half.
      const T = c.maxPositionEmbeddings, half = D / 2;
      const t = ropeTables(T, D, c.ropeTheta);
      const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
      for (let i = 0; i < T; i++) {
        cos.set(t.cos.subarray(i * D, i * D + half), i * half);
        sin.set(t.sin.subarray(i * D, i * D + half), i * half);
      }
      return { cos, sin, maxPositions: T };
    },
  };
}

type LlamaModel = { arch: string; config: LlamaConfig; params: import('../nn/params.js').Params };

export const llama: Architecture<LlamaConfig, LlamaMeta, object> = {
  name: 'llama',
  label: 'LLaMA',
  kind: 'decoder',
  hfClasses: { LlamaForCausalLM: 'lm' },
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
    config: (s) => ({
      vocabSize: s.vocab, hiddenSize: s.hidden, intermediateSize: s.intermediate, numHiddenLayers: s.layers,
      numAttentionHeads: s.heads, numKeyValueHeads: s.kvHeads, rmsNormEps: 1e-5, ropeTheta: 10000,
      maxPositionEmbeddings: s.seq, tieWordEmbeddings: true, initializerRange: 0.02,
    }),
    tokenizer: { name: 'byte-level BPE', train: (texts, vocabSize) => trainByteLevelBpe(texts, { vocabSize }) },
    meta: (sp) => ({ bosTokenId: sp.bos ?? null, eosTokenId: sp.eos ?? null }),
  },

  headsOf: () => LM,
  modelFields: () => ({}),
  modelHeads: () => LM,
  metaForHeads: () => ({}),
  labels: () => null,
  specialIds: (m) => ({ bos: m.bosTokenId, eos: m.eosTokenId, pad: m.padTokenId }),
  describe: () => 'a LLaMA decoder (causal LM',

  paramSpec: (config) => llamaParamSpec(config),
  forward(model: LlamaModel, x, o = {}): Taps {
    const r = llamaForward(model.params, model.config, x.ids, { attentionMask: x.mask, weight: o.weight, capture: o.capture });
    return { logits: r.logits, hidden: r.hidden, probs: r.probs, scores: r.scores, context: r.context, saOut: r.saOut, attnOut: r.saOut };
  },
  lmLogits: (model: LlamaModel, ids, o = {}) => llamaForward(model.params, model.config, ids, o).logits,

  modules: {
    kinds: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'],
    rules: [
      [/\.self_attn\.q_proj\./, 'q'],
      [/\.self_attn\.k_proj\./, 'k'],
      [/\.self_attn\.v_proj\./, 'v'],
      [/\.self_attn\.o_proj\./, 'o'],
      [/\.mlp\.gate_proj\./, 'gate'],
      [/\.mlp\.up_proj\./, 'up'],
      [/\.mlp\.down_proj\./, 'down'],
      [/\.input_layernorm\.|\.post_attention_layernorm\./, 'norm'],
      [/embed_tokens\./, 'embed'],
      [/^lm_head\./, 'head'],
      [/^model\.norm\./, 'norm'],
    ],
    freezePresets: { ov: ['self_attn.v_proj', 'self_attn.o_proj'] },
    // The head: with tied embeddings its weight is model.embed_tokens.weight, which the forward
    // reads through the WeightFn for the head only (quant/prepare.ts); patterns call it lm_head.
    extraTargets: (c) => ({ first: [], last: [{ name: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', logical: 'lm_head.weight' }] }),
    untie: (c, stored) => (stored === 'lm_head.weight' ? { ...c, tieWordEmbeddings: false } : null),
  },
  load: {
    tied: { 'lm_head.weight': 'model.embed_tokens.weight' },
    tiedReason: () => 'tie_word_embeddings is true in config.json',
  },
  gguf: {
    arch: 'llama',
    tensorName(hfName) {
      if (GGUF_FIXED[hfName]) return GGUF_FIXED[hfName];
      const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hfName);
      if (m && GGUF_BLOCK[m[2]]) return `blk.${m[1]}.${GGUF_BLOCK[m[2]]}.weight`;
      throw new Error(`no GGUF name for LLaMA parameter "${hfName}"`);
    },
  },
  onnx: { spec: onnxSpec },
};
