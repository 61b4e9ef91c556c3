// Reference kernels, family 'gemm': plain loops that define the semantics of
// src/tensor/kernels.ts. Clarity over speed; the native backend is tested against these.
import type { Kernels } from '../../tensor/kernels.js';
import { bf16ToF32Array } from '../../io/half.js';

function checkLength(what: string, have: number, need: number): void {
  if (have < need) {
    throw new RangeError(`matmul: ${what} has ${have} elements, needs at least ${need}`);
  }
}

function checkSize(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new RangeError(`matmul: ${what} must be a non-negative integer, got ${v}`);
  }
}

/** Batched C_i = op(A_i)·op(B_i) + beta·C_i (see Kernels.matmul). The dot products are summed
 *  in float64 and rounded once; beta = 0 overwrites C without reading it (NaN garbage in C does
 *  not leak), any other beta scales the old C; a bias (beta 0 only) takes the old C's place. */
function matmul(
  a: Float32Array, b: Float32Array | Uint16Array, c: Float32Array, batch: number, m: number, k: number,
  n: number, transA: boolean, transB: boolean, strideA: number, strideB: number, beta: number,
  bias?: Float32Array | null,
): void {
  checkSize('batch', batch);
  checkSize('m', m);
  checkSize('k', k);
  checkSize('n', n);
  checkSize('strideA', strideA);
  checkSize('strideB', strideB);
  if (bias != null) {
    if (beta !== 0) throw new RangeError(`matmul: a bias needs beta 0, got beta ${beta}`);
    if (bias.length !== n) throw new RangeError(`matmul: bias has ${bias.length} elements, needs ${n}`);
  }
  if (batch === 0 || m === 0 || n === 0) return;
  checkLength('c', c.length, batch * m * n);
  if (k > 0) {
    checkLength('a', a.length, (batch - 1) * strideA + m * k);
    checkLength('b', b.length, (batch - 1) * strideB + k * n);
  }
  // bf16 bits: the float32 values with those high 16 bits.
  if (b instanceof Uint16Array) b = bf16ToF32Array(b);
  // op(A)(i, p) = a[offA + i·rsA + p·csA]; A is stored (m,k), or (k,m) when transposed.
  const rsA = transA ? 1 : k, csA = transA ? m : 1;
  // op(B)(p, j) = b[offB + p·rsB + j·csB]; B is stored (k,n), or (n,k) when transposed.
  const rsB = transB ? 1 : n, csB = transB ? k : 1;
  for (let t = 0; t < batch; t++) {
    const offA = t * strideA, offB = t * strideB, offC = t * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[offA + i * rsA + p * csA] * b[offB + p * rsB + j * csB];
        const ci = offC + i * n + j;
        c[ci] = bias != null ? s + bias[j] : beta === 0 ? s : s + beta * c[ci];
      }
    }
  }
}

// One float32 ↔ uint32 view for bf16Round's bit manipulation.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x (a float32 value) rounded to bf16 and widened back: VCVTNEPS2BF16's conversion (Intel SDM
 *  vol. 2), which the native packer (native/gemm_bf16.cc bf16_bits) implements too: zero and
 *  float32-subnormal inputs give a zero of the same sign; NaN stays NaN; otherwise round to
 *  nearest even on the top 16 bits (8 significant bits), values beyond bf16's largest finite
 *  (and ±Inf) giving ±Inf. */
export function bf16Round(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0) u32[0] = bits & 0x80000000;
  else if ((bits & 0x7fffffff) > 0x7f800000) return NaN;
  else u32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) << 16;
  return f32[0];
}

/** matmul on bf16-rounded copies of a and b (see Kernels.matmulBf16): the products of bf16
 *  values are exact, the sums float64 rounded once, so this is the exact product of the rounded
 *  inputs up to one float32 rounding. */
function matmulBf16(
  a: Float32Array, b: Float32Array, c: Float32Array, batch: number, m: number, k: number,
  n: number, transA: boolean, transB: boolean, strideA: number, strideB: number, beta: number,
  bias?: Float32Array | null,
): void {
  matmul(a.map(bf16Round), b.map(bf16Round), c, batch, m, k, n, transA, transB, strideA, strideB, beta, bias);
}

/** x rounded to the nearest integer, ties to even (VCVTPS2DQ under the default MXCSR). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** matmulQ8's code of a float32 value x on the grid of step s (inv = fl(1/s), 0 when s = 0). */
export function q8Code(x: number, inv: number, lim: number): number {
  let t = Math.fround(x * inv);
  t = t > -lim ? t : -lim; // NaN → −lim, as MAXPS
  t = t < lim ? t : lim;
  return roundHalfEven(t);
}

/** The argument checks matmulQ8 and matmulOnGrid share, with the native Args' messages: sizes,
 *  the steps sb (one, or one per `perName` = per), the arrays' lengths and an optional bias. */
function checkGridGemm(
  fn: string, m: number, k: number, n: number, sb: Float32Array, per: number, perName: string,
  arrays: readonly (readonly [string, Float32Array, number])[], bias?: Float32Array | null,
): void {
  for (const [what, v] of [['m', m], ['k', k], ['n', n]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${fn}: ${what} must be a non-negative integer, got ${v}`);
  }
  if (sb.length !== 1 && sb.length !== per) throw new RangeError(`${fn}: sb has length ${sb.length}, expected 1 or ${perName} = ${per}`);
  sb.forEach((s, j) => {
    if (!(Number.isFinite(s) && s >= 0)) throw new RangeError(`${fn}: sb[${j}] must be a finite scale ≥ 0, got ${s}`);
  });
  for (const [what, arr, len] of arrays) {
    if (arr.length !== len) throw new RangeError(`${fn}: ${what} has length ${arr.length}, expected ${len}`);
  }
  if (bias != null && bias.length !== n) throw new RangeError(`${fn}: bias has length ${bias.length}, expected ${n}`);
}

/** See Kernels.matmulQ8: codes by q8Code, the integer sums exact (|Σ| < 2^31 ≤ 2^53), then the
 *  two (three with a bias) float32 roundings. */
function matmulQ8(
  a: Float32Array, sa: number, b: Float32Array, sb: Float32Array, c: Float32Array, m: number,
  k: number, n: number, bias?: Float32Array | null,
): boolean {
  const fn = 'matmulQ8';
  if (k > 131072 && Number.isInteger(k)) throw new RangeError(`${fn}: k ${k} exceeds 131072 (the int32 sums could overflow): use matmul`);
  if (!(Number.isFinite(sa) && sa >= 0)) throw new RangeError(`${fn}: sa must be a finite scale ≥ 0, got ${sa}`);
  checkGridGemm(fn, m, k, n, sb, n, 'n', [['a', a, m * k], ['b', b, n * k], ['c', c, m * n]], bias);
  if (m === 0 || n === 0) return true;
  const sa32 = Math.fround(sa);
  const inv = (s: number): number => (s > 0 ? Math.fround(1 / s) : 0);
  const qa = new Int32Array(m * k), qb = new Int32Array(n * k);
  // The codes, and whether every value is its code times the scale (NaN never is).
  let on = true;
  for (let i = 0; i < m * k; i++) {
    qa[i] = q8Code(a[i], inv(sa32), 127);
    on &&= Math.fround(qa[i] * sa32) === a[i];
  }
  for (let j = 0; j < n; j++) {
    const s = sb[sb.length === 1 ? 0 : j], ij = inv(s);
    for (let p = 0; p < k; p++) {
      qb[j * k + p] = q8Code(b[j * k + p], ij, 64);
      on &&= Math.fround(qb[j * k + p] * s) === b[j * k + p];
    }
  }
  if (!on) return false;
  for (let j = 0; j < n; j++) {
    const scale = Math.fround(sa32 * sb[sb.length === 1 ? 0 : j]);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += qa[i * k + p] * qb[j * k + p];
      const v = Math.fround(scale * Math.fround(s));
      c[i * n + j] = bias != null ? Math.fround(v + bias[j]) : v;
    }
  }
  return true;
}

/** See Kernels.matmulQ8Grad: the rows' steps from the largest |fl(a·sb)|, codes by q8Code, the
 *  integer sums exact, then the two float32 roundings. */
function matmulQ8Grad(a: Float32Array, b: Float32Array, sb: Float32Array, c: Float32Array, m: number, k: number, n: number): boolean {
  const fn = 'matmulQ8Grad';
  if (k > 131072 && Number.isInteger(k)) throw new RangeError(`${fn}: k ${k} exceeds 131072 (the int32 sums could overflow): use matmul`);
  checkGridGemm(fn, m, k, n, sb, k, 'k', [['a', a, m * k], ['b', b, k * n], ['c', c, m * n]]);
  if (m === 0 || n === 0) return true;
  const step = (p: number): number => sb[sb.length === 1 ? 0 : p];
  const qb = new Int32Array(k * n);
  for (let p = 0; p < k; p++) {
    const s = step(p), inv = s > 0 ? Math.fround(1 / s) : 0;
    for (let j = 0; j < n; j++) {
      qb[p * n + j] = q8Code(b[p * n + j], inv, 64);
      if (Math.fround(qb[p * n + j] * s) !== b[p * n + j]) return false;
    }
  }
  const row = new Float32Array(k), qa = new Int32Array(k), sum = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    let r = 0;
    for (let p = 0; p < k; p++) {
      row[p] = Math.fround(a[i * k + p] * step(p));
      if (!Number.isFinite(row[p])) return false;
      r = Math.max(r, Math.abs(row[p]));
    }
    const tiny = !(r >= 2 ** -100);
    const sa = tiny ? 0 : Math.fround(r / 127), inv = tiny ? 0 : Math.fround(127 / r);
    for (let p = 0; p < k; p++) qa[p] = q8Code(row[p], inv, 127);
    sum.fill(0);
    for (let p = 0; p < k; p++) {
      if (qa[p] === 0) continue;
      for (let j = 0; j < n; j++) sum[j] += qa[p] * qb[p * n + j];
    }
    for (let j = 0; j < n; j++) c[i * n + j] = Math.fround(Math.fround(sum[j]) * sa);
  }
  return true;
}

/** See Kernels.matmulOnGrid: the codes by q8Code (limit 256), then per element the float32 sum in
 *  order p = 0..k−1 of fl(a_ip·s_p)·q_pj (without transB) or of a_ip·q_jp, scaled by s_j after
 *  (with it); every product exact (a float32 times |q| ≤ 256: at most 24 + 9 significant bits,
 *  under float64's 53); the bias last. */
function matmulOnGrid(
  a: Float32Array, b: Float32Array, sb: Float32Array, c: Float32Array, m: number, k: number, n: number,
  transA: boolean, transB: boolean, bias?: Float32Array | null,
): boolean {
  checkGridGemm('matmulOnGrid', m, k, n, sb, transB ? n : k, transB ? 'n' : 'k', [['a', a, m * k], ['b', b, k * n], ['c', c, m * n]], bias);
  if (m === 0 || n === 0) return true;
  const step = (r: number): number => sb[sb.length === 1 ? 0 : r];
  // q (k, n): the code of op(B)(p, j), read from stored row p (or j with transB).
  const q = new Float32Array(k * n);
  for (let p = 0; p < k; p++) {
    for (let j = 0; j < n; j++) {
      const r = transB ? j : p, x = b[transB ? j * k + p : p * n + j], s = step(r);
      q[p * n + j] = q8Code(x, s > 0 ? Math.fround(1 / s) : 0, 256);
      if (Math.fround(q[p * n + j] * s) !== x) return false;
    }
  }
  const ap = new Float32Array(k);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = transA ? a[p * m + i] : a[i * k + p];
      ap[p] = transB ? x : Math.fround(x * step(p));
    }
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s = Math.fround(s + ap[p] * q[p * n + j]);
      if (transB) s = Math.fround(s * step(j));
      c[i * n + j] = bias != null ? Math.fround(s + bias[j]) : s;
    }
  }
  return true;
}

export const gemmKernels: Partial<Kernels> = { matmul, matmulBf16, matmulQ8, matmulQ8Grad, matmulOnGrid };
