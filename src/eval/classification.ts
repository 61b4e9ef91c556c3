// Sequence classification with an encoder classifier of any family: encoding in the layout its
// record names (BERT: [CLS] a [SEP] b [SEP] with token types 0/1; RoBERTa: <s> a </s></s> b </s>
// without), truncation to a maximum length, padded batches with attention masks, logits through
// the record's forward, and accuracy over a data set.
import { Tensor, intTensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import type { WeightFn } from '../nn/params.js';
import type { ClassificationData, ClassificationExample } from '../data/types.js';
import type { ClassifierInput } from '../models/architecture.js';
import { archOf, headsOf, type Model } from '../models/model.js';

export interface ClassifierTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  specials: { cls?: number; sep?: number; pad?: number; bos?: number; eos?: number };
  path?: string;
}

export interface EncodedExample {
  ids: number[];
  typeIds: number[];
  label: number;
}

/** The special ids a classifier input needs, with an error naming the tokenizer if absent. The
 *  classifier token is [CLS] or, in tokenizers without one, <s> (RoBERTa's cls_token); the
 *  separator [SEP] or </s>. */
export function classifierSpecials(tok: ClassifierTokenizer): { cls: number; sep: number; pad: number } {
  const { cls, sep, pad, bos, eos } = tok.specials;
  const c = cls ?? bos, s = sep ?? eos;
  if (c === undefined || s === undefined) {
    throw new Error(`${tok.path ?? 'tokenizer'}: has no [CLS]/[SEP] (or <s>/</s>) tokens; a classifier needs the model's own tokenizer with them`);
  }
  return { cls: c, sep: s, pad: pad ?? 0 };
}

/** BERT's layout: one separator between a pair, token types 0/1. */
export const BERT_INPUT: ClassifierInput = { pairSeparators: 1, tokenTypes: true };

/** The input layout of a model's classifier (its record's, BERT's by default). */
export const inputLayout = (model: { arch: string }): ClassifierInput => archOf(model).classifierInput ?? BERT_INPUT;

/**
 * CLS a SEP (SEP… b SEP) truncated to maxLen tokens: the longer of a and b loses its last
 * token until it fits (Hugging Face's 'longest_first' truncation). Token types are 0 for the
 * first segment and 1 for the second when the layout has them, else all 0.
 */
export function encodeExample(tok: ClassifierTokenizer, ex: ClassificationExample, maxLen: number, layout: ClassifierInput = BERT_INPUT): EncodedExample {
  const { cls, sep } = classifierSpecials(tok);
  const a = tok.encode(ex.text, { addSpecialTokens: false });
  const b = ex.textPair === undefined ? null : tok.encode(ex.textPair, { addSpecialTokens: false });
  const seps = layout.pairSeparators;
  const room = maxLen - (b ? 2 + seps : 2);
  if (room < 1) throw new RangeError(`max length ${maxLen} leaves no room for text after the special tokens`);
  if (!b) a.length = Math.min(a.length, room);
  else while (a.length + b.length > room) (a.length >= b.length ? a : b).pop();
  const ids = [cls, ...a, sep, ...(b ? [...Array(seps - 1).fill(sep), ...b, sep] : [])];
  const typeIds = ids.map((_, i) => (layout.tokenTypes && i >= a.length + 2 ? 1 : 0));
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

/** Classifier logits (B, K) through the model's record; dropout when a seed is given (training). */
export function classifierLogits(model: Model, batch: PaddedBatch, opts: { dropoutSeed?: number; weight?: WeightFn } = {}): Tensor {
  const rec = archOf(model);
  const tokenTypeIds = (rec.classifierInput ?? BERT_INPUT).tokenTypes ? batch.typeIds : null;
  return rec.forward(model, { ids: batch.ids, mask: batch.mask, tokenTypeIds }, { weight: opts.weight, dropoutSeed: opts.dropoutSeed }).logits;
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
 * Accuracy of an encoder classifier on a data set (no gradients; batches sorted by length;
 * argmax of the logits, ties to the first class).
 */
export function classificationAccuracy(
  model: Model, tok: ClassifierTokenizer, data: ClassificationData | ClassificationExample[], opts: ClassificationOptions = {},
): ClassificationResult {
  const examples = Array.isArray(data) ? data : data.examples;
  const rec = archOf(model);
  if (!headsOf(model).classifier) {
    throw new Error(`classification accuracy needs an encoder with a classifier head; this is ${rec.describe(headsOf(model))}); fine-tune it first`);
  }
  const cfg = model.config;
  const maxLen = Math.min(opts.maxLen ?? 128, cfg.maxPositionEmbeddings);
  const bs = opts.batchSize ?? 32;
  const { pad } = classifierSpecials(tok);
  const encoded = examples.map((e) => encodeExample(tok, e, maxLen, inputLayout(model)));
  // Longest first, so each batch pads little.
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[b].ids.length - encoded[a].ids.length || a - b);
  const predictions = new Array<number>(examples.length);
  const K = 'numLabels' in cfg ? cfg.numLabels : 0;
  noGrad(() => {
    for (let s = 0; s < order.length; s += bs) {
      const idx = order.slice(s, s + bs);
      const logits = classifierLogits(model, padBatch(idx.map((i) => encoded[i]), pad), { weight: opts.weight }).f32; // (B, K)
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
