// Optimizers over named parameters (AdamW, SGD), global-norm gradient clipping. The update
// itself runs in one fused kernel per tensor; frozen parameters (requiresGrad false, or
// excluded by name) get no state at all.
import { Tensor } from '../tensor/tensor.js';
import { kernel } from '../tensor/registry.js';
import { giveBack } from '../tensor/storage.js';

export type Params = Map<string, Tensor>;

export interface AdamWConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Parameter names that get no weight decay (e.g. norms and biases). */
  noDecay?: (name: string) => boolean;
}

export interface Optimizer {
  /** Applies one update with learning rate `lr` to every parameter that has a gradient. */
  step(lr: number): void;
  /** Clears every parameter's .grad. With release, for a caller that keeps no old .grad (the
   *  training loop), their storage goes back at once (storage.ts giveBack: to the pool, or to
   *  the heap under the run's storage policy); without it they are left to their holders. */
  zeroGrad(release?: boolean): void;
  /** Names of the parameters holding optimizer state. */
  stateNames(): string[];
  /** Serializable state (moment buffers and step count), for checkpoints. */
  state(): { step: number; buffers: Map<string, Float32Array> };
  loadState(state: { step: number; buffers: Map<string, Float32Array> }): void;
}

/** Decoupled weight decay Adam (Loshchilov & Hutter 2019), PyTorch defaults. */
export class AdamW implements Optimizer {
  private t = 0;
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(private params: Params, private cfg: AdamWConfig) {
    this.beta1 = cfg.beta1 ?? 0.9;
    this.beta2 = cfg.beta2 ?? 0.999;
    this.eps = cfg.eps ?? 1e-8;
    this.weightDecay = cfg.weightDecay ?? 0.01;
  }

  step(lr: number): void {
    this.t++;
    const bc1 = 1 - this.beta1 ** this.t, bc2 = 1 - this.beta2 ** this.t;
    const adamw = kernel('adamw');
    for (const [name, p] of this.params) {
      if (!p.requiresGrad || !p.grad) continue;
      let m = this.m.get(name), v = this.v.get(name);
      if (!m || !v) {
        m = new Float32Array(p.size);
        v = new Float32Array(p.size);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const wd = this.cfg.noDecay?.(name) ? 0 : this.weightDecay;
      adamw(p.f32, p.grad.f32, m, v, lr, this.beta1, this.beta2, this.eps, wd, bc1, bc2);
    }
  }

  zeroGrad(release = false): void {
    clearGrads(this.params, release);
  }

  stateNames(): string[] {
    return [...this.m.keys()];
  }

  state(): { step: number; buffers: Map<string, Float32Array> } {
    const buffers = new Map<string, Float32Array>();
    for (const [k, m] of this.m) buffers.set(`${k}.exp_avg`, m);
    for (const [k, v] of this.v) buffers.set(`${k}.exp_avg_sq`, v);
    return { step: this.t, buffers };
  }

  loadState(state: { step: number; buffers: Map<string, Float32Array> }): void {
    this.t = state.step;
    this.m.clear();
    this.v.clear();
    for (const [key, buf] of state.buffers) {
      const i = key.lastIndexOf('.');
      const name = key.slice(0, i), kind = key.slice(i + 1);
      const p = this.params.get(name);
      if (!p) throw new Error(`optimizer state names an unknown parameter '${name}'`);
      if (buf.length !== p.size) throw new RangeError(`optimizer state for '${name}' has ${buf.length} values, parameter has ${p.size}`);
      if (kind === 'exp_avg') this.m.set(name, buf);
      else if (kind === 'exp_avg_sq') this.v.set(name, buf);
      else throw new Error(`optimizer state has an unknown buffer '${key}'`);
    }
  }
}

/** SGD with momentum (PyTorch semantics: dampening 0, L2 weight decay added to the gradient). */
export class SGD implements Optimizer {
  private t = 0;
  private buf = new Map<string, Float32Array>();

  constructor(private params: Params, private cfg: { momentum?: number; weightDecay?: number } = {}) {}

  step(lr: number): void {
    this.t++;
    const momentum = this.cfg.momentum ?? 0, wd = this.cfg.weightDecay ?? 0;
    for (const [name, p] of this.params) {
      if (!p.requiresGrad || !p.grad) continue;
      let b: Float32Array | null = null;
      if (momentum !== 0) {
        b = this.buf.get(name) ?? null;
        if (!b) {
          // PyTorch initializes the buffer with the first gradient: buf = g; emulate by a zero
          // buffer and momentum 0 on the first step.
          b = new Float32Array(p.size);
          this.buf.set(name, b);
          kernel('sgd')(p.f32, p.grad.f32, b, lr, 0, wd);
          continue;
        }
      }
      kernel('sgd')(p.f32, p.grad.f32, b, lr, momentum, wd);
    }
  }

  zeroGrad(release = false): void {
    clearGrads(this.params, release);
  }

  stateNames(): string[] {
    return [...this.buf.keys()];
  }

  state(): { step: number; buffers: Map<string, Float32Array> } {
    const buffers = new Map<string, Float32Array>();
    for (const [k, b] of this.buf) buffers.set(`${k}.momentum_buffer`, b);
    return { step: this.t, buffers };
  }

  loadState(state: { step: number; buffers: Map<string, Float32Array> }): void {
    this.t = state.step;
    this.buf.clear();
    for (const [key, b] of state.buffers) this.buf.set(key.replace(/\.momentum_buffer$/, ''), b);
  }
}

/** Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Params, maxNorm: number): number {
  let sq = 0;
  for (const p of params.values()) if (p.grad) sq += kernel('sumSquares')(p.grad.f32);
  const norm = Math.sqrt(sq);
  if (Number.isFinite(norm) && norm > maxNorm && maxNorm > 0) {
    // PyTorch: clip_coef = max_norm / (total_norm + 1e-6).
    const c = maxNorm / (norm + 1e-6);
    for (const p of params.values()) if (p.grad) kernel('affine')(p.grad.f32, p.grad.f32, c, 0);
  }
  return norm;
}

function clearGrads(params: Params, release: boolean): void {
  for (const p of params.values()) {
    if (p.grad && release) giveBack(p.grad.f32);
    p.grad = null;
  }
}
