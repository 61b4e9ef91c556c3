// GEMM throughput: kdqat's native matmul vs PyTorch (torch.mm on OpenBLAS), GFLOP/s for the
// shapes M×K×N below at 1 and 2 threads, best of several reps after a warm-up. The two sides
// run interleaved (kdqat, torch, kdqat, torch) and each keeps its best round, so a burst of
// load from elsewhere on the machine does not decide the ratio.
// Usage: npx tsx bench/gemm.ts [--json] [--no-torch]
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Rng } from '../src/tensor/rng.js';
import type { NativeAddon } from '../src/backend/native/index.js';

export interface GemmRecord {
  bench: 'gemm';
  impl: 'kdqat' | 'torch';
  threads: number;
  m: number;
  k: number;
  n: number;
  gflops: number;
}

export interface GemmBenchOptions {
  /** true: print nothing (the caller prints the records as JSON); false: print a table. */
  json?: boolean;
  /** Also run PyTorch when /usr/bin/python3 can import torch (default true). */
  torch?: boolean;
  threads?: number[];
  shapes?: [number, number, number][];
  /** Interleaved rounds per side (default 3). */
  rounds?: number;
  /** Seconds of timed reps per shape and round (default 1). */
  minTime?: number;
}

export const defaultShapes: [number, number, number][] = [
  [512, 256, 1024], [2048, 512, 2048], [4096, 1024, 1024],
];

const here = dirname(fileURLToPath(import.meta.url));
const python = '/usr/bin/python3';

function torchAvailable(): boolean {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Best GFLOP/s of C = A·B over reps lasting at least minTime seconds (≥ 5 reps). */
function timeOurs(addon: NativeAddon, m: number, k: number, n: number, minTime: number): number {
  const rng = new Rng(m * 31 + k * 7 + n);
  const a = new Float32Array(m * k).map(() => rng.normal());
  const b = new Float32Array(k * n).map(() => rng.normal());
  const c = new Float32Array(m * n);
  const mm = () => addon.matmul!(a, b, c, 1, m, k, n, false, false, 0, 0, 0);
  const now = () => performance.now() / 1000;
  for (let t0 = now(), i = 0; i < 2 || now() - t0 < 0.3; i++) mm();
  let best = Infinity;
  for (let reps = 0, start = now(); reps < 5 || (now() - start < minTime && reps < 50); reps++) {
    const t0 = now();
    mm();
    best = Math.min(best, now() - t0);
  }
  return (2 * m * k * n) / best / 1e9;
}

function runTorch(threads: number, shapes: [number, number, number][], minTime: number): GemmRecord[] {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const t = String(threads);
  const r = spawnSync(python, [join(here, 'torch_gemm.py'), '--threads', t, '--min-time',
    String(minTime), '--shapes', shapes.map((s) => s.join('x')).join(',')], {
    encoding: 'utf8',
    env: { ...env, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t,
      ...(threads > 1 ? { OMP_WAIT_POLICY: 'PASSIVE' } : {}) },
  });
  if (r.status !== 0) throw new Error(`torch_gemm.py failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as GemmRecord);
}

/** Runs the benchmark and returns the best record per (impl, threads, shape). */
export async function runGemmBench(opts: GemmBenchOptions = {}): Promise<GemmRecord[]> {
  const addon = createRequire(import.meta.url)('../build/Release/kdqat.node') as NativeAddon;
  const shapes = opts.shapes ?? defaultShapes;
  const threadCounts = opts.threads ?? [1, 2];
  const rounds = opts.rounds ?? 3;
  const minTime = opts.minTime ?? 1;
  const withTorch = (opts.torch ?? true) && torchAvailable();
  const log = opts.json ? () => {} : (s: string) => console.log(s);
  const best = new Map<string, GemmRecord>();
  const keep = (r: GemmRecord) => {
    const key = `${r.impl}:${r.threads}:${r.m}x${r.k}x${r.n}`;
    const old = best.get(key);
    if (!old || r.gflops > old.gflops) best.set(key, r);
  };
  const before = addon.getThreads();
  log(`gemm: kdqat ${addon.isa()}${withTorch ? ' vs torch' : ''}, best of ${rounds} interleaved rounds`);
  try {
    for (const threads of threadCounts) {
      addon.setThreads(threads);
      // New pool workers must be running before the first parallel call (see pool.cc's
      // generation snapshot), so let them start.
      await sleep(100);
      for (let round = 0; round < rounds; round++) {
        for (const [m, k, n] of shapes) {
          keep({ bench: 'gemm', impl: 'kdqat', threads, m, k, n,
            gflops: timeOurs(addon, m, k, n, minTime) });
        }
        if (withTorch) for (const r of runTorch(threads, shapes, minTime)) keep(r);
      }
    }
  } finally {
    addon.setThreads(before);
  }
  const records = [...best.values()];
  if (!opts.json) printTable(records, shapes, threadCounts);
  return records;
}

function printTable(recs: GemmRecord[], shapes: [number, number, number][], threads: number[]): void {
  const get = (impl: string, t: number, [m, k, n]: [number, number, number]) =>
    recs.find((r) => r.impl === impl && r.threads === t && r.m === m && r.k === k && r.n === n);
  console.log('M×K×N              threads  kdqat GFLOP/s  torch GFLOP/s  kdqat/torch');
  for (const t of threads) {
    for (const s of shapes) {
      const ours = get('kdqat', t, s), theirs = get('torch', t, s);
      const fmt = (r?: GemmRecord) => (r ? r.gflops.toFixed(1) : '-').padStart(15);
      const ratio = ours && theirs ? (ours.gflops / theirs.gflops).toFixed(2) + 'x' : '-';
      console.log(`${s.join('×').padEnd(19)}${String(t).padStart(7)}${fmt(ours)}${fmt(theirs)}` +
        `${ratio.padStart(13)}`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const recs = await runGemmBench({ json, torch: !args.includes('--no-torch') });
  if (json) for (const r of recs) console.log(JSON.stringify(r));
}
