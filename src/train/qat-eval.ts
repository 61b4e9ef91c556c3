// KD-QAT's evaluations (src/train/qat.ts): the student through its weight function against the
// teacher — decoder: validation NLL / perplexity and the `pred` loss; encoder: dev accuracy.
import { intTensor } from '../tensor/tensor.js';
import { crossEntropy, reshape } from '../tensor/ops/index.js';
import { noGrad } from '../tensor/autograd.js';
import type { WeightFn } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import type { LoadedTokenizer } from '../tokenize/index.js';
import { classificationAccuracy } from '../eval/classification.js';
import { distillLoss } from '../distill/losses.js';
import { sequentialBatches } from './objectives.js';
import type { QatData } from './qat-data.js';

export type QatEvaluator = (weight: WeightFn | undefined, maxWindows: number, o?: {
  onBatch?: (done: number, total: number) => void; teacherMetrics?: Record<string, number>;
}) => Record<string, number>;

/**
 * Evaluation of the student through `weight`: decoder — validation NLL/perplexity and the
 * distillation loss against the teacher (valid_kl: the `pred` term, τ = 1, mean per token);
 * encoder — dev accuracy. `maxWindows` limits the validation windows (periodic evaluations).
 * `teacherMetrics` receives the teacher's own metrics (computed from the same forward passes).
 */
export function qatEvaluator(model: Model, teacher: Model, data: QatData, tok: LoadedTokenizer, batch: number): QatEvaluator {
  return (weight: WeightFn | undefined, maxWindows: number, o: {
    onBatch?: (done: number, total: number) => void; teacherMetrics?: Record<string, number>;
  } = {}): Record<string, number> => {
    const onBatch = o.onBatch;
    if (data.kind === 'encoder') {
      const acc = (m: Model, w?: WeightFn): number =>
        classificationAccuracy(m, tok, data.dev, { maxLen: data.maxLen, batchSize: Math.max(batch, 32), weight: w, onBatch }).accuracy;
      if (o.teacherMetrics) o.teacherMetrics.dev_accuracy = acc(teacher);
      return { dev_accuracy: acc(model, weight) };
    }
    const rec = archOf(model);
    if (!data.valid || rec.kind !== 'decoder' || archOf(teacher).kind !== 'decoder') return {};
    let nll = 0, kl = 0, tnll = 0, tokens = 0;
    const total = Math.min(data.valid.count, maxWindows);
    noGrad(() => {
      for (const b of sequentialBatches(data.valid!, batch, maxWindows)) {
        onBatch?.(tokens / b.seqLen, total);
        const n = b.rows * b.seqLen, ids = intTensor(b.inputs, [b.rows, b.seqLen]);
        const s = rec.forward(model, { ids }, { weight });
        nll += crossEntropy(reshape(s.logits, [n, model.config.vocabSize]), intTensor(b.targets!, [n])).item() * n;
        const t = archOf(teacher).forward(teacher, { ids });
        kl += distillLoss(s, t, { pred: 1 }, { arch: model.arch }).terms.pred!.item() * n;
        if (o.teacherMetrics) tnll += crossEntropy(reshape(t.logits, [n, teacher.config.vocabSize]), intTensor(b.targets!, [n])).item() * n;
        tokens += n;
      }
    });
    if (o.teacherMetrics) Object.assign(o.teacherMetrics, { valid_nll: tnll / tokens, valid_ppl: Math.exp(tnll / tokens), valid_kl: 0 });
    return { valid_nll: nll / tokens, valid_ppl: Math.exp(nll / tokens), valid_kl: kl / tokens };
  };
}

