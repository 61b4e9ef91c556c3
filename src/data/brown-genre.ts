// 'brown-genre': classify Brown corpus passages into 4 genre groups. The grouping follows the
// corpus's own top-level division (informative prose A–J vs imaginative prose K–R), with the
// informative half split where its register differs most:
//   0 press       A–C  reportage, editorials, reviews                    (88 files)
//   1 general     D–H  religion, hobbies, popular lore, belles-lettres,   (206 files)
//                      government documents
//   2 learned     J    academic/scientific writing                        (80 files)
//   3 fiction     K–R  general, mystery, science fiction, adventure,      (126 files)
//                      romance, humor
// Passages are runs of 2–4 consecutive sentences totalling 40–120 words. The train/dev/test split
// is by FILE, stratified by the 15 genre categories (defaultCorpusSplit('brown'): per category,
// files ranked by a hash of their id, the first 10% test, the next 10% dev), so no passage of a
// test file is seen in training (nor in MLM pre-training on 'brown', which uses the same split),
// and dev and test have the genres in the corpus proportions. (A plain hash split gave dev 4%
// 'learned' passages and test 19%, so the best-dev model was chosen for the wrong mixture.)
import { loadCorpus } from './corpora.js';
import { splitSentences } from './sentences.js';
import { defaultCorpusSplit, splitCorpus, type SplitOptions } from './splits.js';
import type { ClassificationExample, Document } from './types.js';

export const BROWN_GENRE_LABELS = ['press', 'general', 'learned', 'fiction'];
const GROUP_OF: Record<string, number> = {
  a: 0, b: 0, c: 0, d: 1, e: 1, f: 1, g: 1, h: 1, j: 2, k: 3, l: 3, m: 3, n: 3, p: 3, r: 3,
};

export interface PassageOptions {
  minWords?: number;
  maxWords?: number;
  minSentences?: number;
  maxSentences?: number;
}

const SENTENCE = /^["'(]?[A-Z0-9].*[.!?]["')]*$/;
const wordCount = (s: string) => s.split(/\s+/).filter(Boolean).length;

/**
 * Cut a document into passages: consecutive sentences accumulated until both minimums are met,
 * then emitted. A headline or fragment (no terminal punctuation) ends the current run, and a
 * sentence that would push a run past a maximum starts a new one; runs outside the bounds are
 * dropped, so every passage satisfies the bounds.
 */
export function chunkPassages(text: string, opts: PassageOptions = {}): string[] {
  const { minWords = 40, maxWords = 120, minSentences = 2, maxSentences = 4 } = opts;
  const out: string[] = [];
  let run: string[] = [];
  let words = 0;
  const valid = () => run.length >= minSentences && run.length <= maxSentences && words >= minWords && words <= maxWords;
  for (const s of splitSentences(text)) {
    if (!SENTENCE.test(s)) { run = []; words = 0; continue; }
    const n = wordCount(s);
    if (run.length + 1 > maxSentences || words + n > maxWords) { run = []; words = 0; }
    run.push(s);
    words += n;
    if (valid()) { out.push(run.join(' ')); run = []; words = 0; }
  }
  return out;
}

export interface BrownGenreTask {
  labels: string[];
  train: ClassificationExample[];
  dev: ClassificationExample[];
  test: ClassificationExample[];
}

function passagesOf(docs: Document[], opts: PassageOptions): ClassificationExample[] {
  return docs.flatMap((d) => chunkPassages(d.text, opts).map((text) => ({ text, label: GROUP_OF[d.meta.genre as string] })));
}

/** The task, split by file: dev/test fractions default to 0.1 each (~50 files, ~1,500 passages). */
export function brownGenreTask(opts: SplitOptions & PassageOptions = {}): BrownGenreTask {
  const base = defaultCorpusSplit('brown');
  const split = splitCorpus(loadCorpus('brown'), { ...base, valid: opts.valid ?? base.valid, test: opts.test ?? base.test, seed: opts.seed ?? base.seed });
  return {
    labels: BROWN_GENRE_LABELS,
    train: passagesOf(split.train, opts),
    dev: passagesOf(split.valid, opts),
    test: passagesOf(split.test, opts),
  };
}
