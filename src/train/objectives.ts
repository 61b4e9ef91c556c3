// Pre-training objectives as loss functions of a batch: next-token cross-entropy for a decoder,
// masked-LM cross-entropy for an encoder (BERT's 80/10/10 corruption), and their evaluations.
import { Tensor, intTensor } from '../tensor/tensor.js';
import { crossEntropy, reshape } from '../tensor/ops/index.js';
import { noGrad } from '../tensor/autograd.js';
import { hash32 } from '../tensor/rng.js';
import { llamaForward, type LlamaConfig } from '../models/llama.js';
import { archOf, type Model } from '../models/registry.js';
import type { Params } from '../nn/params.js';
import { maskTokens, IGNORE_INDEX } from '../data/mlm.js';
import { batches, type Windows } from '../data/packing.js';

/** A batch of B rows of T token ids (row-major), with next-token targets for a decoder. */
export interface TokenBatch {
  rows: number;
  seqLen: number;
  inputs: Int32Array;
  targets?: Int32Array;
}

/** Mean next-token cross-entropy of a LLaMA model on a packed batch. */
export function causalLmLoss(params: Params, cfg: LlamaConfig, b: TokenBatch): Tensor {
  if (!b.targets) throw new Error('causal LM batches need targets (pack with shift: true)');
  const B = b.rows, T = b.seqLen;
  const { logits } = llamaForward(params, cfg, intTensor(b.inputs, [B, T])); // (B, T, V)
  return crossEntropy(reshape(logits, [B * T, cfg.vocabSize]), intTensor(b.targets, [B * T]));
}

export interface MlmSpecials {
  cls: number;
  sep: number;
  mask: number;
  /** Never masked nor used as random replacements. */
  special: number[];
}

/** [CLS] window [SEP] for each row of a (B, T-2) batch of plain windows → (B, T). */
export function wrapClsSep(b: TokenBatch, sp: MlmSpecials): TokenBatch {
  const W = b.seqLen, T = W + 2;
  const out = new Int32Array(b.rows * T);
  for (let r = 0; r < b.rows; r++) {
    out[r * T] = sp.cls;
    out.set(b.inputs.subarray(r * W, (r + 1) * W), r * T + 1);
    out[r * T + T - 1] = sp.sep;
  }
  return { rows: b.rows, seqLen: T, inputs: out };
}

/** BERT masking of every row, row r seeded by hash32(seed, r); labels -100 where not chosen;
 *  `prob` the selection probability (default BERT's 0.15). */
export function maskBatch(b: TokenBatch, sp: MlmSpecials, vocabSize: number, seed: number, prob?: number): { inputs: Int32Array; labels: Int32Array } {
  const T = b.seqLen;
  const inputs = new Int32Array(b.inputs.length), labels = new Int32Array(b.inputs.length);
  for (let r = 0; r < b.rows; r++) {
    const m = maskTokens(b.inputs.subarray(r * T, (r + 1) * T), {
      maskId: sp.mask, vocabSize, specialIds: sp.special, seed: hash32(seed, r), prob,
    });
    inputs.set(m.inputIds, r * T);
    labels.set(m.labels, r * T);
  }
  return { inputs, labels };
}

/**
 * Masked-LM cross-entropy of an encoder (any family, through its record), mean over the masked
 * positions, with the flattened positions b·T + t it scored (`rows`) and their logits (N, V). Only masked rows go through the output head (15% of the tokens), which saves most
 * of the (N, C)·(C, V) product.
 */
export function mlmLoss(
  model: Model, b: TokenBatch, inputs: Int32Array, labels: Int32Array, dropoutSeed?: number,
): { loss: Tensor; count: number; rows: number[]; logits: Tensor } {
  const B = b.rows, T = b.seqLen;
  const rows: number[] = [], tgt: number[] = [];
  labels.forEach((l, i) => { if (l !== IGNORE_INDEX) { rows.push(i); tgt.push(l); } });
  const logits = archOf(model).lmLogits(model, intTensor(inputs, [B, T]), { dropoutSeed, rows: Int32Array.from(rows) }); // (N, V)
  return { loss: crossEntropy(logits, intTensor(tgt, [tgt.length])), count: tgt.length, rows, logits };
}

/** Shuffled training batches of an epoch: the order depends only on (seed, epoch). */
export function* shuffledBatches(w: Windows, batchSize: number, seed: number, epoch: number): Generator<TokenBatch> {
  for (const b of batches(w, batchSize, seed, epoch)) yield { rows: b.rows.length, seqLen: w.seqLen, inputs: b.inputs, targets: b.targets };
}

/** Windows → batches in storage order (evaluation: no shuffling, last batch kept). */
export function* sequentialBatches(w: Windows, batchSize: number, maxWindows = Infinity): Generator<TokenBatch> {
  const n = Math.min(w.count, maxWindows);
  for (let start = 0; start < n; start += batchSize) {
    const B = Math.min(batchSize, n - start);
    const inputs = new Int32Array(B * w.seqLen);
    const targets = w.shift ? new Int32Array(B * w.seqLen) : undefined;
    for (let b = 0; b < B; b++) {
      const at = (start + b) * w.width;
      inputs.set(w.data.subarray(at, at + w.seqLen), b * w.seqLen);
      targets?.set(w.data.subarray(at + 1, at + 1 + w.seqLen), b * w.seqLen);
    }
    yield { rows: B, seqLen: w.seqLen, inputs, targets };
  }
}

/** Validation masked-LM loss with fixed masks (seed 0 per row index), so evaluations compare. */
export function mlmEval(
  model: Model, w: Windows, sp: MlmSpecials, opts: { batchSize: number; maxWindows?: number },
): { loss: number; tokens: number } {
  let total = 0, count = 0, row = 0;
  noGrad(() => {
    for (const plain of sequentialBatches(w, opts.batchSize, opts.maxWindows)) {
      const b = wrapClsSep(plain, sp);
      const m = maskBatch(b, sp, model.config.vocabSize, hash32(0x6d6c6d, row));
      row += b.rows;
      const r = mlmLoss(model, b, m.inputs, m.labels);
      total += r.loss.item() * r.count;
      count += r.count;
    }
  });
  return { loss: count ? total / count : NaN, tokens: count };
}
