// Integer GEMM throughput: native matmulQ8 (8-bit activation codes × ternary weight codes, int32
// sums; AVX512_VNNI or AVX2, whichever isaInfo().families.gemmQ8 selected) vs the fp32 matmul on
// the same fake-quantized operands, at BERT-base's Linear shapes (x (M,K) · Wᵀ, W stored (N,K);
// M = 16×128 tokens) at 1 and 2 threads; the two kernels run interleaved, each keeping its best
// round. Rates in G multiply-adds·2 per second (GFLOP/s for fp32, GOP/s for the integers). Then
// the input gradient of the same Linear, dX (M,K) = dY (M,N) · Ŵ (N,K): the fp32 matmul against
// matmulQ8Grad (dY rounded to 8 bits per row on the way; `kdqat qat --int8-grad`). Where the CPU
// has matmulBf16 (`--bf16 layers` runs the student's GEMMs on it), the bf16 GEMM of each too.
// Usage: npx tsx bench/gemm_q8.ts [M×K×N ...]
import { createRequire } from 'node:module';
import { Rng } from '../src/tensor/rng.js';
import type { NativeAddon } from '../src/backend/native/index.js';
import { bestRate } from './best_rate.js';
import { cpuModel } from './env.js';

const addon = createRequire(import.meta.url)('../build/Release/kdqat.node') as NativeAddon;
const path = addon.isaInfo().families.gemmQ8.selected;
const args = process.argv.slice(2);
const shapes = args.length ? args.map((s) => s.split(/[x×]/).map(Number))
  : [[2048, 768, 768], [2048, 768, 3072], [2048, 3072, 768]];
const amx = addon.isaInfo().amx;
const bf16 = addon.bf16Available();
console.log(`${cpuModel()}; matmulQ8 path ${path}${amx.matmulQ8 ? ' on AMX tiles' : ''}${amx.available ? '' : ` (no AMX: ${amx.reason})`}, matmul path ${addon.isaInfo().families.gemm.selected}`);

for (const threads of [1, 2]) {
  addon.setThreads(threads);
  for (const [m, k, n] of shapes) {
    const rng = new Rng(m + k + n);
    // x̂ = qa·sa with |qa| ≤ 127 (fakeQuantInput's codes), ŵ = α·{−1, 0, 1} (TWN).
    const sa = Math.fround(0.02), alpha = Math.fround(0.05);
    const a = new Float32Array(m * k).map(() => Math.fround((rng.int(255) - 127) * sa));
    const w = new Float32Array(n * k).map(() => Math.fround((rng.int(3) - 1) * alpha));
    const c = new Float32Array(m * n);
    const flops = 2 * m * k * n;
    const f32 = (): void => addon.matmul!(a, w, c, 1, m, k, n, false, true, 0, 0, 0);
    const q8 = (): void => {
      if (!addon.matmulQ8!(a, sa, w, new Float32Array([alpha]), c, m, k, n, null)) throw new Error('matmulQ8: operands off their grids');
    };
    const bf = (): void => addon.matmulBf16!(a, w, c, 1, m, k, n, false, true, 0, 0, 0);
    f32(); q8();
    if (bf16) bf();
    let g32 = 0, gq8 = 0, gbf = 0;
    for (let round = 0; round < 3; round++) {
      g32 = Math.max(g32, bestRate(f32, flops, 0.5) / 1e9);
      gq8 = Math.max(gq8, bestRate(q8, flops, 0.5) / 1e9);
      if (bf16) gbf = Math.max(gbf, bestRate(bf, flops, 0.5) / 1e9);
    }
    console.log(`threads ${threads}  ${m}x${k}x${n} tb: fp32 ${g32.toFixed(1)} GFLOP/s, int8 ${gq8.toFixed(1)} GOP/s (${(gq8 / g32).toFixed(2)}x)` +
      (bf16 ? `, bf16 ${gbf.toFixed(1)} GFLOP/s (int8 ${(gq8 / gbf).toFixed(2)}x it)` : ''));
    // dX = dY·Ŵ: dY gradient-like (normal), Ŵ the same ternary weight, stored (N, K).
    const dy = new Float32Array(m * n).map(() => rng.normal());
    const dx = new Float32Array(m * k), steps = new Float32Array([alpha]);
    const g32b = (): void => addon.matmul!(dy, w, dx, 1, m, n, k, false, false, 0, 0, 0);
    const gq8b = (): void => {
      if (!addon.matmulQ8Grad!(dy, w, steps, dx, m, n, k)) throw new Error('matmulQ8Grad: the weight is off its grid');
    };
    const gbfb = (): void => addon.matmulBf16!(dy, w, dx, 1, m, n, k, false, false, 0, 0, 0);
    g32b(); gq8b();
    if (bf16) gbfb();
    let b32 = 0, bq8 = 0, bbf = 0;
    for (let round = 0; round < 3; round++) {
      b32 = Math.max(b32, bestRate(g32b, flops, 0.5) / 1e9);
      bq8 = Math.max(bq8, bestRate(gq8b, flops, 0.5) / 1e9);
      if (bf16) bbf = Math.max(bbf, bestRate(gbfb, flops, 0.5) / 1e9);
    }
    console.log(`threads ${threads}  ${m}x${n}x${k} dX = dY·W: fp32 ${b32.toFixed(1)} GFLOP/s, int8 grad ${bq8.toFixed(1)} GOP/s (${(bq8 / b32).toFixed(2)}x)` +
      (bf16 ? `, bf16 ${bbf.toFixed(1)} GFLOP/s (int8 grad ${(bq8 / bbf).toFixed(2)}x it)` : ''));
  }
}
