// Attention family: the reference forward against a naive float64 attention (materialized
// scores, explicit softmax), the reference backward against float64 central differences of
// Σ out⊙R + Σ probs⊙R2 + Σ scores⊙R3 (which also checks gProbs/gScores), the native kernels
// against the reference over many shapes and every flag/null combination (within the rounding
// bounds derived in attention-bounds.ts), thread-count
// independence (child processes with KDQAT_THREADS=1 and 2) and error paths. scripts/test.mjs
// reruns this file under every KDQAT_ISA level the CPU supports (test/backend/isa.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/tensor/rng.js';
import { attentionKernels } from '../../src/backend/ref/attention.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { expectClose, randomF32 } from '../util.js';
import { naiveAttention } from './attention-naive.js';
import { attentionBackwardBound, attentionBound } from './attention-bounds.js';
import { boundRatio, expectWithin } from '../bounds.js';

type Fwd = Kernels['attention'];
type Bwd = Kernels['attentionBackward'];
const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as {
  attention: Fwd; attentionBackward: Bwd; isa(): string; getThreads(): number;
};
// Start the thread pool now: native/pool.cc's workers can miss a job issued right after they
// are created (see the family report), so give them time to start before the first kernel.
addon.getThreads();
const ref = { attention: attentionKernels.attention!, attentionBackward: attentionKernels.attentionBackward! };
const native = { attention: addon.attention, attentionBackward: addon.attentionBackward };
const mode = process.env.KDQAT_ATTN_TEST_MODE;  // undefined | 'hash'
const self = fileURLToPath(import.meta.url);

interface Case {
  B: number; T: number; H: number; Hkv: number; D: number; causal: boolean;
  mask: 'none' | 'pad';
  /** Sliding window (0/absent: none). */
  window?: number;
}

/** keyMask for 'pad': batch 0 has left and right padding, batch 1 is fully padded. */
function keyMask(cs: Case): Int32Array | null {
  if (cs.mask === 'none') return null;
  const { B, T } = cs;
  const m = new Int32Array(B * T);
  for (let j = 0; j < T; j++) m[j] = (T > 2 && j === 0) || j >= T - Math.floor(T / 3) ? 0 : 1;
  for (let b = 2; b < B; b++) for (let j = 0; j < T; j++) m[b * T + j] = (j + b) % 3 === 0 ? 0 : 1;
  return m;  // batch 1 stays all zero
}

interface Inputs { q: Float32Array; k: Float32Array; v: Float32Array; km: Int32Array | null }

function inputs(cs: Case, rng: Rng): Inputs {
  const { B, T, H, Hkv, D } = cs;
  // Magnitude 1.5 gives peaked (not uniform) softmax rows.
  return { q: randomF32(B * T * H * D, rng, 1.5), k: randomF32(B * T * Hkv * D, rng, 1.5),
    v: randomF32(B * T * Hkv * D, rng), km: keyMask(cs) };
}

const scaleOf = (cs: Case): number => 1 / Math.sqrt(cs.D);

interface FwdOut { out: Float32Array; probs: Float32Array | null; scores: Float32Array | null }

function runFwd(f: Fwd, cs: Case, x: Inputs, withProbs = true, withScores = true): FwdOut {
  const { B, T, H, Hkv, D } = cs;
  const out = new Float32Array(B * T * H * D).fill(NaN);  // must be fully overwritten
  const probs = withProbs ? new Float32Array(B * H * T * T).fill(NaN) : null;
  const scores = withScores ? new Float32Array(B * H * T * T).fill(NaN) : null;
  f(x.q, x.k, x.v, out, probs, scores, B, T, H, Hkv, D, scaleOf(cs), cs.causal, x.km, cs.window);
  return { out, probs, scores };
}

interface Grads { gq: Float32Array; gk: Float32Array; gv: Float32Array }

function runBwd(f: Bwd, cs: Case, x: Inputs, probs: Float32Array, gout: Float32Array,
  gProbs: Float32Array | null, gScores: Float32Array | null): Grads {
  const { B, T, H, Hkv, D } = cs;
  const gq = new Float32Array(x.q.length).fill(NaN);
  const gk = new Float32Array(x.k.length).fill(NaN);
  const gv = new Float32Array(x.v.length).fill(NaN);
  f(x.q, x.k, x.v, probs, gout, gProbs, gScores, gq, gk, gv, B, T, H, Hkv, D, scaleOf(cs),
    cs.causal, x.km, cs.window);
  return { gq, gk, gv };
}

/** Close up to float32 rounding: atol relative to the largest magnitude of the expectation. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 2e-5): void {
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i]));
  expectClose(got, want, 1e-4, tol * Math.max(max, 1e-3), what);
}

const refCases: Case[] = [];
for (const [B, T, H, Hkv, D] of [[2, 5, 4, 2, 3], [3, 7, 2, 2, 4], [2, 1, 3, 1, 2], [1, 9, 6, 3, 5]]) {
  for (const causal of [false, true]) {
    for (const mask of ['none', 'pad'] as const) refCases.push({ B, T, H, Hkv, D, causal, mask });
  }
}
// Sliding windows (Mistral, Phi-3): shorter than, equal to and longer than T.
for (const [T, window] of [[7, 3], [9, 1], [5, 5], [4, 9]]) refCases.push({ B: 2, T, H: 4, Hkv: 2, D: 3, causal: true, mask: 'pad', window });

if (mode !== 'hash') {

  test('ref attention equals a naive float64 attention', () => {
    const rng = new Rng(1);
    for (const cs of refCases) {
      const x = inputs(cs, rng);
      const got = runFwd(ref.attention, cs, x);
      const want = naiveAttention(cs, x.q, x.k, x.v, x.km);
      const what = JSON.stringify(cs);
      expectClose(got.out, want.out, 1e-5, 1e-6, `out ${what}`);
      expectClose(got.probs!, want.probs, 1e-5, 1e-7, `probs ${what}`);
      expectClose(got.scores!, want.scores, 1e-5, 1e-6, `scores ${what}`);
    }
  });

  test('ref attentionBackward equals central differences (out, probs and scores terms)', () => {
    const rng = new Rng(2);
    for (const cs of refCases) {
      const x = inputs(cs, rng);
      const { B, T, H } = cs;
      const R = randomF32(x.q.length, rng), R2 = randomF32(B * H * T * T, rng);
      const R3 = randomF32(B * H * T * T, rng);
      const { probs } = runFwd(ref.attention, cs, x);
      const g = runBwd(ref.attentionBackward, cs, x, probs!, R, R2, R3);
      // L(q, k, v) in float64 on float64 copies of the inputs.
      const qd = Float64Array.from(x.q), kd = Float64Array.from(x.k), vd = Float64Array.from(x.v);
      const loss = (): number => {
        const f = naiveAttention(cs, qd, kd, vd, x.km);
        let s = 0;
        for (let i = 0; i < f.out.length; i++) s += f.out[i] * R[i];
        for (let i = 0; i < f.probs.length; i++) s += f.probs[i] * R2[i] + f.scores[i] * R3[i];
        return s;
      };
      const eps = 1e-4;
      for (const [arr, grad, name] of [[qd, g.gq, 'gq'], [kd, g.gk, 'gk'], [vd, g.gv, 'gv']] as const) {
        const fd = new Float64Array(arr.length);
        for (let i = 0; i < arr.length; i++) {
          const x0 = arr[i];
          arr[i] = x0 + eps;
          const lp = loss();
          arr[i] = x0 - eps;
          const lm = loss();
          arr[i] = x0;
          fd[i] = (lp - lm) / (2 * eps);
        }
        close(grad, fd, `${name} ${JSON.stringify(cs)}`, 2e-4);
      }
    }
  });

  test('attention bounds have teeth: out missing one key of a row exceeds them', () => {
    const rng = new Rng(5);
    const cs: Case = { B: 1, T: 17, H: 2, Hkv: 1, D: 8, causal: false, mask: 'none' };
    const x = inputs(cs, rng), want = runFwd(ref.attention, cs, x);
    const fb = attentionBound(cs, x.q, x.k, x.v, x.km, scaleOf(cs),
      { out: want.out, probs: want.probs!, scores: want.scores! });
    // Row (h 0, i 3) without its 5th key: out_d − p_j·v_jd for that row's D outputs.
    const { T, H, D } = cs, i = 3, j = 5;
    const wrong = want.out.slice(), p = want.probs![i * T + j];
    for (let d = 0; d < D; d++) wrong[i * H * D + d] -= p * x.v[j * D + d];
    assert.ok(boundRatio(wrong, want.out, fb.out) > 1, `dropping key ${j} (p = ${p}) stays within the bound`);
  });

  // Each output within the rounding-error bound of attention-bounds.ts.
  test('native attention and attentionBackward equal the reference within the stated bounds', () => {
    const rng = new Rng(3);
    let c = 0;
    for (const T of [1, 3, 17, 64, 130]) {
      for (const D of [1, 8, 31, 64]) {
        for (const [H, Hkv] of [[4, 4], [4, 2], [4, 1]]) {
          for (const causal of [false, true]) {
            for (const mask of ['none', 'pad'] as const) {
              c++;
              // Every third causal case with a sliding window shorter than T (not for T = 1).
              const window = causal && c % 3 === 0 && T > 1 ? Math.max(1, Math.floor(T / 3)) : undefined;
              const cs: Case = { B: 2, T, H, Hkv, D, causal, mask, window };
              const what = JSON.stringify(cs);
              const x = inputs(cs, rng);
              const want = runFwd(ref.attention, cs, x);
              // Vary which optional outputs / upstream gradients are present.
              const withProbs = c % 2 === 0, withScores = c % 3 !== 0;
              const got = runFwd(native.attention, cs, x, withProbs, withScores);
              const fb = attentionBound(cs, x.q, x.k, x.v, x.km, scaleOf(cs),
                { out: want.out, probs: want.probs!, scores: want.scores! });
              expectWithin(got.out, want.out, fb.out, `out ${what}`);
              if (got.probs) expectWithin(got.probs, want.probs!, fb.probs, `probs ${what}`);
              if (got.scores) expectWithin(got.scores, want.scores!, fb.scores, `scores ${what}`);
              const n = cs.B * H * T * T;
              const gout = randomF32(x.q.length, rng);
              const gProbs = c % 4 < 2 ? randomF32(n, rng) : null;
              const gScores = c % 5 < 3 ? randomF32(n, rng) : null;
              const gw = runBwd(ref.attentionBackward, cs, x, want.probs!, gout, gProbs, gScores);
              const gg = runBwd(native.attentionBackward, cs, x, want.probs!, gout, gProbs, gScores);
              const tag = `${what} gProbs ${gProbs !== null} gScores ${gScores !== null}`;
              const bb = attentionBackwardBound(cs, x.q, x.k, x.v, x.km, scaleOf(cs), want.probs!,
                gout, gProbs, gScores, gw);
              expectWithin(gg.gq, gw.gq, bb.gq, `gq ${tag}`);
              expectWithin(gg.gk, gw.gk, bb.gk, `gk ${tag}`);
              expectWithin(gg.gv, gw.gv, bb.gv, `gv ${tag}`);
            }
          }
        }
      }
    }
  });
}

// ---- determinism and thread-count independence -----------------------------------------------
// Shapes covering one task per (b, kv head) and the split into query-block parts (B·Hkv < 8).
const hashCases: Case[] = [
  { B: 8, T: 256, H: 4, Hkv: 2, D: 64, causal: true, mask: 'none' },
  { B: 1, T: 200, H: 4, Hkv: 1, D: 32, causal: true, mask: 'pad' },
  { B: 2, T: 130, H: 6, Hkv: 3, D: 31, causal: false, mask: 'pad' },
];

/** sha256 of every native output (forward and backward with gProbs and gScores) per case. */
function nativeHashes(): string[] {
  const rng = new Rng(4);
  return hashCases.map((cs) => {
    const x = inputs(cs, rng);
    const f = runFwd(native.attention, cs, x);
    const n = cs.B * cs.H * cs.T * cs.T;
    const g = runBwd(native.attentionBackward, cs, x, f.probs!, randomF32(x.q.length, rng),
      randomF32(n, rng), randomF32(n, rng));
    const h = createHash('sha256');
    for (const a of [f.out, f.probs!, f.scores!, g.gq, g.gk, g.gv]) {
      h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
    return h.digest('hex');
  });
}

function spawnSelf(env: Record<string, string>) {
  // Without NODE_TEST_CONTEXT the child's runner prints plain TAP instead of talking to ours.
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env;
  return spawnSync(process.execPath, ['--import', 'tsx', self], {
    env: { ...parentEnv, ...env }, encoding: 'utf8', timeout: 600_000,
  });
}

if (mode === 'hash') {
  process.stdout.write(JSON.stringify({ threads: addon.getThreads(), hashes: nativeHashes() }));
} else {
  test('native results are bitwise reproducible in one process', () => {
    assert.deepEqual(nativeHashes(), nativeHashes());
  });

  test('native subarray views are read and written at their offsets', () => {
    const rng = new Rng(5);
    const cs: Case = { B: 2, T: 9, H: 2, Hkv: 1, D: 5, causal: true, mask: 'pad' };
    const x = inputs(cs, rng);
    const view = (a: Float32Array): Float32Array => {
      const big = randomF32(a.length + 7, rng);
      big.set(a, 3);
      return big.subarray(3, 3 + a.length);
    };
    const xv: Inputs = { q: view(x.q), k: view(x.k), v: view(x.v), km: x.km };
    const want = runFwd(ref.attention, cs, x);
    const { B, T, H, Hkv, D } = cs;
    const out = view(new Float32Array(x.q.length)), probs = view(new Float32Array(B * H * T * T));
    native.attention(xv.q, xv.k, xv.v, out, probs, null, B, T, H, Hkv, D, scaleOf(cs), true, x.km);
    const fb = attentionBound(cs, x.q, x.k, x.v, x.km, scaleOf(cs),
      { out: want.out, probs: want.probs!, scores: want.scores! });
    expectWithin(out, want.out, fb.out, 'out view');
    expectWithin(probs, want.probs!, fb.probs, 'probs view');
    const gout = randomF32(x.q.length, rng);
    const gw = runBwd(ref.attentionBackward, cs, x, want.probs!, gout, null, null);
    const gq = view(new Float32Array(x.q.length)), gk = view(new Float32Array(x.k.length));
    const gv = view(new Float32Array(x.v.length));
    native.attentionBackward(xv.q, xv.k, xv.v, view(want.probs!), view(gout), null, null, gq, gk, gv,
      B, T, H, Hkv, D, scaleOf(cs), true, x.km);
    const bb = attentionBackwardBound(cs, x.q, x.k, x.v, x.km, scaleOf(cs), want.probs!, gout, null,
      null, gw);
    expectWithin(gq, gw.gq, bb.gq, 'gq view');
    expectWithin(gk, gw.gk, bb.gk, 'gk view');
    expectWithin(gv, gw.gv, bb.gv, 'gv view');
  });

  test('fully masked rows give exact zeros (probs, output, gradients)', () => {
    const rng = new Rng(6);
    const cs: Case = { B: 2, T: 70, H: 4, Hkv: 2, D: 8, causal: true, mask: 'pad' };
    const x = inputs(cs, rng);
    const { B, T, H, D } = cs;
    for (const k of [ref, native]) {
      const f = runFwd(k.attention, cs, x);
      const n = B * H * T * T;
      const g = runBwd(k.attentionBackward, cs, x, f.probs!, randomF32(x.q.length, rng),
        randomF32(n, rng), randomF32(n, rng));
      // Batch 1 is fully padded; in batch 0 query 0 only sees the padded key 0.
      const zeroRows = (a: Float32Array, rowLen: number, rows: (b: number, i: number, h: number) => number) => {
        for (let h = 0; h < H; h++) {
          for (const [b, i] of [[0, 0], ...Array.from({ length: T }, (_, t) => [1, t])]) {
            const o = rows(b, i, h) * rowLen;
            for (let j = 0; j < rowLen; j++) assert.equal(a[o + j], 0);
          }
        }
      };
      zeroRows(f.out, D, (b, i, h) => (b * T + i) * H + h);
      zeroRows(f.probs!, T, (b, i, h) => (b * H + h) * T + i);
      zeroRows(f.scores!, T, (b, i, h) => (b * H + h) * T + i);
      zeroRows(g.gq, D, (b, i, h) => (b * T + i) * H + h);
      for (let i = x.k.length / B; i < x.k.length; i++) {  // batch 1
        assert.equal(g.gk[i], 0);
        assert.equal(g.gv[i], 0);
      }
    }
  });

  test('bad arguments throw (both backends)', () => {
    const cs: Case = { B: 2, T: 5, H: 4, Hkv: 2, D: 3, causal: true, mask: 'pad' };
    const x = inputs(cs, new Rng(7));
    const { B, T, H, Hkv, D } = cs;
    const nq = B * T * H * D, nkv = B * T * Hkv * D, np = B * H * T * T;
    const f = (n: number): Float32Array => new Float32Array(n);
    for (const k of [ref, native]) {
      const fwd = (o: Partial<Record<string, unknown>>): void => {
        const a = { q: x.q, k: x.k, v: x.v, out: f(nq), probs: f(np), scores: f(np), B, T, H, Hkv,
          D, km: x.km, ...o };
        k.attention(a.q as Float32Array, a.k as Float32Array, a.v as Float32Array,
          a.out as Float32Array, a.probs as Float32Array, a.scores as Float32Array, a.B as number,
          a.T as number, a.H as number, a.Hkv as number, a.D as number, 0.5, true,
          a.km as Int32Array);
      };
      const bwd = (o: Partial<Record<string, unknown>>): void => {
        const a = { q: x.q, k: x.k, v: x.v, probs: f(np), gout: f(nq), gProbs: f(np),
          gScores: f(np), gq: f(nq), gk: f(nkv), gv: f(nkv), H, Hkv, km: x.km, ...o };
        k.attentionBackward(a.q as Float32Array, a.k as Float32Array, a.v as Float32Array,
          a.probs as Float32Array, a.gout as Float32Array, a.gProbs as Float32Array,
          a.gScores as Float32Array, a.gq as Float32Array, a.gk as Float32Array,
          a.gv as Float32Array, B, T, a.H as number, a.Hkv as number, D, 0.5, false,
          a.km as Int32Array);
      };
      fwd({});
      bwd({});
      fwd({ probs: null, scores: null, km: null });
      bwd({ gProbs: null, gScores: null, km: null });
      for (const [name, n] of [['q', nq], ['k', nkv], ['v', nkv], ['out', nq], ['probs', np],
        ['scores', np]] as const) {
        assert.throws(() => fwd({ [name]: f(n - 1) }), RangeError, `forward ${name} short`);
        assert.throws(() => fwd({ [name]: f(n + 1) }), RangeError, `forward ${name} long`);
      }
      for (const [name, n] of [['q', nq], ['k', nkv], ['v', nkv], ['probs', np], ['gout', nq],
        ['gProbs', np], ['gScores', np], ['gq', nq], ['gk', nkv], ['gv', nkv]] as const) {
        assert.throws(() => bwd({ [name]: f(n - 1) }), RangeError, `backward ${name} short`);
      }
      assert.throws(() => fwd({ km: new Int32Array(B * T - 1) }), RangeError);
      assert.throws(() => bwd({ km: new Int32Array(B * T + 1) }), RangeError);
      assert.throws(() => fwd({ H: 4, Hkv: 3 }), RangeError);  // H % Hkv ≠ 0
      assert.throws(() => bwd({ H: 4, Hkv: 3 }), RangeError);
      assert.throws(() => fwd({ Hkv: 0 }), RangeError);
      assert.throws(() => fwd({ D: 0 }), RangeError);
      assert.throws(() => fwd({ B: 1.5 }), RangeError);
      assert.throws(() => fwd({ T: -1 }), RangeError);
      assert.throws(() => bwd({ probs: null }), TypeError);  // probs is required
      // Empty batch / sequence: nothing to do, nothing thrown.
      k.attention(f(0), f(0), f(0), f(0), f(0), null, 0, T, H, Hkv, D, 0.5, false, null);
      k.attention(f(0), f(0), f(0), f(0), null, null, B, 0, H, Hkv, D, 0.5, true,
        new Int32Array(0));
      k.attentionBackward(f(0), f(0), f(0), f(0), f(0), null, null, f(0), f(0), f(0), B, 0, H,
        Hkv, D, 0.5, true, null);
    }
    // Native checks the element types too.
    assert.throws(() => native.attention(new Float64Array(nq) as unknown as Float32Array, x.k, x.v,
      f(nq), null, null, B, T, H, Hkv, D, 0.5, true, null), TypeError);
    assert.throws(() => native.attention(x.q, x.k, x.v, f(nq), null, null, B, T, H, Hkv, D, 0.5,
      true, new Uint8Array(B * T) as unknown as Int32Array), TypeError);
  });

  test('native results do not depend on the thread count (KDQAT_THREADS=1 vs 2)', () => {
    const runs = ['1', '2'].map((t) => {
      const r = spawnSelf({ KDQAT_ATTN_TEST_MODE: 'hash', KDQAT_THREADS: t });
      assert.equal(r.status, 0, r.stderr);
      const res = JSON.parse(r.stdout) as { threads: number; hashes: string[] };
      assert.equal(res.threads, Number(t));
      return res.hashes;
    });
    assert.deepEqual(runs[0], runs[1]);
    assert.deepEqual(runs[1], nativeHashes());  // and this process (default threads) agrees
  });
}
