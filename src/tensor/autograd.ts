// Reverse-mode automatic differentiation on a dynamic tape. Each op output that needs a
// gradient records a GradNode: its inputs and a backward function mapping the output
// gradient to one gradient per input. `backward(loss)` walks the graph in reverse
// topological order. Backward functions run with recording off (no higher-order graphs).
import { Tensor, sameShape, uninitF32 } from './tensor.js';
import { kernel } from './registry.js';

export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  /** Gradients w.r.t. each input (null where none is needed). Must not alias `g` unless
   *  the gradient really is `g` unchanged; callers never mutate returned gradients in place. */
  backward: (g: Tensor) => readonly (Tensor | null)[];
}

let recording = true;

/** Runs fn with gradient recording off (inference, teacher forward, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

export function isRecording(): boolean {
  return recording;
}

/** Runs fn with gradient recording on, also inside a backward pass (activation recomputation,
 *  ./recompute.ts, records its second forward there). */
export function enableGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = true;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

// KDQAT_CHECK_NUMERICS=1: every op output and every gradient is scanned for NaN/Inf.
let checkNumerics = process.env.KDQAT_CHECK_NUMERICS === '1';

export function setCheckNumerics(on: boolean): void {
  checkNumerics = on;
}

export class NumericsError extends Error {}

function check(t: Tensor, op: string, what: string): void {
  if (t.dtype !== 'f32') return;
  const bad = kernel('countNonFinite')(t.f32);
  if (bad > 0) {
    throw new NumericsError(
      `${op}: ${what} has ${bad} NaN/Inf value(s) (shape [${t.shape}]); ` +
        `this op produced them from finite inputs or received them (KDQAT_CHECK_NUMERICS=1)`,
    );
  }
}

/**
 * Finishes an op: checks numerics if asked, and attaches the backward node when recording
 * and any input requires a gradient. Every op calls this on its output.
 */
export function record(
  out: Tensor, op: string, inputs: readonly Tensor[], backward: GradNode['backward'],
): Tensor {
  if (checkNumerics) check(out, op, 'output');
  if (!recording) return out;
  for (const x of inputs) {
    if (x.requiresGrad) {
      out.requiresGrad = true;
      out.node = { op, inputs, backward };
      break;
    }
  }
  return out;
}

/**
 * Back-propagates from `root` (a scalar, or any tensor given its gradient `grad`), adding
 * gradients into `.grad` of every leaf that requires one (and of retained non-leaves).
 * The graph is released afterwards.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require a gradient (no parameter took part in computing it)');
  if (!grad) {
    if (root.size !== 1) throw new RangeError(`backward() without a gradient needs a scalar, got shape [${root.shape}]`);
    grad = new Tensor(Float32Array.of(1), root.shape);
  }
  backwardFrom([root], [grad]);
}

/**
 * Back-propagates from several roots at once, each with its gradient (the same as one
 * backward of Σ⟨root_i, grad_i⟩): a gradient reaching a tensor from several roots is summed
 * before it flows on. Roots that do not require a gradient are skipped.
 */
export function backwardFrom(roots: readonly Tensor[], rootGrads: readonly Tensor[]): void {
  if (roots.length !== rootGrads.length) throw new RangeError(`backwardFrom: ${roots.length} roots but ${rootGrads.length} gradients`);
  const grads = new Map<Tensor, Tensor>();
  // Sums this pass allocated itself: safe to add into in place (other gradients may alias).
  const owned = new Set<Tensor>();
  roots.forEach((root, i) => {
    const g = rootGrads[i];
    if (!sameShape(g.shape, root.shape)) {
      throw new RangeError(`backward(): gradient shape [${g.shape}] does not match [${root.shape}]`);
    }
    if (!root.requiresGrad) return;
    const acc = grads.get(root);
    if (!acc) grads.set(root, g);
    else {
      const sum = addFresh(acc, g);
      owned.add(sum);
      grads.set(root, sum);
    }
  });
  const order = topoOrder([...grads.keys()]);
  const prev = recording;
  recording = false;
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      if (!t.node) {
        accumulateGrad(t, g);
        continue;
      }
      if (t.retainsGrad) accumulateGrad(t, g);
      const node = t.node;
      const gin = node.backward(g);
      for (let j = 0; j < node.inputs.length; j++) {
        const x = node.inputs[j];
        const gx = gin[j];
        if (!gx || !x.requiresGrad) continue;
        if (!sameShape(gx.shape, x.shape)) {
          throw new Error(`${node.op} backward: gradient shape [${gx.shape}] for input ${j} of shape [${x.shape}]`);
        }
        if (checkNumerics) check(gx, node.op, `gradient of input ${j}`);
        const acc = grads.get(x);
        if (!acc) grads.set(x, gx);
        else if (owned.has(acc)) kernel('axpy')(1, gx.f32, acc.f32);
        else {
          const sum = addFresh(acc, gx);
          owned.add(sum);
          grads.set(x, sum);
        }
      }
      t.node = null; // release saved activations as we go
    }
  } finally {
    recording = prev;
  }
}

function accumulateGrad(t: Tensor, g: Tensor): void {
  // A stored .grad owns its buffer (the optimizer and clipping may scale it in place), while
  // gradients flowing through the graph may be shared between inputs: copy on first store.
  t.grad = t.grad ? addFresh(t.grad, g) : new Tensor(g.data.slice(), g.shape);
}

/** a + b into a new tensor (gradients may be shared between nodes; never add in place). */
function addFresh(a: Tensor, b: Tensor): Tensor {
  const out = uninitF32(a.size);
  out.set(a.f32);
  kernel('axpy')(1, b.f32, out);
  return new Tensor(out, a.shape);
}

/** Reverse topological order of everything the roots depend on: post-order DFS from each root
 *  in turn (one shared `seen`), so every tensor comes after all of its inputs. */
function topoOrder(roots: readonly Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    dfs(root, seen, order);
  }
  return order;
}

function dfs(root: Tensor, seen: Set<Tensor>, order: Tensor[]): void {
  // Iterative (graphs can be deep: layers × ops).
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const x = inputs[i];
      if (x.requiresGrad && !seen.has(x)) {
        seen.add(x);
        stack.push([x, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
}
