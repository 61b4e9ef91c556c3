// matmulQ8Grad (native/gemm_q8.cc, beside matmulQ8: AMX, AVX512_VNNI, AVX2) against the reference
// (src/backend/ref/gemm.ts) and against the exact product, and Linear's int8 input gradient
// (src/tensor/ops/matmul.ts, compute.ts withInt8Grad) against the kernel and the float32 backward.
// scripts/test.mjs reruns this file under each lower KDQAT_ISA (its name holds gemm-q8), so every
// compiled path is compared on the CPUs that run it.
//
// Bounds, derived:
// - Native vs reference: each row's step comes from a maximum (exact in any order) and two
//   correctly rounded divisions, each code from one float32 product, a clamp and round half to
//   even, the sums are exact integers (|Σ| ≤ k·127·64 < 2^31), then the same two float32
//   roundings: equal bit for bit on every path, tiling and thread count. No tolerance.
// - Against the exact product Σ_p a_ip·Ŵ_pj (float64 here: k + 1 more roundings of 2^-53, far
//   below the bound): the contract's (½ + 2^-13)·sa_i·Σ_p |qb_pj| + 4u·Σ_p |a_ip·Ŵ_pj|.
// - A weight on no grid the kernel takes (per group): Linear first rounds Ŵ to ŵ' on a 7-bit grid
//   per row (fakeQuant sym 7, step s'_p = max|Ŵ_p|/63), |ŵ'_pj − Ŵ_pj| ≤ s'_p·(½ + 64u) + u·|Ŵ_pj|
//   (the quotient's rounding moves it by ≤ 64u steps, the product's by u·|ŵ'| ≤ u·(|Ŵ| + s'));
//   so against Σ_p a_ip·Ŵ_pj the bound above over ŵ' plus Σ_p |a_ip|·(s'_p·(½ + 65u) + u·|Ŵ_pj|).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels, q8Code } from '../../src/backend/ref/gemm.js';
import type { NativeAddon } from '../../src/backend/native/index.js';
import { backward } from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { linear, onIntegerGrid } from '../../src/tensor/ops/matmul.js';
import { kernelSource } from '../../src/tensor/registry.js';
import { withInt8Grad } from '../../src/tensor/compute.js';
import { U32 } from '../bounds.js';
import { quantKernels } from '../../src/backend/ref/quant.js';
import { QuantRule } from '../../src/tensor/kernels.js';
import { fakeQuantWeight } from '../../src/quant/ops.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';

const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as NativeAddon;
const native = addon.matmulQ8Grad!;
const ref = gemmKernels.matmulQ8Grad!;
const f32 = Math.fround;

/** Ŵ (k, n): row p = q·sb_p with q uniform in [−lim, lim]. */
function weight(k: number, n: number, sb: Float32Array, lim: number, rng: Rng): Float32Array {
  const b = new Float32Array(k * n);
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) b[p * n + j] = f32((rng.int(2 * lim + 1) - lim) * sb[sb.length === 1 ? 0 : p]);
  return b;
}

/** dY (m, k) as gradients look: mostly small, a few large per row (a heavy tail), row 1 zero,
 *  row 2 tiny (below the contract's 2^-100), the rest scaled differently per row. */
function gradient(m: number, k: number, rng: Rng): Float32Array {
  const a = new Float32Array(m * k);
  for (let i = 0; i < m; i++) {
    const scale = i === 2 ? 2 ** -110 : 10 ** (rng.uniform() * 6 - 4);
    for (let p = 0; p < k; p++) {
      const tail = rng.uniform() < 0.02 ? 30 : 1;
      a[i * k + p] = i === 1 ? 0 : f32(rng.normal() * tail * scale);
    }
  }
  return a;
}

interface Case { m: number; k: number; n: number; perRow: boolean; lim: number; what: string }
const CASES: Case[] = [
  { m: 1, k: 1, n: 1, perRow: false, lim: 1, what: '1×1×1' },
  { m: 3, k: 5, n: 7, perRow: true, lim: 64, what: 'k not a multiple of 4, 7-bit codes' },
  { m: 13, k: 300, n: 17, perRow: true, lim: 1, what: 'one past two AVX2 tiles (6 rows, 16 columns), TWN' },
  { m: 15, k: 64, n: 33, perRow: false, lim: 7, what: 'one past the AVX-512 tile (14 rows, 32 columns)' },
  { m: 300, k: 96, n: 70, perRow: true, lim: 1, what: 'several row blocks (MC 140 / 128 / 126)' },
  { m: 6, k: 40, n: 200, perRow: true, lim: 3, what: 'few rows: column panels split over the threads' },
  { m: 161, k: 190, n: 95, perRow: true, lim: 64, what: 'past the AMX row block, k-words not a multiple of 16' },
];

function operands(c: Case, rng: Rng): { a: Float32Array; b: Float32Array; sb: Float32Array } {
  const sb = new Float32Array(c.perRow ? c.k : 1).map(() => f32(0.05 * (1 + rng.uniform())));
  return { a: gradient(c.m, c.k, rng), b: weight(c.k, c.n, sb, c.lim, rng), sb };
}

function withThreads(fn: (t: number) => void): void {
  const before = addon.getThreads();
  try {
    for (const t of [1, 2]) {
      addon.setThreads(t);
      fn(t);
    }
  } finally {
    addon.setThreads(before);
  }
}

test('matmulQ8Grad: native equals the reference bit for bit (per-row and per-tensor steps, tile and block edges, 1 and 2 threads)', () => {
  const rng = new Rng(21);
  for (const c of CASES) {
    const o = operands(c, rng);
    const want = new Float32Array(c.m * c.n);
    assert.equal(ref(o.a, o.b, o.sb, want, c.m, c.k, c.n), true, `${c.what}: reference`);
    withThreads((t) => {
      const got = new Float32Array(c.m * c.n).fill(NaN);
      assert.equal(native(o.a, o.b, o.sb, got, c.m, c.k, c.n), true, `${c.what}: native`);
      assert.deepEqual(got, want, `${c.what} (${c.m}×${c.k}×${c.n}), ${t} thread(s)`);
    });
  }
});

test('matmulQ8Grad: within half a step per code of the exact product (the contract\'s bound), zero and tiny rows zero', () => {
  const rng = new Rng(22);
  for (const c of CASES) {
    const o = operands(c, rng);
    const got = new Float32Array(c.m * c.n);
    assert.equal(native(o.a, o.b, o.sb, got, c.m, c.k, c.n), true);
    const step = (p: number): number => o.sb[o.sb.length === 1 ? 0 : p];
    let worst = 0;
    for (let i = 0; i < c.m; i++) {
      let r = 0;
      for (let p = 0; p < c.k; p++) r = Math.max(r, Math.abs(f32(o.a[i * c.k + p] * step(p))));
      const sa = r >= 2 ** -100 ? f32(r / 127) : 0;
      for (let j = 0; j < c.n; j++) {
        let exact = 0, absProd = 0, absQ = 0;
        for (let p = 0; p < c.k; p++) {
          const w = o.b[p * c.n + j];
          exact += o.a[i * c.k + p] * w;
          absProd += Math.abs(o.a[i * c.k + p] * w);
          absQ += Math.abs(q8Code(w, f32(1 / step(p)), 64));
        }
        const bound = (0.5 + 2 ** -13) * sa * absQ + 4 * U32 * absProd + (sa === 0 ? 2 ** -100 * absQ : 0);
        const err = Math.abs(got[i * c.n + j] - exact);
        assert.ok(err <= bound, `${c.what}: c[${i}][${j}] = ${got[i * c.n + j]}, exact ${exact}: error ${err} > bound ${bound}`);
        if (bound > 0) worst = Math.max(worst, err / bound);
        if (i === 1 || i === 2) assert.equal(got[i * c.n + j], 0, `${c.what}: row ${i} (${i === 1 ? 'zero' : 'below 2^-100'}) gives 0`);
      }
    }
    // The bound is not loose by orders of magnitude: rounding 8-bit codes uses a good part of it.
    if (c.k >= 40) assert.ok(worst > 0.01, `${c.what}: the worst error is ${worst} of the bound`);
  }
});

test('matmulQ8Grad: false when the weight is off its grid or the gradient is not finite; argument errors', () => {
  const rng = new Rng(23);
  const c: Case = { m: 300, k: 37, n: 70, perRow: true, lim: 1, what: '' };
  const o = operands(c, rng);
  withThreads((t) => {
    const cases: [string, (x: { a: Float32Array; b: Float32Array }) => void][] = [
      ['b[last] + 1 ulp', (x) => { x.b[x.b.length - 1] = f32(x.b[x.b.length - 1] * (1 + 2 ** -22)) || 1e-30; }],
      ['b NaN', (x) => { x.b[2] = NaN; }],
      ['qb = 65', (x) => { x.b[3 * c.n] = f32(65 * o.sb[3]); }],
      ['a NaN in the last row', (x) => { x.a[x.a.length - 3] = NaN; }],
      ['a Inf', (x) => { x.a[7] = Infinity; }],
      ['a −Inf in the first row', (x) => { x.a[0] = -Infinity; }],
    ];
    for (const [what, spoil] of cases) {
      const x = { a: o.a.slice(), b: o.b.slice() };
      spoil(x);
      const out = new Float32Array(c.m * c.n);
      assert.equal(ref(x.a, x.b, o.sb, out, c.m, c.k, c.n), false, `reference: ${what}`);
      assert.equal(native(x.a, x.b, o.sb, out, c.m, c.k, c.n), false, `native, ${t} thread(s): ${what}`);
    }
  });
  for (const [name, f] of [['native', native], ['reference', ref]] as const) {
    assert.throws(() => f(new Float32Array(6), new Float32Array(6), new Float32Array(2), new Float32Array(4), 2, 3, 2), /sb has length 2, expected 1 or k = 3/, name);
    assert.throws(() => f(new Float32Array(5), new Float32Array(6), new Float32Array(1), new Float32Array(4), 2, 3, 2), /a has length 5/, name);
    assert.throws(() => f(new Float32Array(6), new Float32Array(6), new Float32Array([-1]), new Float32Array(4), 2, 3, 2), /sb\[0\] must be a finite scale/, name);
    assert.equal(f(new Float32Array(0), new Float32Array(6), new Float32Array(1), new Float32Array(0), 0, 3, 2), true, name);
  }
});

// Linear: the input gradient is the kernel's under withInt8Grad (recorded at the forward), the
// float32 GEMM's without it; the weight's gradient is the float32 GEMM's either way.
test('linear: withInt8Grad gives dX = matmulQ8Grad(dY, Ŵ) and leaves dW to the float32 GEMM', () => {
  if (kernelSource('matmulQ8Grad') !== 'native') {
    // Registered only where matmulQ8 has a SIMD path (src/backend/native/index.ts): elsewhere
    // Linear keeps its float32 backward, whatever the setting.
    assert.equal(addon.isaInfo().families.gemmQ8?.selected, 'portable');
    return;
  }
  const rng = new Rng(24);
  const N = 20, inF = 48, outF = 36;
  const sb = new Float32Array(outF).map(() => f32(0.02 * (1 + rng.uniform())));
  const wv = new Float32Array(outF * inF);
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) wv[o * inF + i] = f32((rng.int(3) - 1) * sb[o]);
  const xv = new Float32Array(N * inF).map(() => rng.normal());
  const gv = gradient(N, outF, rng);
  const run = (int8: boolean): { gx: Float32Array; gw: Float32Array } => {
    const x = new Tensor(xv.slice(), [N, inF], true);
    const w = onIntegerGrid(new Tensor(wv.slice(), [outF, inF], true), { scales: sb, maxCode: 1 });
    const y = withInt8Grad(int8, () => linear(x, w));
    backward(y, new Tensor(gv.slice(), [N, outF]));
    return { gx: x.grad!.f32.slice(), gw: w.grad!.f32.slice() };
  };
  const on = run(true), off = run(false);
  const want = new Float32Array(N * inF);
  assert.equal(ref(gv, wv, sb, want, N, outF, inF), true);
  assert.deepEqual(on.gx, want, 'dX is the kernel\'s');
  assert.deepEqual(on.gw, off.gw, 'dW is the float32 GEMM\'s either way');
  assert.notDeepEqual(off.gx, want, 'without the setting dX is the float32 GEMM\'s');
  // A weight off its recorded grid (changed after fake quantization): the float32 GEMM.
  const x = new Tensor(xv.slice(), [N, inF], true);
  const spoilt = wv.slice();
  spoilt[5] = f32(spoilt[5] + 1e-3);
  const w = onIntegerGrid(new Tensor(spoilt, [outF, inF], true), { scales: sb, maxCode: 1 });
  backward(withInt8Grad(true, () => linear(x, w)), new Tensor(gv.slice(), [N, outF]));
  const x2 = new Tensor(xv.slice(), [N, inF], true);
  backward(linear(x2, new Tensor(spoilt, [outF, inF], true)), new Tensor(gv.slice(), [N, outF]));
  assert.deepEqual(x.grad!.f32, x2.grad!.f32, 'off the grid: the float32 input gradient');
});

// A weight quantized per group (w4-g32) is on no grid matmulQ8Grad takes: under withInt8Grad its
// Ŵ is rounded to a 7-bit grid per row, then the kernel runs on that (the composition below, from
// the reference kernels, bit for bit); against the exact dY·Ŵ within the composed bound (header).
test('linear: withInt8Grad on a weight quantized per group rounds Ŵ to 7 bits per row for matmulQ8Grad, within the composed bound', () => {
  if (kernelSource('matmulQ8Grad') !== 'native') {
    assert.equal(addon.isaInfo().families.gemmQ8?.selected, 'portable');
    return;
  }
  const rng = new Rng(26);
  const N = 30, inF = 96, outF = 40;
  const q = QUANT_PRESETS['w4-g32'].weights!;
  // Groups of one row at different magnitudes (so their 4-bit steps differ), row 3 zero.
  const wv = new Float32Array(outF * inF).map((_, i) => (Math.floor(i / inF) === 3 ? 0 : f32(rng.normal() * 0.05 * (1 + (i >> 5) % 3))));
  const xv = new Float32Array(N * inF).map(() => rng.normal());
  const gv = gradient(N, outF, rng);
  const run = (int8: boolean): { gx: Float32Array; gw: Float32Array; wh: Float32Array } => {
    const x = new Tensor(xv.slice(), [N, inF], true);
    const w = new Tensor(wv.slice(), [outF, inF], true);
    const wh = fakeQuantWeight(w, q);
    backward(withInt8Grad(int8, () => linear(x, wh)), new Tensor(gv.slice(), [N, outF]));
    return { gx: x.grad!.f32.slice(), gw: w.grad!.f32.slice(), wh: wh.f32.slice() };
  };
  const on = run(true), off = run(false);
  const w7 = new Float32Array(outF * inF), s7 = new Float32Array(outF);
  quantKernels.fakeQuant!(on.wh, w7, null, s7, null, null, outF, inF, QuantRule.sym, 7, inF);
  const want = new Float32Array(N * inF);
  assert.equal(ref(gv, w7, s7, want, N, outF, inF), true);
  assert.deepEqual(on.gx, want, 'dX is matmulQ8Grad over Ŵ rounded to 7 bits per row');
  assert.deepEqual(on.gw, off.gw, 'dW is the float32 GEMM\'s either way');
  assert.notDeepEqual(on.gx, off.gx, 'without the setting dX is the float32 GEMM\'s');
  for (let p = 0; p < outF; p++) {
    for (let j = 0; j < inF; j++) assert.ok(Math.abs(w7[p * inF + j]) <= 63 * s7[p] * (1 + 2 * U32), `ŵ' row ${p} within 63 steps`);
  }
  for (let i = 0; i < N; i++) {
    let r = 0;
    for (let p = 0; p < outF; p++) r = Math.max(r, Math.abs(f32(gv[i * outF + p] * s7[p])));
    const sa = r >= 2 ** -100 ? f32(r / 127) : 0;
    for (let j = 0; j < inF; j++) {
      let exact = 0, absProd = 0, absQ = 0, regrid = 0;
      for (let p = 0; p < outF; p++) {
        const a = gv[i * outF + p], w = on.wh[p * inF + j], w2 = w7[p * inF + j];
        exact += a * w;
        absProd += Math.abs(a * w2);
        absQ += s7[p] > 0 ? Math.abs(w2 / s7[p]) : 0;
        regrid += Math.abs(a) * (s7[p] * (0.5 + 65 * U32) + U32 * Math.abs(w));
      }
      const bound = (0.5 + 2 ** -13) * sa * absQ + 4 * U32 * absProd + (sa === 0 ? 2 ** -100 * absQ : 0) + regrid;
      const err = Math.abs(on.gx[i * inF + j] - exact);
      assert.ok(err <= bound, `dX[${i}][${j}] = ${on.gx[i * inF + j]}, exact ${exact}: error ${err} > bound ${bound}`);
    }
  }
});
