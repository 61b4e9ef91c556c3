// A model of any registered architecture: config + parameters + (per family) which heads it
// carries. The type is derived from the registry (registry.ts); each architecture stays in its
// own file and is reached through its record.
import type { Tensor } from '../tensor/tensor.js';
import type { LmLogitsOptions } from './architecture.js';
import { archOf, type Model } from './registry.js';

export type { Model } from './registry.js';
export { archOf, headsOf } from './registry.js';

/** Token logits (B, T, V) of a language model: causal for a decoder, masked-LM for an encoder. */
export function lmLogits(model: Model, ids: Tensor, opts: LmLogitsOptions = {}): Tensor {
  return archOf(model).lmLogits(model, ids, opts);
}

export function vocabSize(model: Model): number {
  return model.config.vocabSize;
}

export function maxPositions(model: Model): number {
  return model.config.maxPositionEmbeddings;
}
