// matmulBf16 (native/gemm_bf16.cc: AMX-BF16 where isaInfo().amx says so, else AVX512_BF16)
// against the reference (src/backend/ref/gemm.ts: inputs rounded by bf16Round, float64 sums). On a CPU without avx512_bf16, or under
// KDQAT_ISA=avx2|portable (scripts/test.mjs reruns this file so), the native kernel must refuse
// with the reason, and this file asserts exactly that; which case applies is decided from
// /proc/cpuinfo and KDQAT_ISA, independently of the addon's own answer.
//
// Bounds, derived (Higham's notation, test/bounds.ts):
// - bf16 has p = 8 significant bits, so round to nearest even has unit roundoff u = 2^-p = 2^-8
//   (not 2^-9): |x̃ − x| ≤ 2^-8·|x| for x in bf16's normal range (float32's: same exponent
//   bits; float32 subnormals are flushed to ±0 by the conversion, as VCVTNEPS2BF16 does).
// - A product of two bf16 values has ≤ 16 significant bits: exact in float32 (no under/overflow
//   with the data here). VDPBF16PS then adds the two products of a pair to the fp32 lane in two
//   RNE steps (Intel SDM vol. 2, VDPBF16PS: "round to nearest even ... output denormals are
//   always flushed to zero and input denormals are always treated as zero. MXCSR is not
//   consulted"); TDPBF16PS (AMX) the same per the SDM, though its sums within a tile step are
//   not the sequential ones bit for bit (measured on a Xeon: ~10% of 32-term lanes differ in the
//   last bit). So native vs reference on the SAME rounded inputs ã, b̃ differ only by float32
//   summation: gemmBound(ã, b̃) (γ_{2k} + 2u32 + γ^{f64}_{k+2}, any order, any K slicing), plus
//   ≤ 2^-126 per rounding for a flushed subnormal partial sum: (2k + 2)·2^-126 absolute.
// - Against the float32 GEMM of the unrounded inputs: |ã·b̃ − a·b| ≤ (2u + u²)·|a·b| per term,
//   so |native − a·b| ≤ (2u + u²)·Σ|a||b| + the two summation bounds above.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { Rng } from '../../src/tensor/rng.js';
import { gemmKernels, bf16Round } from '../../src/backend/ref/gemm.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import type { NativeAddon } from '../../src/backend/native/index.js';
import { randomF32 } from '../util.js';
import { checkBias } from './gemm-bias.js';
import { expectWithin, gemmAbsSum, gemmBound, boundRatio, type GemmShape } from '../bounds.js';

type Matmul = Kernels['matmul'];
const addon = createRequire(import.meta.url)('../../build/Release/kdqat.node') as NativeAddon;
const native = addon.matmulBf16!;
const ref = gemmKernels.matmulBf16!;
const refF32 = gemmKernels.matmul!;
const U_BF16 = 2 ** -8;
const FTZ = 2 ** -126;

// Whether matmulBf16 must run here: the CPU lists avx512_bf16 (and the avx512 level's
// features) and KDQAT_ISA does not cap below avx512.
function expectAvailable(): { want: boolean; why: string } {
  let flags: string[] = [];
  try {
    flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
  } catch {
    // Not Linux: no independent answer; the addon's must then agree with its isaInfo levels.
  }
  const cap = process.env.KDQAT_ISA;
  const avx512 = addon.isaInfo().levels.find((l) => l.isa === 'avx512')!.missing.length === 0;
  const hasBf16 = flags.includes('avx512_bf16');
  if (!hasBf16) return { want: false, why: 'lacks the avx512_bf16' };
  if (!avx512) return { want: false, why: 'lacks the avx512_bf16' };
  if (cap === 'avx2' || cap === 'portable') return { want: false, why: 'KDQAT_ISA caps' };
  return { want: true, why: '' };
}
const expected = expectAvailable();
const available = addon.bf16Available();

test('matmulBf16 is available exactly when the CPU has avx512_bf16 and KDQAT_ISA allows avx512', () => {
  const info = addon.isaInfo().bf16;
  assert.equal(available, expected.want, `bf16Available() on this CPU with KDQAT_ISA=${process.env.KDQAT_ISA ?? '(unset)'}: ${JSON.stringify(info)}`);
  assert.equal(info.available, available);
  if (available) {
    assert.equal(info.reason, null);
  } else {
    assert.ok(info.reason?.includes(expected.why), `reason "${info.reason}" should say it ${expected.why}`);
    // Refused, naming the reason: never a silent fallback to the float32 GEMM.
    const c = new Float32Array([7]);
    assert.throws(() => native(new Float32Array([1]), new Float32Array([2]), c, 1, 1, 1, 1, false, false, 0, 0, 0),
      (e: Error) => e.message.includes('matmulBf16: bf16 compute is unavailable') && e.message.includes(info.reason!));
    assert.deepEqual([...c], [7]);
  }
});

test('bf16Round: round to nearest even on 8 bits, subnormals to ±0, NaN, overflow to Inf', () => {
  const cases: [number, number][] = [
    [1, 1], [1 + 2 ** -8, 1], [1 + 3 * 2 ** -8, 1 + 2 ** -6], [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7],
    [-(1 + 3 * 2 ** -8), -(1 + 2 ** -6)], [2 ** -126, 2 ** -126], [2 ** -127, 0], [-(2 ** -140), -0],
    [Infinity, Infinity], [-Infinity, -Infinity], [3.4e38, Infinity], [-3.4e38, -Infinity],
    [2 ** 127 * (2 - 2 ** -7), 2 ** 127 * (2 - 2 ** -7)], [0, 0], [-0, -0],
  ];
  for (const [x, want] of cases) assert.ok(Object.is(bf16Round(Math.fround(x)), want), `bf16Round(${x}) = ${bf16Round(x)}, want ${want}`);
  assert.ok(Number.isNaN(bf16Round(NaN)));
  const rng = new Rng(1);
  for (let i = 0; i < 10000; i++) {
    const x = Math.fround(rng.normal() * 2 ** (rng.int(200) - 100));
    const r = bf16Round(x);
    assert.ok(Math.abs(r - x) <= U_BF16 * Math.abs(x), `|bf16Round(${x}) − x| = ${Math.abs(r - x)} > 2^-8·|x|`);
    assert.equal(bf16Round(r), r, 'idempotent');
  }
});

// Values that exercise the conversion: ties, subnormals, NaN payloads, huge, random bits.
function specialValues(rng: Rng, n: number): Float32Array {
  const v = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 2 ** -127, -(2 ** -149), 0, -0, 3.4e38,
    -3.3e38, Infinity, -Infinity, NaN, 2 ** -126, 1e-30, 65504.5];
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    if (i < v.length) out[i] = v[i];
    else bits[i] = rng.int(2 ** 16) * 2 ** 16 + rng.int(2 ** 16);  // any float32 bit pattern
  }
  return out;
}

/** A test of the kernel's results where it runs; where it must not, the same test asserts the
 *  refusal instead (never skipped). */
function bf16Test(name: string, fn: () => void): void {
  test(name, () => {
    if (available) return fn();
    assert.throws(() => native(new Float32Array([1]), new Float32Array([2]), new Float32Array(1), 1, 1, 1, 1,
      false, false, 0, 0, 0), /matmulBf16: bf16 compute is unavailable/);
  });
}

bf16Test('native packing converts exactly like bf16Round (A and B, every layout)', () => {
  const rng = new Rng(2);
  const x = specialValues(rng, 200);
  // + 0: the sum starts from +0, so a −0 input gives +0 (in the reference too).
  const want = x.map((v) => bf16Round(v) + 0);
  const one = new Float32Array([1]);
  const same = (got: Float32Array, what: string): void => {
    for (let i = 0; i < x.length; i++) {
      assert.ok(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])),
        `${what}: ${x[i]} → ${got[i]}, want ${want[i]}`);
    }
  };
  for (const [ta, tb] of [[false, false], [true, true]]) {
    const c = new Float32Array(x.length);
    native(x, one, c, 1, x.length, 1, 1, ta, tb, 0, 0, 0);  // A (n,1): c_i = x̃_i·1
    same(c, `A ta=${ta}`);
    native(one, x, c, 1, 1, 1, x.length, ta, tb, 0, 0, 0);  // B (1,n)
    same(c, `B tb=${tb}`);
  }
  // k = 2 with a zero partner: the pair packing of B's rows (vector path, tb = false) and columns.
  const finite = x.filter((v) => Number.isFinite(bf16Round(v)));
  const wantF = finite.map((v) => bf16Round(v) + 0);
  const n = finite.length, b2 = new Float32Array(2 * n), bt = new Float32Array(2 * n);
  for (let j = 0; j < n; j++) {
    b2[j] = finite[j]; b2[n + j] = 5;  // rows (k, n)
    bt[2 * j] = finite[j]; bt[2 * j + 1] = 5;  // stored (n, k)
  }
  for (const [b, tb] of [[b2, false], [bt, true]] as const) {
    const c = new Float32Array(n);
    native(new Float32Array([1, 0]), b, c, 1, 1, 2, n, false, tb, 0, 0, 0);
    for (let j = 0; j < n; j++) assert.ok(Object.is(c[j], wantF[j]), `k=2 tb=${tb}: ${finite[j]} → ${c[j]}, want ${wantF[j]}`);
  }
  // k = 69 (vector conversions of 32-float runs plus a scalar and an odd tail): I·B̃ = B̃ exactly,
  // B stored (k, n) or (n, k), the identity as A or Aᵀ.
  const K = 69, N = 3, bk = new Float32Array(K * N), bn = new Float32Array(K * N), eye = new Float32Array(K * K);
  for (let i = 0; i < K; i++) eye[i * K + i] = 1;
  for (let p = 0; p < K; p++) {
    for (let j = 0; j < N; j++) bk[p * N + j] = bn[j * K + p] = finite[(p * N + j) % finite.length];
  }
  for (const ta of [false, true]) {
    for (const [b, tb] of [[bk, false], [bn, true]] as const) {
      const c = new Float32Array(K * N);
      native(eye, b, c, 1, K, K, N, ta, tb, 0, 0, 0);
      for (let i = 0; i < K * N; i++) {
        const want = bf16Round(bk[i]) + 0;
        assert.ok(Object.is(c[i], want), `k=${K} ta=${ta} tb=${tb}: ${bk[i]} → ${c[i]}, want ${want}`);
      }
    }
  }
  // And Ã·I = Ã: the same values as A, stored (m, k) (32-float runs of a row) or (k, m) (a
  // panel's column pairs in registers), m = 17 (a full 14-row panel and a partial one).
  const M = 17, am = new Float32Array(M * K), ak = new Float32Array(M * K);
  for (let i = 0; i < M; i++) {
    for (let p = 0; p < K; p++) am[i * K + p] = ak[p * M + i] = finite[(i * K + p) % finite.length];
  }
  for (const [a, ta] of [[am, false], [ak, true]] as const) {
    for (const tb of [false, true]) {
      const c = new Float32Array(M * K);
      native(a, eye, c, 1, M, K, K, ta, tb, 0, 0, 0);
      for (let i = 0; i < M * K; i++) {
        const want = bf16Round(am[i]) + 0;
        assert.ok(Object.is(c[i], want), `A k=${K} ta=${ta} tb=${tb}: ${am[i]} → ${c[i]}, want ${want}`);
      }
    }
  }
});

interface Case extends GemmShape {}
const dense = (batch: number, m: number, k: number, n: number, ta = false, tb = false, beta = 0): Case =>
  ({ batch, m, k, n, ta, tb, strideA: m * k, strideB: k * n, beta });
const combos = [[false, false], [false, true], [true, false], [true, true]] as const;

function operands(cs: Case, rng: Rng): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const a = randomF32(Math.max(0, (cs.batch - 1) * cs.strideA + cs.m * cs.k), rng);
  const b = randomF32(Math.max(0, (cs.batch - 1) * cs.strideB + cs.k * cs.n), rng);
  const c = cs.beta === 0 ? new Float32Array(cs.batch * cs.m * cs.n).fill(NaN) : randomF32(cs.batch * cs.m * cs.n, rng);
  return { a, b, c };
}

function run(f: Matmul, cs: Case, a: Float32Array, b: Float32Array, c0: Float32Array): Float32Array {
  const c = c0.slice();
  f(a, b, c, cs.batch, cs.m, cs.k, cs.n, cs.ta, cs.tb, cs.strideA, cs.strideB, cs.beta);
  return c;
}

/** Native vs reference on the same bf16-rounded inputs: float32 summation only (header). */
function tightBound(cs: Case, a: Float32Array, b: Float32Array, c: Float32Array): Float64Array {
  return gemmBound(cs, a.map(bf16Round), b.map(bf16Round), c).map((t) => t + (2 * cs.k + 2) * FTZ);
}

function compare(cs: Case, rng: Rng): void {
  const { a, b, c } = operands(cs, rng);
  const got = run(native, cs, a, b, c);
  const tight = tightBound(cs, a, b, c), f32 = gemmBound(cs, a, b, c);
  expectWithin(got, run(ref, cs, a, b, c), tight, `matmulBf16 ${JSON.stringify(cs)}`);
  // And against the float32 GEMM of the unrounded inputs: (2u + u²)·Σ|a||b| more.
  const loose = gemmAbsSum(cs, a, b, c).map((s, i) => (2 * U_BF16 + U_BF16 ** 2) * s + tight[i] + f32[i]);
  expectWithin(got, run(refF32, cs, a, b, c), loose, `matmulBf16 vs fp32 ${JSON.stringify(cs)}`);
}

bf16Test('matmulBf16 matches the reference: every trans combination, tile and pair edges', () => {
  const rng = new Rng(3);
  const betas = [0, 1, -0.5];
  let t = 0;
  // MR 14, NR 32, odd k (a zero partner in the last pair), k = 1.
  for (const [ta, tb] of combos) {
    for (const m of [1, 13, 14, 15, 29]) {
      for (const n of [1, 15, 16, 17, 31, 32, 33, 65]) {
        for (const k of [1, 2, 3, 16, 17, 36]) compare(dense(1, m, k, n, ta, tb, betas[t++ % 3]), rng);
      }
    }
  }
});

bf16Test('matmulBf16 matches the reference: around the cache blocks (AVX-512 KC 1536, MC 140, NC 1536; AMX KC 1024, MC 128, 32 × 32 tiles of 16 pairs; B packed 16 columns × 32 k at a time)', () => {
  const rng = new Rng(4);
  const shapes = [[139, 1535, 33], [140, 1536, 32], [141, 1537, 31], [30, 3073, 47], [15, 4609, 65], [3, 7, 1537], [17, 9, 1570],
    [31, 31, 31], [32, 32, 32], [33, 33, 33], [47, 65, 63], [127, 511, 64], [129, 513, 33], [160, 1025, 97],
    [129, 1024, 48], [33, 2049, 40], [20, 63, 16]];
  let t = 0;
  for (const [m, k, n] of shapes) {
    for (const [ta, tb] of combos) compare(dense(1, m, k, n, ta, tb, [0, 1][t++ % 2]), rng);
  }
});

bf16Test('matmulBf16 matches the reference: batches with broadcast strides', () => {
  const rng = new Rng(5);
  for (const [ta, tb] of combos) {
    for (const beta of [0, 1]) {
      const [m, k, n] = [9, 13, 19];
      compare(dense(3, m, k, n, ta, tb, beta), rng);
      compare({ ...dense(3, m, k, n, ta, tb, beta), strideA: 0 }, rng);
      compare({ ...dense(4, m, k, n, ta, tb, beta), strideB: 0 }, rng);
      compare({ ...dense(3, m, k, n, ta, tb, beta), strideA: m * k + 5, strideB: k * n + 3 }, rng);
      compare({ ...dense(5, 40, 71, 50, ta, tb, beta), strideB: 0 }, rng);  // one (200,71) GEMM
    }
  }
});

bf16Test('the tight bound has teeth: the float32 GEMM (no bf16 rounding) or a dropped k-term exceeds it', () => {
  const rng = new Rng(6);
  for (const [m, k, n] of [[5, 3, 7], [29, 321, 33]]) {
    const cs = dense(1, m, k, n, false, true);
    const { a, b, c } = operands(cs, rng);
    const want = run(ref, cs, a, b, c), bound = tightBound(cs, a, b, c);
    assert.ok(boundRatio(run(refF32, cs, a, b, c), want, bound) > 1, `fp32 GEMM within the bf16 bound ${JSON.stringify(cs)}`);
    const dropped = a.slice();
    for (let i = 0; i < m; i++) dropped[i * k + k - 1] = 0;
    assert.ok(boundRatio(run(native, cs, dropped, b, c), want, bound) > 1, `dropped k-term within the bound ${JSON.stringify(cs)}`);
  }
});

bf16Test('matmulBf16: NaN and Inf propagate as in the reference; beta 0 ignores NaN in C', () => {
  const rng = new Rng(7);
  for (const [ta, tb] of combos) {
    const cs = dense(1, 20, 37, 40, ta, tb, 0);
    const { a, b, c } = operands(cs, rng);
    a[3] = NaN; a[50] = Infinity; a[100] = -Infinity; a[200] = 3.4e38;  // the last rounds to Inf
    b[7] = NaN; b[300] = Infinity;
    const got = run(native, cs, a, b, c), want = run(ref, cs, a, b, c);
    let special = 0;
    for (let i = 0; i < got.length; i++) {
      if (Number.isFinite(want[i])) continue;
      special++;
      assert.ok(Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])), `element ${i}: got ${got[i]}, want ${want[i]}`);
    }
    assert.ok(special > 0);
    // Everything else within the tight bound (its sums are over finite terms).
    const bound = tightBound(cs, a, b, c);
    expectWithin(got.map((v, i) => (Number.isFinite(want[i]) ? v : 0)), want.map((v) => (Number.isFinite(v) ? v : 0)),
      bound.map((v) => (Number.isFinite(v) ? v : 0)), `finite part ${ta} ${tb}`);
  }
});

bf16Test('matmulBf16: 1 and 2 threads give bitwise identical results', () => {
  const rng = new Rng(8);
  const before = addon.getThreads();
  try {
    const cases: Case[] = [
      dense(1, 300, 600, 300, false, true), dense(1, 20, 100, 500, true, true), dense(1, 300, 71, 90, true),
      dense(4, 64, 64, 64, false, true), dense(3, 100, 101, 100, false, false, 1), dense(1, 1000, 300, 8),
      { ...dense(6, 50, 80, 70), strideB: 0 }, dense(1, 29, 641, 1000), dense(1, 7, 577, 4200, false, true),
    ];
    for (const cs of cases) {
      const { a, b, c } = operands(cs, rng);
      addon.setThreads(1);
      const one = run(native, cs, a, b, c);
      addon.setThreads(2);
      assert.deepEqual(run(native, cs, a, b, c), one, `threads 1 vs 2: ${JSON.stringify(cs)}`);
      expectWithin(one, run(ref, cs, a, b, c), tightBound(cs, a, b, c), JSON.stringify(cs));
    }
  } finally {
    addon.setThreads(before);
  }
});

test('matmulBf16: k = 0 gives beta·C; error paths throw before reading out of bounds', () => {
  for (const f of available ? [native, ref] : [ref]) {
    const z = new Float32Array([NaN, 1, 2]);
    f(new Float32Array(0), new Float32Array(0), z, 1, 1, 0, 3, false, false, 0, 0, 0);
    assert.deepEqual([...z], [0, 0, 0]);
    const keep = new Float32Array([1, 2, 3]);
    f(new Float32Array(0), new Float32Array(0), keep, 1, 3, 0, 1, true, true, 0, 0, 1);
    assert.deepEqual([...keep], [1, 2, 3]);
  }
  // Argument errors are reported whether or not the kernel can run here.
  for (const f of [native, ref]) {
    const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8);
    assert.throws(() => f(a.subarray(1), b, c, 1, 2, 3, 4, false, false, 0, 0, 0),
      (e: Error) => e instanceof RangeError && /\ba\b.*5.*6/.test(e.message));
    assert.throws(() => f(a, b, c.subarray(1), 1, 2, 3, 4, false, false, 0, 0, 0), RangeError);
    assert.throws(() => f(a, b, c, 1, -2, 3, 4, false, false, 0, 0, 0), RangeError);
  }
});

bf16Test('matmulBf16 bias: bitwise beta 1 on a C holding the bias, on both backends; refused with beta ≠ 0', () => {
  checkBias(native, 'native matmulBf16', addon);
  checkBias(ref, 'ref matmulBf16');
});
