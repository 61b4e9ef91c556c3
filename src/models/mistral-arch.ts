// The Mistral record: Hugging Face MistralForCausalLM (transformers' MistralConfig) = LLaMA with
// sliding-window attention (`sliding_window`, null = off: query i sees keys i − window < j ≤ i,
// the attention op's `window`) and an optional explicit head_dim; no rope_scaling.
// GGUF: convert_hf_to_gguf.py converts MistralForCausalLM with LlamaModel (arch "llama", q/k
// permuted), which writes no window: llama.cpp then attends over the whole context.
import type { Architecture } from './architecture.js';
import { headDimOf, type LlamaConfig } from './llama.js';
import {
  LLAMA_BLOCK_NAMES, commonGgufKv, decoderRecord, parseHeadDim, parseWindow, tensorNamer, type LlamaMeta,
} from './decoder-family.js';
import { parseRopeScaling } from './rope-config.js';

export const mistral: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'mistral',
  label: 'Mistral',
  cls: 'MistralForCausalLM',
  defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 4096 * 32, tieWordEmbeddings: false },
  features: (r, base) => ({
    headDim: parseHeadDim(r, base), slidingWindow: parseWindow(r), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, []),
  }),
  json: (k) => ({ head_dim: headDimOf(k), sliding_window: k.slidingWindow ?? null }),
  pretrainFeatures: (s) => ({ slidingWindow: s.seq }),
  gguf: {
    arch: 'llama',
    tensorName: tensorNamer('Mistral', LLAMA_BLOCK_NAMES),
    permuteQK: true,
    kv: (k) => commonGgufKv('llama', k),
    // A window as long as the model's positions changes nothing (Phi-3.5's 262144 of 131072).
    notes: (k) => (k.slidingWindow == null || k.slidingWindow >= k.maxPositionEmbeddings ? [] : [
      `llama.cpp runs Mistral as "llama", which has no sliding window: on contexts longer than sliding_window = ${k.slidingWindow} ` +
      'it attends to all earlier tokens, unlike the Hugging Face model and kdqat',
    ]),
  },
});
