// Relative position scores in self-attention: Hugging Face BertSelfAttention's
// `position_embedding_type` "relative_key" (Shaw et al. 2018, as Huang et al. 2020 use it) and
// "relative_key_query" (Huang et al. 2020, method 4). Each layer has a table E (2P − 1, D) of
// distance embeddings, P = max_position_embeddings; with d = l − r (query position l, key
// position r) and E_d its row d + P − 1, the pre-softmax score of head h is
//
//   relative_key:        s[l, r] = (q_l · k_r + q_l · E_{l−r}) / √D
//   relative_key_query:  s[l, r] = (q_l · k_r + q_l · E_{l−r} + k_r · E_{l−r}) / √D
//
// and the input embeddings get no absolute position vector (BertEmbeddings adds
// position_embeddings only for "absolute"; the table stays in the checkpoint, unused).
// A position is then seen only through distances, so an encoder learns "look at my neighbour"
// as a bias per distance instead of from the dot products of 2·P learned vectors, which is what
// lets masked-LM pre-training read context within a few thousand steps (docs/teachers.md, "Why no
// kdqat encoder beats word counting").
//
// Composed from differentiable ops (batched matmul, gather, softmax) rather than the fused
// attention kernel, which has no score bias: (B, H, T, T) scores are held, as the kernel holds
// its probabilities for the backward anyway.
import { Tensor, intTensor } from '../tensor/tensor.js';
import { add, embedding, matmul, mul, permute, reshape, scale, softmax } from '../tensor/ops/index.js';
import type { AttentionResult } from '../tensor/ops/attention.js';

export const POSITION_EMBEDDING_TYPES = ['absolute', 'relative_key', 'relative_key_query'] as const;
export type PositionEmbeddingType = (typeof POSITION_EMBEDDING_TYPES)[number];

/** A layer's distance table, relative to the layer prefix (HF BertSelfAttention.distance_embedding). */
export const DISTANCE_EMBEDDING = 'attention.self.distance_embedding.weight';

/** Rows of the distance table: every l − r with |l − r| < P. */
export const distanceRows = (maxPositions: number): number => 2 * maxPositions - 1;

/** (T, T) int32 row ids of E: l − r + P − 1. */
function distanceIds(T: number, P: number): Tensor {
  const ids = new Int32Array(T * T);
  for (let l = 0; l < T; l++) for (let r = 0; r < T; r++) ids[l * T + r] = l - r + P - 1;
  return intTensor(ids, [T, T]);
}

/**
 * Self-attention with relative position scores. q, k, v (B, T, H, D) as the fused kernel takes
 * them (H key/value heads: the encoders have no GQA); `table` is E (2P − 1, D); `keyMask` (B, T)
 * int32, 1 = attend. Returns out (B, T, H, D) and, on request, the probabilities and the scaled
 * pre-softmax scores (B, H, T, T; masked keys 0), the fused kernel's conventions.
 */
export function relativeAttention(
  q: Tensor, k: Tensor, v: Tensor, table: Tensor, type: Exclude<PositionEmbeddingType, 'absolute'>,
  opts: { keyMask?: Tensor | null; returnProbs?: boolean; returnScores?: boolean } = {},
): AttentionResult {
  const [B, T, H, D] = q.shape;
  const P = (table.shape[0] + 1) / 2;
  if (table.ndim !== 2 || !Number.isInteger(P) || table.shape[1] !== D) {
    throw new RangeError(`relative attention: the distance table must be (2P − 1, ${D}), got [${table.shape}]`);
  }
  if (T > P) throw new RangeError(`relative attention: sequence length ${T} exceeds the table's ${P} positions`);
  const heads = (t: Tensor): Tensor => permute(t, [0, 2, 1, 3]); // (B, H, T, D)
  const E = embedding(table, distanceIds(T, P)); // (T_l, T_r, D)
  let s = matmul(heads(q), heads(k), { transB: true }); // (B, H, T, T)
  // q_l · E_{l−r}: one (B·H, D)·(D, T_r) product per query position l.
  const ql = reshape(permute(q, [1, 0, 2, 3]), [T, B * H, D]); // (T_l, B·H, D)
  const rq = matmul(ql, E, { transB: true }); // (T_l, B·H, T_r)
  s = add(s, permute(reshape(rq, [T, B, H, T]), [1, 2, 0, 3]));
  if (type === 'relative_key_query') {
    // k_r · E_{l−r}: one (B·H, D)·(D, T_l) product per key position r.
    const kr = reshape(permute(k, [1, 0, 2, 3]), [T, B * H, D]); // (T_r, B·H, D)
    const rk = matmul(kr, permute(E, [1, 0, 2]), { transB: true }); // (T_r, B·H, T_l)
    s = add(s, permute(reshape(rk, [T, B, H, T]), [1, 2, 3, 0]));
  }
  s = scale(s, 1 / Math.sqrt(D));
  let logits = s, scores = opts.returnScores ? s : null;
  if (opts.keyMask) {
    const m = opts.keyMask.i32;
    const keep = new Float32Array(B * T), bias = new Float32Array(B * T);
    for (let i = 0; i < B * T; i++) {
      keep[i] = m[i] ? 1 : 0;
      bias[i] = m[i] ? 0 : -1e30; // exp underflows to exactly 0, as HF's finfo.min does
    }
    logits = add(s, new Tensor(bias, [B, 1, 1, T]));
    if (scores) scores = mul(s, new Tensor(keep, [B, 1, 1, T]));
  }
  const probs = softmax(logits); // (B, H, T, T)
  const out = permute(matmul(probs, heads(v)), [0, 2, 1, 3]); // (B, T, H, D)
  return { out, probs: opts.returnProbs ? probs : null, scores };
}
