// matmulQ8 (native/gemm_q8.cc: AMX, AVX512_VNNI, AVX2, portable) against the reference
// (src/backend/ref/gemm.ts: the codes by q8Code, integer sums, then the float32 roundings), and
// Linear's integer forward (src/tensor/ops/matmul.ts) against the float32 GEMM. scripts/test.mjs
// reruns this file under KDQAT_ISA=avx2 and portable (and KDQAT_AMX=off on an AMX CPU), so each
// compiled path is compared here on the CPUs that run it.
//
// Bounds, derived:
// - Native vs reference: the codes are integers decided by the same float32 operations (one
//   product, a clamp, round half to even) and the sums are exact integers (|Σ| ≤ k·255·64 < 2^31),
//   then the same float32 roundings in the same order: equal bit for bit, on every path, tiling
//   and thread count. No tolerance.
// - Against the codes' product T = sa·sb_j·Σ qa·qb: the integer sum is exact, then three float32
//   roundings (the int → float conversion, exact below 2^24, the scale sa·sb_j and the product),
//   so |y − T| ≤ ((1 + u)^3 − 1)·|T|; T itself is formed in float64 here (two roundings, 2·u64).
// - Linear, integer vs float32 forward on x̂ = fl(qa·sa), ŵ = fl(qb·sb): the float32 GEMM is within
//   gemmBound (test/bounds.ts) of Σ x̂ŵ, each x̂ŵ within (2u + u²)·|qa·sa·qb·sb| of its codes'
//   product, and y within the bound above of T: the sum of the three.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels, q8Code } from '../../src/backend/ref/gemm.js';
import type { NativeAddon } from '../../src/backend/native/index.js';
import { backward, nativeIsaInfo } from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { linear, integerGrid } from '../../src/tensor/ops/matmul.js';
import { kernelSource } from '../../src/tensor/registry.js';
import { withGridGemm, withIntegerGemm } from '../../src/tensor/compute.js';
import { fakeQuantInput, fakeQuantWeight } from '../../src/quant/ops.js';
import type { WeightQuant } from '../../src/quant/rules.js';
import { randomF32 } from '../util.js';
import { U32, U64, gamma, expectWithin, gemmAbsSum, gemmBound } from '../bounds.js';

const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as NativeAddon;
const native = addon.matmulQ8!;
const ref = gemmKernels.matmulQ8!;
const f32 = Math.fround;

/** The next float32 above x (x finite, > 0 or < 0). */
function nextUp(x: number): number {
  const b = new Float32Array([x]), u = new Int32Array(b.buffer);
  u[0] += x > 0 ? 1 : x < 0 ? -1 : 1;
  return b[0];
}

/** Values on a grid: q·s (float32) with q uniform in [−lim, lim], and s. */
function onGrid(n: number, rng: Rng, lim: number, s: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f32((rng.int(2 * lim + 1) - lim) * s);
  return a;
}

interface Case { m: number; k: number; n: number; perRow: boolean; bias: boolean; what: string }
const CASES: Case[] = [
  { m: 1, k: 1, n: 1, perRow: false, bias: false, what: '1×1×1' },
  { m: 3, k: 5, n: 7, perRow: true, bias: true, what: 'k not a multiple of 4' },
  { m: 15, k: 64, n: 33, perRow: false, bias: true, what: 'one past the AVX-512 tile (14 rows, 32 columns)' },
  { m: 29, k: 131, n: 65, perRow: true, bias: false, what: 'tile edges, odd k' },
  { m: 13, k: 300, n: 17, perRow: false, bias: true, what: 'one past two AVX2 tiles (6 rows, 16 columns)' },
  { m: 300, k: 96, n: 70, perRow: false, bias: true, what: 'several row blocks (MC 140 / 128 / 126)' },
  { m: 6, k: 40, n: 200, perRow: true, bias: true, what: 'few rows: column panels split over the threads' },
  { m: 33, k: 68, n: 33, perRow: true, bias: false, what: 'one past the AMX tiles (32 × 32, 64 k per tile step)' },
  { m: 64, k: 256, n: 64, perRow: false, bias: true, what: 'whole AMX tiles and tile steps' },
  { m: 161, k: 190, n: 95, perRow: true, bias: true, what: 'past the AMX row block (MC 128), k-words not a multiple of 16' },
  { m: 4, k: 0, n: 9, perRow: false, bias: true, what: 'k = 0: the bias alone' },
];

function operands(c: Case, rng: Rng): { a: Float32Array; sa: number; b: Float32Array; sb: Float32Array; bias: Float32Array | null } {
  const sa = f32(0.013 * (1 + rng.uniform()));
  const sb = new Float32Array(c.perRow ? c.n : 1).map(() => f32(0.05 * (1 + rng.uniform())));
  const a = onGrid(c.m * c.k, rng, 127, sa);
  const b = new Float32Array(c.n * c.k);
  for (let j = 0; j < c.n; j++) b.set(onGrid(c.k, rng, 64, sb[c.perRow ? j : 0]), j * c.k);
  return { a, sa, b, sb, bias: c.bias ? randomF32(c.n, rng) : null };
}

test('matmulQ8: native equals the reference bit for bit (grids, tile and block edges, 1 and 2 threads)', () => {
  const rng = new Rng(11);
  const before = addon.getThreads();
  try {
    for (const c of CASES) {
      const o = operands(c, rng);
      const want = new Float32Array(c.m * c.n);
      assert.equal(ref(o.a, o.sa, o.b, o.sb, want, c.m, c.k, c.n, o.bias), true, `${c.what}: reference on the grids`);
      for (const t of [1, 2]) {
        addon.setThreads(t);
        const got = new Float32Array(c.m * c.n).fill(NaN);
        assert.equal(native(o.a, o.sa, o.b, o.sb, got, c.m, c.k, c.n, o.bias), true, `${c.what}: on the grids`);
        assert.deepEqual(got, want, `${c.what} (${c.m}×${c.k}×${c.n}), ${t} thread(s)`);
      }
    }
  } finally {
    addon.setThreads(before);
  }
});

// The AVX2 path adds VPMADDUBSW's s16 pair sums in s16 over as many k-groups as B's largest code
// allows (g·2·255·max|qb| < 2^15: 64 groups for TWN's ±1, 9 for |qb| ≤ 7, 1 at 64), per column
// panel. Sums at their extremes (every qa = 127, i.e. the unsigned byte 255, times ±max|qb| over a
// k of many such spans) and panels of different largest codes in one call: still exact, so equal
// to the reference bit for bit. Other paths sum in int32 and must agree all the same.
test('matmulQ8: small weight codes, s16 partial sums at their extremes, exact on every path', () => {
  const rng = new Rng(14);
  const before = addon.getThreads();
  const m = 37, k = 1100, sa = f32(0.0125);
  const lims = [1, 2, 7, 9, 21, 63, 64];
  try {
    for (const mixed of [false, true]) {
      for (const lim of mixed ? [0] : lims) {
        const n = mixed ? 70 : 40;
        const sb = new Float32Array(n).map(() => f32(0.05 * (1 + rng.uniform())));
        const a = new Float32Array(m * k);
        for (let i = 0; i < m * k; i++) a[i] = f32((i < 8 * k ? 127 : i < 12 * k ? -127 : rng.int(255) - 127) * sa);
        const b = new Float32Array(n * k);
        for (let j = 0; j < n; j++) {
          const l = mixed ? lims[Math.floor(j / 11) % lims.length] : lim;
          const sign = j % 3 === 0 ? 1 : j % 3 === 1 ? -1 : 0;  // all +l, all −l, random
          for (let p = 0; p < k; p++) b[j * k + p] = f32((sign ? sign * l : rng.int(2 * l + 1) - l) * sb[j]);
        }
        const want = new Float32Array(m * n);
        assert.equal(ref(a, sa, b, sb, want, m, k, n, null), true);
        for (const t of [1, 2]) {
          addon.setThreads(t);
          const got = new Float32Array(m * n).fill(NaN);
          assert.equal(native(a, sa, b, sb, got, m, k, n, null), true);
          assert.deepEqual(got, want, `${mixed ? 'mixed panels' : `|qb| ≤ ${lim}`}, ${t} thread(s)`);
        }
        // The extreme sum itself: row 0 (qa = 127 throughout) times column 0 (qb = +l throughout).
        const l0 = mixed ? lims[0] : lim;
        assert.equal(want[0], f32(f32(sa * sb[0]) * (127 * l0 * k)), `${mixed ? 'mixed' : lim}: the extreme sum`);
      }
    }
  } finally {
    addon.setThreads(before);
  }
});

test('matmulQ8: a value off its grid (anywhere, NaN included) makes it return false, on every path', () => {
  const rng = new Rng(12);
  const c: Case = { m: 300, k: 37, n: 70, perRow: true, bias: false, what: '' };
  const o = operands(c, rng);
  const before = addon.getThreads();
  try {
    for (const t of [1, 2]) {
      addon.setThreads(t);
      // One element nudged by one ulp, in the first and in the last row block of A, in B's last
      // panel; a NaN; a code past the limits (|qa| = 128, |qb| = 65, each exactly on its grid
      // but outside what the integer sums take).
      const cases: [string, (x: { a: Float32Array; b: Float32Array }) => void][] = [
        ['a[0] + 1 ulp', (x) => { x.a[0] = nextUp(x.a[0]); }],
        ['a[last] + 1 ulp', (x) => { x.a[x.a.length - 1] = nextUp(x.a[x.a.length - 1]); }],
        ['b[last] + 1 ulp', (x) => { x.b[x.b.length - 1] = nextUp(x.b[x.b.length - 1]); }],
        ['a NaN', (x) => { x.a[5 * c.k + 3] = NaN; }],
        ['b NaN', (x) => { x.b[2] = NaN; }],
        ['qa = −128', (x) => { x.a[7] = f32(-128 * f32(o.sa)); }],
        ['qb = 65', (x) => { x.b[c.k * 3] = f32(65 * o.sb[3]); }],
      ];
      for (const [what, spoil] of cases) {
        const x = { a: o.a.slice(), b: o.b.slice() };
        spoil(x);
        const out = new Float32Array(c.m * c.n);
        assert.equal(ref(x.a, o.sa, x.b, o.sb, out, c.m, c.k, c.n, null), false, `reference: ${what}`);
        assert.equal(native(x.a, o.sa, x.b, o.sb, out, c.m, c.k, c.n, null), false, `native, ${t} thread(s): ${what}`);
      }
    }
  } finally {
    addon.setThreads(before);
  }
  // On the grid: ±0 and a zero scale (every value 0) are.
  const za = new Float32Array([0, -0, 0, -0]), zb = new Float32Array([-0, 0]), out = new Float32Array(2);
  for (const f of [native, ref]) {
    assert.equal(f(za, 0, zb, new Float32Array([0]), out.fill(NaN), 2, 2, 1, null), true);
    assert.ok(out[0] === 0 && out[1] === 0);
  }
});

test('matmulQ8: the codes read back as the contract says (ties to even, clamps, NaN, a zero scale)', () => {
  const sa = f32(0.1), inv = f32(1 / sa);
  assert.equal(q8Code(f32(2.5 * sa), inv, 127), 2);
  assert.equal(q8Code(f32(-3.5 * sa), inv, 127), -4);
  assert.equal(q8Code(1e6, inv, 127), 127);
  assert.equal(q8Code(-1e6, 1, 64), -64);
  assert.equal(q8Code(NaN, 1, 64), -64);
  assert.equal(q8Code(5, 0, 64), 0);
  // Every code of every grid step reads back as itself (the contract's ½ margin), both limits.
  for (const s of [f32(1e-30), f32(0.013), f32(0.5), f32(3), f32(1e30)]) {
    for (let q = -127; q <= 127; q++) assert.equal(q8Code(f32(q * s), f32(1 / s), 127), q, `q ${q}, s ${s}`);
  }
});

test('matmulQ8: within three float32 roundings of the codes\' exact product', () => {
  const rng = new Rng(13);
  for (const c of CASES.filter((x) => !x.bias)) {
    const o = operands(c, rng);
    const got = new Float32Array(c.m * c.n);
    native(o.a, o.sa, o.b, o.sb, got, c.m, c.k, c.n, null);
    const exact = new Float64Array(c.m * c.n), bound = new Float64Array(c.m * c.n);
    const invA = f32(1 / f32(o.sa));
    for (let i = 0; i < c.m; i++) {
      for (let j = 0; j < c.n; j++) {
        const s = o.sb[c.perRow ? j : 0], invB = f32(1 / s);
        let sum = 0;
        for (let p = 0; p < c.k; p++) sum += Math.round(o.a[i * c.k + p] * invA) * Math.round(o.b[j * c.k + p] * invB);
        const t = f32(o.sa) * s * sum;
        exact[i * c.n + j] = t;
        bound[i * c.n + j] = ((1 + U32) ** 3 - 1 + 3 * U64) * Math.abs(t); // + T's own rounding, with margin
      }
    }
    expectWithin(got, exact, bound, `${c.what}`);
  }
});

test('matmulQ8: bad arguments are refused, naming the argument', () => {
  const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8), one = new Float32Array([1]);
  for (const f of [native, ref]) {
    assert.throws(() => f(a, -1, b, one, c, 2, 3, 4), /matmulQ8: sa must be a finite scale ≥ 0/);
    assert.throws(() => f(a, NaN, b, one, c, 2, 3, 4), /matmulQ8: sa must be a finite scale ≥ 0/);
    assert.throws(() => f(a, 1, b, new Float32Array(3), c, 2, 3, 4), /matmulQ8: sb has length 3, expected 1 or n = 4/);
    assert.throws(() => f(a, 1, b, new Float32Array([Infinity]), c, 2, 3, 4), /matmulQ8: sb\[0\] must be a finite scale ≥ 0/);
    assert.throws(() => f(a, 1, b, one, new Float32Array(7), 2, 3, 4), /matmulQ8: c has length 7, expected 8/);
    assert.throws(() => f(a, 1, b, one, c, 2, 3, 4, new Float32Array(3)), /matmulQ8: bias has length 3, expected 4/);
    assert.throws(() => f(new Float32Array(2 * 131073), 1, new Float32Array(131073), one, new Float32Array(2), 2, 131073, 1),
      /matmulQ8: k 131073 exceeds 131072/);
  }
});

// Which path must run, decided independently of the addon: the avx512 one needs avx512_vnni
// in /proc/cpuinfo and a level of avx512 in force; the portable path is not registered (the
// float32 GEMM is faster than it), so Linear's integer forward runs exactly on avx2 and avx512.
function cpuFlags(): string[] {
  try {
    return (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
  } catch {
    return [];
  }
}
const info = nativeIsaInfo()!;
const integerForward = info.isa !== 'portable';

test('matmulQ8: the avx512 path exactly where the CPU has avx512_vnni; registered only with SIMD', () => {
  const fam = info.families.gemmQ8;
  const vnni = cpuFlags().includes('avx512_vnni');
  assert.equal(fam.paths.includes('avx512'), vnni, `gemmQ8 paths ${fam.paths} on a CPU ${vnni ? 'with' : 'without'} avx512_vnni`);
  assert.equal(fam.selected, info.isa === 'avx512' && !vnni ? 'avx2' : info.isa);
  assert.equal(kernelSource('matmulQ8'), integerForward ? 'native' : 'ref');
});

const TWN: WeightQuant = { rule: { kind: 'twn' }, granule: { kind: 'tensor' } };
const SYM4_ROW: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } };

/** y = linear(fakeQuantInput(x, 8), fakeQuantWeight(w, q), b) and its gradients, integer forward on or off. */
function run(q: WeightQuant, integer: boolean, seed: number, bits = 8) {
  const rng = new Rng(seed);
  const T = 37, I = 96, O = 45;
  const x = new Tensor(randomF32(T * I, rng), [T, I], true);
  const w = new Tensor(randomF32(O * I, rng, 0.1), [O, I], true);
  const b = new Tensor(randomF32(O, rng), [O], true);
  return withIntegerGemm(integer, () => {
    const xq = fakeQuantInput(x, bits), wq = fakeQuantWeight(w, q);
    const y = linear(xq, wq, b);
    const gy = randomF32(T * O, rng);
    backward(y, new Tensor(gy, y.shape));
    return { y: y.f32.slice(), xq, wq, b, gx: x.grad!.f32.slice(), gw: w.grad!.f32.slice(), gb: b.grad!.f32.slice(), T, I, O };
  });
}

test(`Linear on integer grids: ${integerForward ? 'the integer forward, within its bound of the float32 one' : 'float32 here (no SIMD integer path)'}; the same gradients`, () => {
  for (const [q, name] of [[TWN, 'TWN per tensor'], [SYM4_ROW, 'sym 4-bit per channel']] as const) {
    const on = run(q, true, 21), off = run(q, false, 21);
    const { T, I, O } = on;
    // The float32 forward is the float32 GEMM of x̂ and ŵ (+ b).
    // The float32 forward is the float32 GEMM of x̂ and ŵ on a C holding the bias (matmul's bias
    // contract), within gemmBound of the exact value.
    const withBias = new Float32Array(T * O).map((_, i) => on.b.f32[i % O]);
    const shape = { batch: 1, m: T, k: I, n: O, ta: false, tb: true, strideA: 0, strideB: 0, beta: 1 };
    const exact = new Float64Array(T * O).map((_, e) => {
      const i = Math.floor(e / O), j = e % O;
      let s = on.b.f32[j];
      for (let p = 0; p < I; p++) s += on.xq.f32[i * I + p] * on.wq.f32[j * I + p];
      return s;
    });
    const f32Bound = gemmBound(shape, on.xq.f32, on.wq.f32, withBias);
    expectWithin(off.y, exact, f32Bound, `${name}: float32 forward`);
    // The grids fake quantization recorded: one scale for x̂, one per tensor (TWN) or per row.
    const gx = integerGrid(on.xq)!, gw = integerGrid(on.wq)!;
    assert.equal(gx.scales.length, 1);
    assert.equal(gw.scales.length, q === TWN ? 1 : O);
    assert.deepEqual([gx.maxCode, gw.maxCode], [127, q === TWN ? 1 : 8]);
    if (integerForward) {
      // Exactly matmulQ8 on those scales, and within its bounds of the exact value: 3 float32
      // roundings of the codes' product, the codes' product within (2u + u²) per term of Σ x̂ŵ
      // (x̂ = fl(qa·sa), ŵ = fl(qb·sb)), and the bias add one more rounding.
      const q8Want = new Float32Array(T * O);
      ref(on.xq.f32, gx.scales[0], on.wq.f32, gw.scales, q8Want, T, I, O, on.b.f32);
      assert.deepEqual(on.y, q8Want, `${name}: Linear ran matmulQ8`);
      const abs = gemmAbsSum(shape, on.xq.f32, on.wq.f32, new Float32Array(T * O));
      const q8Bound = abs.map((t, e) => {
        const ev = ((1 + U32) ** 3 - 1 + 2 * U32 + U32 * U32) * (1 + 3 * U32) * t; // x̂·ŵ → v
        const bias = Math.abs(on.b.f32[e % O]);
        return ev + U32 * (Math.abs(exact[e]) + ev) + gamma(I + 1, U64) * (t + bias); // + b, float64 `exact`
      });
      expectWithin(on.y, exact, q8Bound, `${name}: integer forward`);
    } else {
      assert.deepEqual(on.y, off.y, `${name}: no integer path, the same float32 forward`);
    }
    // The backward does not depend on the forward's kernel (the same GEMMs on x̂ and ŵ, the
    // upstream gradient the same).
    assert.deepEqual(on.gx, off.gx, `${name}: dx`);
    assert.deepEqual(on.gw, off.gw, `${name}: dw`);
    assert.deepEqual(on.gb, off.gb, `${name}: db`);
  }
});

test('Linear on integer grids: 8-bit weights, groups and unquantized inputs keep the float32 forward', () => {
  const cases: [WeightQuant, number | null, string][] = [
    [{ rule: { kind: 'sym', bits: 8 }, granule: { kind: 'tensor' } }, 8, '8-bit weights (|q| up to 128)'],
    [{ rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 32 } }, 8, 'groups along k'],
    [TWN, null, 'an unquantized input'],
  ];
  for (const [q, bits, name] of cases) {
    const rng = new Rng(31);
    const x = new Tensor(randomF32(9 * 64, rng), [9, 64]);
    const w = new Tensor(randomF32(10 * 64, rng, 0.1), [10, 64]);
    const xq = bits === null ? x : fakeQuantInput(x, bits);
    const wq = fakeQuantWeight(w, q);
    // (On AMX a weight on its grid with a float or 8-bit-weight forward runs matmulOnGrid in
    // float32 instead: test/backend/gemm-grid.test.ts; here, not matmulQ8.)
    const y = withGridGemm(false, () => linear(xq, wq));
    const want = new Float32Array(9 * 10);
    addon.matmul!(xq.f32, wq.f32, want, 1, 9, 64, 10, false, true, 0, 0, 0);
    assert.deepEqual(y.f32, want, name);
  }
});

test('Linear on integer grids: a tensor changed in place since fake quantization made it is multiplied in float32', () => {
  const rng = new Rng(41);
  const x = new Tensor(randomF32(20 * 64, rng), [20, 64]);
  const w = new Tensor(randomF32(30 * 64, rng, 0.1), [30, 64]);
  for (const spoil of ['weight', 'input'] as const) {
    const xq = fakeQuantInput(x, 8), wq = fakeQuantWeight(w, TWN);
    const t = spoil === 'weight' ? wq : xq;
    t.f32[t.size - 1] += 1e-3; // off the grid it was recorded with
    const y = linear(xq, wq);
    const want = new Float32Array(20 * 30);
    addon.matmul!(xq.f32, wq.f32, want, 1, 20, 64, 30, false, true, 0, 0, 0);
    assert.deepEqual(y.f32, want, `the ${spoil} off its grid`);
  }
});
