// The Qwen2 record: Hugging Face Qwen2ForCausalLM (transformers' Qwen2Config; Qwen2 and
// Qwen2.5) = LLaMA with biases on q_proj, k_proj, v_proj (not o_proj). Its sliding window is off
// unless use_sliding_window is true, which kdqat refuses (the window applies to only some layers,
// max_window_layers); sliding_window / max_window_layers are then kept as given.
// GGUF as convert_hf_to_gguf.py's Qwen2Model: arch "qwen2" (NEOX RoPE: q/k not permuted).
import type { Architecture } from './architecture.js';
import type { LlamaConfig } from './llama.js';
import { LLAMA_BLOCK_NAMES, checkGgufYarn, commonGgufKv, decoderRecord, tensorNamer, type LlamaMeta } from './decoder-family.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';
import type { ConfigReader } from './config-reader.js';

/** Qwen-style window settings: refused when on (use_sliding_window, use_mrope). */
export function refuseQwenWindow(r: ConfigReader): void {
  if (r.bool('use_sliding_window', false)) {
    r.fail(`"use_sliding_window": true is not supported (sliding_window ${JSON.stringify(r.j.sliding_window)} on layers from max_window_layers ` +
      `${JSON.stringify(r.j.max_window_layers)}); kdqat runs Qwen models with full attention only`);
  }
  if (r.bool('use_mrope', false)) r.fail('"use_mrope": true (multimodal RoPE, Qwen2-VL) is not supported');
}

export const qwen2: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'qwen2',
  label: 'Qwen2',
  cls: 'Qwen2ForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, tieWordEmbeddings: false },
  features(r, base) {
    refuseQwenWindow(r);
    if (r.has('head_dim') && r.int('head_dim') !== base.hiddenSize / base.numAttentionHeads) r.fail(`"head_dim": ${r.j.head_dim} ≠ hidden_size/num_attention_heads; Qwen2 has no head_dim: remove it`);
    return { qkvBias: true, ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, ['linear', 'yarn']) };
  },
  json: (k) => ({ rope_scaling: ropeScalingJson(k.ropeScaling), use_sliding_window: false }),
  kept: { max_window_layers: 28, sliding_window: 4096 },
  pretrainFeatures: () => ({ qkvBias: true }),
  gguf: {
    arch: 'qwen2',
    tensorName: tensorNamer('Qwen2', LLAMA_BLOCK_NAMES),
    permuteQK: false,
    kv: (k) => { checkGgufYarn(k); return commonGgufKv('qwen2', k); },
  },
});
