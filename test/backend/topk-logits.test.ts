// topkLogits (kernels.ts; the teacher cache's --cache-teacher-topk): the native kernel against
// the TypeScript reference — ids and values bit for bit, lse/logTail within the bound of two
// float64 evaluations rounded once — on random rows full of ties, with NaN/±Infinity/±0 rows and
// K's edge cases; the reference's order against a plain full sort; the thread count changes no
// bit; bad arguments throw on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, getThreads, setThreads } from '../../src/tensor/index.js';
import { kernelOf } from '../../src/tensor/registry.js';
import { nativeAvailable } from '../../src/backend/index.js';
import type { Kernels } from '../../src/tensor/kernels.js';

type TopkLogits = Kernels['topkLogits'];
const ref = kernelOf('ref', 'topkLogits')!;
const native = (): TopkLogits => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  return kernelOf('native', 'topkLogits')!;
};

interface Out { ids: Int32Array; vals: Float32Array; lse: Float32Array; logTail: Float32Array }
function run(k: TopkLogits, z: Float32Array, rows: number, V: number, K: number, tau: number): Out {
  const o = { ids: new Int32Array(rows * K), vals: new Float32Array(rows * K), lse: new Float32Array(rows), logTail: new Float32Array(rows) };
  k(z, o.ids, o.vals, o.lse, o.logTail, rows, V, K, tau);
  return o;
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** The contract's order by a plain comparison sort of every id (independent of quickselect). */
function sortedIds(z: Float32Array, o: number, V: number): number[] {
  const key = (j: number): number => (Number.isNaN(z[o + j]) ? Infinity : z[o + j]);
  const nan = (j: number): number => (Number.isNaN(z[o + j]) ? 1 : 0);
  return [...Array(V).keys()].sort((a, b) => nan(b) - nan(a) || (key(b) > key(a) ? 1 : key(b) < key(a) ? -1 : 0) || a - b);
}

/**
 * Bound on |native − ref| for lse and logTail: both evaluate the same float64 expression (the
 * same additions in the same order) and may differ only by exp/log's last bit in float64
 * (≤ 1 ulp each: V + 2 terms, relative ≤ (V + 2)·2^−52 of the largest magnitude involved,
 * |m| + |log Σ|) before the float32 rounding, which adds at most one float32 ulp of the result.
 */
function bound(want: number, m: number, V: number): number {
  const ulp32 = want === 0 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(want))) - 23);
  return ulp32 + (V + 2) * 2 ** -52 * (Math.abs(m) + Math.log(V) + Math.abs(want));
}

function compare(z: Float32Array, rows: number, V: number, K: number, tau: number, what: string): void {
  const w = run(ref, z, rows, V, K, tau), g = run(native(), z, rows, V, K, tau);
  assert.deepEqual(g.ids, w.ids, `${what}: ids`);
  assert.deepEqual(bits(g.vals), bits(w.vals), `${what}: values (bits)`);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, z[r * V + j] / tau);
    for (const [name, a, b] of [['lse', g.lse[r], w.lse[r]], ['logTail', g.logTail[r], w.logTail[r]]] as const) {
      if (!Number.isFinite(b)) {
        assert.ok(Object.is(a, b), `${what}: row ${r} ${name} ${a}, reference ${b}`);
        continue;
      }
      assert.ok(Math.abs(a - b) <= bound(b, m, V), `${what}: row ${r} ${name} ${a} vs reference ${b} (bound ${bound(b, m, V)})`);
    }
  }
}

/** rows × V logits drawn from `levels` distinct values (so most rows hold many ties). */
function tied(rng: Rng, rows: number, V: number, levels: number, scale: number): Float32Array {
  const z = new Float32Array(rows * V);
  for (let i = 0; i < z.length; i++) z[i] = (Math.floor(rng.uniform() * levels) - levels / 2) * scale;
  return z;
}

test('topkLogits: the reference ranks as a full sort does (value desc, NaN first, ties by id) and computes lse/logTail', () => {
  const rng = new Rng(3);
  const rows = 5, V = 37;
  const z = tied(rng, rows, V, 6, 0.75);
  z[3] = NaN; z[9] = NaN; z[V + 4] = Infinity; z[2 * V + 7] = -Infinity; z[3 * V + 1] = -0; z[3 * V + 2] = 0;
  for (const K of [1, 2, 10, V - 1, V]) {
    const o = run(ref, z, rows, V, K, 1.5);
    for (let r = 0; r < rows; r++) {
      const want = sortedIds(z, r * V, V).slice(0, K);
      assert.deepEqual([...o.ids.subarray(r * K, (r + 1) * K)], want, `K ${K} row ${r}`);
    }
    // Rows 3 and 4 are finite: lse and the tail's log-mass from the definition.
    for (const r of [3, 4]) {
      const x = Array.from(z.subarray(r * V, (r + 1) * V), (v) => v / 1.5);
      const m = Math.max(...x), p = x.map((v) => Math.exp(v - m)), S = p.reduce((a, b) => a + b);
      const top = new Set(sortedIds(z, r * V, V).slice(0, K));
      const tail = p.reduce((a, v, j) => a + (top.has(j) ? 0 : v), 0);
      assert.ok(Math.abs(o.lse[r] - (m + Math.log(S))) <= 2 ** -20 * (1 + Math.abs(m)), `lse row ${r}`);
      if (K === V) assert.equal(o.logTail[r], -Infinity);
      else assert.ok(Math.abs(o.logTail[r] - Math.log(tail / S)) <= 2 ** -20 * (1 + Math.abs(Math.log(tail / S))), `logTail row ${r} K ${K}`);
    }
    // Rows 0 (NaN) and 1 (+Infinity) define no distribution.
    for (const r of [0, 1]) assert.ok(Number.isNaN(o.lse[r]) && Number.isNaN(o.logTail[r]), `row ${r} K ${K}`);
  }
});

test('topkLogits: native = reference (ids and values bitwise) on random rows with ties, every K edge', () => {
  const rng = new Rng(11);
  for (const [rows, V, levels] of [[7, 1, 3], [6, 2, 2], [9, 33, 5], [4, 300, 40], [3, 4099, 1000]] as const) {
    const z = tied(rng, rows, V, levels, 0.5);
    const Ks = [...new Set([1, 2, 5, V >> 1, V - 1, V])].filter((K) => K >= 1 && K <= V);
    for (const K of Ks) for (const tau of [1, 0.7, 3]) compare(z, rows, V, K, tau, `rows ${rows} V ${V} K ${K} τ ${tau}`);
  }
  // Continuous values too (ties only by chance), a wide range of magnitudes.
  const z = new Float32Array(8 * 1000);
  for (let i = 0; i < z.length; i++) z[i] = rng.normal() * 12;
  for (const K of [1, 64, 999, 1000]) compare(z, 8, 1000, K, 2, `normal K ${K}`);
});

test('topkLogits: NaN, ±Infinity, ±0 and all-equal rows: native = reference, as the contract orders them', () => {
  const V = 12;
  const rows: number[][] = [
    [1, NaN, 3, NaN, 3, -Infinity, 0, -0, 2, 3, NaN, 1],            // NaNs first (by id), ties by id
    [0, Infinity, 5, Infinity, -Infinity, 1, 1, 1, 2, 2, 0, -0],    // +Infinity: no distribution
    Array(V).fill(-Infinity),                                       // all −Infinity: none either
    [-Infinity, 4, -Infinity, 4, 4, -Infinity, 1, 0, -0, 0, -Infinity, 2],  // −Inf: zero mass
    [-0, 0, -0, 0, -0, 0, -0, 0, -0, 0, -0, 0],                     // ±0 are equal: by id
    Array(V).fill(7.25),                                            // all equal
    [1e-45, -1e-45, 3.4e38, -3.4e38, 1, 2, 3, 4, 5, 6, 7, 8],       // subnormal, extremes
  ];
  const z = Float32Array.from(rows.flat());
  for (const K of [1, 3, 5, V - 1, V]) {
    compare(z, rows.length, V, K, 1, `K ${K}`);
    const o = run(native(), z, rows.length, V, K, 1);
    rows.forEach((_, r) => assert.deepEqual([...o.ids.subarray(r * K, (r + 1) * K)], sortedIds(z, r * V, V).slice(0, K), `K ${K} row ${r}`));
    for (const r of [0, 1, 2]) assert.ok(Number.isNaN(o.lse[r]) && Number.isNaN(o.logTail[r]), `row ${r}: no distribution`);
    assert.ok(Number.isFinite(o.lse[3]), 'a row with some −Infinity has a distribution');
  }
  // Row 3 at K = 3 keeps the three 4s: the tail is 2, 1, 0, −0 and the −Infinity ids (mass 0).
  const o = run(native(), z, rows.length, V, 3, 1);
  assert.deepEqual([...o.ids.subarray(9, 12)], [1, 3, 4]);
  const S = 3 * Math.exp(0) + Math.exp(-2) + Math.exp(-3) + 3 * Math.exp(-4);
  assert.ok(Math.abs(o.logTail[3] - Math.log((S - 3) / S)) <= 1e-6);
  // −0 keeps its sign bit in vals (the values are z's bits).
  const k4 = run(native(), z, rows.length, V, V, 1);
  assert.ok(Object.is(k4.vals[4 * V], -0) && Object.is(k4.vals[4 * V + 1], 0));
});

test('topkLogits: the thread count changes no bit', () => {
  const rng = new Rng(5);
  const rows = 13, V = 2000, K = 40;
  const z = tied(rng, rows, V, 300, 0.1);
  const before = getThreads();
  try {
    setThreads(1);
    const a = run(native(), z, rows, V, K, 1.3);
    setThreads(Math.max(2, before));
    const b = run(native(), z, rows, V, K, 1.3);
    assert.deepEqual(b.ids, a.ids);
    for (const k of ['vals', 'lse', 'logTail'] as const) assert.deepEqual(bits(b[k]), bits(a[k]), k);
  } finally {
    setThreads(before);
  }
});

test('topkLogits: bad K, temperature or buffer lengths throw a RangeError naming them (both backends)', () => {
  const z = new Float32Array(2 * 5);
  for (const [name, k] of [['ref', ref], ['native', native()]] as const) {
    assert.throws(() => run(k, z, 2, 5, 0, 1), /topkLogits: K must be an integer from 1 to V = 5, got 0/, name);
    assert.throws(() => run(k, z, 2, 5, 6, 1), /K must be an integer from 1 to V = 5, got 6/, name);
    assert.throws(() => run(k, z, 2, 5, 2.5, 1), /K must be an integer/, name);
    assert.throws(() => run(k, z, 2, 5, 2, 0), /temperature must be a positive number, got 0/, name);
    assert.throws(() => run(k, z, 2, 5, 2, Infinity), /temperature must be a positive number/, name);
    assert.throws(() => run(k, z, 3, 5, 2, 1), /topkLogits: z has length 10, expected 15/, name);
    const o = run(k, z, 2, 5, 2, 1);
    assert.throws(() => k(z, new Int32Array(3), o.vals, o.lse, o.logTail, 2, 5, 2, 1), /ids has length 3, expected 4/, name);
    assert.throws(() => k(z, o.ids, o.vals, new Float32Array(1), o.logTail, 2, 5, 2, 1), /lse has length 1, expected 2/, name);
  }
});
