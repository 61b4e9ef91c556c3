// A model of either architecture: config + parameters + which heads it carries. The registry
// of architectures is this one union; each architecture stays in its own file.
import type { Tensor } from '../tensor/tensor.js';
import type { Params, WeightFn } from '../nn/params.js';
import { llamaForward, type LlamaConfig } from './llama.js';
import { bertEncode, bertMlmLogits, type BertConfig } from './bert.js';

export type Model =
  | { arch: 'llama'; config: LlamaConfig; params: Params }
  | { arch: 'bert'; config: BertConfig; params: Params; heads: { mlm: boolean; classifier: boolean } };

/** Token logits (B, T, V) of a language model: causal for LLaMA, masked-LM for BERT. */
export function lmLogits(model: Model, ids: Tensor, opts: { attentionMask?: Tensor | null; weight?: WeightFn } = {}): Tensor {
  if (model.arch === 'llama') return llamaForward(model.params, model.config, ids, opts).logits;
  if (!model.heads.mlm) throw new Error('this BERT model has no masked-LM head (cls.predictions.*)');
  const enc = bertEncode(model.params, model.config, ids, opts);
  return bertMlmLogits(model.params, model.config, enc, opts);
}

export function vocabSize(model: Model): number {
  return model.config.vocabSize;
}

export function maxPositions(model: Model): number {
  return model.config.maxPositionEmbeddings;
}
