// Parameter records: Hugging Face names → tensors, with shape tables and initialization.
import { Tensor, shapeSize, type Shape } from '../tensor/tensor.js';
import { Rng } from '../tensor/rng.js';

export type Params = Map<string, Tensor>;

/**
 * How a forward pass reads a weight: identity normally; QAT substitutes fake-quantized ones.
 * `input`, when present, transforms the input of the Linear that uses weight `name` before the
 * product (8-bit activation fake quantization, activation probes). Every model applies it to
 * every Linear whose weight goes through this function.
 */
export interface WeightFn {
  (name: string, p: Tensor): Tensor;
  input?: InputFn;
}

/** Input transform of the Linear whose weight is `weightName`; x (…, in). */
export type InputFn = (weightName: string, x: Tensor) => Tensor;

export const identityWeight: WeightFn = (_name, p) => p;

/** The input of Linear `weightName` as the forward pass sees it. */
export function linearInput(w: WeightFn | undefined, weightName: string, x: Tensor): Tensor {
  return w?.input ? w.input(weightName, x) : x;
}

/** How a parameter starts: random normal, zeros, ones, or fixed values (a table the model reads
 *  but does not train, as RoFormer's sinusoids: no gradient reaches it, so no optimizer moves it). */
export type Init = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' } | { kind: 'values'; data: Float32Array };

/** Fresh parameters for a shape table, seeded. */
export function initParams(spec: Map<string, { shape: Shape; init: Init }>, seed: number): Params {
  const rng = new Rng(seed);
  const out: Params = new Map();
  for (const [name, { shape, init }] of spec) {
    const data = new Float32Array(shapeSize(shape));
    if (init.kind === 'ones') data.fill(1);
    else if (init.kind === 'values') {
      if (init.data.length !== data.length) throw new RangeError(`${name}: ${init.data.length} initial values for shape [${shape}]`);
      data.set(init.data);
    }
    else if (init.kind === 'normal') for (let i = 0; i < data.length; i++) data[i] = rng.normal() * init.std;
    const t = new Tensor(data, shape, true);
    t.name = name;
    out.set(name, t);
  }
  return out;
}

/** Looks a parameter up, naming the missing one. */
export function param(params: Params, name: string): Tensor {
  const p = params.get(name);
  if (!p) throw new Error(`missing parameter '${name}'`);
  return p;
}

export function countParams(params: Params): number {
  let n = 0;
  for (const p of params.values()) n += p.size;
  return n;
}
