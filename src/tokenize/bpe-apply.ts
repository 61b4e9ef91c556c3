// Applying learned BPE merges to one word (Sennrich et al. 2016, "apply_bpe"): repeatedly merge
// the adjacent pair with the lowest merge rank, the leftmost one among equal ranks, until no pair
// has a rank. This order is exactly the one @huggingface/tokenizers uses (its priority queue
// scores a pair rank + position/length, the position being that of the left symbol's first
// character), so results match it id for id.
// Short words: a linear scan per merge, O(n^2) but fastest for typical words. Long words (long
// runs of digits, symbols or letters): a doubly linked list and a min-heap, O(n log n).

const SHIFT = 2097152; // pair key = a * 2^21 + b (ids < 2^21)
const LONG = 48;

/** rank and result id of each mergeable pair, keyed by a * 2^21 + b. */
export interface MergeTable {
  ranks: Map<number, number>;
  merged: Map<number, number>;
}

export function applyMerges(sym: number[], table: MergeTable): number[] {
  return sym.length > LONG ? applyLong(sym, table) : applyShort(sym, table);
}

function applyShort(sym: number[], { ranks, merged }: MergeTable): number[] {
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = ranks.get(sym[i] * SHIFT + sym[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) return sym;
    sym[best] = merged.get(sym[best] * SHIFT + sym[best + 1])!;
    sym.splice(best + 1, 1);
  }
}

function applyLong(sym: number[], { ranks, merged }: MergeTable): number[] {
  const n = sym.length;
  const next = new Int32Array(n), prev = new Int32Array(n);
  for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
  // Heap entries: key = rank * 2^32 + left position; the pair is re-checked when popped.
  const heap: number[] = [];
  const rightOf: number[] = []; // parallel to heap: the right node's position at push time
  const push = (left: number): void => {
    const right = next[left];
    if (right < 0) return;
    const r = ranks.get(sym[left] * SHIFT + sym[right]);
    if (r === undefined) return;
    heap.push(r * 4294967296 + left); rightOf.push(right);
    for (let i = heap.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (heap[p] <= heap[i]) break;
      [heap[p], heap[i]] = [heap[i], heap[p]]; [rightOf[p], rightOf[i]] = [rightOf[i], rightOf[p]];
      i = p;
    }
  };
  const pop = (): [number, number] => {
    const top: [number, number] = [heap[0], rightOf[0]];
    const k = heap.pop()!, r = rightOf.pop()!;
    if (heap.length > 0) {
      heap[0] = k; rightOf[0] = r;
      for (let i = 0; ;) {
        const l = 2 * i + 1, rr = l + 1;
        let m = i;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (rr < heap.length && heap[rr] < heap[m]) m = rr;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]]; [rightOf[m], rightOf[i]] = [rightOf[i], rightOf[m]];
        i = m;
      }
    }
    return top;
  };
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i + 1 < n; i++) push(i);
  while (heap.length > 0) {
    const [key, right] = pop();
    const left = key % 4294967296, rank = Math.floor(key / 4294967296);
    // Stale if either node died, they are no longer neighbours, or the pair changed.
    if (!alive[left] || !alive[right] || next[left] !== right) continue;
    if (ranks.get(sym[left] * SHIFT + sym[right]) !== rank) continue;
    sym[left] = merged.get(sym[left] * SHIFT + sym[right])!;
    alive[right] = 0;
    next[left] = next[right];
    if (next[left] >= 0) prev[next[left]] = left;
    if (prev[left] >= 0) push(prev[left]);
    push(left);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
  return out;
}
