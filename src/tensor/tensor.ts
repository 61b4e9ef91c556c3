// The Tensor: a contiguous row-major buffer, a shape, and (when it takes part in autograd) the
// node that made it. float32 for values, int32 for token ids and masks, and bf16 for a frozen
// model's weights whose values are all bf16 values (src/tensor/bf16.ts narrowBf16): kept at half
// the memory, read only as a GEMM's B operand and by gather, which widen them exactly.
import type { GradNode } from './autograd.js';
import { claim, zerosF32 } from './storage.js';

export { uninitF32, zerosF32 } from './storage.js';

export type DType = 'f32' | 'i32' | 'bf16';
export type Shape = readonly number[];
export type Data = Float32Array | Int32Array | Uint16Array; // bf16: the bit patterns

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  data: Data;
  /** Leaf parameters set this; op outputs inherit it from their inputs. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaves only, unless retainGrad()). */
  grad: Tensor | null = null;
  /** How this tensor was computed (null for leaves and for results computed under noGrad). */
  node: GradNode | null = null;
  /** Keep .grad for a non-leaf during backward. */
  retainsGrad = false;
  name?: string;

  constructor(data: Data, shape: Shape, requiresGrad = false) {
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new RangeError(`tensor data has ${data.length} elements but shape [${shape}] needs ${n}`);
    }
    this.data = data;
    claim(this);
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'bf16' : 'f32';
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The float32 buffer (throws for int32 tensors). */
  get f32(): Float32Array {
    if (!(this.data instanceof Float32Array)) throw new TypeError(`expected a float32 tensor, got ${this.dtype}`);
    return this.data;
  }

  /** The int32 buffer (throws for float32 tensors). */
  get i32(): Int32Array {
    if (!(this.data instanceof Int32Array)) throw new TypeError(`expected an int32 tensor, got ${this.dtype}`);
    return this.data;
  }

  /** The bf16 bit patterns (throws for other tensors). */
  get bf16(): Uint16Array {
    if (!(this.data instanceof Uint16Array)) throw new TypeError(`expected a bf16 tensor, got ${this.dtype}`);
    return this.data;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs a one-element tensor, got shape [${this.shape}]`);
    return this.data instanceof Uint16Array ? new Float32Array(new Uint32Array([this.data[0] << 16]).buffer)[0] : this.data[0];
  }

  /** Size of one axis (negative axes count from the end). */
  dim(axis: number): number {
    return this.shape[normAxis(axis, this.ndim)];
  }

  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  /** Detached copy of the values (no autograd history). */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /** Detached alias of the same buffer. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape}])`;
  }
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`bad dimension ${d} in shape [${shape}]`);
    n *= d;
  }
  return n;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) {
    throw new RangeError(`axis ${axis} is out of range for a ${ndim}-d tensor`);
  }
  return a;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// ---- factories ------------------------------------------------------------------------------

export function tensor(values: ArrayLike<number>, shape?: Shape, requiresGrad = false): Tensor {
  const data = values instanceof Float32Array || values instanceof Int32Array ? values : Float32Array.from(values);
  return new Tensor(data, shape ?? [data.length], requiresGrad);
}

export function intTensor(values: ArrayLike<number>, shape?: Shape): Tensor {
  const data = values instanceof Int32Array ? values : Int32Array.from(values);
  return new Tensor(data, shape ?? [data.length]);
}

export function zeros(shape: Shape, requiresGrad = false): Tensor {
  return new Tensor(zerosF32(shapeSize(shape)), shape, requiresGrad);
}

export function full(shape: Shape, value: number): Tensor {
  return new Tensor(new Float32Array(shapeSize(shape)).fill(value), shape);
}

export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}

export function scalar(value: number): Tensor {
  return new Tensor(Float32Array.of(value), []);
}
