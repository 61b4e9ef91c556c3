// bf16 GEMM throughput: native matmulBf16 (AMX tiles where the addon uses them, else AVX512_BF16;
// fp32 accumulation; KDQAT_AMX=off for the AVX512_BF16 kernel on an AMX CPU) vs the fp32 matmul,
// GFLOP/s at the SmolLM2-135M shapes of a Linear layer (x (M,K) · Wᵀ, W stored (N,K)) at 1 and
// 2 threads; the two kernels run interleaved, each keeping its best round.
// Usage: npx tsx bench/gemm_bf16.ts [M×K×N ...]
import { createRequire } from 'node:module';
import { Rng } from '../src/tensor/rng.js';
import type { NativeAddon } from '../src/backend/native/index.js';
import { bestRate } from './best_rate.js';
import { cpuModel } from './env.js';

const addon = createRequire(import.meta.url)('../build/Release/kdqat.node') as NativeAddon;
if (!addon.bf16Available()) throw new Error(`matmulBf16 unavailable: ${addon.isaInfo().bf16.reason}`);
const amx = addon.isaInfo().amx;
console.log(`${cpuModel()}; matmulBf16 on ${amx.matmulBf16 ? 'AMX tiles' : `AVX512_BF16${amx.available ? '' : ` (no AMX: ${amx.reason})`}`}`);
const args = process.argv.slice(2);
const shapes = args.length ? args.map((s) => s.split(/[x×]/).map(Number))
  : [[1024, 576, 576], [1024, 576, 1536], [1024, 1536, 576], [1024, 576, 49152]];
const best = (f: () => void, flops: number, minTime: number): number => bestRate(f, flops, minTime) / 1e9;

for (const threads of [1, 2]) {
  addon.setThreads(threads);
  for (const [m, k, n] of shapes) {
    const rng = new Rng(m + k + n);
    const a = new Float32Array(m * k).map(() => rng.normal());
    const w = new Float32Array(n * k).map(() => rng.normal());
    const c = new Float32Array(m * n);
    const flops = 2 * m * k * n;
    const f32 = (): void => addon.matmul!(a, w, c, 1, m, k, n, false, true, 0, 0, 0);
    const bf = (): void => addon.matmulBf16!(a, w, c, 1, m, k, n, false, true, 0, 0, 0);
    f32(); bf();
    let g32 = 0, gbf = 0;
    for (let round = 0; round < 3; round++) {
      g32 = Math.max(g32, best(f32, flops, 0.5));
      gbf = Math.max(gbf, best(bf, flops, 0.5));
    }
    console.log(`threads ${threads}  ${m}x${k}x${n} tb: fp32 ${g32.toFixed(1)} GFLOP/s, bf16 ${gbf.toFixed(1)} GFLOP/s (${(gbf / g32).toFixed(2)}x)`);
  }
}
