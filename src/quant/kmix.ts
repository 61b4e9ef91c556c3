// llama.cpp's mixed K-quant recipes Q4_K_M and Q5_K_M as data: which type llama-quantize gives
// each tensor of a LLaMA (src/llama-quant.cpp llama_tensor_get_type, for a model without experts,
// not Falcon, not 70B, no --output-tensor-type / --token-embedding-type):
//   output.weight             Q6_K (Q8_0 if its rows are not whole 256-blocks); with tied
//                             embeddings (no output tensor) token_embd.weight takes this rule;
//   token_embd.weight         the base type (Q4_K / Q5_K);
//   blk.i.attn_v.weight       Q6_K if use_more_bits(i, n_layer), else the base type;
//   blk.i.ffn_down.weight     Q6_K if use_more_bits(i, n_layer), else the base type;
//   the other projections     the base type; norms F32;
// use_more_bits(i, n) = i < n/8 || i ≥ 7n/8 || (i − n/8) mod 3 = 2 (integer division): the first
// and last eighth of the layers and every third one between. The file type is
// LLAMA_FTYPE_MOSTLY_Q4_K_M (15) / Q5_K_M (17), which gguf.ts FILE_TYPE writes for Q4_K / Q5_K.
// llama-quantize falls back to Q5_0/Q5_1/Q8_0 for rows that are not whole 256-blocks; kdqat has
// no Q5_0/Q5_1, so such a model is refused by the exporter's block check instead.
import type { LlamaConfig } from '../models/llama.js';
import { llamaParamSpec } from '../models/llama.js';
import type { QuantConfig } from './config.js';
import type { KRuleKind } from './rules.js';

export const K_MIXES = {
  Q4_K_M: { base: 'Q4_K', fileType: 15 },
  Q5_K_M: { base: 'Q5_K', fileType: 17 },
} as const;
export type KMixName = keyof typeof K_MIXES;
export type KMixType = 'F32' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_0';

/** llama-quantize's use_more_bits(i_layer, n_layers). */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

const LAYER = /^model\.layers\.(\d+)\.(self_attn\.v_proj|mlp\.down_proj)\.weight$/;

/** The GGUF type of every LLaMA parameter (HF names) under `mix`, for exportLlamaGguf's `types`. */
export function kMixTypes(cfg: LlamaConfig, mix: KMixName): Map<string, KMixType> {
  const base = K_MIXES[mix].base;
  const types = new Map<string, KMixType>();
  const head = cfg.hiddenSize % 256 === 0 ? 'Q6_K' : 'Q8_0';
  for (const [name, { shape }] of llamaParamSpec(cfg)) {
    let t: KMixType = base;
    if (shape.length === 1) t = 'F32';
    else if (name === 'lm_head.weight' || (name === 'model.embed_tokens.weight' && cfg.tieWordEmbeddings)) t = head;
    else {
      const m = LAYER.exec(name);
      if (m && useMoreBits(Number(m[1]), cfg.numHiddenLayers)) t = 'Q6_K';
    }
    types.set(name, t);
  }
  return types;
}

/** A QAT config on the same grids, so that `kdqat export --type q4_k_m` of the student is
 *  lossless: the projections on the base K-quant, the use_more_bits layers' v_proj and down_proj
 *  on q6_k, and the head (lm_head; a tied head included) on q6_k. The embedding lookup is never
 *  quantized by kdqat; its GGUF copy is re-quantized round-to-nearest. */
export function kMixQuantConfig(cfg: LlamaConfig, mix: KMixName): QuantConfig {
  const rule = (kind: KRuleKind) => ({ rule: { kind }, granule: { kind: 'group' as const, size: 256 } });
  const baseRule = K_MIXES[mix].base.toLowerCase() as KRuleKind;
  const overrides: QuantConfig['overrides'] = [];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    if (!useMoreBits(i, cfg.numHiddenLayers)) continue;
    overrides.push({ pattern: `re:^model\\.layers\\.${i}\\.(self_attn\\.v_proj|mlp\\.down_proj)\\.weight$`, quant: rule('q6_k') });
  }
  if (cfg.hiddenSize % 256 === 0) overrides.push({ pattern: 'lm_head', quant: rule('q6_k') });
  return { weights: rule(baseRule), overrides };
}
