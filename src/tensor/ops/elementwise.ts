// Elementwise primitives: broadcasting binary ops and unary functions, each with its backward.
import { Tensor, type Shape } from '../tensor.js';
import { record } from '../autograd.js';
import { kernel } from '../registry.js';
import { BinOp, UnOp, type BinOpCode, type UnOpCode } from '../kernels.js';
import { broadcastShapes, broadcastStrides, empty, requireF32, sumTo } from './util.js';

function binary(name: string, code: BinOpCode, a: Tensor, b: Tensor): Tensor {
  requireF32(name, a, b);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = empty(shape);
  kernel('binary')(code, a.f32, b.f32, out.f32, Int32Array.from(shape),
    broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
  return out;
}

/** a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = binary('add', BinOp.add, a, b);
  return record(out, 'add', [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(g, b.shape) : null,
  ]);
}

/** a − b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binary('sub', BinOp.sub, a, b);
  return record(out, 'sub', [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(scale(g, -1), b.shape) : null,
  ]);
}

/** a ⊙ b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binary('mul', BinOp.mul, a, b);
  return record(out, 'mul', [a, b], (g) => [
    a.requiresGrad ? sumTo(binary('mul', BinOp.mul, g, b), a.shape) : null,
    b.requiresGrad ? sumTo(binary('mul', BinOp.mul, g, a), b.shape) : null,
  ]);
}

/** a / b (broadcasting). d/db = −a/b² = −out/b. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binary('div', BinOp.div, a, b);
  return record(out, 'div', [a, b], (g) => [
    a.requiresGrad ? sumTo(binary('div', BinOp.div, g, b), a.shape) : null,
    b.requiresGrad
      ? sumTo(scale(binary('div', BinOp.div, binary('mul', BinOp.mul, g, out), b), -1), b.shape)
      : null,
  ]);
}

/** alpha·x + beta (scalars). */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  requireF32('affine', x);
  const out = empty(x.shape);
  kernel('affine')(x.f32, out.f32, alpha, beta);
  return record(out, 'affine', [x], (g) => [alpha === 1 ? g : affine(g, alpha, 0)]);
}

export function scale(x: Tensor, alpha: number): Tensor {
  return affine(x, alpha, 0);
}

export function addScalar(x: Tensor, beta: number): Tensor {
  return affine(x, 1, beta);
}

function unary(name: string, code: UnOpCode, x: Tensor): Tensor {
  requireF32(name, x);
  const out = empty(x.shape);
  kernel('unary')(code, x.f32, out.f32);
  return record(out, name, [x], (g) => {
    const gx = empty(x.shape);
    kernel('unaryBackward')(code, x.f32, out.f32, g.f32, gx.f32);
    return [gx];
  });
}

/** f(g) ⊙ u for same-shaped g, u: a gated MLP's activation in one pass, f(g) recomputed in
 *  backward rather than kept (the same bits as unary then mul). */
function gatedUnary(name: string, code: UnOpCode, g: Tensor, u: Tensor): Tensor {
  requireF32(name, g, u);
  if (g.shape.length !== u.shape.length || g.shape.some((d, i) => d !== u.shape[i])) {
    throw new Error(`${name}: gate ${JSON.stringify(g.shape)} and up ${JSON.stringify(u.shape)} differ in shape`);
  }
  const out = empty(g.shape);
  kernel('gatedUnary')(code, g.f32, u.f32, out.f32);
  return record(out, name, [g, u], (gy) => {
    const gg = empty(g.shape), gu = empty(u.shape);
    kernel('gatedUnaryBackward')(code, g.f32, u.f32, gy.f32, gg.f32, gu.f32);
    return [g.requiresGrad ? gg : null, u.requiresGrad ? gu : null];
  });
}

/** SwiGLU: silu(gate) ⊙ up. */
export const siluGate = (gate: Tensor, up: Tensor): Tensor => gatedUnary('siluGate', UnOp.silu, gate, up);

export const exp = (x: Tensor): Tensor => unary('exp', UnOp.exp, x);
export const log = (x: Tensor): Tensor => unary('log', UnOp.log, x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', UnOp.sqrt, x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', UnOp.rsqrt, x);
export const tanh = (x: Tensor): Tensor => unary('tanh', UnOp.tanh, x);
/** GELU, erf form (BERT's `gelu`). */
export const gelu = (x: Tensor): Tensor => unary('gelu', UnOp.gelu, x);
/** GELU, tanh approximation (`gelu_new` / `gelu_pytorch_tanh`). */
export const geluTanh = (x: Tensor): Tensor => unary('geluTanh', UnOp.geluTanh, x);
export const silu = (x: Tensor): Tensor => unary('silu', UnOp.silu, x);
export const neg = (x: Tensor): Tensor => unary('neg', UnOp.neg, x);
export const abs = (x: Tensor): Tensor => unary('abs', UnOp.abs, x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', UnOp.sigmoid, x);
export const relu = (x: Tensor): Tensor => unary('relu', UnOp.relu, x);
export const square = (x: Tensor): Tensor => unary('square', UnOp.square, x);

/** Shape after broadcasting, exposed for callers that pre-check. */
export function broadcastShape(a: Shape, b: Shape): number[] {
  return broadcastShapes('broadcast', a, b);
}
