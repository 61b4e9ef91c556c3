// Reverse-mode automatic differentiation on a dynamic tape. Each op output that needs a
// gradient records a GradNode: its inputs and a backward function mapping the output
// gradient to one gradient per input. `backward(loss)` walks the graph in reverse
// topological order. Backward functions run with recording off (no higher-order graphs).
import { Tensor, sameShape } from './tensor.js';
import { allocatedAfter, allocationMark, giveBack, ownsData, uninitF32 } from './storage.js';
import { kernel } from './registry.js';

export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  /** Gradients w.r.t. each input (null where none is needed). Must not alias `g` unless
   *  the gradient really is `g` unchanged; callers never mutate returned gradients in place. */
  backward: (g: Tensor) => readonly (Tensor | null)[];
  /** Set on an output of a multi-output op (attention's out/probs/scores, a recomputed block's
   *  outputs): its backward hands g on to the op's joint node, its one input, which runs later,
   *  so the pass keeps g's buffer until the joint has run. readsValue: the joint reads this
   *  output's values too, so they are not given back before it either (backwardFrom). */
  child?: { readsValue: boolean };
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
  out: Tensor, op: string, inputs: readonly Tensor[], backward: GradNode['backward'], child?: GradNode['child'],
): Tensor {
  if (checkNumerics) check(out, op, 'output');
  if (!recording) return out;
  for (const x of inputs) {
    if (x.requiresGrad) {
      out.requiresGrad = true;
      out.node = child ? { op, inputs, backward, child } : { op, inputs, backward };
      break;
    }
  }
  return out;
}

/**
 * Back-propagates from `root` (a scalar, or any tensor given its gradient `grad`), adding
 * gradients into `.grad` of every leaf that requires one (and of retained non-leaves).
 * The graph is released afterwards. With `release`, so is the storage of its intermediate
 * tensors, as backward passes them (see backwardFrom).
 */
export function backward(root: Tensor, grad?: Tensor | null, opts: { release?: boolean } = {}): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require a gradient (no parameter took part in computing it)');
  if (!grad) {
    if (root.size !== 1) throw new RangeError(`backward() without a gradient needs a scalar, got shape [${root.shape}]`);
    grad = new Tensor(Float32Array.of(1), root.shape);
  }
  backwardFrom([root], [grad], opts);
}

/**
 * Back-propagates from several roots at once, each with its gradient (the same as one
 * backward of Σ⟨root_i, grad_i⟩): a gradient reaching a tensor from several roots is summed
 * before it flows on. Roots that do not require a gradient are skipped.
 *
 * `release`: for a caller that reads nothing of the graph afterwards but the roots (the training
 * loop). Once backward has run a tensor's node, no node needs its values any more, so its
 * storage goes back to the pool (storage.ts) — unless it is a root or shares a root's buffer, is
 * a leaf, retains its gradient, is a view of another tensor's buffer, or is an output its op's
 * joint node reads (GradNode.child.readsValue). Reading such a tensor
 * afterwards throws a length error; gradients are the same either way, bit for bit.
 */
export function backwardFrom(roots: readonly Tensor[], rootGrads: readonly Tensor[], opts: { release?: boolean } = {}): void {
  const release = !!opts.release;
  if (roots.length !== rootGrads.length) throw new RangeError(`backwardFrom: ${roots.length} roots but ${rootGrads.length} gradients`);
  const grads = new Map<Tensor, Tensor>();
  const held = new Holdings();
  roots.forEach((root, i) => {
    const g = rootGrads[i];
    if (!sameShape(g.shape, root.shape)) {
      throw new RangeError(`backward(): gradient shape [${g.shape}] does not match [${root.shape}]`);
    }
    if (!root.requiresGrad) return;
    held.hold(g);
    merge(grads, held, root, g);
  });
  const order = topoOrder([...grads.keys()]);
  const keep = new Set(roots.map((r) => r.data.buffer)); // the roots' values stay readable
  const prev = recording, outerPass = pass;
  recording = false;
  pass = { release, keep, held };
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      if (!t.node) {
        storeGrad(t, g, held);
        continue;
      }
      if (t.retainsGrad) accumulateGrad(t, g);
      const node = t.node;
      if (node.child) held.pin(g, node.inputs[0]);
      const gin = node.backward(g);
      const flowing: number[] = [];
      for (let j = 0; j < node.inputs.length; j++) {
        const x = node.inputs[j];
        const gx = gin[j];
        if (!gx || !x.requiresGrad) continue;
        if (!sameShape(gx.shape, x.shape)) {
          throw new Error(`${node.op} backward: gradient shape [${gx.shape}] for input ${j} of shape [${x.shape}]`);
        }
        if (checkNumerics) check(gx, node.op, `gradient of input ${j}`);
        held.hold(gx); // all before any merge: two inputs may get the same buffer
        flowing.push(j);
      }
      for (const j of flowing) merge(grads, held, node.inputs[j], gin[j]!);
      held.drop(g);
      held.unpin(t); // t may be a joint node: its children's gradients are used now
      t.node = null; // release saved activations as we go
      if (!node.child?.readsValue && mayGiveBack(t)) giveBack(t.f32);
    }
  } finally {
    recording = prev;
    pass = outerPass;
  }
}

// The backward pass running now (innermost: a recomputed block runs its own inside its node).
let pass: { release: boolean; keep: ReadonlySet<ArrayBufferLike>; held: Holdings } | null = null;

/** Whether the backward pass running now may give t's storage back once nothing of the graph
 *  reads it: the pass releases (backwardFrom's `release`), and t is a float32 tensor that owns
 *  its buffer, retains no gradient and shares no buffer with a root or a pending gradient.
 *  False outside a pass. */
export function mayGiveBack(t: Tensor): boolean {
  if (!pass?.release) return false;
  const b = t.data.buffer;
  return t.dtype === 'f32' && !t.retainsGrad && ownsData(t) && !pass.keep.has(b) && !pass.held.holds(b);
}

/** Adds gradient gx (held) for x to what x has received so far. */
function merge(grads: Map<Tensor, Tensor>, held: Holdings, x: Tensor, gx: Tensor): void {
  const acc = grads.get(x);
  if (!acc) {
    grads.set(x, gx);
  } else if (held.sole(acc)) {
    kernel('axpy')(1, gx.f32, acc.f32);
    held.drop(gx);
  } else {
    const sum = addFresh(acc, gx);
    held.hold(sum);
    grads.set(x, sum);
    held.drop(acc);
    held.drop(gx);
  }
}

// Which gradient buffers a backward pass may write into, keep or give back. Gradients may share a
// buffer (an add passes g on to both inputs, a reshape passes a view of it), and a root's
// gradient or a buffer made before the pass may be the caller's. So the pass counts, per
// buffer, the pending gradients that hold it, and treats as its own only buffers made during the
// pass (allocatedAfter the mark taken at its start). A gradient handed on to a joint node
// (GradNode.child) is pinned until that joint has run. A buffer of the pass's own, held by one
// gradient and not pinned, may be added into in place or handed to a leaf's .grad without a
// copy, and goes back to the pool (storage.ts) once no gradient holds it and no pin is left.
class Holdings {
  private readonly mark = allocationMark();
  private readonly uses = new Map<ArrayBufferLike, number>();
  private readonly pinned = new Map<ArrayBufferLike, number>(); // buffer → pins left
  private readonly pinsOf = new Map<Tensor, Tensor[]>();        // joint node → gradients it pins

  hold(g: Tensor): void {
    const b = g.data.buffer;
    this.uses.set(b, (this.uses.get(b) ?? 0) + 1);
  }

  /** Whether a pending gradient holds buffer b, or a node kept it. */
  holds(b: ArrayBufferLike): boolean {
    return this.uses.has(b) || this.pinned.has(b);
  }

  /** g goes on to `joint`: its buffer is neither reused nor given back before unpin(joint). */
  pin(g: Tensor, joint: Tensor): void {
    const b = g.data.buffer;
    this.pinned.set(b, (this.pinned.get(b) ?? 0) + 1);
    const list = this.pinsOf.get(joint);
    if (list) list.push(g);
    else this.pinsOf.set(joint, [g]);
  }

  /** `joint` has run: the gradients pinned for it are free again (given back if nothing holds
   *  them). */
  unpin(joint: Tensor): void {
    const list = this.pinsOf.get(joint);
    if (!list) return;
    this.pinsOf.delete(joint);
    for (const g of list) {
      const b = g.data.buffer;
      const n = this.pinned.get(b)! - 1;
      if (n > 0) {
        this.pinned.set(b, n);
        continue;
      }
      this.pinned.delete(b);
      if (!this.uses.has(b) && allocatedAfter(g.data, this.mark)) giveBack(g.f32);
    }
  }

  /** Whether g's buffer is the pass's own and g its only holder. */
  sole(g: Tensor): boolean {
    const b = g.data.buffer;
    return this.uses.get(b) === 1 && !this.pinned.has(b) && allocatedAfter(g.data, this.mark);
  }

  /** g stops holding its buffer; gives the buffer back if g was its last holder and it is the
   *  pass's own (keep: it lives on elsewhere, as a leaf's .grad). */
  drop(g: Tensor, keep = false): void {
    const b = g.data.buffer;
    const n = (this.uses.get(b) ?? 0) - 1;
    if (n > 0) {
      this.uses.set(b, n);
      return;
    }
    this.uses.delete(b);
    if (!keep && !this.pinned.has(b) && allocatedAfter(g.data, this.mark)) giveBack(g.f32);
  }
}

/** A leaf's gradient g (held) into its .grad: g itself when the pass may give it away. */
function storeGrad(t: Tensor, g: Tensor, held: Holdings): void {
  if (!t.grad && held.sole(g)) {
    t.grad = g.shape === t.shape ? g : new Tensor(g.data, t.shape);
    held.drop(g, true);
    return;
  }
  accumulateGrad(t, g);
  held.drop(g);
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
