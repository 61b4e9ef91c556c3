// One process of bench/distributed.ts: a KD-QAT run without evaluations (runQat evaluate:
// false), on MPI when `--distributed` is given; rank 0 prints its summary as one JSON line.
//   node --import tsx bench/distributed_worker.ts OUT STEPS [--distributed]
import { runQat, QAT_DEFAULTS } from '../src/train/qat.js';
import { initDistributed } from '../src/train/distributed.js';
import { getThreads } from '../src/tensor/index.js';
import { fileURLToPath } from 'node:url';

const [out, steps, flag] = process.argv.slice(2);
const dist = flag === '--distributed' ? initDistributed('mpi') : undefined;
const teacher = fileURLToPath(new URL('../teachers/llama-sotu', import.meta.url));
const s = runQat({
  out, force: true, evaluate: false, dist,
  config: { ...QAT_DEFAULTS, teacher, data: 'sotu', steps: Number(steps), batch: 8, seqLen: 128, warmup: 1, evalEvery: 0, logEvery: 1, saveEvery: 0 },
});
if (!dist || dist.rank === 0) process.stdout.write(JSON.stringify({ ...s, threads: getThreads() }) + '\n');
dist?.finalize();
