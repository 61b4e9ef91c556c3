// Data-parallel training (issue 17): N processes, started by `mpirun -np N kdqat qat …
// --distributed mpi`, each hold the whole model; every global batch is split between them in
// contiguous row slices (rankRows), each rank computes the losses of its rows weighted by its
// share of the batch (rows/total), and the gradients are summed over ranks before clipping and
// the optimizer step. Every rank then applies the same update to the same parameters, so they
// stay identical (checkSameParams asserts it); rank 0 alone writes logs, checkpoints and the
// student.
//
// Determinism: the sum is native/mpi.cc's rank-order reduction ((g0 + g1) + g2) + …, the same
// on every rank and every run. A rank's loss is scaled by its share before backward, exactly as
// the training loop scales a micro-batch by 1/accumulate, so N ranks with --batch B compute,
// bit for bit, what one process computes with --batch B/N --accumulate N (same rows per
// micro-batch, same gradient additions in the same order; decoder batches, --accumulate 1, the
// same thread count). Against one process with --batch B the only difference is where the sum
// over the B rows is split: float32 reordering, bounded in test/train/distributed.test.ts.
//
// Encoders (qat of a classifier, masked-LM pretrain, finetune): a rank's rows keep the global
// batch's padding and dropout masks (withDropoutRows), MLM masks are drawn for the global batch,
// and each loss term is weighted by the rank's share of its own normalizer (tokens, masked
// tokens, pairs, rows: qat-data.ts termShares, pretrain.ts mlmSlice), so the ranks sum to one
// process's --batch B loss and gradient up to that float32 reordering (docs/distributed.md).
import { createHash } from 'node:crypto';
import { Tensor } from '../tensor/tensor.js';
import type { Params } from '../nn/params.js';
import { nativeMpi } from '../backend/index.js';
import { UsageError } from './usage.js';

/** The engines `--distributed` accepts. */
export const DISTRIBUTED_ENGINES = ['mpi'] as const;

export interface Distributed {
  readonly engine: 'single' | (typeof DISTRIBUTED_ENGINES)[number];
  readonly rank: number;
  readonly size: number;
  /** In place: the sum over ranks, in rank order, bitwise identical on every rank. */
  allReduceSum(x: Float32Array | Float64Array): void;
  barrier(): void;
  /** Ends every rank of the job with exit code `code`. */
  abort(code: number): never;
  finalize(): void;
  /** What this rank prints if mpirun ends it (SIGTERM: another rank died), e.g. where the last
   *  good checkpoint is; each call replaces the previous text. */
  lastWords(text: string): void;
}

/** One process (N = 1): the sum over one rank is the value itself. */
export const SINGLE: Distributed = {
  engine: 'single', rank: 0, size: 1,
  allReduceSum: () => {},
  barrier: () => {},
  abort: (code) => process.exit(code),
  finalize: () => {},
  lastWords: () => {},
};

let world: Distributed | null = null;

/** Joins the MPI job this process was started in (mpirun); once per process. */
export function initDistributed(engine: string): Distributed {
  if (!(DISTRIBUTED_ENGINES as readonly string[]).includes(engine)) {
    throw new UsageError(`--distributed ${engine}: not an engine kdqat has; use --distributed mpi (started with mpirun -np N)`);
  }
  if (world) return world;
  const { mpi, reason } = nativeMpi();
  if (!mpi) throw new Error(`--distributed mpi: MPI is not available: ${reason}`);
  const { rank, size } = mpi.mpiInit();
  world = {
    engine: 'mpi', rank, size,
    allReduceSum: (x) => mpi.mpiAllReduceSum(x),
    barrier: () => mpi.mpiBarrier(),
    abort: (code) => {
      mpi.mpiAbort(code);
      return process.exit(code);  // not reached: MPI_Abort ends the process
    },
    finalize: () => mpi.mpiFinalize(),
    lastWords: (text) => mpi.mpiLastWords(text),
  };
  return world;
}

/** The command line's end of a failed rank: on several ranks, the others wait in a collective
 *  that will never come, so say which rank failed and why, then end the whole job. */
export function endJobOnError(dist: Distributed | undefined, e: unknown): void {
  if (!dist || dist.size === 1) return;
  process.stderr.write(`kdqat: rank ${dist.rank} of ${dist.size}: ${(e as Error).message}\nkdqat: ending every rank of the MPI job\n`);
  dist.abort(e instanceof UsageError ? 2 : 1); // kdqat's exit status (docs/cli.md)
}

/** Rows [lo, hi) of a global batch of `rows` that rank `rank` of `size` takes: contiguous
 *  slices in rank order whose sizes differ by at most one (rank r of N with B = kN: rows
 *  r·k … r·k + k − 1). */
export function rankRows(rows: number, rank: number, size: number): { lo: number; hi: number } {
  return { lo: Math.floor((rank * rows) / size), hi: Math.floor(((rank + 1) * rows) / size) };
}

/**
 * A function summing the gradients of `params` over the ranks, in place: every parameter that
 * requires a gradient goes into one flat buffer (reused from step to step) behind one presence
 * flag per parameter, so a step costs one all-reduce of 4·(trained parameters) bytes plus the
 * flags. A gradient missing on one rank counts as zeros there; a parameter with no gradient on
 * any rank keeps none, so the optimizer skips it as a single process would.
 */
export function gradientReducer(dist: Distributed, params: Params): () => void {
  if (dist.size === 1) return () => {};
  const list = [...params.values()].filter((p) => p.requiresGrad);
  const total = list.reduce((n, p) => n + p.size, list.length);
  let flat: Float32Array | null = null;
  return () => {
    flat ??= new Float32Array(total);
    let at = list.length;
    list.forEach((p, i) => {
      flat![i] = p.grad ? 1 : 0;
      if (p.grad) flat!.set(p.grad.f32, at);
      else flat!.fill(0, at, at + p.size);
      at += p.size;
    });
    dist.allReduceSum(flat);
    at = list.length;
    list.forEach((p, i) => {
      const g = flat!.subarray(at, at + p.size);
      at += p.size;
      if (flat![i] === 0) return;
      if (p.grad) p.grad.f32.set(g);
      else p.grad = new Tensor(g.slice(), p.shape);
    });
  };
}

/** The first 32 bits of a SHA-1 of every parameter's bits, in the map's order (node:crypto
 *  hashes natively: no JS loop over the ~10⁸ floats of a real model). */
export function paramsChecksum(params: Params): number {
  const h = createHash('sha1');
  for (const p of params.values()) {
    const f = p.f32;
    h.update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  }
  return h.digest().readUInt32BE(0);
}

/** Throws unless every rank holds bitwise the same parameters (a collective: every rank calls
 *  it at the same step). */
export function checkSameParams(dist: Distributed, params: Params, step: number): void {
  if (dist.size === 1) return;
  const sums = new Float64Array(dist.size);
  sums[dist.rank] = paramsChecksum(params);
  dist.allReduceSum(sums);
  const differ = [...sums.keys()].filter((r) => sums[r] !== sums[0]);
  if (differ.length) {
    throw new Error(`after step ${step} the parameters of rank${differ.length > 1 ? 's' : ''} ${differ.join(', ')} differ from rank 0's ` +
      `(checksums ${[...sums].map((s) => s.toString(16)).join(', ')}): the ranks must run the same kdqat and addon build on the same data`);
  }
}
