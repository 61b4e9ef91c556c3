// Activation recomputation ("gradient checkpointing"): a block of the forward pass keeps only
// its inputs; backward runs the block again, recording, and back-propagates through that copy.
// Memory: a block's intermediate activations (a decoder layer at SmolLM2's shape, B4 × T256:
// ~55 MB of activations and ~13 MB of fake-quantized weights) are held for one block at a time
// instead of for every block; cost: the block's forward twice.
//
// Exactness: the second forward computes the same values bit for bit (the kernels are
// deterministic for a given thread count and ISA, dropout masks are functions of their seed,
// and the compute precision of the first forward is restored), so outputs and gradients equal
// those without recomputation bit for bit. One exception: a parameter that is also used
// outside the block gets its two contributions summed in another order (the block's is added
// to .grad during backward, not summed into the rest first).
//
// Selective recomputation keeps each GEMM's output as well (the block's "tape") and runs
// everything else again: attention's core, norms, activations, fake quantization. The second
// forward takes the GEMM outputs from the tape instead of computing them, so it costs the
// block's non-GEMM work instead of its whole forward, and holds the GEMM outputs (SmolLM2: q,
// k, v, o, gate, up, down — about half a layer's activations) but not the rest or the
// fake-quantized weights. Measured at the real-size shapes (docs/performance.md): about a third
// of full recomputation's cost in float32 for about two thirds of its memory saving.
// (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
// recompute attention's core alone; this recomputes every non-GEMM op.) The values are the
// first forward's, so exactness holds as above.
//
// The block must be a function of its inputs and of parameters it reads (no state that
// advances between the two calls); side effects on the forward (e.g. statistics a probe
// collects) should happen only when isRecording() is true, which holds on the second call.
import { Tensor } from './tensor.js';
import { backwardFrom, enableGrad, isRecording, mayGiveBack, noGrad, record } from './autograd.js';
import { computeScope, withComputeScope } from './compute.js';
import { currentDropoutRows, withDropoutRows } from './ops/nn.js';
import { giveBack, ownsData, scoped, type StoragePolicy } from './storage.js';
import { empty, fmt } from './ops/util.js';

/** Which layers recompute in backward: none, all of each layer's work, or all but its GEMMs. */
export type RecomputeMode = 'off' | 'selective' | 'all';
export const RECOMPUTE_MODES: readonly RecomputeMode[] = ['off', 'selective', 'all'];

/** The storage policy a training run takes with this mode (storage.ts StoragePolicy, with the
 *  measurements): the pool without recomputation, the heap with it. */
export function storagePolicyFor(mode: RecomputeMode): StoragePolicy {
  return mode === 'off' ? 'pool' : 'heap';
}

/** A stored recompute setting as a mode: true and false (runs' configs and bench records from
 *  before 'selective') are 'all' and 'off', absent is 'off'; a mode stays itself (checked where
 *  it is read: qat-config.ts). */
export function recomputeModeOf(v: string | boolean | undefined): RecomputeMode {
  return v === true ? 'all' : v === false || v === undefined ? 'off' : (v as RecomputeMode);
}

// The GEMM outputs of the block being recomputed selectively: its first forward appends them,
// its second takes them back in the same order.
interface Tape { replay: boolean; items: Tensor[]; next: number }
let tape: Tape | null = null;

/** A GEMM's output (matmul.ts): a fresh `shape` tensor filled by `run`, except in the second
 *  forward of a selectively recomputed block, which gets its first forward's output back. */
export function gemmOutput(shape: readonly number[], run: (out: Tensor) => void): Tensor {
  const t = tape;
  if (t?.replay) {
    const out = t.items[t.next++];
    if (!out || out.shape.length !== shape.length || out.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`recompute: GEMM ${t.next} of the block's second forward makes ${fmt([...shape])}, its first made ${out ? fmt(out.shape) : 'no more'}: the block is not a function of its inputs`);
    }
    return out;
  }
  const out = empty([...shape]);
  run(out);
  t?.items.push(out);
  return out;
}

function withTape<T>(t: Tape | null, fn: () => T): T {
  const outer = tape;
  tape = t;
  try {
    return fn();
  } finally {
    tape = outer;
  }
}

/**
 * fn(inputs) with its activations recomputed in backward. Outputs keep fn's values and shapes;
 * under noGrad (or when nothing records) this is just fn(inputs). Inputs that require a
 * gradient get it; parameters fn reads get theirs added to .grad as backward reaches the block.
 * selective: the GEMM outputs are kept and not computed again (see the top of this file).
 */
export function recompute(
  fn: (inputs: readonly Tensor[]) => readonly Tensor[], inputs: readonly Tensor[], opts: { selective?: boolean } = {},
): Tensor[] {
  if (!isRecording()) return [...fn(inputs)];
  const scope = computeScope(); // the second forward runs under the first one's GEMM settings
  const rows = currentDropoutRows(); // a rank's dropout rows (data parallel): the same masks again
  const kept: Tape | null = opts.selective ? { replay: false, items: [], next: 0 } : null;
  const outs = noGrad(() => scoped(() => withTape(kept, () => fn(inputs)), (r) => [...r, ...(kept?.items ?? [])]));
  const pending: (Tensor | null)[] = outs.map(() => null);
  // The block's node: its inputs are the block's inputs, and it runs after every output's
  // gradient has arrived (the outputs are its children). It requires a gradient even when no
  // input does: parameters inside the block may.
  const joint = new Tensor(new Float32Array(0), [0]);
  joint.requiresGrad = true;
  joint.node = {
    op: 'recompute', inputs,
    backward: () => {
      const xs = inputs.map((x) => (x.requiresGrad ? new Tensor(x.data, x.shape, true) : x));
      const again = (): readonly Tensor[] => (rows ? withDropoutRows(rows.lo, rows.rows, () => fn(xs)) : fn(xs));
      const replay = kept && { replay: true, items: kept.items, next: 0 };
      const ys = enableGrad(() => withComputeScope(scope, () => withTape(replay, again)));
      if (ys.length !== outs.length) throw new Error(`recompute: the block returned ${outs.length} outputs, then ${ys.length}`);
      if (replay && replay.next !== replay.items.length) {
        throw new Error(`recompute: the block's first forward ran ${replay.items.length} GEMMs, its second ${replay.next}: the block is not a function of its inputs`);
      }
      if (kept) kept.items = []; // the graph below holds them now (and gives them back)
      const roots: Tensor[] = [], grads: Tensor[] = [];
      ys.forEach((y, i) => {
        const g = pending[i];
        if (g && y.requiresGrad) { roots.push(y); grads.push(g); }
      });
      pending.fill(null);
      if (roots.length) backwardFrom(roots, grads, { release: true });
      // The block's outputs of both forwards: the second forward's are this node's own (its pass
      // kept them readable as its roots), and every consumer of the first forward's has run
      // before this node (they came after the block). So where the pass around this node gives
      // storage back, they go back too, instead of waiting for the collector (each step's
      // selectively recomputed BERT-base layer made three 12 MB and about four 6 MB buffers anew).
      // Not an input handed back as an output: it lives on outside the block.
      const done = new Set<ArrayBufferLike>(inputs.map((x) => x.data.buffer));
      for (const t of [...ys, ...outs]) {
        if (done.has(t.data.buffer)) continue;
        done.add(t.data.buffer);
        if (mayGiveBack(t)) giveBack(t.f32);
      }
      return xs.map((x, i) => (inputs[i].requiresGrad ? x.grad : null));
    },
  };
  const none = new Tensor(new Float32Array(0), [0]);
  return outs.map((o, i) => record(new Tensor(o.data, o.shape), 'recompute', [joint], (g) => {
    pending[i] = g;
    return [none];
  }, { readsValue: false }));
}

// Which forwards recompute: scoped like noGrad and withCompute. The layer stacks (llama.ts,
// encoder.ts) run each layer through `layer` below, which recomputes inside the scope.
let layers: RecomputeMode = 'off';

/** Runs fn with every Transformer layer of the forwards in it recomputed in backward as `mode`
 *  says. */
export function withRecompute<T>(mode: RecomputeMode, fn: () => T): T {
  if (!RECOMPUTE_MODES.includes(mode)) throw new RangeError(`withRecompute: mode must be one of ${RECOMPUTE_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  const prev = layers;
  layers = mode;
  try {
    return fn();
  } finally {
    layers = prev;
  }
}

/** One layer `block(x) → { y, cap }` (cap: named taps, null where not requested): recomputed
 *  in backward inside withRecompute('all' | 'selective', …) while recording, run as it is
 *  otherwise; when nothing records, its intermediates go back to the pool as it returns
 *  (storage.ts scoped). */
export function layer<C extends object>(block: (x: Tensor) => { y: Tensor; cap: C }, x: Tensor): { y: Tensor; cap: C } {
  if (!isRecording()) return scoped(() => block(x), (r) => [r.y, ...Object.values(r.cap as Record<string, Tensor | null>)]);
  if (layers === 'off') return block(x);
  type Taps = Record<string, Tensor | null>;
  let cap: Taps = {};
  let taps: string[] | null = null;
  const [y, ...rest] = recompute(([xi]) => {
    const r = block(xi);
    const c = r.cap as Taps;
    if (!taps) {
      cap = { ...c };
      taps = Object.keys(c).filter((k) => c[k]);
    }
    return [r.y, ...taps.map((k) => c[k] as Tensor)];
  }, [x], { selective: layers === 'selective' });
  taps!.forEach((k, i) => { cap[k] = rest[i]; });
  return { y, cap: cap as C };
}

/** Between two layers of a stack, when nothing records: the previous layer's output `prev`, now
 *  read by the next layer (which returned `next`), goes back to the pool. Only for an output no
 *  tap keeps: a recorded graph gives its tensors back in backward instead. */
export function consumed(prev: Tensor, next: Tensor): void {
  if (!isRecording() && prev.data.buffer !== next.data.buffer && ownsData(prev)) giveBack(prev.f32);
}
