// The native 'quant' kernels equal the TypeScript reference bit for bit: forward (ŵ, codes,
// scales, zero points), the STE / clipped / LSQ backward (∂w and ∂step), and the activation
// quantizer, for every rule × granule on shapes with ragged vector tails; with 1 and 2 threads;
// error messages identical. scripts/test.mjs reruns this file under every KDQAT_ISA level the CPU supports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelOf } from '../../src/tensor/registry.js';
import { nativeAvailable, setThreads, getThreads, nativeIsa } from '../../src/tensor/index.js';
import { granuleCount, groupOf, ruleCode, bitsOf, type WeightQuant } from '../../src/quant/rules.js';
import { Rng } from '../../src/tensor/rng.js';
import { randomF32 } from '../util.js';
import { awkwardWeights, jitterStep, firstDiff } from './cases.js';

const ref = <K extends 'fakeQuant' | 'fakeQuantBackward' | 'fakeQuantInput' | 'fakeQuantInputBackward'>(k: K) => kernelOf('ref', k)!;
const nat = <K extends 'fakeQuant' | 'fakeQuantBackward' | 'fakeQuantInput' | 'fakeQuantInputBackward'>(k: K) => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  const f = kernelOf('native', k);
  assert.ok(f, `native kernel ${k} missing`);
  return f;
};

function same(a: ArrayLike<number> | null, b: ArrayLike<number> | null, what: string): void {
  if (a === null || b === null) return assert.equal(a, b, what);
  const i = firstDiff(a, b);
  assert.equal(i, -1, `${what}: index ${i}: native ${a[i]} vs ref ${b[i]}`);
}

/** Rule × granule cases on (rows, cols) = (23, 84) (groups of 12, 21, 28: ragged tails) and
 *  ggml rules on (9, 512); each with and without LSQ and clip. */
function cases(): { q: WeightQuant; rows: number; cols: number }[] {
  const out: { q: WeightQuant; rows: number; cols: number }[] = [];
  const grans = [{ kind: 'tensor' }, { kind: 'channel' }, { kind: 'group', size: 12 }, { kind: 'group', size: 21 },
    { kind: 'group', size: 28 }] as const;
  for (const rule of [{ kind: 'sym', bits: 2 }, { kind: 'sym', bits: 4 }, { kind: 'sym', bits: 8 },
    { kind: 'asym', bits: 3 }, { kind: 'asym', bits: 8 }, { kind: 'twn' }] as const) {
    for (const granule of grans) {
      out.push({ q: { rule, granule, clip: 0.9 }, rows: 23, cols: 84 });
      if (rule.kind !== 'twn') out.push({ q: { rule, granule, lsq: true }, rows: 23, cols: 84 });
    }
  }
  for (const kind of ['q4_0', 'q8_0', 'tq2_0'] as const) out.push({ q: { rule: { kind }, granule: { kind: 'channel' } }, rows: 9, cols: 512 });
  return out;
}

/** Runs forward + backward on one backend; returns every output. */
function run(k: typeof ref, c: { q: WeightQuant; rows: number; cols: number }, w: Float32Array, gy: Float32Array,
  step: Float32Array | null) {
  const { q, rows, cols } = c;
  const n = rows * cols, G = granuleCount(rows, cols, q);
  const out = new Float32Array(n), codes = new Int32Array(n), scales = new Float32Array(G);
  const zeros = q.rule.kind === 'asym' ? new Int32Array(G) : null;
  const args = [ruleCode(q.rule), bitsOf(q.rule), groupOf(q, cols)] as const;
  k('fakeQuant')(w, out, codes, scales, zeros, step, rows, cols, ...args);
  const gw = new Float32Array(n), gs = step ? new Float32Array(G) : null;
  k('fakeQuantBackward')(w, gy, gw, step, zeros, gs, rows, cols, ...args, q.clip ?? Infinity);
  return { out, codes, scales, zeros, gw, gs };
}

function compareAll(rowsScale = 1): void {
  const rng = new Rng(3);
  for (const c0 of cases()) {
    const c = { ...c0, rows: c0.rows * rowsScale };
    const w = awkwardWeights(c.rows, c.cols, 9);
    // Upstream gradients over 2^±40, so double sums round and their order shows.
    const gy = randomF32(w.length, rng).map((v) => v * 2 ** (rng.int(81) - 40));
    let step: Float32Array | null = null;
    if (c.q.lsq) {
      const G = granuleCount(c.rows, c.cols, c.q);
      const s = new Float32Array(G);
      ref('fakeQuant')(w, null, null, s, c.q.rule.kind === 'asym' ? new Int32Array(G) : null, null, c.rows, c.cols,
        ruleCode(c.q.rule), bitsOf(c.q.rule), groupOf(c.q, c.cols));
      step = jitterStep(s);
      step[0] = 0; // a zero step (all-zero granule, or learned to 0)
    }
    const a = run(nat, c, w, gy, step), b = run(ref, c, w, gy, step);
    const name = JSON.stringify(c.q);
    for (const key of ['out', 'codes', 'scales', 'zeros', 'gw', 'gs'] as const) same(a[key], b[key], `${name} ${key}`);
  }
}

test(`native fakeQuant / fakeQuantBackward ≡ ref bitwise (${nativeIsa()})`, () => {
  compareAll();
});

test('native results do not depend on the thread count (1 vs 2 threads, tall matrices)', () => {
  const before = getThreads();
  try {
    setThreads(1);
    compareAll(40);
    setThreads(2);
    compareAll(40); // both equal ref, hence each other
  } finally {
    setThreads(before);
  }
});

test('native fakeQuantInput / backward ≡ ref bitwise (clip and none, 1 and 2 threads)', () => {
  const rng = new Rng(4);
  const before = getThreads();
  try {
    const o2tie = new Float32Array(8);
    for (const threads of [1, 2]) {
      setThreads(threads);
      for (const [n, bits, clip] of [[1001, 8, 2.5], [70001, 8, 2.5], [333, 4, Infinity], [5, 2, 0.3], [64, 8, 100]] as const) {
        const x = randomF32(n, rng, 1.5);
        x[7 % n] = 0.5; // ties
        const gy = randomF32(n, rng);
        const o1 = new Float32Array(n), o2 = new Float32Array(n);
        assert.equal(nat('fakeQuantInput')(x, o1, bits, clip), ref('fakeQuantInput')(x, o2, bits, clip));
        same(o1, o2, `act ${n} ${bits} ${clip}`);
        const g1 = new Float32Array(n), g2 = new Float32Array(n);
        nat('fakeQuantInputBackward')(x, gy, g1, clip);
        ref('fakeQuantInputBackward')(x, gy, g2, clip);
        same(g1, g2, `act grad ${n}`);
      }
      // Exact ties: max 127 at 8 bits gives s = 1, so ±0.5, ±2.5 round away from zero.
      const t = Float32Array.of(127, 0.5, -0.5, 2.5, -2.5, 1.5, -0, 126.5), ot = new Float32Array(8);
      assert.equal(nat('fakeQuantInput')(t, ot, 8, Infinity), 1);
      assert.deepEqual(Array.from(ot), [127, 1, -1, 3, -3, 2, 0, 127]);
      same(ot, (ref('fakeQuantInput')(t, o2tie, 8, Infinity), o2tie), 'act ties');
      const z = new Float32Array(40), o = new Float32Array(40).fill(1);
      assert.equal(nat('fakeQuantInput')(z, o, 8, Infinity), 0);
      assert.ok(o.every((v) => Object.is(v, 0)));
    }
  } finally {
    setThreads(before);
  }
});

test('native asym zero points: roundf ties, the qmax bound and all-positive granules, as ref', () => {
  // Granules whose min-max scale is 0.5 exactly (range 3.5 at 3 bits: qmax 7), so −mn/s is exact:
  // 2.5, 0.5, 6.5 are ties (roundf: away from zero), 7 = qmax (max 0), 0 (min 0); then
  // granules with ranges that are not exact, where −mn/s lands anywhere.
  const rows: [number, number][] = [[-1.25, 2.25], [-0.25, 3.25], [-3.25, 0.25], [-3.5, 0], [0, 3.5]];
  const rng = new Rng(11);
  for (let i = 0; i < 27; i++) {
    const mn = -rng.uniform() * 4, mx = rng.uniform() * 4;
    rows.push([mn, i % 9 === 0 ? 0 : mx]);
  }
  const cols = 16;
  const w = new Float32Array(rows.length * cols);
  rows.forEach(([mn, mx], r) => {
    for (let c = 0; c < cols; c++) w[r * cols + c] = mn + (mx - mn) * rng.uniform();
    for (const o of [0, 8]) w.set([mn, mx], r * cols + o); // both groups of 8 hold the bounds
  });
  for (const group of [8, cols]) {
    const G = (rows.length * cols) / group;
    const results = [nat, ref].map((k) => {
      const out = new Float32Array(w.length), codes = new Int32Array(w.length);
      const scales = new Float32Array(G), zeros = new Int32Array(G);
      k('fakeQuant')(w, out, codes, scales, zeros, null, rows.length, cols, 1, 3, group);
      return { out, codes, scales, zeros };
    });
    const per = cols / group;
    assert.deepEqual([0, 1, 2, 3, 4].map((r) => results[0].zeros[r * per]), [3, 1, 7, 7, 0], `group ${group}`);
    for (const key of ['out', 'codes', 'scales', 'zeros'] as const) same(results[0][key], results[1][key], `asym g${group} ${key}`);
  }
});

test('native q4_0 takes d from the first element of largest magnitude, signed, as ref', () => {
  // Blocks of 32: all zeros led by −0 or with a −0 later (ggml's search starts from +0, so d = −0
  // either way); +a and −a both present, either first; the largest magnitude only negative,
  // only positive.
  const blocks: number[][] = [];
  const rnd = new Rng(12);
  const base = () => Array.from({ length: 32 }, () => rnd.normal());
  blocks.push(Array.from({ length: 32 }, (_, i) => (i === 0 ? -0 : 0)));
  blocks.push(Array.from({ length: 32 }, (_, i) => (i === 5 ? -0 : 0)));
  for (const [i, j] of [[3, 20], [20, 3]]) {
    const b = base();
    b[i] = 9;
    b[j] = -9;
    blocks.push(b);
  }
  blocks.push(base().map((v, i) => (i === 7 ? -9 : v)), base().map((v, i) => (i === 30 ? 9 : v)));
  const w = Float32Array.from(blocks.flat());
  const rows = 2, cols = w.length / rows, G = w.length / 32;
  const [a, b] = [nat, ref].map((k) => {
    const out = new Float32Array(w.length), codes = new Int32Array(w.length), scales = new Float32Array(G);
    k('fakeQuant')(w, out, codes, scales, null, null, rows, cols, 3, 0, 32);
    return { out, codes, scales };
  });
  assert.deepEqual(Array.from(b.scales.slice(0, 6), (s) => Object.is(s, -0) ? '-0' : Math.sign(s)), ['-0', '-0', -1, 1, 1, -1]);
  for (const key of ['out', 'codes', 'scales'] as const) same(a[key], b[key], `q4_0 ${key}`);
});

test('native fakeQuant of empty weights (no rows or no columns) equals ref, every rule and granule', () => {
  // A row of no columns is one empty granule per tensor (scale 0); no rows, no granules.
  const rules: [number, number, (cols: number) => number[]][] = [
    [0, 4, (c) => [0, c, 4]], [1, 3, (c) => [0, c, 4]], [2, 0, (c) => [0, c, 4]],
    [3, 0, () => [32]], [4, 0, () => [32]], [5, 0, () => [256]],
  ];
  for (const [rule, bits, groups] of rules) {
    for (const [rows, cols] of [[1, 0], [3, 0], [0, 5], [0, 0], [0, 32]]) {
      for (const group of groups(cols)) {
        const G = group === 0 ? 1 : group === cols ? rows : cols % group === 0 ? (rows * cols) / group : 0;
        const results = [nat, ref].map((k) => {
          const scales = new Float32Array(G).fill(NaN), zeros = rule === 1 ? new Int32Array(G).fill(-1) : null;
          try {
            k('fakeQuant')(new Float32Array(0), new Float32Array(0), new Int32Array(0), scales, zeros, null, rows, cols,
              rule as never, bits, group);
          } catch (e) {
            return `throws ${(e as Error).message}`;
          }
          return JSON.stringify([Array.from(scales), zeros && Array.from(zeros)]);
        });
        assert.equal(results[0], results[1], `rule ${rule} ${rows}×${cols} group ${group}`);
      }
    }
  }
});

test('native and ref throw the same errors', () => {
  const w = new Float32Array(4 * 64);
  w[70] = NaN;
  const s = new Float32Array(4), z = new Int32Array(4);
  const attempts: [string, unknown[]][] = [
    ['nan', [w, null, null, s, null, null, 4, 64, 0, 4, 64]],
    ['bits', [w, null, null, s, null, null, 4, 64, 0, 9, 64]],
    ['group', [w, null, null, new Float32Array(8), null, null, 4, 64, 0, 4, 48]],
    ['block', [w, null, null, s, null, null, 4, 64, 3, 0, 64]],
    ['step', [new Float32Array(256), null, null, s, z, new Float32Array([1, -1, 1, 1]), 4, 64, 1, 4, 64]],
    ['length', [new Float32Array(10), null, null, s, null, null, 4, 64, 0, 4, 64]],
  ];
  for (const [what, args] of attempts) {
    const msg = (f: (...a: unknown[]) => unknown): string => {
      try {
        f(...args);
      } catch (e) {
        assert.ok(e instanceof RangeError, `${what}: RangeError`);
        return e.message;
      }
      return assert.fail(`${what}: no error`);
    };
    assert.equal(msg(nat('fakeQuant') as never), msg(ref('fakeQuant') as never), what);
  }
  const x = new Float32Array(9);
  x[4] = Infinity;
  assert.throws(() => nat('fakeQuantInput')(x, new Float32Array(9), 8, 2.5), /fakeQuantInput: non-finite input Infinity at index 4/);
  assert.throws(() => ref('fakeQuantInput')(x, new Float32Array(9), 8, 2.5), /fakeQuantInput: non-finite input Infinity at index 4/);
});
