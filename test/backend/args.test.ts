// The one argument validator of the native entry points (native/args.h): every family reports a
// bad argument as "kernel: name must be …, got …" (TypeError for a wrong kind, RangeError for a
// wrong value or length) before any kernel runs. One call per message form and family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../../src/backend/native/index.js';

type Fn = (...args: unknown[]) => unknown;
const N = nativeAddon() as unknown as Record<string, Fn>;

function throwsExactly(f: () => unknown, type: typeof TypeError | typeof RangeError, message: string): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof type, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.message, message);
    return true;
  });
}

const f32 = (n: number) => new Float32Array(n);

test('args: wrong typed-array kinds name the kernel, the argument and what was passed', () => {
  assert.ok(N, 'the native addon did not load');
  throwsExactly(() => N.rmsNorm(new Float64Array(8), f32(4), f32(8), f32(2), 2, 4, 1e-5), TypeError,
    'rmsNorm: x must be a Float32Array, got Float64Array');
  throwsExactly(() => N.binary(2, [1, 2], f32(2), f32(2), new Int32Array([2]), new Int32Array([1]), new Int32Array([1])),
    TypeError, 'binary: a must be a Float32Array, got an Array');
  throwsExactly(() => N.fakeQuant(f32(4), f32(4), f32(4), f32(1), null, null, 1, 4, 0, 4, 0), TypeError,
    'fakeQuant: codes must be an Int32Array or null, got Float32Array');
  // attention(q, k, v, out, probs, scores, B, T, H, Hkv, D, scale, causal, keyMask[, window])
  const att = (over: Record<number, unknown>) => {
    const a: unknown[] = [f32(8), f32(8), f32(8), f32(8), null, null, 1, 2, 1, 1, 4, 0.5, true, null];
    for (const [i, v] of Object.entries(over)) a[Number(i)] = v;
    return () => N.attention(...a);
  };
  throwsExactly(att({ 0: 'q' }), TypeError, 'attention: q must be a Float32Array, got a string');
  throwsExactly(att({ 4: new Int32Array(4) }), TypeError, 'attention: probs must be a Float32Array or null, got Int32Array');
  throwsExactly(att({ 13: new Uint8Array(2) }), TypeError, 'attention: keyMask must be an Int32Array or null, got Uint8Array');
  att({})();  // the baseline call is valid
});

test('args: sizes, lengths, numbers and argument counts', () => {
  throwsExactly(() => N.rmsNorm(f32(8), f32(4), f32(8), f32(2), -1, 4, 1e-5), RangeError,
    'rmsNorm: rows must be an integer in [0, 2^31), got -1');
  throwsExactly(() => N.rmsNorm(f32(8), f32(3), f32(8), f32(2), 2, 4, 1e-5), RangeError,
    'rmsNorm: w has length 3, expected 4');
  throwsExactly(() => N.rmsNorm(), TypeError, 'rmsNorm: expects 7 arguments, got 0');
  throwsExactly(() => N.adamw(f32(2), f32(2), f32(2), f32(2), '1', 0.9, 0.999, 1e-8, 0, 1, 1), TypeError,
    'adamw: lr must be a number, got a string');
  throwsExactly(() => N.klDiv(f32(4), f32(4), f32(1), 1, 4, 0), RangeError,
    'klDiv: tau must be a positive finite number, got 0');
  const att = (H: number, window: unknown) => () =>
    N.attention(f32(8), f32(8), f32(8), f32(8), null, null, 1, 2, H, 1, 4, 0.5, true, null, window);
  throwsExactly(att(0, undefined), RangeError, 'attention: H must be an integer in [1, 2^31), got 0');
  throwsExactly(att(1, -1), RangeError, 'attention: window must be a non-negative integer, got -1');
  throwsExactly(() => N.reduce(0, f32(4), f32(1), 1, 4.5, 1), RangeError,
    'reduce: n must be a non-negative integer, got 4.5');
});
