// What ONNX export needs to know about a family, as data (the `onnx` field of an architecture
// record, architecture.ts): one of two graph shapes, a pre-norm RoPE decoder or a post-norm BERT-
// style encoder, with the sizes, the Hugging Face parameter names per layer and the optional
// pieces later families switch on (q/k/v biases, q/k norms, an explicit head_dim, other RoPE
// tables, a position-id offset). io/onnx-decoder.ts and io/onnx-encoder.ts emit the graph from
// it; nothing there tests a family's name.

/** Parameter names of one decoder layer (HF names; absent optional ones are not in the graph). */
export interface DecoderLayerNames {
  inputNorm: string; postAttnNorm: string;
  q: string; k: string; v: string; o: string;
  gate: string; up: string; down: string;
  /** Linear biases (Qwen2: q/k/v). */
  qBias?: string; kBias?: string; vBias?: string; oBias?: string;
  /** RMSNorm over the head dimension of q and k before RoPE (Qwen3). */
  qNorm?: string; kNorm?: string;
  /** A layer without RoPE (SmolLM3's NoPE layers). */
  noRope?: boolean;
}

export interface DecoderOnnxSpec {
  kind: 'decoder';
  layers: number; // L
  hidden: number; // C
  heads: number; // H
  kvHeads: number; // Hkv
  headDim: number; // D (H·D need not equal C)
  /** The entries of a head RoPE rotates (the first R; the rest pass, Phi-3's partial rotary); R = D usually. */
  rotaryDim: number;
  vocab: number; // V
  rmsEps: number;
  /** Sliding-window attention (Mistral): query i sees keys j with i − W < j ≤ i (W keys, itself
   *  included, as transformers' sliding_window mask); absent or null: all earlier keys. */
  slidingWindow?: number | null;
  /** The MLP's gate activation (SwiGLU: silu). */
  act: 'silu';
  embed: string;
  finalNorm: string;
  /** The head's weight (the embedding when tied). */
  head: string;
  layer(l: number): DecoderLayerNames;
  /** RoPE tables for positions 0..maxPositions−1: (maxPositions, R/2) each, HF rotate_half
   *  convention (the first half of each row; the second repeats it). Scaling variants (llama3,
   *  yarn, …) are just other tables; LongRoPE has two, `long` for a call whose largest position
   *  id is `beyond` or more (a sequence longer than original_max_position_embeddings). */
  rope(): { cos: Float32Array; sin: Float32Array; maxPositions: number; long?: { cos: Float32Array; sin: Float32Array; beyond: number } };
}

export interface EncoderLayerNames {
  q: string; k: string; v: string; o: string; // each with a bias `${name minus .weight}.bias`
  attnNorm: string; // LayerNorm after attention (weight; bias beside it)
  ffnIn: string; ffnOut: string;
  ffnNorm: string;
  /** Relative positions (spec.relative): this layer's distance table E (2P − 1, head size). */
  distance?: string;
}

export interface EncoderOnnxSpec {
  kind: 'encoder';
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  layerNormEps: number;
  /** The FFN activation (the encoder families' hidden_act values). */
  act: 'gelu' | 'gelu_new' | 'relu';
  wordEmbed: string;
  /** The absolute position table; null: the embeddings get no position vector (relative positions). */
  posEmbed: string | null;
  /** Relative position scores in every layer (HF BERT's position_embedding_type, models/relative-position.ts):
   *  q_l · E_{l−r} (and k_r · E_{l−r} for relative_key_query) added to q_l · k_r before the 1/√D
   *  scaling, E_d the row d + P − 1 of the layer's `distance` table. Absent/null: none. */
  relative?: { type: 'relative_key' | 'relative_key_query'; maxPositions: number } | null;
  /** RoFormer: the sinusoid table (P, D) whose rows rotate each interleaved pair of q and k
   *  (sin in the first D/2 columns, cos in the last); absent: no rotary positions. */
  rotaryInterleaved?: string;
  /** Position ids are offset + 0..T−1. */
  positionOffset: number;
  /** RoBERTa: position ids counted over the non-padding tokens from this padding index, as HF's
   *  create_position_ids_from_input_ids: cumsum(ids ≠ pad)·(ids ≠ pad) + pad (positionOffset
   *  unused). Absent/null: offset + 0..T−1. */
  positionsFromPadding?: number | null;
  /** null: the family has no token types (no token_type_ids input). */
  typeEmbed: string | null;
  /** false: the family has a token-type table but no token_type_ids input (RoBERTa's single
   *  row): row 0 is added to every token. Default true. */
  typeInput?: boolean;
  embedNorm: string;
  layer(l: number): EncoderLayerNames;
  /** Sequence classifier on the first token: a pooler dense + activation (BERT: tanh; DistilBERT's
   *  pre_classifier: relu; RoFormer's dense: hidden_act; null: none) then the classifier; null
   *  when the model has no classifier. */
  classifier: { pooler: string | null; poolerAct: 'tanh' | 'relu' | 'gelu' | 'gelu_new'; dense: string; labels: number } | null;
}

export type OnnxSpec = DecoderOnnxSpec | EncoderOnnxSpec;

/** The bias beside a Linear's weight ("x.weight" → "x.bias"). */
export const biasOf = (weight: string): string => weight.replace(/\.weight$/, '.bias');
