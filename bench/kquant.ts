// K-quant fake quantization (the fakeQuantGrid kernel: llama.cpp's quantize→dequantize repeated to
// its fixed point, formats.ts gridQuantRef), µs per weight: the TypeScript reference and the
// native kernel on each SIMD path this CPU has, measured side by side in one run (each path in a
// child process with KDQAT_ISA capped, rounds interleaved so that load from other work on a
// shared machine falls on every column alike; the best round is kept).
// Usage: npx tsx bench/run.ts --only kquant   (or npx tsx bench/kquant.ts [--json])
//
// Measured (2026-12-03 09:09 UTC, AMD EPYC Zen 4 (family 25 model 17), 2 vCPUs shared with
// other work (load average 2-3: the second vCPU was busy, so 2 threads gain nothing here), 1
// thread, W (768, 256) ~ N(0, 0.05²), best of 4 interleaved rounds, µs/weight):
//   format  ref (TS)  portable  avx2    avx512
//   q2_k    1.18      0.050     0.030   0.026
//   q3_k    0.24      0.032     0.029   0.033
//   q4_k    1.26      0.045     0.030   0.024    (52× the reference)
//   q5_k    1.10      0.045     0.027   0.024
//   q6_k    0.68      0.051     0.030   0.026
// The vector paths gain less than their width: the lanes run the searches' data-dependent
// branches as selects (every lane pays for the longest), and the per-block packing is scalar.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { kernelOf } from '../src/tensor/registry.js';
import { nativeIsaInfo, setThreads } from '../src/tensor/index.js';
import { QuantRule } from '../src/tensor/kernels.js';
import { Rng } from '../src/tensor/rng.js';

export interface KQuantRecord { bench: 'kquant'; impl: string; threads: number; format: string; usPerWeight: number }

const FORMATS = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as const;
const ROWS = 768, COLS = 256;

function weights(): Float32Array {
  const rng = new Rng(7);
  return Float32Array.from({ length: ROWS * COLS }, () => 0.05 * rng.normal());
}

/** Best time (ms) of one fakeQuantGrid call over `reps` calls. */
function time(backend: 'ref' | 'native', format: (typeof FORMATS)[number], w: Float32Array, reps: number): number {
  const k = kernelOf(backend, 'fakeQuantGrid')!;
  const out = new Float32Array(w.length);
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    k(w, out, null, null, null, ROWS, COLS, QuantRule[format]);
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

/** One round in this process: every format on `impl` (ref, or native at this process's ISA). */
function round(impl: 'ref' | 'native', threads: number): Record<string, number> {
  setThreads(threads);
  const w = weights(), res: Record<string, number> = {};
  for (const f of FORMATS) res[f] = (time(impl, f, w, impl === 'ref' ? 1 : 5) * 1000) / w.length;
  return res;
}

export function runKQuantBench(opts: { json?: boolean; rounds?: number } = {}): KQuantRecord[] {
  const info = nativeIsaInfo();
  const paths = info ? info.families.kquant?.paths.filter((p) => info.levels.find((l) => l.isa === p)?.missing.length === 0) ?? [] : [];
  const self = fileURLToPath(import.meta.url);
  const best = new Map<string, number>();
  const keep = (impl: string, threads: number, r: Record<string, number>) => {
    for (const [f, us] of Object.entries(r)) {
      const k = `${impl}|${threads}|${f}`;
      best.set(k, Math.min(best.get(k) ?? Infinity, us));
    }
  };
  for (let i = 0; i < (opts.rounds ?? 2); i++) {
    keep('ref', 1, round('ref', 1));
    for (const isa of paths) {
      for (const threads of [1, 2]) {
        const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', String(threads)], {
          encoding: 'utf8', env: { ...process.env, KDQAT_ISA: isa },
        });
        if (r.status !== 0) throw new Error(`bench/kquant.ts child (KDQAT_ISA=${isa}) failed:\n${r.stderr}`);
        keep(isa, threads, JSON.parse(r.stdout));
      }
    }
  }
  const recs: KQuantRecord[] = [...best].map(([k, us]) => {
    const [impl, threads, format] = k.split('|');
    return { bench: 'kquant', impl, threads: Number(threads), format, usPerWeight: us };
  });
  if (!opts.json) {
    console.log(`\nfakeQuantGrid (K-quant fixed point), W (${ROWS}, ${COLS}), best µs/weight`);
    const cols = [['ref', 1], ...paths.flatMap((p) => [[p, 1], [p, 2]])] as [string, number][];
    console.log(['format', ...cols.map(([i, t]) => `${i}/${t}t`)].map((s) => s.padStart(12)).join(''));
    for (const f of FORMATS) {
      console.log([f, ...cols.map(([i, t]) => (best.get(`${i}|${t}|${f}`) ?? NaN).toFixed(4))].map((s) => s.padStart(12)).join(''));
    }
  }
  return recs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) console.log(JSON.stringify(round('native', Number(process.argv[i + 1]))));
  else {
    const recs = runKQuantBench({ json: process.argv.includes('--json') });
    if (process.argv.includes('--json')) for (const r of recs) console.log(JSON.stringify(r));
  }
}
