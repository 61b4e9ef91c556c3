// Helpers shared by the ops: output allocation, shape checks with readable errors, and the
// broadcasting rules (NumPy's: align trailing axes; size-1 axes stretch).
import { Tensor, shapeSize, stridesOf, uninitF32, zeros, type Shape } from '../tensor.js';
import { kernel } from '../registry.js';

/** An output tensor with unspecified contents: only for buffers a kernel fully overwrites (the
 *  contract's default); a kernel that accumulates (+=) gets `zeros`. */
export function empty(shape: Shape): Tensor {
  return new Tensor(uninitF32(shapeSize(shape)), shape);
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function requireF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== 'f32') throw new TypeError(`${op}: expected a float32 tensor, got ${t.dtype} of shape ${fmt(t.shape)}`);
  }
}

export function requireShape(op: string, what: string, t: Tensor, shape: Shape): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`${op}: ${what} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
  }
}

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast (axis ${i - n}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides to read a tensor of `shape` as if it had `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: Shape, outShape: Shape): Int32Array {
  const s = stridesOf(shape);
  const out = new Int32Array(outShape.length);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : s[i];
  return out;
}

/** Sums a gradient of shape `g.shape` down to `shape` (the backward of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const out = zeros(shape);  // stridedCopy accumulates
  kernel('stridedCopy')(
    g.f32, 0, Int32Array.from(stridesOf(g.shape)),
    out.f32, 0, broadcastStrides(shape, g.shape),
    Int32Array.from(g.shape), true,
  );
  return out;
}
