// Pseudo-log-likelihood of a token sequence under a masked LM (Salazar et al. 2020, "Masked
// Language Model Scoring"): PLL(x) = Σ_t log p(x_t | x with position t replaced by [MASK]), one
// masked copy of the sequence per scored position, special tokens not scored. A masked LM that
// reads word order prefers a sentence as written to the same words in another order; one that
// predicts from the bag of context words, or from no context at all (a model still on the
// unigram plateau of MLM training), cannot. scripts/word-order-pll.ts applies it to the
// word-order task's sentences.
import { intTensor, logSoftmax, noGrad } from '../tensor/index.js';
import type { WeightFn } from '../nn/params.js';
import { archOf, lmLogits, type Model } from '../models/model.js';

/** PLL in nats of `ids` (special tokens included, e.g. [CLS] … [SEP]); positions whose token is
 *  in `special` are context only. The per-token log-probabilities are summed in float64. */
export function pseudoLogLikelihood(model: Model, ids: number[], maskId: number, special: ReadonlySet<number>, weight?: WeightFn): number {
  if (archOf(model).kind !== 'encoder') throw new Error('pseudo-log-likelihood needs a masked LM (an encoder with its MLM head)');
  const T = ids.length;
  const scored = ids.map((t, i) => (special.has(t) ? -1 : i)).filter((i) => i >= 0);
  if (scored.length === 0) return 0;
  const n = scored.length;
  const inputs = new Int32Array(n * T), rows = new Int32Array(n);
  scored.forEach((pos, r) => {
    inputs.set(ids, r * T);
    inputs[r * T + pos] = maskId;
    rows[r] = r * T + pos;
  });
  const logp = noGrad(() => logSoftmax(lmLogits(model, intTensor(inputs, [n, T]), { rows, weight })).f32); // (n, V)
  const V = logp.length / n;
  let total = 0;
  for (let r = 0; r < n; r++) total += logp[r * V + ids[scored[r]]];
  return total;
}
