// GEMM throughput: kdqat's native matmul vs PyTorch (torch.mm on OpenBLAS), GFLOP/s for the
// shapes M×K×N below at 1 and 2 threads, best of several reps after a warm-up. The two sides
// run interleaved (kdqat, torch, kdqat, torch) and each keeps its best round, so a burst of
// load from elsewhere on the machine does not decide the ratio.
// A shape is written MxKxN with an optional layout suffix: ta (A stored (k,m), used as Aᵀ), tb
// (B stored (n,k): nn.Linear's y = x·Wᵀ), or tatb; torch gets the same layouts as .t() views of
// contiguous tensors, as torch.nn.functional.linear does.
// Usage: npx tsx bench/gemm.ts [--json] [--no-torch] [--threads 1,2] [--rounds R]
//                              [--shapes 1024x576x576tb,768x2048x3072ta]
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Rng } from '../src/tensor/rng.js';
import type { NativeAddon } from '../src/backend/native/index.js';
import { bestRate } from './best_rate.js';

export interface GemmRecord {
  bench: 'gemm';
  impl: 'kdqat' | 'torch';
  threads: number;
  m: number;
  k: number;
  n: number;
  /** Layout: '' (both stored as used), 'ta', 'tb' or 'tatb' (see the header). */
  layout: Layout;
  gflops: number;
}

export type Layout = '' | 'ta' | 'tb' | 'tatb';
export type GemmShape = [number, number, number, Layout?];

export interface GemmBenchOptions {
  /** true: print nothing (the caller prints the records as JSON); false: print a table. */
  json?: boolean;
  /** Also run PyTorch when /usr/bin/python3 can import torch (default true). */
  torch?: boolean;
  threads?: number[];
  shapes?: GemmShape[];
  /** Interleaved rounds per side (default 2). */
  rounds?: number;
  /** Seconds of timed reps per shape and round (default 0.5). */
  minTime?: number;
}

// Square-ish shapes, then the real projection shapes of bench/real_size.ts's models as
// nn.Linear runs them (forward x·Wᵀ: tb; weight gradient dW = dYᵀ·X: ta). SmolLM2-135M
// (B4 T256: 1024 tokens, d 576, ff 1536, vocab 49152): q/o, gate/up, down, LM head, dW of
// gate/up. BERT-base (B16 T128: 2048 tokens, d 768, ff 3072): ff up, ff down, dW of ff up.
export const defaultShapes: GemmShape[] = [
  [512, 256, 1024], [2048, 512, 2048], [4096, 1024, 1024],
  [1024, 576, 576, 'tb'], [1024, 576, 1536, 'tb'], [1024, 1536, 576, 'tb'],
  [1024, 576, 49152, 'tb'], [1536, 1024, 576, 'ta'],
  [2048, 768, 3072, 'tb'], [2048, 3072, 768, 'tb'], [768, 2048, 3072, 'ta'],
];

const shapeName = ([m, k, n, layout]: GemmShape) => `${m}x${k}x${n}${layout ?? ''}`;
function parseShape(s: string): GemmShape {
  const match = /^(\d+)x(\d+)x(\d+)(ta|tb|tatb)?$/.exec(s);
  if (!match) throw new Error(`bad shape '${s}' (expected MxKxN with an optional ta, tb or tatb)`);
  return [+match[1], +match[2], +match[3], (match[4] ?? '') as Layout];
}

const here = dirname(fileURLToPath(import.meta.url));
const python = '/usr/bin/python3';

function torchAvailable(): boolean {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Operands are made once per size: filling the LM head's 28M-element weight with normal
// variates takes seconds, and every round would pay it again.
const operandCache = new Map<string, { a: Float32Array; b: Float32Array; c: Float32Array }>();
function operands(m: number, k: number, n: number) {
  const key = `${m}x${k}x${n}`;
  let ops = operandCache.get(key);
  if (!ops) {
    const rng = new Rng(m * 31 + k * 7 + n);
    ops = { a: new Float32Array(m * k).map(() => rng.normal()),
      b: new Float32Array(k * n).map(() => rng.normal()), c: new Float32Array(m * n) };
    operandCache.set(key, ops);
  }
  return ops;
}

/** Best GFLOP/s of C = op(A)·op(B) over reps lasting at least minTime seconds (≥ 3 reps). */
function timeOurs(addon: NativeAddon, [m, k, n, layout]: GemmShape, minTime: number): number {
  const { a, b, c } = operands(m, k, n);
  const ta = layout === 'ta' || layout === 'tatb', tb = layout === 'tb' || layout === 'tatb';
  const mm = () => addon.matmul!(a, b, c, 1, m, k, n, ta, tb, 0, 0, 0);
  const now = () => performance.now() / 1000;
  for (let t0 = now(), i = 0; i < 1 || now() - t0 < 0.2; i++) mm();
  return bestRate(mm, 2 * m * k * n, minTime, 50) / 1e9;
}

function runTorch(threads: number, shapes: GemmShape[], minTime: number): GemmRecord[] {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const t = String(threads);
  const r = spawnSync(python, [join(here, 'torch_gemm.py'), '--threads', t, '--min-time',
    String(minTime), '--shapes', shapes.map(shapeName).join(',')], {
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
  const rounds = opts.rounds ?? 2;
  const minTime = opts.minTime ?? 0.5;
  const withTorch = (opts.torch ?? true) && torchAvailable();
  const log = opts.json ? () => {} : (s: string) => console.log(s);
  const best = new Map<string, GemmRecord>();
  const keep = (r: GemmRecord) => {
    const key = `${r.impl}:${r.threads}:${shapeName([r.m, r.k, r.n, r.layout])}`;
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
        for (const s of shapes) {
          const [m, k, n, layout = ''] = s;
          keep({ bench: 'gemm', impl: 'kdqat', threads, m, k, n, layout,
            gflops: timeOurs(addon, s, minTime) });
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

function printTable(recs: GemmRecord[], shapes: GemmShape[], threads: number[]): void {
  const get = (impl: string, t: number, s: GemmShape) => recs.find((r) =>
    r.impl === impl && r.threads === t && shapeName([r.m, r.k, r.n, r.layout]) === shapeName(s));
  console.log('M×K×N layout       threads  kdqat GFLOP/s  torch GFLOP/s  kdqat/torch');
  for (const t of threads) {
    for (const s of shapes) {
      const ours = get('kdqat', t, s), theirs = get('torch', t, s);
      const fmt = (r?: GemmRecord) => (r ? r.gflops.toFixed(1) : '-').padStart(15);
      const ratio = ours && theirs ? (ours.gflops / theirs.gflops).toFixed(2) + 'x' : '-';
      const name = `${s.slice(0, 3).join('×')} ${s[3] ?? ''}`;
      console.log(`${name.padEnd(19)}${String(t).padStart(7)}${fmt(ours)}${fmt(theirs)}` +
        `${ratio.padStart(13)}`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const shapes = value('--shapes')?.split(',').map(parseShape);
  const threads = value('--threads')?.split(',').map(Number);
  const rounds = value('--rounds') ? Number(value('--rounds')) : undefined;
  const recs = await runGemmBench({ json, torch: !args.includes('--no-torch'), shapes, threads,
    rounds });
  if (json) for (const r of recs) console.log(JSON.stringify(r));
}
