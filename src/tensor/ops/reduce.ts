// Reductions over axes: sum, mean, max. Multi-axis reductions apply one axis at a time.
import { Tensor, normAxis, zeros, type Shape } from '../tensor.js';
import { record } from '../autograd.js';
import { kernel } from '../registry.js';
import { ReduceOp } from '../kernels.js';
import { empty, requireF32 } from './util.js';
import { reshape } from './shape.js';

function axesOf(x: Tensor, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  const norm = list.map((a) => normAxis(a, x.ndim));
  return [...new Set(norm)].sort((a, b) => a - b);
}

function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function dropAxes(shape: Shape, axes: number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** (outer, n, inner) split of `shape` around `axis`. */
function split(shape: Shape, axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape[axis], inner];
}

/** Sum over one axis, keeping it as size 1 (no autograd: building block). */
function sumAxisRaw(x: Tensor, axis: number): Tensor {
  const [outer, n, inner] = split(x.shape, axis);
  const shape = x.shape.map((d, i) => (i === axis ? 1 : d));
  const out = empty(shape);
  kernel('reduce')(ReduceOp.sum, x.f32, out.f32, outer, n, inner);
  return out;
}

/** Σ over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  requireF32('sum', x);
  const ax = axesOf(x, axes);
  let y = x.detach();
  for (const a of ax) y = sumAxisRaw(y, a);
  const kept = keptShape(x.shape, ax);
  const outShape = keepDims ? kept : dropAxes(x.shape, ax);
  const out = new Tensor(y.f32, outShape);
  return record(out, 'sum', [x], (g) => [broadcastTo(g, kept, x.shape)]);
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = axesOf(x, axes);
  let count = 1;
  for (const a of ax) count *= x.shape[a];
  const s = sum(x, ax, keepDims);
  const out = empty(s.shape);
  kernel('affine')(s.f32, out.f32, 1 / count, 0);
  return record(out, 'mean', [s], (g) => {
    const gs = empty(g.shape);
    kernel('affine')(g.f32, gs.f32, 1 / count, 0);
    return [gs];
  });
}

/** Max over one axis. The gradient goes to the first maximal element. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  requireF32('max', x);
  const a = normAxis(axis, x.ndim);
  const [outer, n, inner] = split(x.shape, a);
  const kept = keptShape(x.shape, [a]);
  const out = empty(keepDims ? kept : dropAxes(x.shape, [a]));
  kernel('reduce')(ReduceOp.max, x.f32, out.f32, outer, n, inner);
  return record(out, 'max', [x], (g) => {
    const gx = empty(x.shape);
    kernel('reduceMaxBackward')(x.f32, g.f32, gx.f32, outer, n, inner);
    return [gx];
  });
}

/** Broadcasts g (of shape `kept`, size-1 on reduced axes) back to `shape`. */
function broadcastTo(g: Tensor, kept: Shape, shape: Shape): Tensor {
  const gk = reshape(g.detach(), kept);
  const zero = zeros([1]);
  const out = empty(shape);
  // out = gk + 0, broadcasting gk over the reduced axes.
  const strides = new Int32Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = kept[i] === 1 ? 0 : acc;
    acc *= kept[i];
  }
  kernel('binary')(0, gk.f32, zero.f32, out.f32, Int32Array.from(shape), strides, new Int32Array(shape.length));
  return out;
}
