// 'continuation': which sentence comes next? Built only from held-out documents (the test split
// used for LM training), so a model cannot have memorised the answer.
//
// Item: context = 1–2 consecutive sentences of a held-out document; choices = the true next
// sentence plus distractors drawn from OTHER held-out documents whose length is within ±20% in
// characters of the true one, so length alone gives nothing away. All sampling is seeded.
import { Rng } from '../tensor/rng.js';
import { DataError } from './errors.js';
import { splitSentences } from './sentences.js';
import { splitCorpus, type CorpusSplitOptions } from './splits.js';
import type { Corpus, Document, MultipleChoiceRecord } from './types.js';

export interface ContinuationOptions {
  /** Maximum number of items (default 500); fewer if the held-out text runs out. */
  count?: number;
  seed?: number;
  /** Sentences of context (default 2). */
  contextSentences?: number;
  /** Choices per item including the answer (default 4). */
  numChoices?: number;
  /** Allowed relative length difference of distractors (default 0.2). */
  lengthTolerance?: number;
  /** Answer sentences outside [minChars, maxChars] are not used (default 30, 300). */
  minChars?: number;
  maxChars?: number;
}

interface Sent { doc: number; text: string }

// Headlines and fragments are poor sentences: keep ones that start like a sentence and end with
// terminal punctuation (optionally followed by closing quotes/brackets).
const PROPER = /^["'“‘(]?[A-Z0-9].*[.!?]["'”’)]*$/;

export function buildContinuationTask(heldOut: Document[], opts: ContinuationOptions = {}): MultipleChoiceRecord[] {
  const { count = 500, seed = 0, contextSentences = 2, numChoices = 4, lengthTolerance = 0.2, minChars = 30, maxChars = 300 } = opts;
  const rng = new Rng(seed);
  // Wholly parenthetical "sentences" are transcript annotations ("(Applause.)" in SOTU), not
  // speech: drop them so the context is the two spoken sentences before the answer.
  const sentences = heldOut.map((d) => splitSentences(d.text).filter((s) => !/^\(.*\)$/.test(s)));
  const ok = (s: string) => PROPER.test(s);

  // Distractor pool: every usable sentence, sorted by length for range lookups.
  const pool: Sent[] = [];
  sentences.forEach((ss, doc) => { for (const text of ss) if (ok(text)) pool.push({ doc, text }); });
  pool.sort((a, b) => a.text.length - b.text.length || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  const firstAtLeast = (len: number) => {
    let lo = 0, hi = pool.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (pool[mid].text.length < len) lo = mid + 1; else hi = mid; }
    return lo;
  };

  // Candidate (document, answer index) pairs, in a seeded order.
  const candidates: [number, number][] = [];
  sentences.forEach((ss, doc) => {
    for (let i = contextSentences; i < ss.length; i++) {
      const a = ss[i];
      if (!ok(a) || a.length < minChars || a.length > maxChars) continue;
      if (ss.slice(i - contextSentences, i).every(ok)) candidates.push([doc, i]);
    }
  });
  rng.shuffle(candidates);

  const out: MultipleChoiceRecord[] = [];
  const usedAnswers = new Set<string>();
  for (const [doc, i] of candidates) {
    if (out.length >= count) break;
    const answer = sentences[doc][i];
    if (usedAnswers.has(answer)) continue;
    const context = sentences[doc].slice(i - contextSentences, i);
    const lo = firstAtLeast(Math.ceil(answer.length * (1 - lengthTolerance)));
    const hi = firstAtLeast(Math.floor(answer.length * (1 + lengthTolerance)) + 1);
    const eligible = pool.slice(lo, hi).filter((s) => s.doc !== doc && s.text !== answer && !context.includes(s.text));
    rng.shuffle(eligible);
    const picked: string[] = [];
    for (const s of eligible) {
      if (!picked.includes(s.text)) picked.push(s.text);
      if (picked.length === numChoices - 1) break;
    }
    if (picked.length < numChoices - 1) continue; // no length-matched distractors: skip the item
    const label = rng.int(numChoices);
    picked.splice(label, 0, answer);
    usedAnswers.add(answer);
    out.push({ id: `continuation/${heldOut[doc].id}/${i}`, context: context.join(' '), choices: picked, label });
  }
  if (out.length === 0) {
    throw new DataError('continuation', undefined, `no items could be built from ${heldOut.length} held-out documents`,
      'hold out more documents (a larger test fraction) or lower minChars');
  }
  return out;
}

/** Build the task from the TEST split of a corpus, split exactly as for LM training. */
export function continuationTask(corpus: Corpus, split: CorpusSplitOptions = {}, opts: ContinuationOptions = {}): MultipleChoiceRecord[] {
  return buildContinuationTask(splitCorpus(corpus, split).test, opts);
}
