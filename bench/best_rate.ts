// The best rate of a kernel call over repeated runs (bench/gemm.ts, gemm_bf16.ts, gemm_q8.ts): at
// least 3 runs, more until minTime seconds have passed (at most maxReps); units of `work` per second.
export function bestRate(f: () => void, work: number, minTime: number, maxReps = 40): number {
  const now = (): number => performance.now() / 1000;
  let t = Infinity;
  for (let reps = 0, start = now(); reps < 3 || (now() - start < minTime && reps < maxReps); reps++) {
    const t0 = now();
    f();
    t = Math.min(t, now() - t0);
  }
  return work / t;
}
