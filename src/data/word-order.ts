// 'word-order': is this sentence as written, or were two of its words exchanged? An acceptability
// task in the spirit of GLUE's CoLA that only a model of word order can do, where 'brown-genre'
// is mostly decided by which words occur (a bag-of-words classifier does well there).
//
// Each sentence is used once: as written (label 1, 'original') or, with probability ½, with two
// of its inner words exchanged (label 0, 'swapped'). Both classes therefore have the same
// distribution of word multisets, and any classifier of the bag of words scores ½ in expectation.
// Only inner words move (not the first, which carries the capital, nor the last, which carries
// the full stop), and the two differ, so neither capitals nor punctuation at the ends give the
// answer away. Some swaps leave a grammatical sentence ("the dog saw the cat" → "the cat saw the
// dog"), so the best achievable accuracy is below 1.
//
// Sentences: proper ones (capital start, terminal punctuation) of 8–40 words from the three
// corpora that ship, split by document exactly as for pre-training (defaultCorpusSplit): train
// sentences from train documents, dev from validation documents, test from test documents, so an
// encoder pre-trained with kdqat's MLM on these corpora has never seen a dev or test sentence.
// All sampling is seeded.
import { Rng } from '../tensor/rng.js';
import { CORPUS_NAMES, loadCorpus } from './corpora.js';
import { splitSentences } from './sentences.js';
import { defaultCorpusSplit, splitCorpus } from './splits.js';
import type { ClassificationExample } from './types.js';

export const WORD_ORDER_LABELS = ['swapped', 'original'];

export interface WordOrderOptions {
  /** At most this many examples per part (seeded choice; defaults 20000 / 2000 / 2000). */
  maxTrain?: number;
  maxDev?: number;
  maxTest?: number;
  /** Sentences with fewer or more words are not used (default 8, 40). */
  minWords?: number;
  maxWords?: number;
  seed?: number;
}

const PROPER = /^["'“‘(]?[A-Z0-9].*[.!?]["'”’)]*$/;

/** Exchange two distinct inner words of a sentence (positions 1 … n−2), or null if all inner
 * words are equal. Words are whitespace-separated and re-joined with single spaces. */
export function swapTwoWords(sentence: string, rng: Rng): string | null {
  const w = sentence.split(/\s+/).filter(Boolean);
  const inner = w.length - 2;
  if (inner < 2 || new Set(w.slice(1, -1)).size < 2) return null;
  for (;;) {
    const i = 1 + rng.int(inner);
    const j = 1 + rng.int(inner);
    if (w[i] === w[j]) continue;
    [w[i], w[j]] = [w[j], w[i]];
    return w.join(' ');
  }
}

/** One part's examples: each usable sentence, kept as written or swapped with probability ½. */
function examplesOf(sentences: string[], max: number, rng: Rng): ClassificationExample[] {
  rng.shuffle(sentences);
  const out: ClassificationExample[] = [];
  for (const s of sentences) {
    if (out.length >= max) break;
    const text = s.split(/\s+/).filter(Boolean).join(' ');
    if (rng.uniform() < 0.5) { out.push({ text, label: 1 }); continue; }
    out.push({ text: swapTwoWords(text, rng)!, label: 0 });
  }
  return out;
}

export function wordOrderTask(opts: WordOrderOptions = {}): { labels: string[]; train: ClassificationExample[]; dev: ClassificationExample[]; test: ClassificationExample[] } {
  const { maxTrain = 20000, maxDev = 2000, maxTest = 2000, minWords = 8, maxWords = 40, seed = 0 } = opts;
  const usable = (s: string) => {
    const w = s.split(/\s+/).filter(Boolean);
    return w.length >= minWords && w.length <= maxWords && PROPER.test(s) && !/^\(.*\)$/.test(s) &&
      new Set(w.slice(1, -1)).size >= 2; // so every sentence can be swapped
  };
  const parts = { train: [] as string[], valid: [] as string[], test: [] as string[] };
  for (const name of CORPUS_NAMES) {
    const split = splitCorpus(loadCorpus(name), defaultCorpusSplit(name));
    for (const part of ['train', 'valid', 'test'] as const) {
      for (const d of split[part]) parts[part].push(...splitSentences(d.text).filter(usable));
    }
  }
  const rng = new Rng(seed);
  return {
    labels: WORD_ORDER_LABELS,
    train: examplesOf(parts.train, maxTrain, rng),
    dev: examplesOf(parts.valid, maxDev, rng),
    test: examplesOf(parts.test, maxTest, rng),
  };
}
