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
// The block must be a function of its inputs and of parameters it reads (no state that
// advances between the two calls); side effects on the forward (e.g. statistics a probe
// collects) should happen only when isRecording() is true, which holds on the second call.
import { Tensor } from './tensor.js';
import { backwardFrom, enableGrad, isRecording, noGrad, record } from './autograd.js';
import { computePrecision, headPrecision, withCompute } from './compute.js';
import { currentDropoutRows, withDropoutRows } from './ops/nn.js';
import { giveBack, ownsData, scoped } from './storage.js';

/**
 * fn(inputs) with its activations recomputed in backward. Outputs keep fn's values and shapes;
 * under noGrad (or when nothing records) this is just fn(inputs). Inputs that require a
 * gradient get it; parameters fn reads get theirs added to .grad as backward reaches the block.
 */
export function recompute(fn: (inputs: readonly Tensor[]) => readonly Tensor[], inputs: readonly Tensor[]): Tensor[] {
  if (!isRecording()) return [...fn(inputs)];
  const precision = computePrecision(), head = headPrecision();
  const rows = currentDropoutRows(); // a rank's dropout rows (data parallel): the same masks again
  const outs = noGrad(() => scoped(() => fn(inputs), (r) => r));
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
      const ys = enableGrad(() => withCompute(precision, () => rows ? withDropoutRows(rows.lo, rows.rows, () => fn(xs)) : fn(xs), { head }));
      if (ys.length !== outs.length) throw new Error(`recompute: the block returned ${outs.length} outputs, then ${ys.length}`);
      const roots: Tensor[] = [], grads: Tensor[] = [];
      ys.forEach((y, i) => {
        const g = pending[i];
        if (g && y.requiresGrad) { roots.push(y); grads.push(g); }
      });
      pending.fill(null);
      if (roots.length) backwardFrom(roots, grads, { release: true });
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
let layers = false;

/** Runs fn with every Transformer layer of the forwards in it recomputed in backward. */
export function withRecompute<T>(on: boolean, fn: () => T): T {
  const prev = layers;
  layers = on;
  try {
    return fn();
  } finally {
    layers = prev;
  }
}

/** One layer `block(x) → { y, cap }` (cap: named taps, null where not requested): recomputed
 *  in backward inside withRecompute(true, …) while recording, run as it is otherwise; when
 *  nothing records, its intermediates go back to the pool as it returns (storage.ts scoped). */
export function layer<C extends object>(block: (x: Tensor) => { y: Tensor; cap: C }, x: Tensor): { y: Tensor; cap: C } {
  if (!isRecording()) return scoped(() => block(x), (r) => [r.y, ...Object.values(r.cap as Record<string, Tensor | null>)]);
  if (!layers) return block(x);
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
  }, [x]);
  taps!.forEach((k, i) => { cap[k] = rest[i]; });
  return { y, cap: cap as C };
}

/** Between two layers of a stack, when nothing records: the previous layer's output `prev`, now
 *  read by the next layer (which returned `next`), goes back to the pool. Only for an output no
 *  tap keeps: a recorded graph gives its tensors back in backward instead. */
export function consumed(prev: Tensor, next: Tensor): void {
  if (!isRecording() && prev.data.buffer !== next.data.buffer && ownsData(prev)) giveBack(prev.f32);
}
