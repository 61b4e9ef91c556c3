// The distillation loss terms of METHODS.md §3, one function each, on tensors a forward pass
// handed back. Padding never changes a term: every normalizer counts real tokens only, so
// appending padded positions (mask 0) to a batch leaves each value and gradient unchanged.
// The student tensors get gradients; teacher tensors are targets (run the teacher under noGrad).
import { Tensor, intTensor } from '../tensor/tensor.js';
import { crossEntropy, gather, headKlDiv, klDiv, mse, mul, probKl, reshape, scale, type HeadInput, type TopkLogits } from '../tensor/ops/index.js';

/** Ignored label (PyTorch's default ignore_index, as src/data/mlm.ts). */
export const IGNORE_INDEX = -100;

/** The padding mask of a batch, digested once per loss call. */
export interface TokenMask {
  B: number;
  T: number;
  /** Real tokens per example n_b. */
  lengths: Int32Array;
  /** (B·T) 1 = real token, as float (row weights). */
  weights: Float32Array;
  /** Flat (b·T + t) indices of the real tokens, or null when every token is real. */
  index: Tensor | null;
}

/** Digests a (B, T) int32 mask (1 = token, 0 = padding); null = every token real. */
export function tokenMask(mask: Tensor | null | undefined, B: number, T: number): TokenMask {
  const lengths = new Int32Array(B).fill(T);
  const weights = new Float32Array(B * T).fill(1);
  if (!mask) return { B, T, lengths, weights, index: null };
  if (mask.dtype !== 'i32' || mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== T) {
    throw new RangeError(`distillLoss: mask must be int32 (B, T) = (${B}, ${T}), got ${mask.dtype} [${mask.shape}]`);
  }
  const m = mask.i32, idx: number[] = [];
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < T; t++) {
      const v = m[b * T + t];
      if (v !== 0 && v !== 1) throw new RangeError(`distillLoss: mask entries must be 0 or 1, got ${v} at (${b}, ${t})`);
      weights[b * T + t] = v;
      if (v) idx.push(b * T + t);
      n += v;
    }
    lengths[b] = n;
  }
  return { B, T, lengths, weights, index: idx.length === B * T ? null : intTensor(idx, [idx.length]) };
}

/**
 * `pred`: τ²·KL(softmax(z_T/τ) ‖ softmax(z_S/τ)), mean over real tokens for token logits
 * (B, T, V), mean over examples for classifier logits (B, K).
 */
export function predLoss(s: Tensor, t: Tensor, tau: number, m: TokenMask | null): Tensor {
  if (s.ndim === 3) return klDiv(t, s, tau, m?.index ? m.weights : undefined);
  return klDiv(t, s, tau);
}

/**
 * `pred` on token logits, fused with the LM head: the student's logits are x·Wᵀ of its head and
 * are never held whole (tensor/ops/head-kl.ts); the teacher is its head, its dense logits (the
 * same value as predLoss, within float32 rounding) or its top-K logits from the teacher cache
 * (the approximation of docs/distillation.md).
 */
export function predHeadLoss(s: HeadInput, t: HeadInput | Tensor | TopkLogits, tau: number, m: TokenMask | null): Tensor {
  return headKlDiv(t, s, tau, m?.index ? m.weights : undefined);
}

/**
 * `ce`: cross-entropy with the true labels. Token logits (B, T, V) with labels (B, T) (next
 * tokens, already shifted; IGNORE_INDEX = -100 skipped; padding positions skipped too), mean
 * over the counted positions. Classifier logits (B, K) with labels (B).
 */
export function ceLoss(s: Tensor, labels: Tensor, m: TokenMask | null): Tensor {
  if (s.ndim === 2) return crossEntropy(s, labels);
  const [B, T, V] = s.shape;
  let tgt = labels;
  if (m?.index) {
    const l = labels.i32.slice();
    for (let i = 0; i < l.length; i++) if (m.weights[i] === 0) l[i] = IGNORE_INDEX;
    tgt = intTensor(l, [B * T]);
  }
  return crossEntropy(reshape(s, [B * T, V]), reshape(tgt, [B * T]));
}

/**
 * MSE(S, T) of (B, T, C) states over real tokens only: Σ (S − T)² over the real positions and
 * all channels, divided by (real tokens · C), i.e. the mean over the included elements.
 */
export function tokenMse(s: Tensor, t: Tensor, m: TokenMask | null): Tensor {
  if (!m?.index) return mse(s, t);
  const [B, T, C] = s.shape;
  return mse(gather(reshape(s, [B * T, C]), m.index), gather(reshape(t, [B * T, C]), m.index));
}

/**
 * `attn_score` of one layer: MSE of the (B, H, T, T) scaled scores (masked entries 0 in both).
 * Normalizer: H·Σ_b n_b², every (query, key) pair of real tokens — for a batch without padding
 * that is B·H·T², TernaryBERT's mean over the whole matrix (causally masked entries count as the
 * zeros they are); pairs touching padding are excluded in value, gradient and count.
 */
export function scoreMse(s: Tensor, t: Tensor, m: TokenMask | null, pairs: Tensor | null): Tensor {
  if (!m?.index || !pairs) return mse(s, t);
  const H = s.shape[1];
  let count = 0;
  for (const n of m.lengths) count += n * n;
  count *= H;
  const loss = mse(mul(s, pairs), mul(t, pairs));
  return count ? scale(loss, s.size / count) : scale(loss, 0);
}

/** (B, 1, T, T) f32: 1 where query and key are both real tokens (null without padding). */
export function pairMask(m: TokenMask): Tensor | null {
  if (!m.index) return null;
  const { B, T, weights } = m;
  const out = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      if (!weights[b * T + i]) continue;
      // A row of the pair mask is the example's token mask.
      out.set(weights.subarray(b * T, (b + 1) * T), (b * T + i) * T);
    }
  }
  return new Tensor(out, [B, 1, T, T]);
}

/**
 * Row weights (B·H·T) for `attn_map`: 1/(n_b·B'·H) on each real query row of example b, 0 on
 * padding rows, with B' the number of examples holding at least one token. So one layer's
 * Σ_rows w·KL is the mean over examples and heads of (1/n_b)·Σ_{i real} KL(p_T[i,:] ‖ p_S[i,:]).
 */
export function attnMapWeights(m: TokenMask, H: number): Float32Array {
  const { B, T, lengths, weights } = m;
  let examples = 0;
  for (const n of lengths) if (n > 0) examples++;
  const w = new Float32Array(B * H * T);
  for (let b = 0; b < B; b++) {
    if (!lengths[b]) continue;
    const c = 1 / (lengths[b] * examples * H);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) w[(b * H + h) * T + i] = c * weights[b * T + i];
    }
  }
  return w;
}

/**
 * `attn_map` of one layer: Σ_rows w·KL(p_T ‖ p_S) on (B, H, T, T) probabilities clamped ≥ 1e-8.
 * Columns: a key that is padding (or in the future, for a causal decoder) has probability
 * exactly 0 in the teacher's row (the attention kernel writes 0 for excluded entries), and a
 * zero target entry adds exactly 0 to the value and the gradient; so the clamp never makes
 * masked columns contribute and the sum runs over the real (visible) keys only.
 */
export function attnMapKl(s: Tensor, t: Tensor, rowWeights: Float32Array): Tensor {
  return probKl(t, s, rowWeights, 1e-8);
}
