// matmulOnGrid (native/gemm_grid.cc: AMX only) against the exact product and the reference
// (src/backend/ref/gemm.ts), and Linear's backward on integer grids (src/tensor/ops/matmul.ts)
// against the float32 GEMMs it replaces. scripts/test.mjs reruns this file under KDQAT_AMX=off
// and the lower ISA levels, where the kernel must not be registered (and the reference is still
// checked).
//
// Bounds, derived (Kernels.matmulOnGrid):
// - Either implementation: c_ij = Σ_p a'_ip·q_pj with a' = fl(a·s) against b = fl(q·s) (one
//   rounding each: |a'·q − a·b| ≤ 2u/(1 − u)·|a·b|) and the products exact (the native kernel's
//   three bf16 pieces of a' sum to it exactly, their magnitudes to at most 1.008·|a'|, and each
//   piece times a code is exact; the reference's product of a float32 and |q| ≤ 256 is exact in
//   float64), summed in float32 over at most 3k terms in some order: |c − Σ a·b| ≤ (2u +
//   1.01·γ_3k)·Σ|a·b| (+ k·2^-116 for pieces below 2^-126, which the data here never has; see
//   the underflow case). The exact value is formed in float64: + γ^{f64}_k·Σ|a·b|.
// - Native and reference differ in their order of summation, so they are compared through this
//   bound, not bit for bit; the native kernel's order does not depend on the thread count, so 1
//   and 2 threads agree bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels } from '../../src/backend/ref/gemm.js';
import type { NativeAddon } from '../../src/backend/native/index.js';
import { backward, nativeIsaInfo } from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { linear, integerGrid } from '../../src/tensor/ops/matmul.js';
import { kernelSource } from '../../src/tensor/registry.js';
import { computeScope, withCompute, withComputeScope, withGridGemm, withInt8Grad, withIntegerGemm } from '../../src/tensor/compute.js';
import { recompute } from '../../src/tensor/recompute.js';
import { fakeQuantInput, fakeQuantWeight } from '../../src/quant/ops.js';
import type { WeightQuant } from '../../src/quant/rules.js';
import { randomF32 } from '../util.js';
import { U32, U64, gamma, expectWithin } from '../bounds.js';

const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as NativeAddon;
const info = nativeIsaInfo()!;
const runsHere = info.amx.matmulOnGrid;
const ref = gemmKernels.matmulOnGrid!;
const f32 = Math.fround;

interface Case {
  m: number; k: number; n: number; ta: boolean; tb: boolean; perRow: boolean; lim: number; bias?: boolean; what: string;
}
const CASES: Case[] = [
  { m: 1, k: 1, n: 1, ta: false, tb: false, perRow: false, lim: 1, what: '1×1×1' },
  { m: 3, k: 5, n: 7, ta: true, tb: false, perRow: true, lim: 256, what: 'odd k, codes up to ±256' },
  { m: 33, k: 33, n: 33, ta: false, tb: false, perRow: true, lim: 127, bias: true, what: 'one past the tiles (32 × 32, 32 k per tile step), a bias' },
  { m: 70, k: 100, n: 65, ta: true, tb: false, perRow: false, lim: 1, what: 'A transposed, ternary codes' },
  { m: 130, k: 1100, n: 40, ta: false, tb: false, perRow: true, lim: 8, what: 'two K slices (KC 1024), past the A block (128 rows)' },
  { m: 40, k: 2100, n: 90, ta: true, tb: false, perRow: false, lim: 127, bias: true, what: 'three K slices, A transposed, a bias' },
  { m: 5, k: 64, n: 300, ta: false, tb: false, perRow: false, lim: 1, what: 'few rows: column panels split over the threads' },
  { m: 4, k: 0, n: 3, ta: false, tb: false, perRow: false, lim: 1, bias: true, what: 'k = 0: the bias alone' },
  // B stored transposed (a Linear's weight in its forward): a step per column of op(B).
  { m: 1, k: 1, n: 1, ta: false, tb: true, perRow: true, lim: 1, what: 'transB 1×1×1' },
  { m: 37, k: 45, n: 50, ta: false, tb: true, perRow: true, lim: 8, bias: true, what: 'transB, odd sizes, a bias' },
  { m: 140, k: 1050, n: 33, ta: false, tb: true, perRow: true, lim: 127, bias: true, what: 'transB, two K slices (the scale after the last), a bias' },
  { m: 9, k: 96, n: 70, ta: true, tb: true, perRow: false, lim: 1, what: 'transB and transA, one step' },
  { m: 2, k: 0, n: 5, ta: false, tb: true, perRow: true, lim: 1, bias: true, what: 'transB, k = 0: the bias alone' },
];

/** A with a wide spread of magnitudes (the three pieces all matter), B = q·s on its grid, stored
 *  (k, n) or with tb (n, k), a step per stored row or one; a bias if the case has one. */
function operands(c: Case, rng: Rng): { a: Float32Array; b: Float32Array; sb: Float32Array; bias: Float32Array | null } {
  const a = new Float32Array(c.m * c.k).map(() => f32(rng.normal() * 2 ** (rng.int(41) - 20)));
  const rows = c.tb ? c.n : c.k, cols = c.tb ? c.k : c.n;
  const sb = new Float32Array(c.perRow ? rows : 1).map(() => f32(0.01 * (1 + rng.uniform())));
  const b = new Float32Array(c.k * c.n);
  for (let r = 0; r < rows; r++) for (let t = 0; t < cols; t++) b[r * cols + t] = f32((rng.int(2 * c.lim + 1) - c.lim) * sb[c.perRow ? r : 0]);
  return { a, b, sb, bias: c.bias ? new Float32Array(c.n).map(() => f32(rng.normal())) : null };
}

/** Σ_p op(A)_ip·op(B)_pj (+ bias_j) in float64 and the bound of the header on |c − it|. */
function exactAndBound(c: Case, a: Float32Array, b: Float32Array, bias: Float32Array | null = null): { exact: Float64Array; bound: Float64Array } {
  const exact = new Float64Array(c.m * c.n), bound = new Float64Array(c.m * c.n);
  const f = 2 * U32 + 1.01 * gamma(3 * c.k) + gamma(c.k + 1, U64);
  for (let i = 0; i < c.m; i++) {
    for (let j = 0; j < c.n; j++) {
      let s = 0, abs = 0;
      for (let p = 0; p < c.k; p++) {
        const t = (c.ta ? a[p * c.m + i] : a[i * c.k + p]) * (c.tb ? b[j * c.k + p] : b[p * c.n + j]);
        s += t;
        abs += Math.abs(t);
      }
      const e = f * abs;
      exact[i * c.n + j] = s + (bias ? bias[j] : 0);
      // A bias: one more rounding of |c| ≤ |Σ| + e + |bias|.
      bound[i * c.n + j] = e + (bias ? U32 * (Math.abs(s) + e + Math.abs(bias[j])) * (1 + U32) + gamma(1, U64) * Math.abs(bias[j]) : 0);
    }
  }
  return { exact, bound };
}

test('matmulOnGrid: the reference within the float32 bound of the exact product', () => {
  const rng = new Rng(51);
  for (const c of CASES) {
    const { a, b, sb, bias } = operands(c, rng);
    const got = new Float32Array(c.m * c.n).fill(NaN);
    assert.equal(ref(a, b, sb, got, c.m, c.k, c.n, c.ta, c.tb, bias), true, `${c.what}: on the grid`);
    const { exact, bound } = exactAndBound(c, a, b, bias);
    expectWithin(got, exact, bound, `reference, ${c.what}`);
  }
});

test(`matmulOnGrid: ${runsHere ? 'native within the bound, the same bits on 1 and 2 threads' : `not registered here (${info.amx.reason ?? 'no avx512_bf16'}); the native entry point says why`}`, () => {
  assert.equal(kernelSource('matmulOnGrid'), runsHere ? 'native' : 'ref');
  const native = addon.matmulOnGrid!;
  if (!runsHere) {
    const one = new Float32Array(1);
    assert.throws(() => native(one, one, one, one, 1, 1, 1, false, false), /matmulOnGrid: needs AMX, unavailable: /);
    return;
  }
  const rng = new Rng(52);
  const before = addon.getThreads();
  try {
    for (const c of CASES) {
      const { a, b, sb, bias } = operands(c, rng);
      const { exact, bound } = exactAndBound(c, a, b, bias);
      let first: Float32Array | null = null;
      for (const t of [1, 2]) {
        addon.setThreads(t);
        const got = new Float32Array(c.m * c.n).fill(NaN);
        assert.equal(native(a, b, sb, got, c.m, c.k, c.n, c.ta, c.tb, bias), true, `${c.what}: on the grid`);
        expectWithin(got, exact, bound, `native, ${c.what}, ${t} thread(s)`);
        if (first) assert.deepEqual(got, first, `${c.what}: 2 threads as 1`);
        first = got;
      }
    }
  } finally {
    addon.setThreads(before);
  }
});

/** The next float32 above x (x finite). */
function nextUp(x: number): number {
  const b = new Float32Array([x]), u = new Int32Array(b.buffer);
  u[0] += x > 0 ? 1 : x < 0 ? -1 : 1;
  return b[0];
}

test('matmulOnGrid: a value of B off its grid (in any K slice, NaN, |q| = 257; B as stored or transposed) makes it return false', () => {
  const impls: [string, typeof ref][] = [['reference', ref]];
  if (runsHere) impls.push(['native', addon.matmulOnGrid!]);
  for (const tb of [false, true]) {
    const c: Case = { m: 40, k: 1500, n: 50, ta: false, tb, perRow: true, lim: 256, what: '' };
    const { a, b, sb } = operands(c, new Rng(53));
    const cols = tb ? c.k : c.n; // a stored row's length
    const spoils: [string, (b: Float32Array) => void][] = [
      ['b[0] + 1 ulp', (x) => { x[0] = nextUp(x[0]); }],
      ['b[last] + 1 ulp (the second K slice, the last panel)', (x) => { x[x.length - 1] = nextUp(x[x.length - 1]); }],
      ['a NaN', (x) => { x[7 * cols + 3] = NaN; }],
      ['an Inf', (x) => { x[9] = Infinity; }],
      ['q = 257', (x) => { x[5 * cols + 1] = f32(257 * sb[5]); }],
    ];
    for (const [what, spoil] of spoils) {
      const x = b.slice();
      spoil(x);
      for (const [name, f] of impls) {
        assert.equal(f(a, x, sb, new Float32Array(c.m * c.n), c.m, c.k, c.n, false, tb), false, `${name}${tb ? ', transB' : ''}: ${what}`);
      }
    }
  }
  // On the grid: q = ±256, ±0, and a zero scale with every value 0.
  const ok: [string, Float32Array, Float32Array][] = [
    ['q = ±256', new Float32Array([f32(256 * 0.3), f32(-256 * 0.3)]), new Float32Array([f32(0.3)])],
    ['±0, zero scale', new Float32Array([0, -0]), new Float32Array([0])],
  ];
  for (const [what, bb, s] of ok) {
    for (const [name, f] of impls) {
      const out = new Float32Array(4).fill(NaN); // A (2, 1) = [2, 3] times B (1, 2): exact products
      assert.equal(f(new Float32Array([2, 3]), bb, s, out, 2, 1, 2, false, false), true, `${name}: ${what}`);
      const want = [2 * bb[0], 2 * bb[1], 3 * bb[0], 3 * bb[1]].map(f32);
      assert.ok(want.every((v, e) => v === out[e]), `${name}: ${what}: ${[...out]} vs ${want}`);
    }
  }
});

test('matmulOnGrid: Inf and NaN in A give what float32 arithmetic gives; tiny A loses at most the stated underflow term', () => {
  const k = 40, n = 3;
  const sb = new Float32Array([0.5]);
  const b = new Float32Array(k * n).map((_, e) => f32(((e % 3) - 1) * 0.5)); // codes −1, 0, 1 by column
  const a = new Float32Array(4 * k).map((_, e) => f32(1 + (e % 5)));
  a[0] = Infinity; // row 0: Inf times −1, 0, 1 → −Inf, NaN, Inf
  a[k + 1] = NaN; // row 1: NaN
  a[2 * k + 2] = 3e38; // row 2: overflows ±Inf, or NaN against the 0 column... fl(3e38·0.5) is finite
  for (let p = 0; p < k; p++) a[3 * k + p] = f32(2 ** -125 * (1 + p / 64)); // row 3: pieces under 2^-126
  const impls: [string, typeof ref][] = [['reference', ref]];
  if (runsHere) impls.push(['native', addon.matmulOnGrid!]);
  const want = new Float32Array(4 * n);
  addon.matmul!(a, b, want, 1, 4, k, n, false, false, 0, 0, 0); // float32 GEMM on the values
  for (const [name, f] of impls) {
    const got = new Float32Array(4 * n);
    assert.equal(f(a, b, sb, got, 4, k, n, false, false), true);
    for (let e = 0; e < 3 * n; e++) {
      if (!Number.isFinite(want[e])) assert.ok(Object.is(got[e], want[e]), `${name}: element ${e} ${got[e]}, float32 GEMM ${want[e]}`);
    }
    for (let j = 0; j < n; j++) {
      let exact = 0, abs = 0;
      for (let p = 0; p < k; p++) {
        exact += a[3 * k + p] * b[p * n + j];
        abs += Math.abs(a[3 * k + p] * b[p * n + j]);
      }
      const bound = (2 * U32 + 1.01 * gamma(3 * k)) * abs + k * 2 ** -116;
      assert.ok(Math.abs(got[3 * n + j] - exact) <= bound, `${name}: underflow row, column ${j}: ${got[3 * n + j]} vs ${exact}`);
    }
  }
});

test('matmulOnGrid: bad arguments are refused, naming the argument', () => {
  const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8), one = new Float32Array([1]);
  const impls: (typeof ref)[] = [ref];
  if (runsHere) impls.push(addon.matmulOnGrid!);
  for (const f of impls) {
    assert.throws(() => f(a, b, new Float32Array(2), c, 2, 3, 4, false, false), /matmulOnGrid: sb has length 2, expected 1 or k = 3/);
    assert.throws(() => f(a, b, new Float32Array([-1]), c, 2, 3, 4, false, false), /matmulOnGrid: sb\[0\] must be a finite scale ≥ 0/);
    assert.throws(() => f(a, b, new Float32Array([1, 1, NaN]), c, 2, 3, 4, false, false), /matmulOnGrid: sb\[2\] must be a finite scale ≥ 0/);
    assert.throws(() => f(a, b, one, new Float32Array(7), 2, 3, 4, false, false), /matmulOnGrid: c has length 7, expected 8/);
    assert.throws(() => f(new Float32Array(5), b, one, c, 2, 3, 4, false, false), /matmulOnGrid: a has length 5, expected 6/);
    assert.throws(() => f(a, b, new Float32Array(3), c, 2, 3, 4, false, true), /matmulOnGrid: sb has length 3, expected 1 or n = 4/);
    assert.throws(() => f(a, b, one, c, 2, 3, 4, false, false, new Float32Array(3)), /matmulOnGrid: bias has length 3, expected 4/);
  }
});

const TWN: WeightQuant = { rule: { kind: 'twn' }, granule: { kind: 'tensor' } };
const SYM4_ROW: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } };
const SYM8_ROW: WeightQuant = { rule: { kind: 'sym', bits: 8 }, granule: { kind: 'channel' } };
const SYM4_G32: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 32 } };

/** dx and dW of linear(fakeQuantInput(x, 8), fakeQuantWeight(w, q)) for the upstream gradient gy,
 *  the grid backward on or off, optionally inside recompute (selective: the GEMM output kept). */
function grads(q: WeightQuant, grid: boolean, seed: number, o: { recomputed?: boolean } = {}) {
  const rng = new Rng(seed);
  const T = 45, I = 96, O = 70;
  const x = new Tensor(randomF32(T * I, rng), [T, I], true);
  const w = new Tensor(randomF32(O * I, rng, 0.1), [O, I], true);
  const gy = randomF32(T * O, rng);
  let xq: Tensor | null = null, wq: Tensor | null = null;
  const y = withGridGemm(grid, () => {
    const f = (ins: readonly Tensor[]): Tensor[] => {
      xq = fakeQuantInput(ins[0], 8);
      wq = fakeQuantWeight(ins[1], q);
      return [linear(xq, wq)];
    };
    return o.recomputed ? recompute(f, [x, w], { selective: true })[0] : f([x, w])[0];
  });
  backward(y, new Tensor(gy, y.shape));
  return { gx: x.grad!.f32.slice(), gw: w.grad!.f32.slice(), xq: xq!, wq: wq!, gy, T, I, O };
}

test(`Linear on integer grids: the backward ${runsHere ? 'runs matmulOnGrid' : 'is the float32 GEMMs here'}, within the bound; recomputed the same; groups and 'bf16'`, () => {
  for (const [q, name] of [[TWN, 'TWN per tensor'], [SYM8_ROW, 'sym 8-bit per channel']] as const) {
    const on = grads(q, true, 61), off = grads(q, false, 61);
    const { T, I, O, gy } = on;
    const gx = integerGrid(on.xq)!, gw = integerGrid(on.wq)!;
    // The fake quantizers' STE passes the GEMMs' gradients through where |x| is inside the clip
    // range, so compare the GEMMs themselves: the float32 GEMM (grid backward off) and
    // matmulOnGrid on the same operands.
    const dxq = new Float32Array(T * I), dwq = new Float32Array(O * I);
    addon.matmul!(gy, on.wq.f32, dxq, 1, T, O, I, false, false, 0, 0, 0);
    addon.matmul!(gy, on.xq.f32, dwq, 1, O, T, I, true, false, 0, 0, 0);
    const wantX = new Float32Array(T * I), wantW = new Float32Array(O * I);
    if (runsHere) {
      assert.equal(addon.matmulOnGrid!(gy, on.wq.f32, gw.scales, wantX, T, O, I, false, false), true);
      assert.equal(addon.matmulOnGrid!(gy, on.xq.f32, gx.scales, wantW, O, T, I, true, false), true);
    } else {
      wantX.set(dxq);
      wantW.set(dwq);
    }
    // x's gradient is dx̂ through the input quantizer's STE (the same mask on and off), w's the
    // weight quantizer's: equal to the GEMMs where the masks pass, so check the passed elements.
    const pass = (got: Float32Array, ref32: Float32Array, gemm: Float32Array, what: string) => {
      let passed = 0;
      for (let e = 0; e < got.length; e++) {
        if (ref32[e] === 0 && got[e] === 0) continue;
        passed++;
        assert.equal(got[e], gemm[e], `${name}: ${what}[${e}]`);
      }
      assert.ok(passed > got.length / 2, `${name}: ${what} mostly passed by the STE`);
    };
    pass(on.gx, off.gx, wantX, 'dx (grid)');
    pass(off.gx, on.gx, dxq, 'dx (float32)');
    if (q === TWN) {
      pass(on.gw, off.gw, wantW, 'dW (grid)');
      pass(off.gw, on.gw, dwq, 'dW (float32)');
    }
    // Both GEMMs' results within the float32 bound of the exact product.
    const cases: [Float32Array, Case, Float32Array, Float32Array][] = [
      [wantX, { m: T, k: O, n: I, ta: false, tb: false, perRow: false, lim: 0, what: 'dx' }, gy, on.wq.f32],
      [wantW, { m: O, k: T, n: I, ta: true, tb: false, perRow: false, lim: 0, what: 'dW' }, gy, on.xq.f32],
    ];
    for (const [got, c, a, b] of cases) {
      const { exact, bound } = exactAndBound(c, a, b);
      expectWithin(got, exact, bound, `${name}: ${c.what}`);
    }
    // Recomputed (selective), the second forward keeps the first one's setting (compute.ts
    // computeScope): the same gradients as without recomputation, grid backward on and off.
    for (const grid of [true, false]) {
      const r = grads(q, grid, 61, { recomputed: true }), plain = grid ? on : off;
      assert.deepEqual([r.gx, r.gw], [plain.gx, plain.gw], `${name}: recomputed, grid backward ${grid ? 'on' : 'off'}`);
    }
  }
  // Groups along k (no per-row scale): dx by the float32 GEMM either way; dW still on x̂'s grid.
  const g = grads(SYM4_G32, true, 62), h = grads(SYM4_G32, false, 62);
  assert.deepEqual(g.gx, h.gx, 'groups: dx');
  assert.equal(g.gw.some((v, e) => v !== h.gw[e]), runsHere, 'groups: dW on the grid of x̂ where the kernel runs');
  // Under 'bf16' the bf16 GEMMs, whatever the grids.
  if (info.bf16.available) {
    const bf = (grid: boolean) => withCompute('bf16', () => grads(TWN, grid, 63));
    const a = bf(true), b = bf(false);
    assert.deepEqual([a.gx, a.gw], [b.gx, b.gw], "'bf16'");
  }
});

test('computeScope: every setting round-trips through withComputeScope', () => {
  const s = withIntegerGemm(false, () => withGridGemm(false, () => withInt8Grad(true, () => withCompute('bf16', () => computeScope(), { head: 'fp32' }))));
  assert.deepEqual(s, { precision: 'bf16', backward: null, head: { forward: 'fp32', backward: 'fp32' }, integerGemm: false, gridGemm: false, int8Grad: true });
  assert.deepEqual(withComputeScope(s, () => computeScope()), s);
  const s2 = withCompute('fp32', () => computeScope(), { head: { forward: 'fp32', backward: 'bf16' }, backward: 'bf16' });
  assert.deepEqual(withComputeScope(s2, () => computeScope()), s2);
  assert.deepEqual(computeScope(), { precision: 'fp32', backward: null, head: { forward: 'fp32', backward: 'fp32' }, integerGemm: true, gridGemm: true, int8Grad: false });
});

test(`Linear, a weight on its grid and a float input: the forward ${runsHere ? 'runs matmulOnGrid (B stored transposed, the step per output), within the bound' : 'is the float32 GEMM here'}`, () => {
  const rng = new Rng(71);
  const T = 33, I = 80, O = 41;
  for (const [q, name] of [[SYM4_ROW, 'sym 4-bit per channel'], [TWN, 'TWN per tensor']] as const) {
    const x = new Tensor(randomF32(T * I, rng), [T, I]);
    const w = new Tensor(randomF32(O * I, rng, 0.1), [O, I]);
    const b = new Tensor(randomF32(O, rng), [O]);
    const wq = fakeQuantWeight(w, q);
    const on = linear(x, wq, b).f32.slice(), off = withGridGemm(false, () => linear(x, wq, b)).f32.slice();
    const f32Gemm = new Float32Array(T * O);
    addon.matmul!(x.f32, wq.f32, f32Gemm, 1, T, I, O, false, true, 0, 0, 0, b.f32);
    assert.deepEqual(off, f32Gemm, `${name}: grid GEMMs off, the float32 GEMM`);
    if (!runsHere) {
      assert.deepEqual(on, f32Gemm, `${name}: no AMX, the float32 GEMM`);
      continue;
    }
    const want = new Float32Array(T * O);
    assert.equal(addon.matmulOnGrid!(x.f32, wq.f32, integerGrid(wq)!.scales, want, T, I, O, false, true, b.f32), true);
    assert.deepEqual(on, want, `${name}: Linear ran matmulOnGrid`);
    const { exact, bound } = exactAndBound({ m: T, k: I, n: O, ta: false, tb: true, perRow: false, lim: 0, what: '' }, x.f32, wq.f32, b.f32);
    expectWithin(on, exact, bound, name);
  }
  // With an 8-bit input too, the integer forward (matmulQ8) keeps precedence.
  const x = new Tensor(randomF32(T * I, rng), [T, I]), w = new Tensor(randomF32(O * I, rng, 0.1), [O, I]);
  const xq = fakeQuantInput(x, 8), wq = fakeQuantWeight(w, TWN);
  const q8 = new Float32Array(T * O);
  if (kernelSource('matmulQ8') === 'native') {
    assert.equal(addon.matmulQ8!(xq.f32, integerGrid(xq)!.scales[0], wq.f32, integerGrid(wq)!.scales, q8, T, I, O, null), true);
    assert.deepEqual(linear(xq, wq).f32, q8, 'matmulQ8 first');
  }
});
