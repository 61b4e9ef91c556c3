# PyTorch side of bench/gemm.ts: C = op(A) @ op(B) for (m,k)·(k,n) float32 shapes at one thread
# count, best of several reps after a warm-up, one JSON object per line:
#   {"bench": "gemm", "impl": "torch", "threads": T, "m": M, "k": K, "n": N, "layout": L, "gflops": G}
# A shape MxKxN may end in ta (A stored (k,m)), tb (B stored (n,k)) or tatb: the operand is then
# a .t() view of a contiguous tensor, as torch.nn.functional.linear passes its weight.
# Usage: /usr/bin/python3 bench/torch_gemm.py --threads 1 --shapes 512x256x1024,1024x576x576tb
# The BLAS/OpenMP thread counts are read when torch loads, so they are set before the import
# (bench/gemm.ts also sets them in the child's environment).
import argparse
import json
import os
import re
import time

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--shapes', default='512x256x1024,2048x512x2048,4096x1024x1024')
ap.add_argument('--min-time', type=float, default=1.0, help='seconds of timed reps per shape')
args = ap.parse_args()

t = str(args.threads)
for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, t)
if args.threads > 1:
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)

for shape in args.shapes.split(','):
    match = re.fullmatch(r'(\d+)x(\d+)x(\d+)(ta|tb|tatb)?', shape)
    if not match:
        raise SystemExit(f"bad shape '{shape}' (expected MxKxN with an optional ta, tb or tatb)")
    m, k, n = (int(x) for x in match.group(1, 2, 3))
    layout = match.group(4) or ''
    a = torch.randn(k, m).t() if 'ta' in layout else torch.randn(m, k)
    b = torch.randn(n, k).t() if 'tb' in layout else torch.randn(k, n)
    c = torch.empty(m, n)
    torch.mm(a, b, out=c)
    start = time.perf_counter()
    while time.perf_counter() - start < 0.2:
        torch.mm(a, b, out=c)
    best, reps, start = float('inf'), 0, time.perf_counter()
    while reps < 3 or (time.perf_counter() - start < args.min_time and reps < 50):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    print(json.dumps({'bench': 'gemm', 'impl': 'torch', 'threads': args.threads, 'm': m, 'k': k,
                      'n': n, 'layout': layout, 'gflops': 2.0 * m * k * n / best / 1e9}),
          flush=True)
