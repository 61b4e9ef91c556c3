// The top-K teacher KL (--cache-teacher-topk; kernels.ts topkKl, tensor/ops/head-kl.ts): its
// definition computed directly in float64, K = V giving exactly the full KL, gradients against
// finite differences, and the teacher cache serving the same top-K target on a hit as on a miss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng, Tensor, backward, getThreads, headKlDiv, klDiv, linear, noGrad, setThreads, topkLogits } from '../../src/tensor/index.js';
import { kernel } from '../../src/tensor/registry.js';
import { TeacherCache } from '../../src/train/teacher-cache.js';
import type { DistillOutputs } from '../../src/distill/losses.js';
import { BACKENDS, onBackend } from '../backends.js';
import { expectWithin, gamma } from '../bounds.js';
import { KAPPA_MATMUL, reorderBound, scaleOf } from '../tolerance.js';
import { gradCheck, param } from '../gradcheck.js';
import { tmpDir } from '../util.js';

const leaf = (shape: number[], rng: Rng, s: number, grad: boolean): Tensor => {
  const t = param(shape, rng, s);
  t.requiresGrad = grad;
  return t;
};

/** The definition in float64: the (K+1)-bucket KL per row, from the dense logits. */
function bucketKl(t: Float32Array, s: Float32Array, V: number, K: number, tau: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < t.length; o += V) {
    const sm = (x: Float32Array): number[] => {
      const z = Array.from(x.subarray(o, o + V), (v) => v / tau), m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m)), S = e.reduce((a, b) => a + b);
      return e.map((v) => v / S);
    };
    const p = sm(t), q = sm(s);
    const top = [...p.keys()].sort((a, b) => t[o + b] - t[o + a] || a - b).slice(0, K);
    const inTop = new Set(top);
    let kl = 0, R = 0, Q = 0;
    for (const j of top) kl += p[j] * Math.log(p[j] / q[j]);
    for (let j = 0; j < V; j++) if (!inTop.has(j)) { R += p[j]; Q += q[j]; }
    if (R > 0) kl += R * Math.log(R / Q);
    out.push(kl);
  }
  return out;
}

for (const backend of BACKENDS) {
  test(`top-K KL: the (K+1)-bucket KL, and K = V is the full KL (${backend})`, () => onBackend(backend, () => {
    const rng = new Rng(21);
    const rows = 6, C = 16, V = 40;
    const xs = leaf([rows, C], rng, 1, true), ws = leaf([V, C], rng, 0.4, true);
    const xt = leaf([rows, C], rng, 1, false), wt = leaf([V, C], rng, 0.4, false);
    const tl = noGrad(() => linear(xt, wt)), sl = noGrad(() => linear(xs, ws));
    for (const tau of [1, 2]) {
      for (const K of [1, 5, 16]) {
        const got = noGrad(() => headKlDiv(topkLogits(tl, K, tau), { x: xs, weight: ws }, tau)).item();
        const want = bucketKl(tl.f32, sl.f32, V, K, tau).reduce((a, b) => a + b) / rows * tau * tau;
        // Float32 logits (a length-C GEMM, as in the reference) then float64: the logits' γ_C
        // moves each log-probability by ≤ 2·γ_C·max Σ|x||w|/τ, times Σ(p + q) ≤ 2 per row.
        let mag = 0;
        for (let r = 0; r < rows; r++) for (let j = 0; j < V; j++) {
          let a = 0;
          for (let c = 0; c < C; c++) a += Math.abs(xs.f32[r * C + c] * ws.f32[j * C + c]);
          mag = Math.max(mag, a);
        }
        expectWithin([got], [want], tau * tau * 4 * 2 * gamma(C + V + 8) * mag / tau + 1e-12, `K ${K}, τ ${tau}`);
      }
      const full = headKlDiv(topkLogits(tl, V, tau), { x: xs, weight: ws }, tau);
      const dense = noGrad(() => klDiv(tl, linear(xs, ws), tau)).item();
      expectWithin([full.item()], [dense], reorderBound(5, V, 2) * dense, `K = V equals klDiv (τ ${tau})`);
    }
  }));
}

test('top-K KL gradients match finite differences (K 3 of V 11, τ 1.5, masked row)', () => {
  const rng = new Rng(8);
  const xs = leaf([5, 6], rng, 1, true), ws = leaf([11, 6], rng, 0.6, true);
  const tl = noGrad(() => linear(leaf([5, 6], rng, 1, false), leaf([11, 6], rng, 0.6, false)));
  const tk = topkLogits(tl, 3, 1.5);
  gradCheck('topkKl', (x, W) => headKlDiv(tk, { x, weight: W }, 1.5, Float32Array.of(1, 0, 1, 1, 1), 2), [xs, ws], { n: 11 * 6 });
});

test('topkKl kernel: an id outside [0, V) is a RangeError on every backend', () => {
  for (const b of BACKENDS) {
    onBackend(b, () => {
      assert.throws(() => kernel('topkKl')(new Float32Array(4), Int32Array.of(4), new Float32Array(1), new Float32Array(1), new Float32Array(1),
        new Float32Array(1), null, null, 1, 4, 1, 1), /token id 4 outside \[0, 4\)/);
    });
  }
});

for (const threads of [1, 2]) test(`top-K KL: the native and reference backends agree (${threads} thread(s))`, () => {
  const before = getThreads();
  setThreads(threads);
  try {
    topkAgree();
  } finally {
    setThreads(before);
  }
});

function topkAgree(): void {
  const rng = new Rng(2);
  const xs = leaf([7, 12], rng, 1, true), ws = leaf([50, 12], rng, 0.5, true);
  const tl = noGrad(() => linear(leaf([7, 12], rng, 1, false), leaf([50, 12], rng, 0.5, false)));
  const tk = topkLogits(tl, 8, 1);
  const run = (b: 'ref' | 'native'): [number, Float32Array, Float32Array] => {
    let r!: [number, Float32Array, Float32Array];
    onBackend(b, () => {
      xs.grad = null; ws.grad = null;
      const l = headKlDiv(tk, { x: xs, weight: ws }, 1);
      backward(l);
      r = [l.item(), xs.grad!.f32.slice(), ws.grad!.f32.slice()];
    });
    return r;
  };
  const a = run('ref'), b = run('native');
  expectWithin([b[0]], [a[0]], reorderBound(5, 50, 2) * a[0], 'loss');
  expectWithin(b[1], a[1], reorderBound(6, 50, KAPPA_MATMUL) * scaleOf(a[1]), '∂/∂x');
  expectWithin(b[2], a[2], reorderBound(6, 50, KAPPA_MATMUL) * scaleOf(a[2]), '∂/∂W');
}

test('teacher cache with top-K: a hit returns exactly what the miss used; logits cannot be read', () => {
  const dir = tmpDir('topk');
  try {
    const rng = new Rng(4);
    const logits = leaf([2, 3, 20], rng, 2, false);
    const hidden = [leaf([2, 3, 4], rng, 1, false)];
    const computed = (): DistillOutputs => ({ logits, hidden, probs: [], scores: [], context: [], saOut: [], attnOut: [] });
    const cache = new TeacherCache(dir, 'k', { topk: 4, tau: 2 });
    const miss = cache.fetch('b', computed);
    const hit = new TeacherCache(dir, 'k', { topk: 4, tau: 2 }).fetch('b', () => assert.fail('should hit'));
    for (const o of [miss, hit]) assert.throws(() => o.logits, /top 4/);
    const want = topkLogits(logits, 4, 2);
    for (const o of [miss, hit]) {
      assert.deepEqual(o.topk!.lead, [2, 3]);
      assert.equal(o.topk!.V, 20);
      assert.deepEqual(Array.from(o.topk!.ids), Array.from(want.ids));
      assert.deepEqual(Array.from(o.topk!.logits), Array.from(want.logits));
      assert.deepEqual(Array.from(o.topk!.lse), Array.from(want.lse));
      assert.deepEqual(Array.from(o.topk!.logTail), Array.from(want.logTail));
      assert.deepEqual(Array.from(o.hidden[0].f32), Array.from(hidden[0].f32));
    }
    // The stored file is the top-K form only: K/V of the logits' size plus two floats per token.
    const file = fs.readdirSync(cache.dir)[0];
    assert.ok(fs.statSync(path.join(cache.dir, file)).size < 2 * 3 * (4 * 8 + 8 + 16) + 1024);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
