// Sequence classification with a BERT classifier: encoding ([CLS] text [SEP], or
// [CLS] a [SEP] b [SEP] with token types 0/1 for pairs), truncation to a maximum length, padded
// batches with attention masks, logits, and accuracy over a data set.
import { Tensor, intTensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { bertClassify, bertEncode, type BertConfig } from '../models/bert.js';
import type { Params, WeightFn } from '../nn/params.js';
import type { ClassificationData, ClassificationExample } from '../data/types.js';
import { headsOf, type Model } from '../models/model.js';

export interface ClassifierTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  specials: { cls?: number; sep?: number; pad?: number };
  path?: string;
}

export interface EncodedExample {
  ids: number[];
  typeIds: number[];
  label: number;
}

/** The special ids a classifier input needs, with an error naming the tokenizer if absent. */
export function classifierSpecials(tok: ClassifierTokenizer): { cls: number; sep: number; pad: number } {
  const { cls, sep, pad } = tok.specials;
  if (cls === undefined || sep === undefined) {
    throw new Error(`${tok.path ?? 'tokenizer'}: has no [CLS]/[SEP] tokens; a BERT classifier needs a WordPiece tokenizer with them`);
  }
  return { cls, sep, pad: pad ?? 0 };
}

/**
 * [CLS] a [SEP] (b [SEP]) truncated to maxLen tokens: the longer of a and b loses its last
 * token until it fits (Hugging Face's 'longest_first' truncation).
 */
export function encodeExample(tok: ClassifierTokenizer, ex: ClassificationExample, maxLen: number): EncodedExample {
  const { cls, sep } = classifierSpecials(tok);
  const a = tok.encode(ex.text, { addSpecialTokens: false });
  const b = ex.textPair === undefined ? null : tok.encode(ex.textPair, { addSpecialTokens: false });
  const room = maxLen - (b ? 3 : 2);
  if (room < 1) throw new RangeError(`max length ${maxLen} leaves no room for text after the special tokens`);
  if (!b) a.length = Math.min(a.length, room);
  else while (a.length + b.length > room) (a.length >= b.length ? a : b).pop();
  const ids = [cls, ...a, sep, ...(b ? [...b, sep] : [])];
  const typeIds = ids.map((_, i) => (i < a.length + 2 ? 0 : 1));
  return { ids, typeIds, label: ex.label };
}

export interface PaddedBatch {
  ids: Tensor; // (B, T) int32
  typeIds: Tensor; // (B, T) int32
  mask: Tensor; // (B, T) int32, 1 = token, 0 = padding
  labels: Int32Array; // (B)
}

/** Right-pads examples to the longest one in the batch. */
export function padBatch(items: EncodedExample[], padId: number): PaddedBatch {
  const B = items.length, T = Math.max(...items.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId), types = new Int32Array(B * T), mask = new Int32Array(B * T);
  items.forEach((e, b) => {
    ids.set(e.ids, b * T);
    types.set(e.typeIds, b * T);
    mask.fill(1, b * T, b * T + e.ids.length);
  });
  return {
    ids: intTensor(ids, [B, T]), typeIds: intTensor(types, [B, T]), mask: intTensor(mask, [B, T]),
    labels: Int32Array.from(items, (e) => e.label),
  };
}

/** Classifier logits (B, K); dropout when a seed is given (training). */
export function classifierLogits(
  params: Params, cfg: BertConfig, batch: PaddedBatch, opts: { dropoutSeed?: number; weight?: WeightFn } = {},
): Tensor {
  const enc = bertEncode(params, cfg, batch.ids, {
    attentionMask: batch.mask, tokenTypeIds: batch.typeIds, dropoutSeed: opts.dropoutSeed, weight: opts.weight,
  });
  return bertClassify(params, cfg, enc, { dropoutSeed: opts.dropoutSeed, weight: opts.weight });
}

export interface ClassificationResult {
  accuracy: number;
  n: number;
  /** Predicted label per example, in input order. */
  predictions: number[];
}

export interface ClassificationOptions {
  /** Maximum length with special tokens (default 128, capped at the model's max positions). */
  maxLen?: number;
  batchSize?: number;
  weight?: WeightFn;
  /** Progress after each batch: examples done so far, of `total`. */
  onBatch?: (done: number, total: number) => void;
}

/**
 * Accuracy of a BERT classifier on a data set (no gradients; batches sorted by length; argmax
 * of the logits, ties to the first class). `model` is a loaded `Model` or bare params + config.
 */
export function classificationAccuracy(
  model: Model | { params: Params; config: BertConfig }, tok: ClassifierTokenizer,
  data: ClassificationData | ClassificationExample[],
  opts: ClassificationOptions = {},
): ClassificationResult {
  const examples = Array.isArray(data) ? data : data.examples;
  const bert = !('arch' in model) || headsOf(model).classifier ? model as { params: Params; config: BertConfig } : null;
  if (!bert || !bert.params.has('classifier.weight')) {
    throw new Error('classification accuracy needs a BERT model with a classifier head (classifier.*); fine-tune it first');
  }
  const { params, config: cfg } = bert;
  const maxLen = Math.min(opts.maxLen ?? 128, cfg.maxPositionEmbeddings);
  const bs = opts.batchSize ?? 32;
  const { pad } = classifierSpecials(tok);
  const encoded = examples.map((e) => encodeExample(tok, e, maxLen));
  // Longest first, so each batch pads little.
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[b].ids.length - encoded[a].ids.length || a - b);
  const predictions = new Array<number>(examples.length);
  const K = cfg.numLabels;
  noGrad(() => {
    for (let s = 0; s < order.length; s += bs) {
      const idx = order.slice(s, s + bs);
      const logits = classifierLogits(params, cfg, padBatch(idx.map((i) => encoded[i]), pad), { weight: opts.weight }).f32; // (B, K)
      idx.forEach((i, b) => {
        let best = 0;
        for (let k = 1; k < K; k++) if (logits[b * K + k] > logits[b * K + best]) best = k;
        predictions[i] = best;
      });
      opts.onBatch?.(Math.min(s + bs, order.length), order.length);
    }
  });
  let correct = 0;
  examples.forEach((e, i) => { if (predictions[i] === e.label) correct++; });
  const n = examples.length;
  return { accuracy: n ? correct / n : NaN, n, predictions };
}
