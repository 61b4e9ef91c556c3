// Fused scaled dot-product attention on the (B, T, H, D) layout, optionally handing back the
// attention probabilities and pre-softmax scores with gradients (the distillation losses of
// TernaryBERT and Kim et al. need them).
//
// Several outputs share one backward: out, probs and scores are children of a zero-size
// "joint" tensor. Their backward functions only stash their gradient; the joint node runs
// after all of them (reverse topological order) and calls the fused backward once.
import { Tensor } from '../tensor.js';
import { record, isRecording } from '../autograd.js';
import { kernel } from '../registry.js';
import { empty, fmt, requireF32 } from './util.js';
import { giveBack } from '../storage.js';

export interface AttentionOptions {
  causal?: boolean;
  /** (B, T) int32, 1 = attend to this key, 0 = padding. */
  keyMask?: Tensor | null;
  /** Sliding window (Mistral, Phi-3): query i sees keys i − window < j ≤ i; null/0 = none. */
  window?: number | null;
  /** Defaults to 1/√D. */
  scale?: number;
  /** Also return the probabilities (B, H, T, T). */
  returnProbs?: boolean;
  /** Also return the scaled scores before softmax (B, H, T, T), masked entries 0. */
  returnScores?: boolean;
}

export interface AttentionResult {
  out: Tensor; // (B, T, H, D)
  probs: Tensor | null; // (B, H, T, T)
  scores: Tensor | null; // (B, H, T, T)
}

export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): AttentionResult {
  requireF32('attention', q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new RangeError(`attention: q, k, v must be (B, T, H, D); got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`);
  }
  const [B, T, H, D] = q.shape;
  const Hkv = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== D || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new RangeError(`attention: k ${fmt(k.shape)} and v ${fmt(v.shape)} must be (${B}, ${T}, Hkv, ${D})`);
  }
  if (H % Hkv !== 0) throw new RangeError(`attention: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
  const mask = opts.keyMask ?? null;
  if (mask && (mask.dtype !== 'i32' || mask.size !== B * T)) {
    throw new RangeError(`attention: keyMask must be int32 (B, T) = (${B}, ${T}), got ${mask.dtype} ${fmt(mask.shape)}`);
  }
  const causal = !!opts.causal;
  const window = opts.window ?? 0;
  if (!Number.isInteger(window) || window < 0) throw new RangeError(`attention: window must be an integer ≥ 1 (or null), got ${opts.window}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const training = isRecording() && (q.requiresGrad || k.requiresGrad || v.requiresGrad);
  const out = empty(q.shape);
  const probs = training || opts.returnProbs ? empty([B, H, T, T]) : null;
  const scores = opts.returnScores ? empty([B, H, T, T]) : null;
  const maskData = mask ? mask.i32 : null;
  kernel('attention')(q.f32, k.f32, v.f32, out.f32, probs?.f32 ?? null, scores?.f32 ?? null,
    B, T, H, Hkv, D, scale, causal, maskData, window);

  if (!training) {
    return { out: record(out, 'attention', [], () => []), probs, scores };
  }
  const pending: { gout: Float32Array | null; gProbs: Float32Array | null; gScores: Float32Array | null } = {
    gout: null, gProbs: null, gScores: null,
  };
  const joint = record(new Tensor(new Float32Array(0), [0]), 'attention', [q, k, v], () => {
    const gq = empty(q.shape), gk = empty(k.shape), gv = empty(v.shape);
    const gout = pending.gout ?? new Float32Array(out.size);
    kernel('attentionBackward')(q.f32, k.f32, v.f32, probs!.f32, gout, pending.gProbs, pending.gScores,
      gq.f32, gk.f32, gv.f32, B, T, H, Hkv, D, scale, causal, maskData, window);
    pending.gout = pending.gProbs = pending.gScores = null;
    if (!opts.returnProbs) giveBack(probs!.f32); // (B, H, T, T), read by nothing else
    return [gq, gk, gv];
  });
  const none = new Tensor(new Float32Array(0), [0]);
  const child = (t: Tensor, key: 'gout' | 'gProbs' | 'gScores'): Tensor =>
    record(t, 'attention', [joint], (g) => {
      pending[key] = g.f32;
      return [none];
    }, { readsValue: key === 'gProbs' }); // the joint reads probs, not out or scores
  return {
    out: child(out, 'gout'),
    probs: opts.returnProbs ? child(probs!, 'gProbs') : null,
    scores: scores ? child(scores, 'gScores') : null,
  };
}
