// The Seed-OSS record: Hugging Face SeedOssForCausalLM (transformers' SeedOssConfig,
// ByteDance-Seed/Seed-OSS-36B) = LLaMA with biases on q/k/v (`attention_bias`, true in the
// released model; `attention_out_bias` on o_proj must be false) and an explicit head_dim (128,
// ≠ hidden/heads). Its dropout rates (attention_dropout, residual_dropout: training only) do not
// change the model kdqat runs and are kept as given. rope_scaling other than
// {"rope_type": "default"} is refused.
// GGUF as convert_hf_to_gguf.py's SeedOssModel: arch "seed_oss" (NEOX RoPE: q/k not permuted),
// post_attention_layernorm → post_attention_norm (llama.cpp's seed-oss.cpp loads it as
// LLM_TENSOR_ATTN_POST_NORM).
import type { Architecture } from './architecture.js';
import { headDimOf, type LlamaConfig } from './llama.js';
import { LLAMA_BLOCK_NAMES, commonGgufKv, decoderRecord, parseHeadDim, tensorNamer, type LlamaMeta } from './decoder-family.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';

export const seedOss: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'seed_oss',
  label: 'Seed-OSS',
  cls: 'SeedOssForCausalLM',
  defaults: { ropeTheta: 10000000, rmsNormEps: 1e-6, maxPositionEmbeddings: 524288, tieWordEmbeddings: false },
  features(r, base) {
    if (r.bool('attention_out_bias', false)) r.fail('"attention_out_bias": true is not supported (kdqat\'s decoder has no o_proj bias)');
    return { headDim: parseHeadDim(r, base), qkvBias: r.bool('attention_bias', true), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, []) };
  },
  json: (k) => ({
    attention_bias: !!k.qkvBias, attention_out_bias: false, head_dim: headDimOf(k), mlp_bias: false, pretraining_tp: 1,
    rope_scaling: ropeScalingJson(k.ropeScaling) ?? { rope_type: 'default' },
  }),
  kept: { attention_dropout: 0.1, residual_dropout: 0.1 },
  pretrainFeatures: () => ({ qkvBias: true }),
  gguf: {
    arch: 'seed_oss',
    tensorName: tensorNamer('Seed-OSS', { ...LLAMA_BLOCK_NAMES, post_attention_layernorm: 'post_attention_norm' }),
    permuteQK: false,
    kv: (k) => commonGgufKv('seed_oss', k),
  },
});
