// LLaMA-family decoder (Hugging Face LlamaForCausalLM): RMSNorm, RoPE, grouped-query
// attention, SwiGLU MLP, tied or untied lm_head. Parameters carry HF's names.
import { Tensor } from '../tensor/tensor.js';
import {
  add, attention, embedding, linear, mul, reshape, rmsNorm, rope, ropeTables, silu,
} from '../tensor/ops/index.js';
import { identityWeight, linearInput, param, type Init, type Params, type WeightFn } from '../nn/params.js';

export interface LlamaConfig {
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
  logits: Tensor; // (B, T, V)
  hidden: Tensor[];
  probs: Tensor[];
  scores: Tensor[];
  context: Tensor[];
  saOut: Tensor[];
}

export function llamaParamSpec(cfg: LlamaConfig): Map<string, { shape: number[]; init: Init }> {
  const C = cfg.hiddenSize, F = cfg.intermediateSize, D = C / cfg.numAttentionHeads;
  const kv = cfg.numKeyValueHeads * D;
  const w: Init = { kind: 'normal', std: cfg.initializerRange };
  const spec = new Map<string, { shape: number[]; init: Init }>();
  spec.set('model.embed_tokens.weight', { shape: [cfg.vocabSize, C], init: w });
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    spec.set(`${p}self_attn.q_proj.weight`, { shape: [C, C], init: w });
    spec.set(`${p}self_attn.k_proj.weight`, { shape: [kv, C], init: w });
    spec.set(`${p}self_attn.v_proj.weight`, { shape: [kv, C], init: w });
    spec.set(`${p}self_attn.o_proj.weight`, { shape: [C, C], init: w });
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
  cos: Float32Array;
  sin: Float32Array;
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

/** One decoder layer: x + attn(norm(x)), then + mlp(norm(·)). x (B, T, C). `prefix` ends in '.'. */
export function llamaBlock(
  params: Params, prefix: string, cfg: LlamaConfig, x: Tensor, opts: BlockOptions,
): { y: Tensor; cap: BlockCapture } {
  const [B, T, C] = x.shape;
  const H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads, D = C / H;
  const w = (n: string): Tensor => (opts.weight ?? identityWeight)(prefix + n, param(params, prefix + n));
  const lin = (x: Tensor, n: string): Tensor => linear(linearInput(opts.weight, prefix + n, x), w(n));
  const cap = opts.capture ?? {};

  const h = rmsNorm(x, param(params, `${prefix}input_layernorm.weight`), cfg.rmsNormEps); // (B, T, C)
  const q = rope(reshape(lin(h, 'self_attn.q_proj.weight'), [B, T, H, D]), opts.cos, opts.sin);
  const k = rope(reshape(lin(h, 'self_attn.k_proj.weight'), [B, T, Hkv, D]), opts.cos, opts.sin);
  const v = reshape(lin(h, 'self_attn.v_proj.weight'), [B, T, Hkv, D]);
  const att = attention(q, k, v, {
    causal: true, keyMask: opts.keyMask, returnProbs: cap.probs, returnScores: cap.scores,
  });
  const context = reshape(att.out, [B, T, C]); // (B, T, C)
  const sa = lin(context, 'self_attn.o_proj.weight');
  const x1 = add(x, sa);

  const h2 = rmsNorm(x1, param(params, `${prefix}post_attention_layernorm.weight`), cfg.rmsNormEps);
  const gate = silu(lin(h2, 'mlp.gate_proj.weight')); // (B, T, F)
  const up = lin(h2, 'mlp.up_proj.weight');
  const y = add(x1, lin(mul(gate, up), 'mlp.down_proj.weight'));
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

function tables(T: number, D: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${T}:${D}:${theta}`;
  let t = ropeCache.get(key);
  if (!t) {
    t = ropeTables(T, D, theta);
    ropeCache.set(key, t);
  }
  return t;
}

/** Full causal LM forward: ids (B, T) int32 → logits (B, T, V) plus requested captures. */
export function llamaForward(params: Params, cfg: LlamaConfig, ids: Tensor, opts: DecoderForwardOptions = {}): DecoderOutput {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new RangeError(`llama: ids must be int32 (B, T), got ${ids.dtype} [${ids.shape}]`);
  const T = ids.shape[1];
  if (T > cfg.maxPositionEmbeddings) throw new RangeError(`llama: sequence length ${T} exceeds max_position_embeddings ${cfg.maxPositionEmbeddings}`);
  const D = cfg.hiddenSize / cfg.numAttentionHeads;
  const { cos, sin } = tables(T, D, cfg.ropeTheta);
  const cap = opts.capture ?? {};
  const out: DecoderOutput = { logits: null as unknown as Tensor, hidden: [], probs: [], scores: [], context: [], saOut: [] };
  let x = embedding(param(params, 'model.embed_tokens.weight'), ids); // (B, T, C)
  if (cap.hidden) out.hidden.push(x);
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const r = llamaBlock(params, `model.layers.${l}.`, cfg, x, { cos, sin, keyMask: opts.attentionMask, weight: opts.weight, capture: cap });
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
  out.logits = linear(linearInput(opts.weight, head, x), (opts.weight ?? identityWeight)(head, param(params, head)));
  return out;
}
