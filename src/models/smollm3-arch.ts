// The SmolLM3 record: Hugging Face SmolLM3ForCausalLM (transformers' SmolLM3Config,
// HuggingFaceTB/SmolLM3-3B) = LLaMA whose attention leaves RoPE out of some layers ("NoPE"):
// `no_rope_layers[l]` 0 (1: RoPE as usual), by default every `no_rope_layer_interval`-th layer
// (4: layers 3, 7, 11, …). Tied embeddings by default; attention_bias and mlp_bias must be false
// and the sliding window off (it would apply to NoPE layers only). `pretraining_tp` is kept as
// given: SmolLM3's modelling never reads it.
// GGUF as convert_hf_to_gguf.py's SmolLM3Model (a LlamaModel): arch "smollm3", q/k rows permuted.
// llama.cpp has no key for the NoPE layers (smollm3.cpp: n_no_rope_layer_step = 4, RoPE left out
// of layer il when (il + 1) % 4 == 0), so another pattern is refused for GGUF.
import type { Architecture } from './architecture.js';
import { headDimOf, type LlamaConfig } from './llama.js';
import { LLAMA_BLOCK_NAMES, checkGgufYarn, commonGgufKv, decoderRecord, parseHeadDim, tensorNamer, type LlamaMeta } from './decoder-family.js';
import type { ConfigReader } from './config-reader.js';
import { parseRopeScaling, ropeScalingJson } from './rope-config.js';

/** The NoPE layers of a config: the 0s of no_rope_layers, or every interval-th layer. */
function parseNoRope(r: ConfigReader, L: number): number[] {
  if (r.j.no_rope_layers === undefined || r.j.no_rope_layers === null) {
    const every = r.int('no_rope_layer_interval', 4);
    return Array.from({ length: L }, (_, l) => l).filter((l) => (l + 1) % every === 0);
  }
  const a = r.j.no_rope_layers;
  if (!Array.isArray(a) || a.length < L || !a.every((x) => x === 0 || x === 1)) {
    r.fail(`"no_rope_layers" must be a list of 0 (no RoPE) and 1 (RoPE), one per layer (${L}), got ${JSON.stringify(a)?.slice(0, 80)}`);
  }
  return (a as number[]).slice(0, L).flatMap((x, l) => (x === 0 ? [l] : []));
}

/** llama.cpp's pattern (smollm3.cpp): no RoPE in layer l when (l + 1) % 4 == 0. */
const llamaCppNoRope = (L: number): number[] => Array.from({ length: L }, (_, l) => l).filter((l) => (l + 1) % 4 === 0);

export const smollm3: Architecture<LlamaConfig, LlamaMeta, object> = decoderRecord({
  name: 'smollm3',
  label: 'SmolLM3',
  cls: 'SmolLM3ForCausalLM',
  defaults: { ropeTheta: 2000000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, tieWordEmbeddings: true },
  features(r, base) {
    if (r.bool('attention_bias', false)) r.fail('"attention_bias": true is not supported for smollm3 (kdqat\'s SmolLM3 has no attention biases)');
    if (r.bool('use_sliding_window', false)) r.fail(`"use_sliding_window": true is not supported (sliding_window ${JSON.stringify(r.j.sliding_window)} on the NoPE layers); kdqat runs SmolLM3 with full attention`);
    const noRope = parseNoRope(r, base.numHiddenLayers);
    return {
      headDim: parseHeadDim(r, base), ropeScaling: parseRopeScaling(r, base.maxPositionEmbeddings, ['linear', 'yarn']),
      noRopeLayers: noRope.length ? noRope : undefined,
    };
  },
  reads: ['pretraining_tp'],
  json: (k) => ({
    attention_bias: false, head_dim: headDimOf(k), mlp_bias: false,
    no_rope_layers: Array.from({ length: k.numHiddenLayers }, (_, l) => (k.noRopeLayers?.includes(l) ? 0 : 1)),
    rope_scaling: ropeScalingJson(k.ropeScaling), use_sliding_window: false,
  }),
  kept: { max_window_layers: 28, sliding_window: null },
  gguf: {
    arch: 'smollm3',
    tensorName: tensorNamer('SmolLM3', LLAMA_BLOCK_NAMES),
    permuteQK: true,
    kv: (k) => {
      checkGgufYarn(k);
      const want = llamaCppNoRope(k.numHiddenLayers), got = k.noRopeLayers ?? [];
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        throw new Error(`no_rope_layers leaves RoPE out of layers [${got.join(', ')}]; llama.cpp's smollm3 leaves it out of every 4th layer ([${want.join(', ')}]) ` +
          'and has no key for another pattern, so its GGUF would be a different model; export ONNX or safetensors instead');
      }
      return commonGgufKv('smollm3', k);
    },
  },
});
