// Word counting for the trainers: the corpus is reduced to its distinct pre-tokens and their
// frequencies (the "dictionary" of Sennrich et al. 2016), which is all BPE training needs.
// Special tokens are cut out of the text first, as the encoder does, so no merge is learned
// across or inside them.

/** Escapes a string for use inside a RegExp. */
export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * A regex that finds the special tokens, longest first at any position: the same leftmost-longest
 * split as @huggingface/tokenizers' DictionarySplitter (and HF's AddedVocabulary).
 */
export function specialsPattern(specials: readonly string[]): RegExp | null {
  if (specials.length === 0) return null;
  const sorted = [...specials].sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  return new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
}

/** Walks `text` in order: `ordinary` on each non-empty piece between special tokens (the whole
 *  text when there are none), `special` on each special token found by `specials`. */
export function forEachPiece(
  text: string, specials: RegExp | null, ordinary: (piece: string) => void, special?: (token: string) => void,
): void {
  let prev = 0;
  if (specials !== null) {
    specials.lastIndex = 0;
    for (const m of text.matchAll(specials)) {
      if (m.index > prev) ordinary(text.slice(prev, m.index));
      special?.(m[0]);
      prev = m.index + m[0].length;
    }
  }
  if (prev < text.length) ordinary(prev === 0 ? text : text.slice(prev));
}


/** Counts pre-tokens over all texts: `split` yields the pre-tokens of one piece. */
export function countWords(
  texts: Iterable<string>, specials: readonly string[], split: (piece: string) => Iterable<string>,
): Map<string, number> {
  const counts = new Map<string, number>();
  const pattern = specialsPattern(specials);
  for (const text of texts) {
    if (typeof text !== 'string') throw new TypeError(`training texts must be strings, got ${typeof text}`);
    forEachPiece(text, pattern, (piece) => {
      for (const w of split(piece)) counts.set(w, (counts.get(w) ?? 0) + 1);
    });
  }
  return counts;
}

/** Distinct words in a fixed (sorted) order, so ids and results never depend on input order. */
export function sortedWords(counts: Map<string, number>): string[] {
  return [...counts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function checkSpecials(specials: readonly string[]): void {
  const seen = new Set<string>();
  for (const s of specials) {
    if (typeof s !== 'string' || s.length === 0) throw new Error('special tokens must be non-empty strings');
    if (seen.has(s)) throw new Error(`special token ${JSON.stringify(s)} is listed twice`);
    seen.add(s);
  }
}

export function checkVocabSize(vocabSize: number, minimum: number, what: string): void {
  if (!Number.isInteger(vocabSize) || vocabSize < minimum) {
    throw new Error(`vocabSize must be an integer >= ${minimum} (${what}), got ${vocabSize}`);
  }
}
