// The LLaMA record (architecture.ts): Hugging Face LlamaForCausalLM, plain or with the RoPE
// scalings Llama 3.x and others use (rope_scaling linear / llama3 / yarn) and an explicit
// head_dim. Config keys and defaults follow transformers' LlamaConfig
// (models/llama/configuration_llama.py); SmolLM/SmolLM2 are this record with tied embeddings.
// GGUF as convert_hf_to_gguf.py's LlamaModel: arch "llama", q/k rows permuted, llama3 scaling
// as the rope_freqs.weight tensor.
import type { Architecture } from './architecture.js';
import type { LlamaConfig } from './llama.js';
import {
  LLAMA_BLOCK_NAMES, checkGgufYarn, commonGgufKv, decoderRecord, parseHeadDim, ropeFreqsTensor, tensorNamer, type LlamaMeta,
} from './decoder-family.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';
import { headDimOf } from './llama.js';

export type { LlamaMeta } from './decoder-family.js';

export const llama: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'llama',
  label: 'LLaMA',
  cls: 'LlamaForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 2048, tieWordEmbeddings: false },
  features(r, base) {
    if (r.bool('attention_bias', false)) r.fail('"attention_bias": true is not supported; kdqat\'s LLaMA has no attention biases');
    return { headDim: parseHeadDim(r, base), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, ['linear', 'llama3', 'yarn']) };
  },
  json: (k) => ({
    attention_bias: false, head_dim: headDimOf(k), mlp_bias: false, pretraining_tp: 1, rope_scaling: ropeScalingJson(k.ropeScaling),
  }),
  gguf: {
    arch: 'llama',
    tensorName: tensorNamer('LLaMA', LLAMA_BLOCK_NAMES),
    permuteQK: true,
    kv: (k) => { checkGgufYarn(k); return commonGgufKv('llama', k); },
    extraTensors: ropeFreqsTensor,
  },
});
