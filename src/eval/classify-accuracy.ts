// Accuracy of a BERT sequence classifier: [CLS] text [SEP] (text_pair [SEP]) with token types
// 0/1 as BertTokenizer builds them, truncated longest-first to `seqLen` as HF's
// truncation=True does, right-padded within a batch under an attention mask, then argmax of
// the classifier logits (ties: the first class).
import { intTensor, noGrad } from '../tensor/index.js';
import type { WeightFn } from '../nn/params.js';
import type { ClassificationExample } from '../data/types.js';
import { bertClassify, bertEncode } from '../models/bert.js';
import type { Model } from '../models/model.js';

export interface ClassifyAccuracyResult {
  acc: number;
  n: number;
  predictions: number[];
}

export interface ClassifyOptions {
  /** Maximum length with special tokens (default: the model's max positions, at most 512). */
  seqLen?: number;
  batchSize?: number;
  weight?: WeightFn;
  onBatch?: (done: number, total: number) => void;
}

/** The special ids a BERT input needs. */
export interface BertSpecials { cls: number; sep: number; pad: number }

/** Ids and token types of one example (see top). `encode` must not add special tokens. */
export function bertInput(
  encode: (text: string) => number[], ex: ClassificationExample, sp: BertSpecials, seqLen: number,
): { ids: number[]; types: number[] } {
  const a = encode(ex.text);
  const b = ex.textPair === undefined ? null : encode(ex.textPair);
  const room = seqLen - (b ? 3 : 2);
  if (room < 1) throw new RangeError(`sequence length ${seqLen} leaves no room for text after the special tokens`);
  // Longest-first: drop the last token of whichever part is longer until both fit.
  while (a.length + (b?.length ?? 0) > room) {
    if (b && b.length > a.length) b.pop();
    else a.pop();
  }
  const ids = [sp.cls, ...a, sp.sep, ...(b ? [...b, sp.sep] : [])];
  const types = ids.map((_, i) => (i < a.length + 2 ? 0 : 1));
  return { ids, types };
}

export function classifyAccuracy(
  model: Model, encode: (text: string) => number[], sp: BertSpecials, examples: ClassificationExample[], opts: ClassifyOptions = {},
): ClassifyAccuracyResult {
  if (model.arch !== 'bert' || !model.heads.classifier) throw new Error('classification accuracy needs a BERT model with a classifier head');
  const seqLen = opts.seqLen ?? Math.min(model.config.maxPositionEmbeddings, 512);
  const bs = opts.batchSize ?? 16;
  const K = model.config.numLabels;
  const inputs = examples.map((ex) => bertInput(encode, ex, sp, seqLen));
  const predictions = new Array<number>(examples.length);
  noGrad(() => {
    for (let s = 0; s < inputs.length; s += bs) {
      const batch = inputs.slice(s, s + bs);
      const B = batch.length, T = Math.max(...batch.map((x) => x.ids.length));
      const ids = new Int32Array(B * T).fill(sp.pad), types = new Int32Array(B * T), mask = new Int32Array(B * T);
      batch.forEach((x, b) => {
        ids.set(x.ids, b * T);
        types.set(x.types, b * T);
        mask.fill(1, b * T, b * T + x.ids.length);
      });
      const enc = bertEncode(model.params, model.config, intTensor(ids, [B, T]), {
        attentionMask: intTensor(mask, [B, T]), tokenTypeIds: intTensor(types, [B, T]), weight: opts.weight,
      });
      const logits = bertClassify(model.params, model.config, enc, { weight: opts.weight }).f32; // (B, K)
      for (let b = 0; b < B; b++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (logits[b * K + k] > logits[b * K + best]) best = k;
        predictions[s + b] = best;
      }
      opts.onBatch?.(Math.min(s + bs, inputs.length), inputs.length);
    }
  });
  const correct = examples.reduce((n, ex, i) => n + (predictions[i] === ex.label ? 1 : 0), 0);
  return { acc: examples.length ? correct / examples.length : NaN, n: examples.length, predictions };
}
