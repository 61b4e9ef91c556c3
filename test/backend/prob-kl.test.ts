// probKl / probKlBackward (the attention-map KL kernel): native against the reference on
// softmax rows with exact zeros (masked entries), skipped rows holding NaN, tiny probabilities
// around the clamp; thread-count independence; finite differences of the op on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { nnKernels } from '../../src/backend/ref/nn.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor, probKl } from '../../src/tensor/index.js';
import { SECOND_ORDER, U32, expectWithin, gamma } from '../bounds.js';
import { gradCheck } from '../gradcheck.js';
import { BACKENDS, onBackend } from '../backends.js';

type Addon = Kernels & { getThreads(): number; setThreads(n: number): void };
const N = createRequire(import.meta.url)('../../build/Release/kdqat.node') as Addon;
const R = nnKernels as Kernels;

/** rows × n softmax rows of random logits; a causal-like triangle of exact zeros. */
function probs(rows: number, n: number, rng: Rng, spread = 3): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const vis = 1 + (r % n);
    let s = 0;
    for (let j = 0; j < vis; j++) s += out[r * n + j] = Math.exp(spread * rng.normal());
    for (let j = 0; j < vis; j++) out[r * n + j] /= s;
  }
  return out;
}

/** Bound on |native − ref| for probKl (native/nn.cc ProbKl, nn_loss.inc prob_kl_row): per
 *  nonzero p_j, a float ratio fl(max(p, fe)/max(q, fe)) (u, and u more where a clamp to
 *  fe = fl(eps) acts: 2u absolute in L), its log within LOG_REL relative (native/simd_log.inc's
 *  polynomial on Avx2/Avx512, libm's logf on Portable), the product p·L rounded (u·|p·L|):
 *  p·(2u + (LOG_REL + u)·|L|); rows, lanes and blocks are summed in double (γ^{f64},
 *  negligible: SECOND_ORDER), the result is not rounded to float. */
const LOG_REL = 1e-6;
function probKlBound(p: Float32Array, q: Float32Array, w: Float32Array, rows: number, n: number,
  eps: number): number {
  let b = 0;
  for (let r = 0; r < rows; r++) {
    if (w[r] === 0) continue;
    for (let j = r * n; j < (r + 1) * n; j++) {
      if (p[j] === 0) continue;
      const L = Math.abs(Math.log(Math.max(p[j], eps) / Math.max(q[j], eps)));
      b += Math.abs(w[r]) * p[j] * (2 * U32 + (LOG_REL + U32) * L);
    }
  }
  return SECOND_ORDER * b + gamma(rows * n + rows, 2 ** -53) * b / U32;
}

test('probKl: native matches ref (value and gradient), skips zero-weight rows, thread-independent', () => {
  const rng = new Rng(5);
  for (const [rows, n] of [[1, 1], [7, 13], [96, 33], [300, 64]]) {
    const p = probs(rows, n, rng), q = probs(rows, n, rng, 6); // spread 6: some q < 1e-8
    const w = new Float32Array(rows);
    for (let r = 0; r < rows; r++) w[r] = r % 5 === 3 ? 0 : 0.5 + rng.uniform();
    for (let r = 0; r < rows; r++) {
      if (w[r] === 0) {
        p[r * n] = NaN;
        q[r * n] = NaN; // padding rows are never read
      }
    }
    const want = R.probKl(p, q, w, rows, n, 1e-8);
    assert.ok(Number.isFinite(want) && (n === 1 ? want === 0 : want > 0), `ref value ${want}`);
    expectWithin([N.probKl(p, q, w, rows, n, 1e-8)], [want], [probKlBound(p, q, w, rows, n, 1e-8)],
      `value ${rows}x${n}`);
    const gR = new Float32Array(rows * n), gN = new Float32Array(rows * n).fill(7);
    R.probKlBackward(p, q, w, 0.75, gR, rows, n, 1e-8);
    N.probKlBackward(p, q, w, 0.75, gN, rows, n, 1e-8);
    // gq = fl(fl(c·p)/q) with c = fl(−g·w): 3 roundings, ref 1: 4u·|gq|. (A q between
    // fl(eps) and eps would take the other branch; none of these rows holds one.)
    expectWithin(gN, gR, gR.map((v) => 4 * U32 * Math.abs(v)), `gradient ${rows}x${n}`);
    assert.ok(gR.every(Number.isFinite));
    const threads = N.getThreads();
    try {
      N.setThreads(1);
      const one = N.probKl(p, q, w, rows, n, 1e-8);
      N.setThreads(2);
      assert.equal(N.probKl(p, q, w, rows, n, 1e-8), one);
    } finally {
      N.setThreads(threads);
    }
  }
});

test('probKl: 0 for identical rows; clamp semantics at eps', () => {
  const rng = new Rng(6);
  const p = probs(20, 9, rng), w = new Float32Array(20).fill(1);
  for (const k of [R, N]) assert.equal(k.probKl(p, p, w, 20, 9, 1e-8), 0);
  // p = 0.5 where q = 1e-12 < eps: the log sees eps, the gradient is 0 (PyTorch clamp_min).
  const pp = Float32Array.of(0.5, 0.5), qq = Float32Array.of(1e-12, 1);
  const want = 0.5 * (Math.log(0.5) - Math.log(1e-8)) + 0.5 * Math.log(0.5);
  for (const k of [R, N]) {
    expectWithin([k.probKl(pp, qq, Float32Array.of(1), 1, 2, 1e-8)], [want],
      [probKlBound(pp, qq, Float32Array.of(1), 1, 2, 1e-8)], 'clamped value');
    const g = new Float32Array(2);
    k.probKlBackward(pp, qq, Float32Array.of(2), 1, g, 1, 2, 1e-8);
    assert.deepEqual([...g], [0, -1], 'clamped gradient');  // −1·2·0.5/1: exact in float32
  }
});

test('probKl: bad sizes and eps throw RangeError on both backends', () => {
  const x = new Float32Array(6), w = new Float32Array(2);
  for (const k of [R, N]) {
    assert.throws(() => k.probKl(x, new Float32Array(5), w, 2, 3, 1e-8), RangeError);
    assert.throws(() => k.probKl(x, x, new Float32Array(3), 2, 3, 1e-8), RangeError);
    assert.throws(() => k.probKl(x, x, w, 2, 3, 0), RangeError);
    assert.throws(() => k.probKlBackward(x, x, w, 1, new Float32Array(4), 2, 3, 1e-8), RangeError);
  }
});

for (const backend of BACKENDS) {
  test(`probKl op: gradient matches finite differences (${backend})`, () => onBackend(backend, () => {
    const rng = new Rng(8);
    const p = new Tensor(probs(6, 5, rng), [2, 3, 5]);
    const q = new Tensor(probs(6, 5, rng).map((v) => v + 0.05), [2, 3, 5], true);
    const w = Float32Array.of(1, 0.5, 0, 2, 1, 0.25);
    gradCheck('probKl', (qq) => probKl(p, qq, w), [q], { eps: 1e-3 });
  }));
}
