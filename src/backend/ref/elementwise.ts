// Reference kernels, family 'elementwise': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
//
// Float rules (so that the native float32 arithmetic can match bit for bit where it is exact):
// - binary, affine, axpy, stridedCopy, gather, scatterAdd and dropout round after every float
//   operation exactly like float32 code does (an f64 +,−,×,÷ of two f32 values rounded once to
//   f32 is the correctly rounded f32 result). affine/axpy round alpha and beta to f32 first.
// - unary/unaryBackward evaluate the scalar function in f64 and round once (the native SIMD
//   approximations are within ~1e-6 relative of this).
// - reduce sum accumulates in f64.
import {
  BinOp, ReduceOp, UnOp, type BinOpCode, type Kernels, type ReduceOpCode, type UnOpCode,
} from '../../tensor/kernels.js';
import { hash32 } from '../../tensor/rng.js';

type F = Float32Array;
type I = Int32Array;

// ---- scalar math in f64 ------------------------------------------------------------------------

const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_TANH_K = Math.sqrt(2 / Math.PI);
const GELU_TANH_C = 0.044715;

/** Complementary error function, |relative error| ~1e-15 (checked against known values and a
 *  quadrature in the tests). z < 2: the all-positive series
 *  erf z = (2/√π) e^{−z²} Σ 2ⁿ z^{2n+1} / (1·3···(2n+1)) (Abramowitz & Stegun 7.1.6);
 *  z ≥ 2: the continued fraction erfc z = e^{−z²}/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …))))
 *  (A&S 7.1.14), evaluated backwards from a fixed depth. */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc(-z);
  if (z < 2) {
    const z2 = z * z;
    let term = z, sum = z;
    for (let n = 0; term > sum * 1e-17; n++) {
      term *= (2 * z2) / (2 * n + 3);
      sum += term;
    }
    return 1 - 2 * INV_SQRT_PI * Math.exp(-z2) * sum;
  }
  if (z > 27) return 0; // below the smallest f64
  let t = z;
  for (let k = 80; k >= 1; k--) t = z + k / 2 / t;
  return (Math.exp(-z * z) * INV_SQRT_PI) / t;
}

/** Standard normal CDF Φ(x) = ½ erfc(−x/√2), accurate in both tails. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** σ(x) = 1/(1+e^{−x}), evaluated without overflow or cancellation for either sign. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** y = f(x) in f64 for every UnOp code. */
export function unaryF64(op: UnOpCode, x: number): number {
  switch (op) {
    case UnOp.exp: return Math.exp(x);
    case UnOp.log: return Math.log(x);
    case UnOp.sqrt: return Math.sqrt(x);
    case UnOp.rsqrt: return 1 / Math.sqrt(x);
    case UnOp.tanh: return Math.tanh(x);
    case UnOp.gelu: return x * normalCdf(x);
    // ½x(1 + tanh u) = x·σ(2u): the same value without the cancellation of 1 + tanh u.
    case UnOp.geluTanh: return x * sigmoid(2 * GELU_TANH_K * (x + GELU_TANH_C * x * x * x));
    case UnOp.silu: return x * sigmoid(x);
    case UnOp.neg: return -x;
    case UnOp.abs: return Math.abs(x);
    case UnOp.sigmoid: return sigmoid(x);
    case UnOp.relu: return x > 0 ? x : Number.isNaN(x) ? x : 0; // NaN propagates
    case UnOp.square: return x * x;
  }
  throw new RangeError(`unary: unknown op ${op}`);
}

/** f'(x) in f64, from x or from y = f(x) as the contract lists (y is the stored f32 output). */
export function unaryGradF64(op: UnOpCode, x: number, y: number): number {
  switch (op) {
    case UnOp.exp: return y;
    case UnOp.log: return 1 / x;
    case UnOp.sqrt: return 0.5 / y;
    case UnOp.rsqrt: return -0.5 * y * y * y;
    case UnOp.tanh: return 1 - y * y;
    case UnOp.gelu: return normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case UnOp.geluTanh: {
      // d/dx x·σ(2u) = s + 2x·s(1−s)·u', s = σ(2u), u' = k(1 + 3c x²)
      const s = sigmoid(2 * GELU_TANH_K * (x + GELU_TANH_C * x * x * x));
      const du = GELU_TANH_K * (1 + 3 * GELU_TANH_C * x * x);
      return s + 2 * x * s * (1 - s) * du;
    }
    case UnOp.silu: {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case UnOp.neg: return -1;
    case UnOp.abs: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case UnOp.sigmoid: return y * (1 - y);
    case UnOp.relu: return x > 0 ? 1 : 0;
    case UnOp.square: return 2 * x;
  }
  throw new RangeError(`unaryBackward: unknown op ${op}`);
}

// ---- validation ---------------------------------------------------------------------------------

function need(ok: boolean, msg: string): void {
  if (!ok) throw new RangeError(msg);
}

function checkSize(name: string, what: string, len: number, want: number): void {
  need(len === want, `${name}: ${what} has length ${len}, expected ${want}`);
}

function checkOuterNInner(name: string, outer: number, n: number, inner: number): void {
  for (const [k, v] of [['outer', outer], ['n', n], ['inner', inner]] as const) {
    need(Number.isInteger(v) && v >= 0, `${name}: ${k} must be a non-negative integer, got ${v}`);
  }
}

/** Number of elements of `shape`, checking that the stride arrays match its rank. */
function shapeSize(name: string, shape: I, ...strides: I[]): number {
  let total = 1;
  for (const s of strides) {
    need(s.length === shape.length,
      `${name}: strides have rank ${s.length}, shape has rank ${shape.length}`);
  }
  for (let d = 0; d < shape.length; d++) {
    need(shape[d] >= 0, `${name}: negative dimension ${shape[d]}`);
    total *= shape[d];
  }
  return total;
}

/** Checks that base + idx·strides stays inside [0, len) for every idx of `shape` (total > 0). */
function checkSpan(name: string, what: string, len: number, base: number, shape: I,
  strides: I): void {
  let lo = base, hi = base;
  for (let d = 0; d < shape.length; d++) {
    const ext = strides[d] * (shape[d] - 1);
    if (ext < 0) lo += ext; else hi += ext;
  }
  need(lo >= 0 && hi < len, `${name}: ${what} offsets [${lo}, ${hi}] fall outside its length ${len}`);
}

/** Visits the multi-index of `shape` in row-major order, passing base + idx·strides for each of
 *  the two stride sets. */
function forEachIndex(shape: I, s1: I, base1: number, s2: I, base2: number,
  fn: (o1: number, o2: number) => void): void {
  const r = shape.length;
  let total = 1;
  for (let d = 0; d < r; d++) total *= shape[d];
  const idx = new Array<number>(r).fill(0);
  let o1 = base1, o2 = base2;
  for (let k = 0; k < total; k++) {
    fn(o1, o2);
    for (let d = r - 1; d >= 0; d--) {
      o1 += s1[d];
      o2 += s2[d];
      if (++idx[d] < shape[d]) break;
      o1 -= s1[d] * shape[d];
      o2 -= s2[d] * shape[d];
      idx[d] = 0;
    }
  }
}

// ---- kernels ------------------------------------------------------------------------------------

const binFns: Record<BinOpCode, (a: number, b: number) => number> = {
  [BinOp.add]: (a, b) => a + b,
  [BinOp.sub]: (a, b) => a - b,
  [BinOp.mul]: (a, b) => a * b,
  [BinOp.div]: (a, b) => a / b,
};

function binary(op: BinOpCode, a: F, b: F, out: F, shape: I, aStrides: I, bStrides: I): void {
  const f = binFns[op];
  need(f !== undefined, `binary: unknown op ${op}`);
  const total = shapeSize('binary', shape, aStrides, bStrides);
  checkSize('binary', 'out', out.length, total);
  if (total === 0) return;
  checkSpan('binary', 'a', a.length, 0, shape, aStrides);
  checkSpan('binary', 'b', b.length, 0, shape, bStrides);
  let k = 0;
  forEachIndex(shape, aStrides, 0, bStrides, 0, (ia, ib) => {
    out[k++] = f(a[ia], b[ib]);
  });
}

function unary(op: UnOpCode, x: F, out: F): void {
  checkSize('unary', 'out', out.length, x.length);
  unaryF64(op, 0); // rejects unknown codes before writing anything
  for (let i = 0; i < x.length; i++) out[i] = unaryF64(op, x[i]);
}

function unaryBackward(op: UnOpCode, x: F, y: F, gy: F, gx: F): void {
  for (const [k, v] of [['y', y], ['gy', gy], ['gx', gx]] as const) {
    checkSize('unaryBackward', k, v.length, x.length);
  }
  unaryGradF64(op, 1, 1);
  for (let i = 0; i < x.length; i++) gx[i] = gy[i] * unaryGradF64(op, x[i], y[i]);
}

function gatedUnary(op: UnOpCode, g: F, u: F, out: F): void {
  for (const [k, v] of [['u', u], ['out', out]] as const) checkSize('gatedUnary', k, v.length, g.length);
  unaryF64(op, 0);
  for (let i = 0; i < g.length; i++) out[i] = Math.fround(unaryF64(op, g[i])) * u[i];
}

function gatedUnaryBackward(op: UnOpCode, g: F, u: F, gy: F, gg: F, gu: F): void {
  for (const [k, v] of [['u', u], ['gy', gy], ['gg', gg], ['gu', gu]] as const) {
    checkSize('gatedUnaryBackward', k, v.length, g.length);
  }
  unaryGradF64(op, 1, 1);
  for (let i = 0; i < g.length; i++) {
    const y = Math.fround(unaryF64(op, g[i]));
    gu[i] = gy[i] * y;
    gg[i] = Math.fround(gy[i] * u[i]) * unaryGradF64(op, g[i], y);
  }
}

function affine(x: F, out: F, alpha: number, beta: number): void {
  checkSize('affine', 'out', out.length, x.length);
  const a = Math.fround(alpha), b = Math.fround(beta);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(a * x[i]) + b;
}

function axpy(alpha: number, x: F, y: F): void {
  checkSize('axpy', 'y', y.length, x.length);
  const a = Math.fround(alpha);
  for (let i = 0; i < x.length; i++) y[i] = y[i] + Math.fround(a * x[i]);
}

/** Index of the max along n at (o, c): the first NaN if there is one, else the first index
 *  attaining the max. reduce max returns x at this index. */
function argmaxAt(x: F, o: number, c: number, n: number, inner: number): number {
  const base = o * n * inner + c;
  let k = 0, m = x[base];
  for (let j = 1; j < n && m === m; j++) {
    const v = x[base + j * inner];
    if (v > m || v !== v) { m = v; k = j; }
  }
  return k;
}

function reduce(op: ReduceOpCode, x: F, out: F, outer: number, n: number, inner: number): void {
  checkOuterNInner('reduce', outer, n, inner);
  need(op === ReduceOp.sum || op === ReduceOp.max, `reduce: unknown op ${op}`);
  need(op === ReduceOp.sum || n > 0 || outer * inner === 0, 'reduce: max over an empty axis');
  checkSize('reduce', 'x', x.length, outer * n * inner);
  checkSize('reduce', 'out', out.length, outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inner; c++) {
      if (op === ReduceOp.max) {
        out[o * inner + c] = x[(o * n + argmaxAt(x, o, c, n, inner)) * inner + c];
      } else {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[(o * n + j) * inner + c];
        out[o * inner + c] = s;
      }
    }
  }
}

function reduceMaxBackward(x: F, gy: F, gx: F, outer: number, n: number, inner: number): void {
  checkOuterNInner('reduceMaxBackward', outer, n, inner);
  checkSize('reduceMaxBackward', 'x', x.length, outer * n * inner);
  checkSize('reduceMaxBackward', 'gx', gx.length, outer * n * inner);
  checkSize('reduceMaxBackward', 'gy', gy.length, outer * inner);
  gx.fill(0);
  if (n === 0) return;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inner; c++) {
      gx[(o * n + argmaxAt(x, o, c, n, inner)) * inner + c] = gy[o * inner + c];
    }
  }
}

function stridedCopy(src: F, srcOffset: number, srcStrides: I, dst: F, dstOffset: number,
  dstStrides: I, shape: I, accumulate: boolean): void {
  const total = shapeSize('stridedCopy', shape, srcStrides, dstStrides);
  if (total === 0) return;
  checkSpan('stridedCopy', 'src', src.length, srcOffset, shape, srcStrides);
  checkSpan('stridedCopy', 'dst', dst.length, dstOffset, shape, dstStrides);
  forEachIndex(shape, srcStrides, srcOffset, dstStrides, dstOffset, (is, id) => {
    dst[id] = accumulate ? dst[id] + src[is] : src[is];
  });
}

function checkIndices(name: string, idx: I, n: number): void {
  for (let j = 0; j < idx.length; j++) {
    const v = idx[j];
    need(v >= 0 && v < n, `${name}: index ${v} at position ${j} is out of range [0, ${n})`);
  }
}

function gather(x: F, idx: I, out: F, outer: number, n: number, inner: number): void {
  checkOuterNInner('gather', outer, n, inner);
  const m = idx.length;
  checkSize('gather', 'x', x.length, outer * n * inner);
  checkSize('gather', 'out', out.length, outer * m * inner);
  checkIndices('gather', idx, n);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const from = (o * n + idx[j]) * inner;
      out.set(x.subarray(from, from + inner), (o * m + j) * inner);
    }
  }
}

function scatterAdd(gy: F, idx: I, gx: F, outer: number, n: number, inner: number): void {
  checkOuterNInner('scatterAdd', outer, n, inner);
  const m = idx.length;
  checkSize('scatterAdd', 'gy', gy.length, outer * m * inner);
  checkSize('scatterAdd', 'gx', gx.length, outer * n * inner);
  checkIndices('scatterAdd', idx, n);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const to = (o * n + idx[j]) * inner, from = (o * m + j) * inner;
      for (let c = 0; c < inner; c++) gx[to + c] += gy[from + c];
    }
  }
}

/** The inverted-dropout scale, rounded to f32 the same way on every backend. */
export function dropoutScale(p: number): number {
  return Math.fround(1 / (1 - p));
}

function dropout(x: F, out: F, mask: F, p: number, seed: number): void {
  checkSize('dropout', 'out', out.length, x.length);
  checkSize('dropout', 'mask', mask.length, x.length);
  need(p >= 0 && p < 1, `dropout: p must be in [0, 1), got ${p}`);
  const scale = dropoutScale(p);
  for (let i = 0; i < x.length; i++) {
    const m = hash32(seed, i) / 4294967296 < p ? 0 : scale;
    mask[i] = m;
    out[i] = x[i] * m;
  }
}

function countNonFinite(x: F): number {
  let count = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) count++;
  return count;
}

// Detaching by transfer: the memory goes when the collector frees the (unreachable) copy; the
// addon frees it at once.
function release(x: F): void {
  if (x.buffer.byteLength > 0) structuredClone(x.buffer, { transfer: [x.buffer] });
}

export const elementwiseKernels: Partial<Kernels> = {
  binary, unary, unaryBackward, gatedUnary, gatedUnaryBackward, affine, axpy, reduce, reduceMaxBackward, stridedCopy, gather,
  scatterAdd, dropout, countNonFinite, release,
};
