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
//   rope_scaling "longrope" (Phi-3-*-128k, Phi-3.5-mini; "su" is its old name, as Phi3Config
//   renames it): rope-scaling.ts, with original_max_position_embeddings (top level, 4096 when
//   absent, as Phi3Config) the pre-training context.
//   partial_rotary_factor (Phi-4-mini: 0.75): RoPE on the first R = int(D · factor) entries of each
//   head of q and k, the rest passed through (Phi3Attention's q_rot / q_pass); the LongRoPE factors
//   are then R/2 long. GGUF: rope.dimension_count = R (llama.cpp rotates the first n_rot).
// GGUF as convert_hf_to_gguf.py's Phi3MiniModel: arch "phi3", attn_qkv and ffn_up fused,
// attention.sliding_window and rope.scaling.original_context_length written; NEOX RoPE; LongRoPE
// as rope_factors_long/short.weight and rope.scaling.attn_factor.
import type { Architecture, FusedTensor, GgufKv } from './architecture.js';
import { headDimOf, rotaryDimOf, type LlamaConfig } from './llama.js';
import { commonGgufKv, decoderRecord, parseWindow, tensorNamer, type LlamaMeta } from './decoder-family.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';

/** LongRoPE for llama.cpp (Phi3MiniModel): both factor tables, and the attention factor its
 *  converter computes (√(1 + ln s / ln L), s = max / original); a config whose
 *  attention_factor differs from that would be another model in llama.cpp and is refused. */
function longropeGguf(k: LlamaConfig): { kv: GgufKv[]; tensors: { name: string; shape: number[]; data: Float32Array }[] } {
  const s = k.ropeScaling;
  if (s?.type !== 'longrope') return { kv: [], tensors: [] };
  const L = s.originalMaxPositionEmbeddings, scale = k.maxPositionEmbeddings / L;
  const attn = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(L)) : 1;
  if (Math.abs(s.attentionFactor - attn) > 1e-7 * attn) {
    throw new Error(`rope_scaling ${JSON.stringify(ropeScalingJson(s))?.slice(0, 200)}: attention_factor ${s.attentionFactor} ≠ ${attn}, the one llama.cpp's converter ` +
      'writes for LongRoPE (√(1 + ln(max/original) / ln original)); its GGUF would be a different model');
  }
  const R = rotaryDimOf(k);
  return {
    kv: [['phi3.rope.scaling.attn_factor', { type: 'f32', value: attn }]],
    tensors: [
      { name: 'rope_factors_long.weight', shape: [R / 2], data: Float32Array.from(s.longFactor) },
      { name: 'rope_factors_short.weight', shape: [R / 2], data: Float32Array.from(s.shortFactor) },
    ],
  };
}

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

/** What llama.cpp does with LongRoPE's two tables, for the exporter's notes. */
function longropeNote(L: number): string {
  const why = `llama.cpp picks LongRoPE's long factors by its context size (-c, which it rounds up to a multiple of 256): above ` +
    `original_max_position_embeddings = ${L} it uses them for every text, where the Hugging Face model and kdqat use them only for sequences longer than that`;
  return L >= 256 ? `${why}; run it with -c ${256 * Math.floor(L / 256)} or less for their outputs on shorter texts`
    : `${why}, and no context of llama.cpp's is that short: its outputs equal theirs on texts longer than ${L} tokens only`;
}

export const phi3: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'phi3',
  label: 'Phi-3',
  cls: 'Phi3ForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 4096, tieWordEmbeddings: false },
  features(r, base) {
    if (r.bool('attention_bias', false)) r.fail('"attention_bias": true is not supported for phi3 (kdqat\'s Phi-3 has no attention biases)');
    if (r.has('head_dim') && r.int('head_dim') !== base.hiddenSize / base.numAttentionHeads) r.fail(`"head_dim": ${r.j.head_dim} ≠ hidden_size/num_attention_heads; Phi-3 has no head_dim: remove it`);
    const D = base.hiddenSize / base.numAttentionHeads;
    // partial_rotary_factor (Phi-4-mini: 0.75): RoPE on the first int(D · factor) entries of a head.
    const factor = r.num('partial_rotary_factor', 1);
    if (!(factor > 0 && factor <= 1)) r.fail(`"partial_rotary_factor" must be in (0, 1], got ${factor}`);
    const R = Math.trunc(D * factor);
    if (R < 2 || R % 2 !== 0) r.fail(`"partial_rotary_factor" ${factor} rotates int(${D} · ${factor}) = ${R} entries of each head; RoPE needs an even number ≥ 2`);
    const originalMax = r.has('original_max_position_embeddings') ? r.int('original_max_position_embeddings') : 4096;
    const longrope = { headDim: R, originalMax };
    return {
      slidingWindow: parseWindow(r), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, ['longrope'], longrope),
      rotaryDim: R < D ? R : undefined,
    };
  },
  reads: ['partial_rotary_factor'],
  json: (k) => ({ attention_bias: false, rope_scaling: ropeScalingJson(k.ropeScaling), sliding_window: k.slidingWindow ?? null }),
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
    notes: (k) => [
      ...(k.slidingWindow == null || k.slidingWindow >= k.maxPositionEmbeddings ? [] : [
        `llama.cpp switches Phi-3's sliding window off ("Phi SWA is currently disabled"): on contexts longer than sliding_window = ${k.slidingWindow} ` +
        'it attends to all earlier tokens, unlike the Hugging Face model and kdqat',
      ]),
      ...(k.ropeScaling?.type !== 'longrope' ? [] : [longropeNote(k.ropeScaling.originalMaxPositionEmbeddings)]),
    ],
    kv: (k) => [
      ...commonGgufKv('phi3', k),
      ['phi3.attention.sliding_window', { type: 'u32', value: k.slidingWindow ?? 0 }],
      ['phi3.rope.scaling.original_context_length', { type: 'u32', value: k.ropeScaling?.type === 'longrope' ? k.ropeScaling.originalMaxPositionEmbeddings : k.maxPositionEmbeddings }],
      ...longropeGguf(k).kv,
    ],
    extraTensors: (k) => longropeGguf(k).tensors,
  },
});
