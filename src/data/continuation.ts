// 'continuation': how does this sentence go on? Built only from held-out documents (the test split
// used for LM training), so a model cannot have memorised the answer. In the spirit of HellaSwag
// and LAMBADA: the context ends in the middle of a sentence, and the choices are the true rest of
// that sentence and the rests of sentences of other held-out documents of the same length.
//
// Item: context = the `contextSentences` sentences before sentence s of a held-out document + the
// first ⌊n/2⌋ words of s (n = its word count); choices = the other ⌈n/2⌉ words of s (the answer)
// and the rests, cut the same way, of sentences of OTHER held-out documents.
//
// No length bias (a length-only or unigram scorer is at chance): answers and distractors come
// from the same set — the rests of all usable sentences — and a distractor must fall in the same
// length cell as the answer: the same word count and the same character-length bucket
// ⌊ln(chars)/ln(1 + lengthBucket)⌋ (10% wide by default). A cell is a fixed partition, not a
// window around the answer, so within a cell answer and distractors are exchangeable draws and any
// scorer that ignores the context ranks the answer first 1/numChoices of the time in expectation.
// (The earlier construction — whole next sentences within ±20% of the answer's length — drew
// distractors from a length window whose density fell with length, so they were shorter on
// average, and a unigram model scored 0.188 against a chance of 0.25.) All sampling is seeded.
import { Rng } from '../tensor/rng.js';
import { DataError } from './errors.js';
import { splitSentences } from './sentences.js';
import { splitCorpus, type CorpusSplitOptions } from './splits.js';
import type { Corpus, Document, MultipleChoiceRecord } from './types.js';

export interface ContinuationOptions {
  /** Maximum number of items (default 1000); fewer if the held-out text runs out. */
  count?: number;
  seed?: number;
  /** Whole sentences of context before the split sentence (default 2). */
  contextSentences?: number;
  /** Choices per item including the answer (default 4). */
  numChoices?: number;
  /** Relative width of the character-length buckets (default 0.1). */
  lengthBucket?: number;
  /** Sentences with fewer or more words are not used (default 8, 40). */
  minWords?: number;
  maxWords?: number;
}

/** A usable sentence cut in two: `head` goes into the context, `rest` is a choice. */
interface Cut { doc: number; index: number; head: string; rest: string; cell: string }

// Headlines and fragments are poor sentences: keep ones that start like a sentence and end with
// terminal punctuation (optionally followed by closing quotes/brackets).
const PROPER = /^["'“‘(]?[A-Z0-9].*[.!?]["'”’)]*$/;

/** Split a sentence after its first ⌊n/2⌋ words (n words, single-space joined). */
export function cutSentence(sentence: string): { head: string; rest: string } {
  const words = sentence.split(/\s+/).filter(Boolean);
  const k = Math.floor(words.length / 2);
  return { head: words.slice(0, k).join(' '), rest: words.slice(k).join(' ') };
}

/** The length cell of a choice: word count and log-spaced character bucket. */
export function lengthCell(rest: string, lengthBucket = 0.1): string {
  const words = rest.split(' ').length;
  return `${words}:${Math.floor(Math.log(rest.length) / Math.log1p(lengthBucket))}`;
}

export function buildContinuationTask(heldOut: Document[], opts: ContinuationOptions = {}): MultipleChoiceRecord[] {
  const { count = 1000, seed = 0, contextSentences = 2, numChoices = 4, lengthBucket = 0.1, minWords = 8, maxWords = 40 } = opts;
  const rng = new Rng(seed);
  // Wholly parenthetical "sentences" are transcript annotations ("(Applause.)" in SOTU), not
  // speech: drop them so the context is the spoken sentences before the answer.
  const sentences = heldOut.map((d) => splitSentences(d.text).filter((s) => !/^\(.*\)$/.test(s)));
  const usable = (s: string) => {
    const n = s.split(/\s+/).length;
    return PROPER.test(s) && n >= minWords && n <= maxWords;
  };

  // Every usable sentence with a full context of proper sentences, cut in two; grouped by cell.
  const cuts: Cut[] = [];
  const byCell = new Map<string, Cut[]>();
  sentences.forEach((ss, doc) => {
    for (let i = contextSentences; i < ss.length; i++) {
      if (!usable(ss[i]) || !ss.slice(i - contextSentences, i).every((s) => PROPER.test(s))) continue;
      const { head, rest } = cutSentence(ss[i]);
      const cut = { doc, index: i, head, rest, cell: lengthCell(rest, lengthBucket) };
      cuts.push(cut);
      let g = byCell.get(cut.cell);
      if (!g) byCell.set(cut.cell, (g = []));
      g.push(cut);
    }
  });
  rng.shuffle(cuts);

  const out: MultipleChoiceRecord[] = [];
  const usedAnswers = new Set<string>();
  for (const a of cuts) {
    if (out.length >= count) break;
    if (usedAnswers.has(a.rest)) continue;
    // Distractors: other documents, same cell, distinct texts (seeded order).
    const eligible = byCell.get(a.cell)!.filter((c) => c.doc !== a.doc && c.rest !== a.rest);
    rng.shuffle(eligible);
    const picked: string[] = [];
    for (const c of eligible) {
      if (!picked.includes(c.rest)) picked.push(c.rest);
      if (picked.length === numChoices - 1) break;
    }
    if (picked.length < numChoices - 1) continue; // a sparse cell: skip the item
    const label = rng.int(numChoices);
    picked.splice(label, 0, a.rest);
    usedAnswers.add(a.rest);
    const context = [...sentences[a.doc].slice(a.index - contextSentences, a.index), a.head].join(' ');
    out.push({ id: `continuation/${heldOut[a.doc].id}/${a.index}`, context, choices: picked, label });
  }
  if (out.length === 0) {
    throw new DataError('continuation', undefined, `no items could be built from ${heldOut.length} held-out documents`,
      'hold out more documents (a larger test fraction) or lower minWords');
  }
  return out;
}

/** Build the task from the TEST split of a corpus, split exactly as for LM training. */
export function continuationTask(corpus: Corpus, split: CorpusSplitOptions = {}, opts: ContinuationOptions = {}): MultipleChoiceRecord[] {
  return buildContinuationTask(splitCorpus(corpus, split).test, opts);
}
