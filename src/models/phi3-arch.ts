// The Phi-3 record: Hugging Face Phi3ForCausalLM (transformers' Phi3Config; Phi-3/3.5-mini) =
// LLaMA with fused projections and a sliding window:
//   self_attn.qkv_proj = [q_proj; k_proj; v_proj] (rows H·D, Hkv·D, Hkv·D, in that order, as
//   Phi3Attention slices it), mlp.gate_up_proj = [gate_proj; up_proj] (Phi3MLP: chunk(2), the
//   first half through SiLU). kdqat splits them on load and stacks them on save and GGUF export
//   (FusedTensor): inside kdqat they are LLaMA's q/k/v/gate/up parameters, so `--freeze ov` and
//   a quantization rule for v_proj act on exactly the V rows of qkv_proj (quantization groups run
//   along a row, so a row-sliced weight quantizes exactly as the same rows inside the fused one).
//   sliding_window: as Mistral (mistral-arch.ts). llama.cpp's phi3 reads it but switches it off
//   ("Phi SWA is currently disabled", its src/models/phi3.cpp): the exporter says so.
//   rope_scaling "longrope"/"su" (Phi-3-*-128k) is refused.
// GGUF as convert_hf_to_gguf.py's Phi3MiniModel: arch "phi3", attn_qkv and ffn_up fused,
// attention.sliding_window and rope.scaling.original_context_length written; NEOX RoPE.
import type { Architecture, FusedTensor } from './architecture.js';
import { headDimOf, type LlamaConfig } from './llama.js';
import { commonGgufKv, decoderRecord, parseRopeScaling, parseWindow, tensorNamer, type LlamaMeta } from './decoder-family.js';

function fused(k: LlamaConfig): FusedTensor[] {
  const D = headDimOf(k), out: FusedTensor[] = [];
  for (let l = 0; l < k.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push({
      name: `${p}self_attn.qkv_proj.weight`,
      parts: [
        { name: `${p}self_attn.q_proj.weight`, rows: k.numAttentionHeads * D },
        { name: `${p}self_attn.k_proj.weight`, rows: k.numKeyValueHeads * D },
        { name: `${p}self_attn.v_proj.weight`, rows: k.numKeyValueHeads * D },
      ],
    }, {
      name: `${p}mlp.gate_up_proj.weight`,
      parts: [{ name: `${p}mlp.gate_proj.weight`, rows: k.intermediateSize }, { name: `${p}mlp.up_proj.weight`, rows: k.intermediateSize }],
    });
  }
  return out;
}

export const phi3: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'phi3',
  label: 'Phi-3',
  cls: 'Phi3ForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 4096, tieWordEmbeddings: false },
  features(r, base) {
    if (r.bool('attention_bias', false)) r.fail('"attention_bias": true is not supported for phi3 (kdqat\'s Phi-3 has no attention biases)');
    if (r.has('head_dim') && r.int('head_dim') !== base.hiddenSize / base.numAttentionHeads) r.fail(`"head_dim": ${r.j.head_dim} ≠ hidden_size/num_attention_heads; Phi-3 has no head_dim: remove it`);
    return { slidingWindow: parseWindow(r), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, []) };
  },
  json: (k) => ({ attention_bias: false, rope_scaling: null, sliding_window: k.slidingWindow ?? null }),
  kept: { embd_pdrop: 0.0, resid_pdrop: 0.0, original_max_position_embeddings: 4096 },
  pretrainFeatures: (s) => ({ slidingWindow: s.seq }),
  fused,
  gguf: {
    arch: 'phi3',
    tensorName: tensorNamer('Phi-3', {
      'self_attn.qkv_proj': 'attn_qkv', 'self_attn.o_proj': 'attn_output', 'mlp.gate_up_proj': 'ffn_up',
      'mlp.down_proj': 'ffn_down', input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm',
    }),
    permuteQK: false,
    notes: (k) => (k.slidingWindow == null ? [] : [
      `llama.cpp switches Phi-3's sliding window off ("Phi SWA is currently disabled"): on contexts longer than sliding_window = ${k.slidingWindow} ` +
      'it attends to all earlier tokens, unlike the Hugging Face model and kdqat',
    ]),
    kv: (k) => [
      ...commonGgufKv('phi3', k),
      ['phi3.attention.sliding_window', { type: 'u32', value: k.slidingWindow ?? 0 }],
      ['phi3.rope.scaling.original_context_length', { type: 'u32', value: k.maxPositionEmbeddings }],
    ],
  },
});
