// What ONNX export reads of a decoder built by decoder-family.ts (onnx-spec.ts): the parameter
// names and the family features as data, so io/onnx-decoder.ts emits every decoder family from one
// spec.
import { headDimOf, layerUsesRope, ropeTablesOf, rotaryDimOf, type LlamaConfig } from './llama.js';
import { scaledRopeTables } from './rope-scaling.js';
import type { DecoderOnnxSpec } from './onnx-spec.js';

/** ONNX export data (onnx-spec.ts) of any decoder of this builder: the features are data there
 *  too (biases, q/k norms, head_dim, sliding window, layers without RoPE), RoPE scaling is just
 *  other tables. A fused family (Phi-3) is split on load, so its graph reads the split q/k/v and
 *  gate/up weights. */
export function decoderOnnxSpec(c: LlamaConfig): DecoderOnnxSpec {
  const D = headDimOf(c), R = rotaryDimOf(c);
  return {
    kind: 'decoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads,
    headDim: D, rotaryDim: R, vocab: c.vocabSize, rmsEps: c.rmsNormEps, act: 'silu', slidingWindow: c.slidingWindow ?? null,
    embed: 'model.embed_tokens.weight', finalNorm: 'model.norm.weight',
    head: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
    layer: (l) => {
      const p = `model.layers.${l}.`, a = `${p}self_attn.`;
      return {
        inputNorm: `${p}input_layernorm.weight`, postAttnNorm: `${p}post_attention_layernorm.weight`,
        q: `${a}q_proj.weight`, k: `${a}k_proj.weight`, v: `${a}v_proj.weight`,
        o: `${a}o_proj.weight`, gate: `${p}mlp.gate_proj.weight`, up: `${p}mlp.up_proj.weight`, down: `${p}mlp.down_proj.weight`,
        ...(c.qkvBias ? { qBias: `${a}q_proj.bias`, kBias: `${a}k_proj.bias`, vBias: `${a}v_proj.bias` } : {}),
        ...(c.qkNorm ? { qNorm: `${a}q_norm.weight`, kNorm: `${a}k_norm.weight` } : {}),
        ...(layerUsesRope(c, l) ? {} : { noRope: true }),
      };
    },
    rope: () => {
      // The tables give (T, R) rows [c_0..c_{R/2−1}, c_0..c_{R/2−1}]: keep the first half.
      const T = c.maxPositionEmbeddings, half = R / 2;
      const halves = (t: { cos: Float32Array; sin: Float32Array }): { cos: Float32Array; sin: Float32Array } => {
        const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
        for (let i = 0; i < T; i++) {
          cos.set(t.cos.subarray(i * R, i * R + half), i * half);
          sin.set(t.sin.subarray(i * R, i * R + half), i * half);
        }
        return { cos, sin };
      };
      const s = c.ropeScaling;
      if (s?.type !== 'longrope') return { ...halves(ropeTablesOf(c, T)), maxPositions: T };
      // LongRoPE: short factors while the sequence fits the original context, long beyond it.
      const L = s.originalMaxPositionEmbeddings;
      const short = halves(scaledRopeTables(T, R, c.ropeTheta, s, 0, Math.min(L, T)));
      return { ...short, maxPositions: T, long: { ...halves(scaledRopeTables(T, R, c.ropeTheta, s, 0, L + 1)), beyond: L } };
    },
  };
}
