// BERT's masked-LM corruption (Devlin et al. 2019, §3.1): choose each non-special position with
// probability prob; of the chosen, 80% become [MASK], 10% a random token, 10% stay unchanged.
// Labels hold the original id at chosen positions and -100 (ignored by the loss) elsewhere.
import { Rng } from '../tensor/rng.js';
import { DataError } from './errors.js';

export const IGNORE_INDEX = -100;

export interface MaskOptions {
  maskId: number;
  vocabSize: number;
  /** Never chosen and never used as random replacements ([CLS], [SEP], [PAD], …). */
  specialIds?: number[];
  /** Selection probability (default 0.15). */
  prob?: number;
  seed: number;
}

/**
 * Mask one sequence. At least one position is chosen whenever any is eligible, so the MLM loss
 * is never an average over zero tokens (this only matters for very short sequences).
 */
export function maskTokens(ids: ArrayLike<number>, opts: MaskOptions): { inputIds: Int32Array; labels: Int32Array } {
  const { maskId, vocabSize, specialIds = [], prob = 0.15, seed } = opts;
  if (!(prob > 0 && prob <= 1)) throw new DataError('maskTokens', undefined, `prob must be in (0, 1], got ${prob}`);
  const special = new Set(specialIds);
  if (special.size >= vocabSize) throw new DataError('maskTokens', undefined, 'every vocabulary id is special');
  const rng = new Rng(seed);
  const inputIds = Int32Array.from(ids);
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  const eligible: number[] = [];
  let chosen = 0;
  const corrupt = (i: number) => {
    labels[i] = inputIds[i];
    chosen++;
    const r = rng.uniform();
    if (r < 0.8) inputIds[i] = maskId;
    else if (r < 0.9) {
      let t = rng.int(vocabSize);
      while (special.has(t)) t = rng.int(vocabSize);
      inputIds[i] = t;
    }
  };
  for (let i = 0; i < inputIds.length; i++) {
    if (special.has(inputIds[i])) continue;
    eligible.push(i);
    if (rng.uniform() < prob) corrupt(i);
  }
  if (chosen === 0 && eligible.length > 0) corrupt(eligible[rng.int(eligible.length)]);
  return { inputIds, labels };
}
