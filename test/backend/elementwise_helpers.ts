// Shared helpers of the elementwise-family tests (test/backend/elementwise*.test.ts).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Kernels } from '../../src/tensor/kernels.js';
import { elementwiseKernels } from '../../src/backend/ref/elementwise.js';

export type NativeKernels = Kernels & {
  getThreads(): number;
  setThreads(n: number): void;
  isa(): string;
};

export const native = createRequire(import.meta.url)('../../build/Release/kdqat.node') as NativeKernels;
export const ref = elementwiseKernels as Kernels;

// Async for the callers' convenience; the pool is usable as soon as setThreads returns
// (test/backend/pool.test.ts checks that).
export async function setThreads(n: number): Promise<void> {
  native.setThreads(n);
}
export async function startPool(): Promise<void> {
  native.getThreads();
}

/** Runs fn with 1 and with 2 native threads and returns both results. */
export async function withThreads<T>(fn: () => T): Promise<[T, T]> {
  const before = native.getThreads();
  await setThreads(1);
  const one = fn();
  await setThreads(2);
  const two = fn();
  await setThreads(before);
  return [one, two];
}

/** Bitwise equality of float32 arrays, any NaN matching any NaN. */
export function expectBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] === ub[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]))) continue;
    assert.fail(`${what}: index ${i}: got ${a[i]}, expected ${b[i]} (bitwise)`);
  }
}

/** |a−b| ≤ rtol·scale_i + atol with scale_i = max(|b_i|, extra_i); equal values (±Inf, ±0)
 *  and NaN pairs pass. */
export function expectRel(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, what: string,
  atol = 0, extra?: ArrayLike<number>): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const scale = Math.max(Math.abs(y), extra ? Math.abs(extra[i]) : 0);
    if (!(Math.abs(x - y) <= rtol * scale + atol)) {
      assert.fail(`${what}: index ${i}: got ${x}, expected ${y} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Asserts that both backends throw `type` (with a message matching `msg`, if given). */
export function expectBothThrow(call: (k: Kernels) => unknown, msg?: RegExp,
  type: ErrorConstructor = RangeError): void {
  for (const [name, k] of [['ref', ref], ['native', native]] as const) {
    assert.throws(() => call(k), (e: unknown) => {
      assert.ok(e instanceof type, `${name}: expected ${type.name}, got ${String(e)}`);
      if (msg) assert.match((e as Error).message, msg, name);
      return true;
    });
  }
}

export const f32 = (xs: number[]) => new Float32Array(xs);
export const i32 = (xs: number[]) => new Int32Array(xs);

/** Row-major contiguous strides of shape. */
export function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Multi-index of flat row-major index k in shape (independent of the kernels' iteration). */
export function unravel(k: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = k % shape[d];
    k = Math.floor(k / shape[d]);
  }
  return idx;
}

export function dot(idx: number[], strides: ArrayLike<number>, base = 0): number {
  let o = base;
  for (let d = 0; d < idx.length; d++) o += idx[d] * strides[d];
  return o;
}
