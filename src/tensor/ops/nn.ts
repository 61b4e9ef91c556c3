// Neural-network primitives with fused kernels: softmax, log-softmax, LayerNorm, RMSNorm,
// rotary position embedding, dropout.
import { Tensor, zeros } from '../tensor.js';
import { record, isRecording } from '../autograd.js';
import { kernel } from '../registry.js';
import { empty, fmt, requireF32, requireShape } from './util.js';

function rowsOf(x: Tensor): [number, number] {
  const n = x.shape[x.ndim - 1];
  return [n === 0 ? 0 : x.size / n, n];
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  requireF32('softmax', x);
  const [rows, n] = rowsOf(x);
  const out = empty(x.shape);
  kernel('softmax')(x.f32, out.f32, rows, n);
  return record(out, 'softmax', [x], (g) => {
    const gx = empty(x.shape);
    kernel('softmaxBackward')(out.f32, g.f32, gx.f32, rows, n);
    return [gx];
  });
}

/** Log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  requireF32('logSoftmax', x);
  const [rows, n] = rowsOf(x);
  const out = empty(x.shape);
  kernel('logSoftmax')(x.f32, out.f32, rows, n);
  return record(out, 'logSoftmax', [x], (g) => {
    const gx = empty(x.shape);
    kernel('logSoftmaxBackward')(out.f32, g.f32, gx.f32, rows, n);
    return [gx];
  });
}

/** LayerNorm over the last axis (PyTorch semantics); weight/bias (C) optional. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  requireF32('layerNorm', x);
  const [rows, n] = rowsOf(x);
  if (weight) requireShape('layerNorm', 'weight', weight, [n]);
  if (bias) requireShape('layerNorm', 'bias', bias, [n]);
  const out = empty(x.shape);
  const mean = new Float32Array(rows), rstd = new Float32Array(rows);
  kernel('layerNorm')(x.f32, weight?.f32 ?? null, bias?.f32 ?? null, out.f32, mean, rstd, rows, n, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(out, 'layerNorm', inputs, (g) => {
    const gx = empty(x.shape);
    const gw = weight ? zeros([n]) : null;  // gw and gb accumulate
    const gb = bias ? zeros([n]) : null;
    kernel('layerNormBackward')(x.f32, weight?.f32 ?? null, mean, rstd, g.f32, gx.f32,
      gw?.f32 ?? null, gb?.f32 ?? null, rows, n);
    return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
  });
}

/** RMSNorm over the last axis (LLaMA): x·rsqrt(mean(x²) + eps)·w. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  requireF32('rmsNorm', x, weight);
  const [rows, n] = rowsOf(x);
  requireShape('rmsNorm', 'weight', weight, [n]);
  const out = empty(x.shape);
  const rstd = new Float32Array(rows);
  kernel('rmsNorm')(x.f32, weight.f32, out.f32, rstd, rows, n, eps);
  return record(out, 'rmsNorm', [x, weight], (g) => {
    const gx = empty(x.shape);
    const gw = zeros([n]);  // accumulates
    kernel('rmsNormBackward')(x.f32, weight.f32, rstd, g.f32, gx.f32, gw.f32, rows, n);
    return [gx, gw];
  });
}

/** Cos/sin tables (T, D) for RoPE, Hugging Face layout: emb = cat(freqs, freqs). */
export function ropeTables(T: number, D: number, theta = 10000, offset = 0): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(T * D), sin = new Float32Array(T * D);
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      // inv_freq = 1 / theta^(2i/D), computed in float32 as HF does.
      const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / D)));
      const f = Math.fround((t + offset) * invFreq);
      cos[t * D + i] = cos[t * D + i + half] = Math.cos(f);
      sin[t * D + i] = sin[t * D + i + half] = Math.sin(f);
    }
  }
  return { cos, sin };
}

/** Rotary embedding on x (B, T, H, D) with tables (T, D) (HF rotate_half convention). */
export function rope(x: Tensor, cos: Float32Array, sin: Float32Array): Tensor {
  requireF32('rope', x);
  if (x.ndim !== 4) throw new RangeError(`rope: expected (B, T, H, D), got ${fmt(x.shape)}`);
  const [B, T, H, D] = x.shape;
  if (cos.length !== T * D || sin.length !== T * D) throw new RangeError(`rope: tables must be (T, D) = (${T}, ${D})`);
  const out = empty(x.shape);
  kernel('rope')(x.f32, out.f32, cos, sin, B, T, H, D, false);
  return record(out, 'rope', [x], (g) => {
    const gx = empty(x.shape);
    kernel('rope')(g.f32, gx.f32, cos, sin, B, T, H, D, true);
    return [gx];
  });
}

// Data parallel (src/train/distributed.ts): a rank computes rows [lo, lo + rows) of every global
// batch, and its dropout must draw the masks those rows get in a one-process run over the whole
// batch. Element i of a mask is a function of seed·φ + i (φ = 0x9E3779B9, src/tensor/rng.ts
// hash32; the native kernel is the same); φ is odd, so it has an inverse mod 2³², and the seed
// seed + o·φ⁻¹ draws element i exactly as `seed` draws element o + i. A tensor's leading rows are
// batch rows (B, …), so the rank's first element is element o = lo·(size/rows) of the batch's.
const PHI_INVERSE = 0x144cbc89; // 0x9E3779B9 · 0x144CBC89 ≡ 1 (mod 2³²)
let dropoutRows: { lo: number; rows: number } | null = null;

/** fn() with every dropout mask drawn as rows [lo, lo + rows) of a batch starting at row 0. */
export function withDropoutRows<T>(lo: number, rows: number, fn: () => T): T {
  const before = dropoutRows;
  dropoutRows = lo === 0 ? null : { lo, rows };
  try {
    return fn();
  } finally {
    dropoutRows = before;
  }
}

/** The rows withDropoutRows set (recompute restores them for its second forward). */
export function currentDropoutRows(): { lo: number; rows: number } | null {
  return dropoutRows;
}

function rowSeed(seed: number, size: number): number {
  if (!dropoutRows) return seed;
  const { lo, rows } = dropoutRows;
  if (size % rows) throw new RangeError(`dropout: a tensor of ${size} elements is not ${rows} batch rows (withDropoutRows)`);
  const offset = (lo * (size / rows)) % 4294967296;
  return ((seed | 0) + Math.imul(offset | 0, PHI_INVERSE)) | 0;
}

/** Inverted dropout with a counter-based mask (deterministic for a seed). Identity if p = 0.
 *  Inside withDropoutRows, the mask is that of the given rows of the whole batch. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  requireF32('dropout', x);
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  seed = rowSeed(seed, x.size);
  const out = empty(x.shape);
  const mask = new Float32Array(x.size);
  kernel('dropout')(x.f32, out.f32, mask, p, seed);
  if (!isRecording()) return out;
  return record(out, 'dropout', [x], (g) => {
    const gx = empty(x.shape);
    kernel('binary')(2, g.f32, mask, gx.f32, Int32Array.of(x.size), Int32Array.of(1), Int32Array.of(1));
    return [gx];
  });
}
