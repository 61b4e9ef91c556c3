// Loss primitives with fused kernels: cross-entropy (ignore index), KL divergence between
// teacher and student logits (temperature), and mean squared error.
import { Tensor } from '../tensor.js';
import { record } from '../autograd.js';
import { kernel } from '../registry.js';
import { empty, fmt, requireF32, requireShape } from './util.js';
import { giveBack } from '../storage.js';

/**
 * Mean cross-entropy of logits (..., V) against int32 targets (...), skipping targets equal
 * to ignoreIndex (PyTorch's F.cross_entropy, reduction 'mean'). 0 if every target is ignored.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex = -100): Tensor {
  requireF32('crossEntropy', logits);
  if (targets.dtype !== 'i32') throw new TypeError(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  const V = logits.shape[logits.ndim - 1];
  requireShape('crossEntropy', 'targets', targets, logits.shape.slice(0, -1));
  const rows = targets.size;
  const loss = new Float32Array(rows), lse = new Float32Array(rows);
  kernel('crossEntropy')(logits.f32, targets.i32, loss, lse, rows, V, ignoreIndex);
  let count = 0, total = 0;
  const t = targets.i32;
  for (let r = 0; r < rows; r++) {
    if (t[r] !== ignoreIndex) {
      count++;
      total += loss[r];
    }
  }
  const out = new Tensor(Float32Array.of(count ? total / count : 0), []);
  return record(out, 'crossEntropy', [logits], (g) => {
    const gloss = new Float32Array(rows).fill(count ? g.f32[0] / count : 0);
    const gl = empty(logits.shape);
    kernel('crossEntropyBackward')(logits.f32, targets.i32, lse, gloss, gl.f32, rows, V, ignoreIndex);
    return [gl];
  });
}

/**
 * τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) per row of (..., V) logits, averaged over rows whose
 * weight is non-zero (weights (...) of 0/1 exclude padding; all rows when omitted).
 * Gradients flow to the student s (and to t if it requires one).
 */
export function klDiv(teacher: Tensor, student: Tensor, tau = 1, rowWeights?: Float32Array): Tensor {
  requireF32('klDiv', teacher, student);
  requireShape('klDiv', 'student logits', student, teacher.shape);
  const V = teacher.shape[teacher.ndim - 1];
  const rows = teacher.size / V;
  if (rowWeights && rowWeights.length !== rows) throw new RangeError(`klDiv: ${rowWeights.length} row weights for ${rows} rows`);
  const loss = new Float32Array(rows);
  kernel('klDiv')(teacher.f32, student.f32, loss, rows, V, tau);
  let wsum = 0, total = 0;
  for (let r = 0; r < rows; r++) {
    const w = rowWeights ? rowWeights[r] : 1;
    wsum += w;
    total += w * loss[r];
  }
  const scale = wsum > 0 ? (tau * tau) / wsum : 0;
  const out = new Tensor(Float32Array.of(total * scale), []);
  return record(out, 'klDiv', [teacher, student], (g) => {
    const gloss = new Float32Array(rows);
    for (let r = 0; r < rows; r++) gloss[r] = g.f32[0] * scale * (rowWeights ? rowWeights[r] : 1);
    const gs = empty(student.shape);
    const gt = teacher.requiresGrad ? empty(teacher.shape) : null;
    kernel('klDivBackward')(teacher.f32, student.f32, gloss, gs.f32, gt?.f32 ?? null, rows, V, tau);
    return [gt, gs];
  });
}

/** mean((a − b)²) over all elements. */
export function mse(a: Tensor, b: Tensor): Tensor {
  requireF32('mse', a, b);
  if (a.size !== b.size) throw new RangeError(`mse: shapes ${fmt(a.shape)} and ${fmt(b.shape)} differ`);
  const n = a.size;
  const out = new Tensor(Float32Array.of(n ? kernel('sumSquaredDiff')(a.f32, b.f32) / n : 0), []);
  return record(out, 'mse', [a, b], (g) => {
    // d/da = 2(a − b)/n, d/db = −2(a − b)/n.
    const c = (2 * g.f32[0]) / n;
    const diff = empty(a.shape);
    kernel('binary')(1, a.f32, b.f32, diff.f32, Int32Array.of(n), Int32Array.of(1), Int32Array.of(1));
    const ga = a.requiresGrad ? empty(a.shape) : null;
    const gb = b.requiresGrad ? empty(b.shape) : null;
    if (ga) kernel('affine')(diff.f32, ga.f32, c, 0);
    if (gb) kernel('affine')(diff.f32, gb.f32, -c, 0);
    giveBack(diff.f32); // read by nothing else
    return [ga, gb];
  });
}

/**
 * Σ_r w_r·KL(p_r ‖ q_r) over rows of probability tensors (..., n), each probability clamped
 * at eps inside the logs (Kim et al. 2022, attention-map loss; their code clamps at 1e-8).
 * p is the target: the gradient flows to q only. Rows with weight 0 are skipped entirely.
 * The weights carry any normalization (this is a weighted sum, not a mean).
 */
export function probKl(p: Tensor, q: Tensor, rowWeights: Float32Array, eps = 1e-8): Tensor {
  requireF32('probKl', p, q);
  requireShape('probKl', 'q', q, p.shape);
  const n = p.ndim ? p.shape[p.ndim - 1] : 1;
  const rows = n ? p.size / n : 0;
  if (rowWeights.length !== rows) throw new RangeError(`probKl: ${rowWeights.length} row weights for ${rows} rows`);
  const out = new Tensor(Float32Array.of(kernel('probKl')(p.f32, q.f32, rowWeights, rows, n, eps)), []);
  return record(out, 'probKl', [q], (g) => {
    const gq = empty(q.shape);
    kernel('probKlBackward')(p.f32, q.f32, rowWeights, g.f32[0], gq.f32, rows, n, eps);
    return [gq];
  });
}
