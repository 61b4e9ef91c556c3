// The Qwen3 record: Hugging Face Qwen3ForCausalLM (transformers' Qwen3Config) = LLaMA with an
// explicit head_dim (128 for every size, ≠ hidden/heads in most) and RMSNorm over each head of q
// and k before RoPE (self_attn.q_norm / k_norm, weight (head_dim)); attention_bias must be false
// and the sliding window off (see qwen2-arch.ts).
// GGUF as convert_hf_to_gguf.py's Qwen3Model: arch "qwen3", attn_q_norm / attn_k_norm, NEOX RoPE.
import type { Architecture } from './architecture.js';
import { headDimOf, type LlamaConfig } from './llama.js';
import { LLAMA_BLOCK_NAMES, checkGgufYarn, commonGgufKv, decoderRecord, parseHeadDim, tensorNamer, type LlamaMeta } from './decoder-family.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';
import { refuseQwenWindow } from './qwen2-arch.js';

export const qwen3: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'qwen3',
  label: 'Qwen3',
  cls: 'Qwen3ForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, tieWordEmbeddings: false },
  features(r, base) {
    refuseQwenWindow(r);
    if (r.bool('attention_bias', false)) r.fail('"attention_bias": true is not supported for qwen3 (kdqat\'s Qwen3 has no attention biases)');
    return { headDim: parseHeadDim(r, base), qkNorm: true, ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, ['linear', 'yarn']) };
  },
  json: (k) => ({ attention_bias: false, head_dim: headDimOf(k), rope_scaling: ropeScalingJson(k.ropeScaling), use_sliding_window: false }),
  kept: { max_window_layers: 28, sliding_window: null },
  pretrainFeatures: () => ({ qkNorm: true }),
  gguf: {
    arch: 'qwen3',
    tensorName: tensorNamer('Qwen3', { ...LLAMA_BLOCK_NAMES, 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm' }),
    permuteQK: false,
    kv: (k) => { checkGgufYarn(k); return commonGgufKv('qwen3', k); },
  },
});
