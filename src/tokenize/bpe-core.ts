// The BPE merge loop (Sennrich, Haddow & Birch 2016, "Neural Machine Translation of Rare Words with
// Subword Units"), organised as Hugging Face's BpeTrainer (tokenizers/src/models/bpe/trainer.rs):
//   - words are the distinct pre-tokens with their corpus frequency, each a list of symbol ids;
//   - pair counts are computed once, then kept up to date incrementally: merging (a, b) -> t only
//     visits the words that contain (a, b) (an index pair -> words), and only the pairs around each
//     merged occurrence change;
//   - a max-heap picks the most frequent pair, with lazy invalidation (an entry whose count is stale
//     is pushed back with the current count). Ties go to the smaller pair (a, then b, by id), as in
//     HF's `impl Ord for Merge`, so training is deterministic.
// Each merge adds the token join(a, b) unless that string is already in the vocab (two different
// pairs can spell the same token; the merge is still recorded, as HF does).

/** Keys pack a pair of ids < 2^21 into one float64-safe integer that sorts like (a, b). */
const SHIFT = 2097152; // 2^21
const MAX_VOCAB = SHIFT;
const key = (a: number, b: number): number => a * SHIFT + b;

export interface BpeInput {
  /** Distinct words as symbol ids (mutated in place by the merges). */
  words: number[][];
  /** Frequency of each word. */
  counts: number[];
  /** Initial vocab (specials, alphabet, ...); the learned tokens are appended. */
  vocab: string[];
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged. */
  minFrequency: number;
  /** Spelling of the token made by merging a and b (WordPiece drops the `##` of b). */
  join: (a: string, b: string) => string;
}

export interface BpeResult {
  vocab: string[];
  /** Merges in rank order, as pairs of token strings. */
  merges: [string, string][];
}

/** Max-heap of (count, pair key): higher count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.keys.length; }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i], cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c;
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k;
  }
  push(count: number, k: number): void {
    this.counts.push(count); this.keys.push(k);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p); i = p;
    }
  }
  /** Removes the top; its count and key are left in `top`. */
  pop(top: { count: number; key: number }): void {
    top.count = this.counts[0]; top.key = this.keys[0];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    const n = this.keys.length;
    if (n === 0) return;
    this.counts[0] = lastC; this.keys[0] = lastK;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && this.above(l, m)) m = l;
      if (r < n && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m); i = m;
    }
  }
}

export function learnMerges(input: BpeInput): BpeResult {
  const { words, counts, vocabSize, join } = input;
  const vocab = input.vocab.slice();
  if (vocabSize > MAX_VOCAB) throw new Error(`vocabSize ${vocabSize} exceeds the supported maximum ${MAX_VOCAB}`);
  const ids = new Map<string, number>();
  vocab.forEach((t, i) => ids.set(t, i));
  const minCount = Math.max(1, input.minFrequency);

  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  for (let w = 0; w < words.length; w++) {
    const word = words[w], c = counts[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const k = key(word[i], word[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      let s = where.get(k);
      if (s === undefined) where.set(k, (s = new Set()));
      s.add(w);
    }
  }
  const heap = new PairHeap();
  for (const [k, c] of pairCount) heap.push(c, k);

  const merges: [string, string][] = [];
  const top = { count: 0, key: 0 };
  const grown = new Set<number>();
  let c = 0, w = 0; // current word's count and index, read by change()
  const change = (a: number, b: number, delta: number): void => {
    const k = key(a, b);
    pairCount.set(k, (pairCount.get(k) ?? 0) + delta * c);
    if (delta > 0) {
      let s = where.get(k);
      if (s === undefined) where.set(k, (s = new Set()));
      s.add(w);
      grown.add(k);
    }
  };

  while (vocab.length < vocabSize && heap.size > 0) {
    heap.pop(top);
    const current = pairCount.get(top.key);
    if (current === undefined) continue; // already merged
    if (current !== top.count) {
      if (current > 0) heap.push(current, top.key);
      continue;
    }
    if (current < minCount) break;
    const a = Math.floor(top.key / SHIFT), b = top.key % SHIFT;
    const token = join(vocab[a], vocab[b]);
    let t = ids.get(token);
    if (t === undefined) { t = vocab.length; vocab.push(token); ids.set(token, t); }
    merges.push([vocab[a], vocab[b]]);
    pairCount.delete(top.key);
    const holders = where.get(top.key)!;
    where.delete(top.key);
    grown.clear();
    for (w of holders) {
      c = counts[w];
      mergeWord(words[w], a, b, t, change);
    }
    for (const k of grown) {
      const n = pairCount.get(k)!;
      if (n > 0) heap.push(n, k);
    }
  }
  return { vocab, merges };
}

/**
 * Replaces every occurrence of (a, b) in `word`, left to right, by t, reporting the pair changes
 * exactly as HF's Word::merge: the pair before an occurrence becomes (prev, t), the pair after
 * becomes (t, next). The merged pair itself is dropped by the caller.
 */
function mergeWord(word: number[], a: number, b: number, t: number,
  change: (x: number, y: number, delta: number) => void): void {
  let out = 0;
  const n = word.length;
  for (let i = 0; i < n;) {
    if (i + 1 < n && word[i] === a && word[i + 1] === b) {
      if (out > 0) { change(word[out - 1], a, -1); change(word[out - 1], t, 1); }
      if (i + 2 < n) { change(b, word[i + 2], -1); change(t, word[i + 2], 1); }
      word[out++] = t;
      i += 2;
    } else {
      word[out++] = word[i++];
    }
  }
  word.length = out;
}
