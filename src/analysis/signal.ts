// Signal-propagation statistics of KD-QAT (METHODS.md §4; Bhardwaj et al., "Oh! We Freeze",
// paper A): per layer and module kind, on logged steps only, how large the weight gradients,
// the latent-weight updates, the Linear inputs and the back-propagated signals are, how much
// quantization error each weight carries, and how often fake-quantized weights move to another
// grid point.
//
// What each metric is (values per quantized weight W of a Linear, x its input as the product
// sees it, ŵ what the WeightFn returns for W):
// - grad_norm     ‖∂L/∂W‖₂ (Frobenius) read from W.grad after the last backward of the step,
//                 before any clipping. null where W has no .grad (frozen weights: no gradient
//                 is computed for them, so none is reported).
// - update_ratio  ‖W_after − W_before‖ / ‖W_before‖ across the optimizer update (0 for frozen
//                 weights: measured, not assumed, so a broken freeze shows).
// - act_norm      RMS of x = sqrt(Σx² / numel): independent of batch size and sequence length,
//                 so runs with different batches compare. Over every forward of the step
//                 (gradient accumulation: all micro-batches pooled).
// - signal_norm   ‖∂L/∂x‖₂ (Frobenius) over the step's micro-batches pooled (the norm of the
//                 gradient w.r.t. the concatenated inputs). null where no gradient reaches x.
// - sqnr_db       10·log10(‖W‖² / ‖W − ŵ‖²) after the update; null when ŵ = W exactly.
// - cross_rate    fraction of integer codes (after the update) that differ from the codes
//                 after the previous logged step's update: latent weights that crossed a
//                 rounding boundary since then. null on the first logged step.
// - step_cross_rate  the same across this step's update alone (codes before vs after it).
// Codes come from the `codes` option (the quantizer's integer codes, e.g. quantizeCodes).
// Without it the monitor compares ŵ itself (before the update: as the forward saw it), which
// also counts every entry of a granule whose scale moved (an absmax scale follows the weights):
// right for fixed grids, an over-count for scales that track the weights.
//
// x is the input the Linear actually multiplies: when the wrapped WeightFn has an `input`
// transform (8-bit activation fake quantization), the probe sits after it, so act_norm is the
// RMS of the quantized input and signal_norm the gradient w.r.t. it (before the activation
// quantizer's straight-through estimator passes it on).
//
// Cost: nothing is recorded or computed unless `active` is set; the instrumented WeightFn then
// only adds a boolean test per Linear. All norms and counts go through kernels (sumSquares,
// sumSquaredDiff, countNotEqual), never per-element JS.
//
// The trainer's sequence on a logged step:
//   monitor.active = true; forward + backward (every micro-batch); monitor.afterBackward();
//   clip; monitor.beforeUpdate(); optimizer.step(); monitor.afterUpdate(weight);
//   monitor.active = false; log monitor.take().
// Evaluation passes must run with `active` off.
import { Tensor, isRecording, noGrad } from '../tensor/index.js'; // (index: sets the backends up)
import { record } from '../tensor/autograd.js';
import { kernel } from '../tensor/registry.js';
import { MODULE_KINDS, moduleOf } from '../models/registry.js';
import type { Params, WeightFn } from '../nn/params.js';

export const SIGNAL_METRICS = [
  'grad_norm', 'update_ratio', 'act_norm', 'signal_norm', 'sqnr_db', 'cross_rate', 'step_cross_rate',
] as const;
export type SignalMetric = (typeof SIGNAL_METRICS)[number];

/** metric → module kind → one value per layer (index = layer; null: not measured there).
 *  Weights outside the blocks (layer null, e.g. a quantized lm_head) have a one-entry array. */
export type SignalRecord = Partial<Record<SignalMetric, Record<string, (number | null)[]>>>;

/** Per-weight state: step accumulators and the buffers kept between calls. */
interface Slot {
  name: string;
  p: Tensor;
  kind: string;
  index: number; // layer, or 0 outside the blocks
  inBlock: boolean;
  actSq: number;
  actN: number;
  sigSq: number;
  sigSeen: boolean;
  grad: number | null;
  update: number | null;
  sqnr: number | null;
  cross: number | null;
  stepCross: number | null;
  before: Float32Array | null; // W at beforeUpdate
  beforeValid: boolean;
  seen: Float32Array | null; // codes (or ŵ) before this step's update
  seenValid: boolean;
  prevHat: Float32Array | null; // codes (or ŵ) after the previous logged step's update
  cur: Float32Array | null; // scratch: codes after the update, as float32
}

const KIND_ORDER: readonly string[] = MODULE_KINDS;

export class SignalMonitor {
  /** Set by the trainer on logged steps only. */
  active = false;
  private readonly slots = new Map<string, Slot>();
  /** afterUpdate is reading ŵ through an instrumented WeightFn: do not capture it. */
  private measuring = false;
  private readonly codes: ((name: string, w: Tensor) => ArrayLike<number>) | null;

  /**
   * `quantized`: the weights to monitor (each must be in `params`). `trainable` is part of the
   * trainer contract but changes no measurement: a frozen weight simply has no .grad (grad_norm
   * null) and an update ratio of exactly 0, both measured rather than assumed.
   */
  constructor(o: {
    params: Params; quantized: Iterable<string>; trainable: ReadonlySet<string>;
    /** Integer codes of weight `name` from its current latent values `w` (and quantizer state),
     *  e.g. (n, w) => quantizeCodes(w.f32, rows, cols, q, step).codes: crossings count codes. */
    codes?: (name: string, w: Tensor) => Int8Array | Uint8Array | Int16Array | Int32Array;
  }) {
    this.codes = o.codes ?? null;
    for (const name of o.quantized) {
      const p = o.params.get(name);
      if (!p) throw new Error(`SignalMonitor: quantized weight '${name}' is not a parameter of the model`);
      if (p.dtype !== 'f32') throw new Error(`SignalMonitor: '${name}' is not a float32 weight`);
      const { layer, kind } = moduleOf(name);
      this.slots.set(name, {
        name, p, kind, index: layer ?? 0, inBlock: layer !== null, actSq: 0, actN: 0, sigSq: 0, sigSeen: false, grad: null,
        update: null, sqnr: null, cross: null, stepCross: null, before: null, beforeValid: false,
        seen: null, seenValid: false, prevHat: null, cur: null,
      });
    }
  }

  /** The weights monitored, in the order given. */
  get names(): string[] {
    return [...this.slots.keys()];
  }

  /**
   * `w` with probes: when active, records ŵ as the forward sees it and, on the input of each
   * monitored Linear (after `w.input`, if any), its RMS forward and ‖∂L/∂x‖ backward.
   */
  instrument(w: WeightFn): WeightFn {
    const fn = ((name: string, p: Tensor): Tensor => {
      const hat = w(name, p);
      if (this.active && !this.measuring && !this.codes) {
        const s = this.slots.get(name);
        if (s) {
          if (!s.seen) s.seen = new Float32Array(hat.size);
          s.seen.set(hat.f32);
          s.seenValid = true;
        }
      }
      return hat;
    }) as WeightFn;
    fn.input = (name: string, x: Tensor): Tensor => {
      const xin = w.input ? w.input(name, x) : x;
      // Not recording: the first forward of a recomputed layer (src/tensor/recompute.ts); the
      // probe goes on its second, recorded forward, so each input is counted once.
      if (!this.active || !isRecording()) return xin;
      const s = this.slots.get(name);
      return s ? probe(s, xin) : xin;
    };
    return fn;
  }

  /** Data parallel (src/train/distributed.ts): pools every rank's input statistics (act_norm,
   *  signal_norm) so they cover the whole batch; `sum` is an in-place sum over the ranks. Call on
   *  every rank after the step's last backward (weight gradients are summed already). */
  poolInputs(sum: (x: Float64Array) => void): void {
    const slots = [...this.slots.values()];
    const x = new Float64Array(4 * slots.length);
    slots.forEach((s, i) => x.set([s.actSq, s.actN, s.sigSq, s.sigSeen ? 1 : 0], 4 * i));
    sum(x);
    slots.forEach((s, i) => {
      [s.actSq, s.actN, s.sigSq] = x.subarray(4 * i, 4 * i + 3);
      s.sigSeen = x[4 * i + 3] > 0;
    });
  }

  /** Weight-gradient norms from the params' .grad (call after the step's last backward). */
  afterBackward(): void {
    for (const s of this.slots.values()) {
      const g = s.p.grad;
      s.grad = g ? Math.sqrt(kernel('sumSquares')(g.f32)) : null;
    }
  }

  /** Snapshot of the latent weights (and codes), for update ratios and crossings (call right
   *  before optimizer.step()). */
  beforeUpdate(): void {
    for (const s of this.slots.values()) {
      if (!s.before) s.before = new Float32Array(s.p.size);
      s.before.set(s.p.f32);
      s.beforeValid = true;
      if (this.codes) {
        s.seen = this.codesOf(s, s.seen);
        s.seenValid = true;
      }
    }
  }

  /** The codes of s's weight as float32 (typed-array conversion, not a JS loop), into `into`. */
  private codesOf(s: Slot, into: Float32Array | null): Float32Array {
    const c = noGrad(() => this.codes!(s.name, s.p));
    if (c.length !== s.p.size) throw new Error(`SignalMonitor: codes of '${s.name}' have ${c.length} entries, the weight ${s.p.size}`);
    const out = into ?? new Float32Array(s.p.size);
    out.set(c);
    return out;
  }

  /** Update ratios, SQNR and crossings, with ŵ = weight(name, W) after the update (and the
   *  quantizer's state after it, e.g. trained LSQ steps). */
  afterUpdate(weight: WeightFn): void {
    const k = { ss: kernel('sumSquares'), ssd: kernel('sumSquaredDiff'), ne: kernel('countNotEqual') };
    this.measuring = true;
    try {
      noGrad(() => {
        for (const s of this.slots.values()) {
          const w = s.p.f32;
          if (s.beforeValid && s.before) {
            const base = k.ss(s.before);
            s.update = base > 0 ? Math.sqrt(k.ssd(w, s.before) / base) : null;
          }
          const hat = weight(s.name, s.p).f32;
          if (hat.length !== w.length) {
            throw new Error(`SignalMonitor: the WeightFn returned ${hat.length} values for '${s.name}' of ${w.length}`);
          }
          const err = k.ssd(w, hat);
          const sig = k.ss(w);
          s.sqnr = err > 0 && sig > 0 ? 10 * Math.log10(sig / err) : null;
          let cur = hat;
          if (this.codes) cur = s.cur = this.codesOf(s, s.cur);
          s.stepCross = s.seenValid && s.seen ? k.ne(cur, s.seen) / w.length : null;
          s.cross = s.prevHat ? k.ne(cur, s.prevHat) / w.length : null;
          if (!s.prevHat) s.prevHat = new Float32Array(w.length);
          s.prevHat.set(cur);
        }
      });
    } finally {
      this.measuring = false;
    }
  }

  /** What the next cross_rate compares with (codes or ŵ after the last logged update), by
   *  weight name: checkpointed, so a resumed run's first cross_rate equals the uninterrupted one. */
  crossState(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const s of this.slots.values()) if (s.prevHat) out.set(s.name, s.prevHat);
    return out;
  }

  /** Restores crossState() from a checkpoint (sizes must match). */
  restoreCrossState(state: ReadonlyMap<string, Float32Array>): void {
    for (const [name, v] of state) {
      const s = this.slots.get(name);
      if (!s || v.length !== s.p.size) throw new Error(`SignalMonitor: checkpointed codes of '${name}' do not fit the model (${v.length} values)`);
      s.prevHat = Float32Array.from(v);
    }
  }

  /** The step's record ({ metric: { kind: per-layer values } }); resets the step's state. */
  take(): SignalRecord {
    // Block kinds get one entry per layer of the model; kinds outside the blocks get one.
    let layers = 0;
    for (const s of this.slots.values()) if (s.inBlock) layers = Math.max(layers, s.index + 1);
    const kinds = [...new Set([...this.slots.values()].map((s) => s.kind))];
    kinds.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const blockKind = new Set([...this.slots.values()].filter((s) => s.inBlock).map((s) => s.kind));
    const out: SignalRecord = {};
    for (const m of SIGNAL_METRICS) {
      const byKind: Record<string, (number | null)[]> = {};
      for (const kind of kinds) byKind[kind] = new Array<number | null>(blockKind.has(kind) ? layers : 1).fill(null);
      out[m] = byKind;
    }
    for (const s of this.slots.values()) {
      const put = (m: SignalMetric, v: number | null): void => {
        out[m]![s.kind][s.index] = v !== null && Number.isFinite(v) ? v : null;
      };
      put('grad_norm', s.grad);
      put('update_ratio', s.update);
      put('act_norm', s.actN > 0 ? Math.sqrt(s.actSq / s.actN) : null);
      put('signal_norm', s.sigSeen ? Math.sqrt(s.sigSq) : null);
      put('sqnr_db', s.sqnr);
      put('cross_rate', s.cross);
      put('step_cross_rate', s.stepCross);
      s.actSq = 0; s.actN = 0; s.sigSq = 0; s.sigSeen = false;
      s.grad = null; s.update = null; s.sqnr = null; s.cross = null; s.stepCross = null;
      s.beforeValid = false; s.seenValid = false;
    }
    return out;
  }
}

function rank(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

/** Identity on the tape: forward adds Σx² to the slot, backward adds Σg² and passes g on. */
function probe(s: Slot, x: Tensor): Tensor {
  s.actSq += kernel('sumSquares')(x.f32);
  s.actN += x.size;
  const out = new Tensor(x.data, x.shape); // alias: nothing writes into op outputs
  return record(out, 'signalProbe', [x], (g) => {
    s.sigSq += kernel('sumSquares')(g.f32);
    s.sigSeen = true;
    return [g];
  });
}
