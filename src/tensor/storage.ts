// Tensor storage: how op outputs and gradients get their buffers, and how the storage of a
// training step goes back to a pool as soon as nothing can read it, instead of waiting for the
// collector.
//
// Why: a KD-QAT step at SmolLM2-135M's shape (B4 × T256) makes ~6 GB of buffers (teacher
// forward 1.5, student forward and loss 2.2, gradients 2.2). V8 starts a young-generation
// collection for every ~32 MB of new ArrayBuffer storage; each promotes the step's live tensor
// objects into the old generation, whose limit (~20 MB: the JS heap is ~10 MB) then starts a full
// mark-compact, with concurrent marking on helper threads that take the cores the kernels run
// on: ~1,250 scavenges and ~420 mark-compacts in a 4-step run before (AMD EPYC Zen 5, 2
// threads). Given back and reused, ~98% of a step's storage never reaches the allocator.
//
// Who gives back (each only what it can prove nothing reads any more):
// - backward (autograd.ts): gradients once they have flowed on, and with `release` (the training
//   loop) every intermediate of the graph once its node has run — in a recomputed block
//   (recompute.ts), the block's outputs of both forwards once the block's node has run;
// - the KD-QAT loop (train/qat.ts, distill/losses.ts releaseOutputs): the teacher's outputs, when
//   the next batch asks for new ones;
// - a layer of a forward that records nothing (recompute.ts `layer`, `consumed`): its
//   intermediates when it returns, the previous layer's output when the next has read it;
// - the optimizer's zeroGrad (the training loop): the gradients after the update.
// Where it goes is the run's storage policy (withStoragePolicy below): the pool, or the heap.
// A buffer is given back by detaching it (structuredClone with transfer; the pool keeps the new
// ArrayBuffer over the same memory), so every view still pointing at it has length 0 and a
// later use fails a kernel's length check (or item()) instead of reading another tensor's data.
import { totalmem } from 'node:os';
import { kernel } from './registry.js';
import type { Tensor } from './tensor.js';

// Uninitialized float32 storage, for a kernel output the contract (kernels.ts) says is fully
// overwritten. `new Float32Array(n)` is calloc: on a recycled heap block glibc clears it with a
// memset that the kernel then overwrites, ~11 % of a BERT-base KD-QAT step's samples at one
// thread (perf, AMD EPYC Zen 5). Buffer.allocUnsafeSlow is Node's malloc without the clear; its
// ArrayBuffer is the Buffer's own (byteOffset 0, exact length), so nothing else shares it.
// KDQAT_POISON_UNINIT=1 (set by `npm test` for every test) fills such storage with NaN instead,
// so an op that reads an element its kernel did not write shows up as NaN in the results.
const poisonUninit = process.env.KDQAT_POISON_UNINIT === '1';

/** n float32 elements whose contents are unspecified (NaN under KDQAT_POISON_UNINIT=1). */
export function uninitF32(n: number): Float32Array {
  const reused = take(n * 4);
  if (!reused) fresh += n * 4;
  let out: Float32Array;
  if (reused) {
    out = new Float32Array(reused);
  } else {
    const b = Buffer.allocUnsafeSlow(n * 4);
    out = new Float32Array(b.buffer, b.byteOffset, n);
  }
  if (poisonUninit) out.fill(NaN);
  return stamp(out);
}

/** n float32 zeros. */
export function zerosF32(n: number): Float32Array {
  const reused = take(n * 4);
  if (!reused) fresh += n * 4;
  return stamp(reused ? new Float32Array(reused).fill(0) : new Float32Array(n));
}

// ---- stamps and owners ----------------------------------------------------------------------
// uninitF32 and zerosF32 number each buffer they hand out (in order, on the ArrayBuffer itself),
// so autograd can tell a gradient made during its pass from storage that existed before (which
// it never gives back); the first Tensor made over a stamped buffer is its owner (a reshape or
// detach() over the same buffer is a view, never the owner). Buffers made any other way have no
// stamp and are never given back.
const BORN = Symbol('kdqat.born');
const OWNER = Symbol('kdqat.owner');
type Stamped = ArrayBufferLike & { [BORN]?: number; [OWNER]?: Tensor };
let allocations = 0;
let fresh = 0; // bytes of the buffers above that the pool did not have

/** Bytes of storage uninitF32 and zerosF32 have handed out that did not come from the pool (new
 *  from the allocator) since the process started: a training step's share of it, after the
 *  first steps, is what the pool failed to keep. */
export function freshBytes(): number {
  return fresh;
}

function stamp(a: Float32Array): Float32Array {
  (a.buffer as Stamped)[BORN] = ++allocations;
  scope?.push(a);
  return a;
}

/** How many stamped buffers have been handed out so far. */
export function allocationMark(): number {
  return allocations;
}

/** Counts x's stamped buffer as handed out now, i.e. after every allocationMark() so far: for an
 *  op that computes a gradient during its forward (the fused logits KL, ops/head-kl.ts) and
 *  gives it to the backward pass that runs later, which then treats it as its own (adds into it
 *  in place, hands it to a leaf's .grad, gives it back) instead of as the caller's. */
export function handOver(x: Float32Array): Float32Array {
  const b = x.buffer as Stamped;
  if (b[BORN] !== undefined) b[BORN] = ++allocations;
  return x;
}

/** Whether x's buffer was handed out by uninitF32/zerosF32 after allocationMark() gave `mark`. */
export function allocatedAfter(x: Float32Array | Int32Array | Uint16Array, mark: number): boolean {
  return ((x.buffer as Stamped)[BORN] ?? 0) > mark;
}

/** Called by the Tensor constructor: t owns a stamped buffer no tensor owns yet. */
export function claim(t: Tensor): void {
  const b = t.data.buffer as Stamped;
  if (b[BORN] !== undefined && b[OWNER] === undefined) b[OWNER] = t;
}

/** Whether t is the tensor its buffer was handed out for (not a view of another's). */
export function ownsData(t: Tensor): boolean {
  return (t.data.buffer as Stamped)[OWNER] === t;
}

// ---- giving back -----------------------------------------------------------------------------
// The pool: free buffers by byte length. A training step asks for the same sizes over and over
// (per layer, per step), so exact sizes suffice: SmolLM2-135M's KD-QAT step (B4 × T256) ends
// with ~2.5 GB pooled, and the next step's forward takes it back before its peak, so the pool
// adds little to the peak RSS (memory glibc would keep in its heap anyway). Sizes least recently
// asked for go first when a buffer would take the pool past its cap (a quarter of the machine's
// memory, at most 8 GiB), so sizes no longer used (another sequence length) do not stay; past
// the cap a buffer is freed at once (kernel release: the addon detaches it, V8 frees it).
let poolLimit = Math.min(8 * 2 ** 30, totalmem() / 4);
const pool = new Map<number, ArrayBuffer[]>(); // by byte length, least recently used first
let pooled = 0;

function take(bytes: number): ArrayBuffer | null {
  const list = pool.get(bytes);
  if (!list || list.length === 0) return null;
  pool.delete(bytes); // to the back: the most recently used size
  pool.set(bytes, list);
  pooled -= bytes;
  return list.pop()!;
}

/** Frees pooled buffers, least recently used sizes first, until `bytes` more fit the cap. */
function makeRoom(bytes: number): void {
  for (const [size, list] of pool) {
    if (pooled + bytes <= poolLimit) return;
    while (list.length && pooled + bytes > poolLimit) {
      kernel('release')(new Float32Array(list.pop()!));
      pooled -= size;
    }
    if (list.length === 0) pool.delete(size);
  }
}

/**
 * Gives x's buffer back now: x and every view of the buffer have length 0 afterwards. Only for
 * a whole stamped buffer that nothing will read again (autograd's proof, autograd.ts); anything
 * else is left to the collector.
 */
export function giveBack(x: Float32Array): void {
  if (!wholeStamped(x)) return;
  const b = x.buffer as ArrayBuffer & Stamped;
  if (policy === 'heap' || b.byteLength > poolLimit) {
    kernel('release')(x);
    return;
  }
  makeRoom(b.byteLength);
  const kept = structuredClone(b, { transfer: [b] });
  const list = pool.get(kept.byteLength);
  pool.delete(kept.byteLength);
  pool.set(kept.byteLength, list ? (list.push(kept), list) : [kept]);
  pooled += kept.byteLength;
}

/**
 * Where storage given back goes: 'pool' (the default), kept by exact size for the next request
 * of that size; 'heap', freed at once (kernel release: V8 frees the backing store), so the
 * heap's next request of any size takes its memory (allocator.cc keeps it in the process).
 * The pool suits a step whose forward holds its whole graph: backward frees gigabytes that the
 * next forward asks for again size by size, where freed to the heap they come back through
 * page faults (below). Where the forward is
 * recomputed (`--recompute`) the step holds little at a time, and the pool's exact sizes are
 * what raises its peak: the intermediates backward gives back cannot serve the gradients it
 * makes (other sizes), nor the gradients, pooled after the update, the next forward's
 * activations. AMD EPYC Zen 3, 1 thread, bench/real_size_worker.ts, pool → heap, two rounds:
 * SmolLM2-135M (B4 × T256, W4 g32, KL) `--recompute selective` 55.5 / 58.9 → 66.2 / 60.7
 * tokens/s at peak RSS 3764–3767 → 3281–3284 MB, `all` 50.3 / 51.6 → 56.5 / 53.5 at 3238–3241
 * → 3062–3063 MB; BERT-base (B16 × T128, TWN + a8) `selective` 115.4 / 109.4 → 108.8 / 94.2
 * at 3796–3797 → 3541–3568 MB (page faults 29k → 69–71k per step: buffers new to V8 again),
 * `all` 100.3 / 94.5 → 99.1 / 105.0 at 3197–3200 → 2987–2988 MB. So with recomputation, whose
 * point is memory, the heap: always less memory (on BERT-base it is what brings `selective`
 * under half of PyTorch's peak), faster on SmolLM2, up to 14% slower on BERT-base's
 * `selective`. Without recomputation the heap loses outright (SmolLM2-135M 67.7 → 51.4
 * tokens/s, 21k → 290k page faults per step: the gigabytes backward frees are not the ones
 * the next forward gets back), so the pool stays the default and a run takes its policy from
 * its recompute mode (recompute.ts storagePolicyFor). Switching to 'heap' frees what the pool
 * holds. (Those rounds timed the steps after one warm-up step. In the steady state, after two,
 * same CPU: SmolLM2 `selective` heap 64.9 / 62.4 against pool 58.6 / 62.9 tokens/s at 1 thread;
 * BERT-base `selective` heap 102.6 / 114.0 against pool 126.8 / 123.9 at 1 thread, 8–24% slower
 * with few page faults on either side (cause not found: docs/performance.md, "The steady state"), but at 2
 * threads heap 202.9 against pool 182.6.)
 */
export type StoragePolicy = 'pool' | 'heap';
export const STORAGE_POLICIES: readonly StoragePolicy[] = ['pool', 'heap'];
let policy: StoragePolicy = 'pool';

/** Runs fn with storage given back going where `p` says (scoped like noGrad). */
export function withStoragePolicy<T>(p: StoragePolicy, fn: () => T): T {
  if (!STORAGE_POLICIES.includes(p)) throw new RangeError(`withStoragePolicy: policy must be one of ${STORAGE_POLICIES.join(', ')}, got ${JSON.stringify(p)}`);
  const prev = policy;
  if (p === 'heap' && prev !== 'heap') drainPool();
  policy = p;
  try {
    return fn();
  } finally {
    policy = prev;
  }
}

/** The policy in force. */
export function storagePolicy(): StoragePolicy {
  return policy;
}

/** Whether x is all of a non-empty buffer from uninitF32/zerosF32 (what may be given back). */
function wholeStamped(x: Float32Array): boolean {
  const b = x.buffer as Stamped;
  return b[BORN] !== undefined && x.byteOffset === 0 && x.byteLength === b.byteLength && b.byteLength > 0;
}

// ---- scopes: a forward without a graph ------------------------------------------------------
// Without recording, nothing keeps a layer's intermediates once the layer has returned: the
// layer stacks (recompute.ts `layer`) run each layer of a forward that records nothing (the
// teacher's, an evaluation's, the first pass of a recomputed layer) in a scope, and everything
// allocated in it that the layer's result does not hold goes back to the pool when it returns,
// ready for the next layer. Code that keeps a tensor it makes beyond the call (a cache) makes
// it under `unscoped`.
let scope: Float32Array[] | null = null;

/** fn(), then every buffer allocated during it that no tensor of keep(result) uses is given back. */
export function scoped<T>(fn: () => T, keep: (result: T) => Iterable<Tensor | null>): T {
  const outer = scope;
  const mine: Float32Array[] = [];
  scope = mine;
  let result: T;
  try {
    result = fn();
  } finally {
    scope = outer;
  }
  const kept = new Set<ArrayBufferLike>();
  for (const t of keep(result)) if (t) kept.add(t.data.buffer);
  for (const a of mine) {
    if (kept.has(a.buffer)) outer?.push(a); // the enclosing scope decides about it
    else giveBack(a);
  }
  return result;
}

/** fn() with its allocations outside any scope (for what outlives the call: caches). */
export function unscoped<T>(fn: () => T): T {
  const outer = scope;
  scope = null;
  try {
    return fn();
  } finally {
    scope = outer;
  }
}

/** Bytes the pool holds. */
export function pooledBytes(): number {
  return pooled;
}

/** Sets the pool's cap in bytes (tests), freeing what no longer fits. */
export function setPoolLimit(bytes: number): void {
  poolLimit = bytes;
  makeRoom(0);
}

/** Frees every pooled buffer now (memory measurements start from an empty pool). */
export function drainPool(): void {
  for (const list of pool.values()) for (const b of list) kernel('release')(new Float32Array(b));
  pool.clear();
  pooled = 0;
}
