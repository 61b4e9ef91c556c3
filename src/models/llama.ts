// The LLaMA-family decoder (Hugging Face LlamaForCausalLM and the families that differ from it
// only in data: Mistral, Qwen2, Qwen3, Phi-3): RMSNorm, RoPE (optionally scaled), grouped-query
// attention, SwiGLU MLP, tied or untied lm_head. Parameters carry HF's names. The family
// features are config fields, not code paths per family (see DecoderFeatures); each family's
// record (src/models/*-arch.ts) fills them from its config.json.
import { Tensor } from '../tensor/tensor.js';
import { consumed, layer } from '../tensor/recompute.js';
import {
  add, attention, concat, embedding, linear, reshape, rmsNorm, rope, siluGate, slice,
} from '../tensor/ops/index.js';
import { identityWeight, linearInput, param, type Init, type Params, type WeightFn } from '../nn/params.js';
import { scaledRopeTables, type RopeScaling } from './rope-scaling.js';
import { lazyLogits, type LmHead } from './architecture.js';

export type { RopeScaling } from './rope-scaling.js';

/** What sets a family apart from plain LLaMA, as data (absent = LLaMA's choice). */
export interface DecoderFeatures {
  /** Per-head size D; HF `head_dim` (Qwen3: ≠ hidden/heads). Default hidden / heads. */
  headDim?: number;
  /** HF `rope_scaling` (null/absent: plain RoPE). */
  ropeScaling?: RopeScaling | null;
  /** Biases on q_proj, k_proj, v_proj (Qwen2), not on o_proj. */
  qkvBias?: boolean;
  /** RMSNorm over each head of q and k before RoPE (Qwen3's q_norm / k_norm). */
  qkNorm?: boolean;
  /** Sliding-window attention (Mistral, Phi-3): key j is visible to query i iff
   *  i − window < j ≤ i (transformers' sliding-window mask; the attention op's `window`).
   *  null/absent: full causal attention. */
  slidingWindow?: number | null;
  /** RoPE on the first rotaryDim entries of each head only, the rest passed through (Phi-3's
   *  `partial_rotary_factor`: int(D · factor), as Phi3Attention slices q and k); absent: all D. */
  rotaryDim?: number;
  /** Layers (indices) whose attention takes no RoPE (SmolLM3's NoPE layers: the 0s of
   *  `no_rope_layers`); absent: RoPE in every layer. */
  noRopeLayers?: readonly number[];
}

export interface LlamaConfig extends DecoderFeatures {
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number;
  numHiddenLayers: number; // L
  numAttentionHeads: number; // H
  numKeyValueHeads: number; // Hkv
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  initializerRange: number;
}

/** What a forward pass should hand back per layer, for distillation and analysis. */
export interface Capture {
  hidden?: boolean; // hidden states, embedding output included (L+1 tensors)
  probs?: boolean; // attention probabilities (B, H, T, T) per layer
  scores?: boolean; // scaled scores before softmax (B, H, T, T), masked entries 0
  context?: boolean; // softmax(QKᵀ)V before the output projection (B, T, C)
  saOut?: boolean; // attention sub-layer output after o_proj, before the residual (B, T, C)
}

export interface DecoderOutput {
  logits: Tensor; // (B, T, V), computed from `head` on first read (lazyLogits)
  head: LmHead;
  hidden: Tensor[];
  probs: Tensor[];
  scores: Tensor[];
  context: Tensor[];
  saOut: Tensor[];
}

/** The per-head size D (explicit head_dim or hidden / heads). */
export const headDimOf = (cfg: LlamaConfig): number => cfg.headDim ?? cfg.hiddenSize / cfg.numAttentionHeads;
/** The entries of a head RoPE rotates (all D but for a partial rotary factor). */
export const rotaryDimOf = (cfg: LlamaConfig): number => cfg.rotaryDim ?? headDimOf(cfg);
/** Whether layer l's attention applies RoPE (DecoderFeatures.noRopeLayers). */
export const layerUsesRope = (cfg: LlamaConfig, l: number): boolean => !cfg.noRopeLayers?.includes(l);

export function llamaParamSpec(cfg: LlamaConfig): Map<string, { shape: number[]; init: Init }> {
  const C = cfg.hiddenSize, F = cfg.intermediateSize, D = headDimOf(cfg);
  const qd = cfg.numAttentionHeads * D, kv = cfg.numKeyValueHeads * D;
  const zeros: Init = { kind: 'zeros' };
  const w: Init = { kind: 'normal', std: cfg.initializerRange };
  const spec = new Map<string, { shape: number[]; init: Init }>();
  spec.set('model.embed_tokens.weight', { shape: [cfg.vocabSize, C], init: w });
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    spec.set(`${p}self_attn.q_proj.weight`, { shape: [qd, C], init: w });
    spec.set(`${p}self_attn.k_proj.weight`, { shape: [kv, C], init: w });
    spec.set(`${p}self_attn.v_proj.weight`, { shape: [kv, C], init: w });
    if (cfg.qkvBias) {
      spec.set(`${p}self_attn.q_proj.bias`, { shape: [qd], init: zeros });
      spec.set(`${p}self_attn.k_proj.bias`, { shape: [kv], init: zeros });
      spec.set(`${p}self_attn.v_proj.bias`, { shape: [kv], init: zeros });
    }
    if (cfg.qkNorm) {
      spec.set(`${p}self_attn.q_norm.weight`, { shape: [D], init: { kind: 'ones' } });
      spec.set(`${p}self_attn.k_norm.weight`, { shape: [D], init: { kind: 'ones' } });
    }
    spec.set(`${p}self_attn.o_proj.weight`, { shape: [C, qd], init: w });
    spec.set(`${p}mlp.gate_proj.weight`, { shape: [F, C], init: w });
    spec.set(`${p}mlp.up_proj.weight`, { shape: [F, C], init: w });
    spec.set(`${p}mlp.down_proj.weight`, { shape: [C, F], init: w });
    spec.set(`${p}input_layernorm.weight`, { shape: [C], init: { kind: 'ones' } });
    spec.set(`${p}post_attention_layernorm.weight`, { shape: [C], init: { kind: 'ones' } });
  }
  spec.set('model.norm.weight', { shape: [C], init: { kind: 'ones' } });
  if (!cfg.tieWordEmbeddings) spec.set('lm_head.weight', { shape: [cfg.vocabSize, C], init: w });
  return spec;
}

export interface BlockOptions {
  /** The RoPE tables, or null for a layer without RoPE (layerUsesRope). */
  cos: Float32Array | null;
  sin: Float32Array | null;
  keyMask?: Tensor | null;
  weight?: WeightFn;
  capture?: Capture;
}

export interface BlockCapture {
  probs: Tensor | null;
  scores: Tensor | null;
  context: Tensor | null;
  saOut: Tensor | null;
}

/** q, k (after the optional bias, per-head norm and RoPE: none when cos/sin are null) and v of
 *  one layer, from its normed input h (B, T, C): q (B, T, H, D), k and v (B, T, Hkv, D). Shared by
 *  the training forward and the KV-cache decoder (generate.ts), so the two cannot drift apart. */
export function projectQkv(
  params: Params, prefix: string, cfg: LlamaConfig, h: Tensor, cos: Float32Array | null, sin: Float32Array | null, weight?: WeightFn,
): { q: Tensor; k: Tensor; v: Tensor } {
  const [B, T] = h.shape;
  const H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads, D = headDimOf(cfg);
  const proj = (n: string): Tensor => {
    const wn = `${prefix}self_attn.${n}.weight`;
    const y = linear(linearInput(weight, wn, h), (weight ?? identityWeight)(wn, param(params, wn)));
    return cfg.qkvBias ? add(y, param(params, `${prefix}self_attn.${n}.bias`)) : y;
  };
  // Qwen3: RMSNorm over the D entries of each head (Qwen3Attention.q_norm / k_norm), before RoPE.
  const headNorm = (x: Tensor, n: string): Tensor => (cfg.qkNorm ? rmsNorm(x, param(params, `${prefix}self_attn.${n}.weight`), cfg.rmsNormEps) : x);
  // Partial rotary (Phi-3): the first R entries of a head rotate (rotate_half over R), the rest pass.
  const R = rotaryDimOf(cfg);
  const rotate = (x: Tensor): Tensor => (!cos || !sin ? x
    : R === D ? rope(x, cos, sin) : concat([rope(slice(x, 3, 0, R), cos, sin), slice(x, 3, R, D)], 3));
  const q = rotate(headNorm(reshape(proj('q_proj'), [B, T, H, D]), 'q_norm'));
  const k = rotate(headNorm(reshape(proj('k_proj'), [B, T, Hkv, D]), 'k_norm'));
  const v = reshape(proj('v_proj'), [B, T, Hkv, D]);
  return { q, k, v };
}

/** One decoder layer: x + attn(norm(x)), then + mlp(norm(·)). x (B, T, C). `prefix` ends in '.'. */
export function llamaBlock(
  params: Params, prefix: string, cfg: LlamaConfig, x: Tensor, opts: BlockOptions,
): { y: Tensor; cap: BlockCapture } {
  const [B, T] = x.shape;
  const H = cfg.numAttentionHeads, D = headDimOf(cfg);
  const w = (n: string): Tensor => (opts.weight ?? identityWeight)(prefix + n, param(params, prefix + n));
  const lin = (x: Tensor, n: string): Tensor => linear(linearInput(opts.weight, prefix + n, x), w(n));
  const cap = opts.capture ?? {};

  const h = rmsNorm(x, param(params, `${prefix}input_layernorm.weight`), cfg.rmsNormEps); // (B, T, C)
  const { q, k, v } = projectQkv(params, prefix, cfg, h, opts.cos, opts.sin, opts.weight);
  const att = attention(q, k, v, {
    causal: true, window: cfg.slidingWindow, keyMask: opts.keyMask, returnProbs: cap.probs, returnScores: cap.scores,
  });
  const context = reshape(att.out, [B, T, H * D]); // (B, T, H·D)
  const sa = lin(context, 'self_attn.o_proj.weight'); // (B, T, C)
  const x1 = add(x, sa);

  const h2 = rmsNorm(x1, param(params, `${prefix}post_attention_layernorm.weight`), cfg.rmsNormEps);
  const gate = lin(h2, 'mlp.gate_proj.weight'); // (B, T, F)
  const up = lin(h2, 'mlp.up_proj.weight');
  const y = add(x1, lin(siluGate(gate, up), 'mlp.down_proj.weight')); // silu(gate)·up
  return {
    y,
    cap: {
      probs: att.probs, scores: att.scores,
      context: cap.context ? context : null, saOut: cap.saOut ? sa : null,
    },
  };
}

export interface DecoderForwardOptions {
  /** (B, T) int32, 1 = real token, 0 = padding. */
  attentionMask?: Tensor | null;
  weight?: WeightFn;
  capture?: Capture;
}

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

/** The cos/sin tables (T, R) of a config's RoPE at positions offset …, cached (R: the rotated
 *  entries of a head, rotaryDimOf). */
export function ropeTablesOf(cfg: LlamaConfig, T: number, offset = 0): { cos: Float32Array; sin: Float32Array } {
  const D = rotaryDimOf(cfg);
  const key = `${T}:${D}:${cfg.ropeTheta}:${offset}:${JSON.stringify(cfg.ropeScaling ?? null)}`;
  let t = ropeCache.get(key);
  if (!t) {
    t = scaledRopeTables(T, D, cfg.ropeTheta, cfg.ropeScaling, offset);
    if (ropeCache.size > 64) ropeCache.clear();
    ropeCache.set(key, t);
  }
  return t;
}

/** Throws unless `T` positions fit max_position_embeddings. */
export function checkPositions(cfg: LlamaConfig, T: number, what: string): void {
  if (T > cfg.maxPositionEmbeddings) throw new RangeError(`${what}: sequence length ${T} exceeds max_position_embeddings ${cfg.maxPositionEmbeddings}`);
}

/** Full causal LM forward: ids (B, T) int32 → logits (B, T, V) plus requested captures. */
export function llamaForward(params: Params, cfg: LlamaConfig, ids: Tensor, opts: DecoderForwardOptions = {}): DecoderOutput {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new RangeError(`llama: ids must be int32 (B, T), got ${ids.dtype} [${ids.shape}]`);
  const T = ids.shape[1];
  checkPositions(cfg, T, 'llama');
  const { cos, sin } = ropeTablesOf(cfg, T);
  const cap = opts.capture ?? {};
  const out = { hidden: [] as Tensor[], probs: [] as Tensor[], scores: [] as Tensor[], context: [] as Tensor[], saOut: [] as Tensor[] };
  let x = embedding(param(params, 'model.embed_tokens.weight'), ids); // (B, T, C)
  if (cap.hidden) out.hidden.push(x);
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const t = layerUsesRope(cfg, l) ? { cos, sin } : { cos: null, sin: null };
    const r = layer((xl) => llamaBlock(params, `model.layers.${l}.`, cfg, xl, { ...t, keyMask: opts.attentionMask, weight: opts.weight, capture: cap }), x);
    if (l > 0 && !cap.hidden) consumed(x, r.y);
    x = r.y;
    if (r.cap.probs) out.probs.push(r.cap.probs);
    if (r.cap.scores) out.scores.push(r.cap.scores);
    if (r.cap.context) out.context.push(r.cap.context);
    if (r.cap.saOut) out.saOut.push(r.cap.saOut);
    if (cap.hidden && l < cfg.numHiddenLayers - 1) out.hidden.push(x);
  }
  x = rmsNorm(x, param(params, 'model.norm.weight'), cfg.rmsNormEps);
  // As Hugging Face: the last hidden state is taken after the final norm.
  if (cap.hidden) out.hidden.push(x);
  const head = cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  // logits (B, T, V) = x·Wᵀ on first read; the fused logits KL reads the head instead.
  return lazyLogits(out, { x: linearInput(opts.weight, head, x), weight: (opts.weight ?? identityWeight)(head, param(params, head)), logits: null });
}
