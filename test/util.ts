// Test helpers shared by every test file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng } from '../src/tensor/rng.js';

const tmpDirs: string[] = [];
process.on('exit', () => {
  if (process.env.KDQAT_KEEP_TMP !== '1') for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A new directory /tmp/kdqat-<prefix>-XXXXXX, removed with everything in it when the test process
 * exits, passed or failed (KDQAT_KEEP_TMP=1 keeps them, to look at a failure).
 */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `kdqat-${prefix}-`));
  tmpDirs.push(d);
  return d;
}

/** Asserts |a_i − b_i| ≤ atol + rtol·|b_i| for every i, naming the first offender. */
export function expectClose(
  a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = 'values',
): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) {
      assert.fail(`${what}: index ${i}: got ${x}, expected ${y} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Max |a_i − b_i| / max(1, max|b|): a single relative error figure. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

export function randomF32(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

export function randomInts(n: number, rng: Rng, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(hi);
  return a;
}
