// Layout primitives: reshape (a view), permute/transpose, slice, concat, gather (index_select
// and embedding lookup). Copies go through the strided-copy kernel.
import { Tensor, normAxis, shapeSize, stridesOf, zeros, type Shape } from '../tensor.js';
import { record } from '../autograd.js';
import { kernel } from '../registry.js';
import { gatherBf16 } from '../bf16.js';
import { empty, fmt, requireF32 } from './util.js';

/** Same buffer, new shape (one axis may be −1). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    const rest = s.reduce((p, d, i) => (i === free ? p : p * d), 1);
    if (rest === 0 || x.size % rest !== 0) throw new RangeError(`reshape: cannot infer -1 in ${fmt(shape)} from ${fmt(x.shape)}`);
    s[free] = x.size / rest;
  }
  if (shapeSize(s) !== x.size) throw new RangeError(`reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(shape)}`);
  const out = new Tensor(x.data, s);
  return record(out, 'reshape', [x], (g) => [new Tensor(g.data, x.shape)]);
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  requireF32('permute', x);
  if (perm.length !== x.ndim || new Set(perm.map((p) => normAxis(p, x.ndim))).size !== x.ndim) {
    throw new RangeError(`permute: [${perm}] is not a permutation of ${x.ndim} axes`);
  }
  const p = perm.map((a) => normAxis(a, x.ndim));
  const outShape = p.map((a) => x.shape[a]);
  const out = empty(outShape);
  const xs = stridesOf(x.shape);
  kernel('stridedCopy')(x.f32, 0, Int32Array.from(p.map((a) => xs[a])), out.f32, 0,
    Int32Array.from(stridesOf(outShape)), Int32Array.from(outShape), false);
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => (inv[a] = i));
  return record(out, 'permute', [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const i = normAxis(a, x.ndim), j = normAxis(b, x.ndim);
  [p[i], p[j]] = [p[j], p[i]];
  return permute(x, p);
}

/** x[..., start:end, ...] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  requireF32('slice', x);
  const a = normAxis(axis, x.ndim);
  if (!(0 <= start && start <= end && end <= x.shape[a])) {
    throw new RangeError(`slice: [${start}, ${end}) is outside axis ${a} of size ${x.shape[a]} (shape ${fmt(x.shape)})`);
  }
  const outShape = x.shape.map((d, i) => (i === a ? end - start : d));
  const out = empty(outShape);
  const xs = stridesOf(x.shape);
  const offset = start * xs[a];
  kernel('stridedCopy')(x.f32, offset, Int32Array.from(xs), out.f32, 0,
    Int32Array.from(stridesOf(outShape)), Int32Array.from(outShape), false);
  return record(out, 'slice', [x], (g) => {
    const gx = zeros(x.shape);  // only the slice is written
    kernel('stridedCopy')(g.f32, 0, Int32Array.from(stridesOf(outShape)), gx.f32, offset,
      Int32Array.from(xs), Int32Array.from(outShape), false);
    return [gx];
  });
}

/** Joins tensors along `axis` (all other axes must agree). */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new RangeError('concat: no tensors');
  requireF32('concat', ...xs);
  const a = normAxis(axis, xs[0].ndim);
  for (const t of xs) {
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new RangeError(`concat: shapes ${xs.map((t) => fmt(t.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const outShape = xs[0].shape.map((d, i) => (i === a ? xs.reduce((s, t) => s + t.shape[a], 0) : d));
  const out = empty(outShape);
  const os = Int32Array.from(stridesOf(outShape));
  const offsets: number[] = [];
  let at = 0;
  for (const t of xs) {
    offsets.push(at * os[a]);
    kernel('stridedCopy')(t.f32, 0, Int32Array.from(stridesOf(t.shape)), out.f32, at * os[a], os,
      Int32Array.from(t.shape), false);
    at += t.shape[a];
  }
  return record(out, 'concat', xs, (g) =>
    xs.map((t, i) => {
      if (!t.requiresGrad) return null;
      const gt = empty(t.shape);
      kernel('stridedCopy')(g.f32, offsets[i], os, gt.f32, 0, Int32Array.from(stridesOf(t.shape)),
        Int32Array.from(t.shape), false);
      return gt;
    }),
  );
}

/** index_select: rows idx of x along `axis`; out.shape = x.shape with axis → idx.shape. */
export function gather(x: Tensor, idx: Tensor, axis = 0): Tensor {
  if (x.dtype !== 'bf16' || x.requiresGrad) requireF32('gather', x); // bf16: a frozen table (tensor/bf16.ts)
  if (idx.dtype !== 'i32') throw new TypeError(`gather: indices must be int32, got ${idx.dtype}`);
  const a = normAxis(axis, x.ndim);
  let outer = 1, inner = 1;
  for (let i = 0; i < a; i++) outer *= x.shape[i];
  for (let i = a + 1; i < x.ndim; i++) inner *= x.shape[i];
  const n = x.shape[a];
  const outShape = [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)];
  const out = empty(outShape);
  if (x.dtype === 'bf16') {
    gatherBf16(x.bf16, idx.i32, out.f32, outer, n, inner);
    return record(out, 'gather', [x], () => [null]); // no gradient: nothing records
  }
  kernel('gather')(x.f32, idx.i32, out.f32, outer, n, inner);
  return record(out, 'gather', [x], (g) => {
    const gx = zeros(x.shape);  // scatterAdd accumulates
    kernel('scatterAdd')(g.f32, idx.i32, gx.f32, outer, n, inner);
    return [gx];
  });
}

/** Embedding lookup: weight (V, C), ids (...) int32 → (..., C). */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.ndim !== 2) throw new RangeError(`embedding: weight must be (V, C), got ${fmt(weight.shape)}`);
  return gather(weight, ids, 0);
}
