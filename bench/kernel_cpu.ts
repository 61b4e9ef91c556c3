// CPU time per call of single kernels, one thread, for before/after comparisons of a kernel's
// code paths on a machine shared with other work: process.cpuUsage() (user + system) around many
// repetitions in one process counts this process's work only, so load from other processes
// inflates it far less than wall time would (it still moves it: a busy core's caches and
// frequency). Each case runs on the TypeScript reference and on the native kernel; run the script
// once per KDQAT_ISA to compare SIMD paths (each run prints the path every family selected and the
// load average at the start and end).
// Usage: KDQAT_ISA=avx2 npx tsx bench/kernel_cpu.ts [case-substring ...]
//
// Measured 2026-12-03 16:45–17:25 UTC, AMD EPYC Zen 4 (2 vCPUs shared with training runs at
// higher priority: load average 7–21, so only large differences mean anything), 1 thread, CPU
// ms per call, "before" = the path KDQAT_ISA=avx512 ran before issue 13's changes:
//   topkLogits rows 16 V 49152 K 64     JS loop (now the ref) 46.6   native 14.3  (3.3×)
//   topkLogits rows 16 V 49152 K 1024                         38.3          13.6  (2.8×)
//   topkLogits rows 16 V 4096 K 4096                          13.3           3.2  (4.2×)
//   elementwise, 256 Ki floats         avx2 table (before)   avx512 table (after)
//     unary exp / log / tanh           0.181 / 0.201 / 0.160  0.101 / 0.114 / 0.099
//     unary gelu / geluTanh / silu     0.430 / 0.520 / 0.257  0.240 / 0.315 / 0.138
//     unaryBackward gelu / silu        0.396 / 0.314          0.238 / 0.165
//     memory-bound ops (neg, abs, relu, square, sqrt, binary add, the reduces): unchanged
//     within noise (0.03–0.05 ms both)
//   attention (1,256,8,4,64) causal    fwd 1.26–1.43, bwd 2.3–3.3    fwd 1.14–1.32, bwd 2.1–2.5
//     (two interleaved runs each; the blocking is the same, only the vector width doubles)
//   fakeQuantGrid q2_k..q6_k (768,256), old kquant_isa.o vs the simd.h one, each ISA: the same
//     within noise (e.g. avx512 q4_k 5.34 → 5.13, q6_k 4.87 → 4.87); outputs bitwise equal.
import { loadavg } from 'node:os';
import { kernelOf } from '../src/tensor/registry.js';
import { nativeIsaInfo, setThreads } from '../src/tensor/index.js';
import { QuantRule, ReduceOp, UnOp } from '../src/tensor/kernels.js';
import { Rng } from '../src/tensor/rng.js';

interface Case {
  name: string;
  family: string;
  /** One call of the kernel on `backend`, on inputs made once. */
  make(backend: 'ref' | 'native'): () => void;
  /** Skip the reference (too slow to repeat at this size). */
  nativeOnly?: boolean;
}

const rng = new Rng(1);
const randn = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => s * rng.normal());

const N = 1 << 18;  // elementwise cases: 256 Ki floats (1 MiB, L2-resident on most CPUs)
const x = randn(N, 2), y = randn(N), gy = randn(N), out = new Float32Array(N);

const cases: Case[] = [];
for (const [op, code] of Object.entries(UnOp)) {
  cases.push({ name: `unary ${op}`, family: 'elementwise', make: (b) => {
    const k = kernelOf(b, 'unary')!;
    const xs = op === 'log' || op === 'sqrt' || op === 'rsqrt' ? x.map(Math.abs) : x;
    return () => k(code, xs, out);
  } });
  cases.push({ name: `unaryBackward ${op}`, family: 'elementwise', make: (b) => {
    const k = kernelOf(b, 'unaryBackward')!;
    const xs = op === 'log' || op === 'sqrt' || op === 'rsqrt' ? x.map(Math.abs) : x;
    const ys = new Float32Array(N);
    kernelOf('ref', 'unary')!(code, xs, ys);
    return () => k(code, xs, ys, gy, out);
  } });
}
for (const [op, code] of Object.entries(ReduceOp)) {
  for (const [outer, n, inner] of [[1, N, 1], [512, 512, 1], [1, 512, 512]] as const) {
    cases.push({ name: `reduce ${op} (${outer},${n},${inner})`, family: 'elementwise', make: (b) => {
      const k = kernelOf(b, 'reduce')!;
      const o = new Float32Array(outer * inner);
      return () => k(code, x, o, outer, n, inner);
    } });
  }
}
cases.push({ name: 'binary add', family: 'elementwise', make: (b) => {
  const k = kernelOf(b, 'binary')!, sh = Int32Array.of(N), st = Int32Array.of(1);
  return () => k(0, x, y, out, sh, st, st);
} });
for (const [V, K] of [[49152, 64], [49152, 1024], [4096, 4096]] as const) {
  const rows = 16, z = randn(rows * V, 3);
  cases.push({ name: `topkLogits rows ${rows} V ${V} K ${K}`, family: 'topk', make: (b) => {
    const k = kernelOf(b, 'topkLogits')!;
    const ids = new Int32Array(rows * K), vals = new Float32Array(rows * K);
    const lse = new Float32Array(rows), tail = new Float32Array(rows);
    return () => k(z, ids, vals, lse, tail, rows, V, K, 2);
  } });
}

// Attention (B, T, H, Hkv, D) = (1, 256, 8, 4, 64), causal: forward with probs, and backward.
{
  const B = 1, T = 256, H = 8, Hkv = 4, D = 64, np = B * H * T * T;
  const q = randn(B * T * H * D), k = randn(B * T * Hkv * D), v = randn(B * T * Hkv * D);
  const o = new Float32Array(q.length), probs = new Float32Array(np), gout = randn(q.length);
  const gq = new Float32Array(q.length), gk = new Float32Array(k.length), gv = new Float32Array(v.length);
  kernelOf('ref', 'attention')!(q, k, v, o, probs, null, B, T, H, Hkv, D, 0.125, true, null);
  cases.push({ name: `attention (${B},${T},${H},${Hkv},${D}) causal`, family: 'attention', nativeOnly: true, make: (b) => {
    const f = kernelOf(b, 'attention')!;
    const pr = new Float32Array(np);
    return () => f(q, k, v, o, pr, null, B, T, H, Hkv, D, 0.125, true, null);
  } });
  cases.push({ name: `attentionBackward (${B},${T},${H},${Hkv},${D})`, family: 'attention', nativeOnly: true, make: (b) => {
    const f = kernelOf(b, 'attentionBackward')!;
    return () => f(q, k, v, probs, gout, null, null, gq, gk, gv, B, T, H, Hkv, D, 0.125, true, null);
  } });
}

// K-quant fake quantization of a (768, 256) weight ~ N(0, 0.05²) (bench/kquant.ts's shape).
for (const f of ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const) {
  const w = randn(768 * 256, 0.05), o = new Float32Array(w.length);
  cases.push({ name: `fakeQuantGrid ${f} (768,256)`, family: 'kquant', nativeOnly: true, make: (b) => {
    const k = kernelOf(b, 'fakeQuantGrid')!;
    return () => k(w, o, null, null, null, 768, 256, QuantRule[f]);
  } });
}

/** CPU ms per call: calls repeated until ≥ 0.3 s of CPU; the best of 3 such rounds. */
function cpuMs(fn: () => void): number {
  fn();
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    let calls = 0;
    const t0 = process.cpuUsage();
    let used = 0;
    while (used < 3e5) {
      fn();
      calls++;
      const d = process.cpuUsage(t0);
      used = d.user + d.system;
    }
    best = Math.min(best, used / 1e3 / calls);
  }
  return best;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const info = nativeIsaInfo();
setThreads(1);
const load0 = loadavg();
console.log(`# KDQAT_ISA=${process.env.KDQAT_ISA ?? '(unset)'}  isa ${info?.isa}  paths: ${info ? Object.entries(info.families).map(([f, v]) => `${f}=${v.selected}`).join(' ') : 'no addon'}`);
console.log(`# load average ${load0.map((l) => l.toFixed(2)).join(' ')}; 1 thread; CPU ms per call (best of 3 rounds of ≥ 0.3 s)`);
console.log('case'.padEnd(40) + 'ref ms'.padStart(12) + 'native ms'.padStart(12) + 'ratio'.padStart(8));
for (const c of cases) {
  if (filters.length && !filters.some((f) => c.name.includes(f))) continue;
  const nat = cpuMs(c.make('native'));
  const ref = c.nativeOnly ? NaN : cpuMs(c.make('ref'));
  console.log(c.name.padEnd(40) + ref.toFixed(4).padStart(12) + nat.toFixed(4).padStart(12) + (ref / nat).toFixed(1).padStart(8));
}
console.log(`# load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
