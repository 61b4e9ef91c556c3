// The real-size benchmarks (bench/real_size.ts): the model layouts (bench/configs/<name>.json,
// copied from the published config.json of each model), the batch shape and the KD-QAT setting
// of each. The PyTorch side (bench/torch_real_size.py) reads the same JSON.
import type { LossWeights } from '../src/distill/losses.js';

export interface RealSizeShape {
  label: string;
  batch: number;
  seq: number;
  /** A QUANT_PRESETS name. */
  preset: string;
  losses: LossWeights;
}

export const SHAPES = {
  // issue 13's SmolLM-135M step: W4 per group of 32, logits KL
  'smollm2-135m': { label: 'SmolLM2-135M', batch: 4, seq: 256, preset: 'w4-g32', losses: { pred: 1 } },
  // Qwen2.5-0.5B: vocabulary 151936, so a smaller batch keeps B·T·V logits within memory
  'qwen2.5-0.5b': { label: 'Qwen2.5-0.5B', batch: 2, seq: 256, preset: 'w4-g32', losses: { pred: 1 } },
  // paper B's setting at BERT-base's shape: TWN weights, 8-bit activations, pred + rep + attn_map
  'bert-base': { label: 'BERT-base (classifier)', batch: 16, seq: 128, preset: 'twn-a8', losses: { pred: 1, rep: 1, attn_map: 1 } },
} satisfies Record<string, RealSizeShape>;

export type RealSizeName = keyof typeof SHAPES;
