// Micro-benchmark of the native fused attention: forward (saving probs, as in training) and
// backward for a training shape, causal, at 1 and 2 threads; with --torch also PyTorch's
// manual softmax(QKᵀ)V with autograd on the same shape, for comparison.
// Usage: npx tsx bench/attention.ts [--torch] [B T H Hkv D]
// Each thread count runs in its own child process (KDQAT_THREADS), since changing the pool
// size in-process right before a parallel call can race with the new workers' start-up.
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/tensor/rng.js';
import type { NativeAddon } from '../src/backend/native/index.js';

const args = process.argv.slice(2);
const torch = args.includes('--torch');
const dims = args.filter((a) => a !== '--torch');
const [B, T, H, Hkv, D] = (dims.length ? dims : ['8', '256', '4', '4', '64']).map(Number);

function timeMs(fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  for (let r = 0; r < 21; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];  // median
}

function child(): void {
  const addon = createRequire(import.meta.url)('../build/Release/kdqat.node') as NativeAddon;
  addon.getThreads();  // start the pool's workers well before the first parallel call
  const scale = 1 / Math.sqrt(D);
  const rng = new Rng(7);
  const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  const q = rand(B * T * H * D), k = rand(B * T * Hkv * D), v = rand(B * T * Hkv * D);
  const gout = rand(B * T * H * D);
  const out = new Float32Array(q.length), probs = new Float32Array(B * H * T * T);
  const gq = new Float32Array(q.length), gk = new Float32Array(k.length);
  const gv = new Float32Array(v.length);
  const fwd = timeMs(() => addon.attention!(q, k, v, out, probs, null, B, T, H, Hkv, D, scale, true, null));
  const bwd = timeMs(() => addon.attentionBackward!(q, k, v, probs, gout, null, null, gq, gk, gv,
    B, T, H, Hkv, D, scale, true, null));
  process.stdout.write(JSON.stringify({ threads: addon.getThreads(), isa: addon.isa(), fwd, bwd }));
}

const torchScript = `
import math, sys, time, torch
B, T, H, Hkv, D = map(int, sys.argv[1:6])
torch.manual_seed(0)
q = torch.randn(B, H, T, D, requires_grad=True)
k = torch.randn(B, Hkv, T, D, requires_grad=True)
v = torch.randn(B, Hkv, T, D, requires_grad=True)
go = torch.randn(B, H, T, D)
mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
def fwd():
    kk, vv = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
    s = (q @ kk.transpose(-1, -2)) * (1 / math.sqrt(D))
    p = torch.softmax(s.masked_fill(mask, float('-inf')), -1)
    return p @ vv
def fb():
    fwd().backward(go)
    q.grad = k.grad = v.grad = None
def med(f):
    for _ in range(3): f()
    ts = []
    for _ in range(21):
        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1e3)
    return sorted(ts)[len(ts) // 2]
with torch.no_grad():
    tf = med(fwd)
print('{"fwd": %f, "fwdbwd": %f, "threads": %d, "version": "%s"}' % (tf, med(fb), torch.get_num_threads(), torch.__version__))
`;

function main(): void {
  console.log(`attention B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D} causal (median of 21)`);
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const ours: Record<number, number> = {};
  for (const threads of [1, 2]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...dims], {
      env: { ...env, KDQAT_ATTN_BENCH_CHILD: '1', KDQAT_THREADS: String(threads) }, encoding: 'utf8',
      timeout: 300_000,
    });
    if (r.status !== 0) throw new Error(`child failed (${r.signal ?? r.status}): ${r.stderr}`);
    const m = JSON.parse(r.stdout) as { threads: number; isa: string; fwd: number; bwd: number };
    ours[threads] = m.fwd + m.bwd;
    console.log(`kdqat ${m.isa} threads ${m.threads}: forward ${m.fwd.toFixed(2)} ms, backward ` +
      `${m.bwd.toFixed(2)} ms, total ${(m.fwd + m.bwd).toFixed(2)} ms`);
  }
  if (!torch) return;
  for (const threads of [1, 2]) {
    const r = spawnSync('/usr/bin/python3', ['-c', torchScript, ...[B, T, H, Hkv, D].map(String)], {
      env: { ...env, OMP_NUM_THREADS: String(threads) }, encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout) as { fwd: number; fwdbwd: number; threads: number; version: string };
    console.log(`torch ${m.version} threads ${m.threads}: forward (no_grad) ${m.fwd.toFixed(2)} ms, ` +
      `forward+backward ${m.fwdbwd.toFixed(2)} ms → kdqat is ${(m.fwdbwd / ours[threads]).toFixed(2)}x faster`);
  }
}

if (process.env.KDQAT_ATTN_BENCH_CHILD) child();
else main();
