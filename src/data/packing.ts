// Token streams → fixed-size training windows, and seeded batches over them.
//
// Causal LM (shift: true, the default): documents are concatenated as [bos] ids [eos] … and cut
// into windows of seqLen + 1 tokens with a stride of seqLen: inputs = w[0..seqLen), targets =
// w[1..seqLen]. Inputs never overlap and every token is predicted at most once; adjacent windows
// share one boundary token (the last target of one window is the first input of the next), so
// no transition is lost at window edges. The partial tail is dropped (reported as droppedTokens).
// Windows may span documents; the EOS separator tells the model where one ends.
//
// Encoder/MLM (shift: false): plain non-overlapping windows of seqLen tokens, masked later.
import { Rng, hash32 } from '../tensor/rng.js';
import { DataError } from './errors.js';
import type { Document, TokenEncoder } from './types.js';

export interface PackOptions {
  seqLen: number;
  /** Appended after every document (recommended: the tokenizer's end-of-text id). */
  eosId?: number;
  /** Prepended to every document. */
  bosId?: number;
  /** true (default): windows of seqLen + 1 for shifted targets; false: windows of seqLen. */
  shift?: boolean;
}

/** count windows of `width` tokens each, row-major in `data`. */
export interface Windows {
  data: Int32Array;
  count: number;
  width: number;
  seqLen: number;
  shift: boolean;
  /** Tokens at the end of the stream that fit in no full window. */
  droppedTokens: number;
}

/** Tokenize documents with any tokenizer exposing encode(text). */
export function encodeDocuments(docs: Document[], tokenizer: TokenEncoder): number[][] {
  return docs.map((d) => tokenizer.encode(d.text));
}

export function packSequences(docs: ArrayLike<number>[], opts: PackOptions): Windows {
  const { seqLen, eosId, bosId, shift = true } = opts;
  if (!Number.isInteger(seqLen) || seqLen < 1) {
    throw new DataError('packSequences', undefined, `seqLen must be a positive integer, got ${seqLen}`);
  }
  const extra = (eosId === undefined ? 0 : 1) + (bosId === undefined ? 0 : 1);
  let total = 0;
  for (const d of docs) total += d.length + extra;
  const stream = new Int32Array(total);
  let k = 0;
  for (const d of docs) {
    if (bosId !== undefined) stream[k++] = bosId;
    for (let i = 0; i < d.length; i++) stream[k++] = d[i];
    if (eosId !== undefined) stream[k++] = eosId;
  }
  const width = shift ? seqLen + 1 : seqLen;
  const count = shift ? Math.max(0, Math.floor((total - 1) / seqLen)) : Math.floor(total / seqLen);
  if (count === 0) {
    throw new DataError('packSequences', undefined, `only ${total} tokens, fewer than one window of ${width}`,
      'use a smaller seqLen or more text');
  }
  const data = new Int32Array(count * width);
  for (let w = 0; w < count; w++) data.set(stream.subarray(w * seqLen, w * seqLen + width), w * width);
  const used = shift ? count * seqLen + 1 : count * seqLen;
  return { data, count, width, seqLen, shift, droppedTokens: total - used };
}

/** Causal-LM windows of documents: [bos] ids [eos] each, except that a document a chat template
 *  wrote (meta.rendered: chat.ts) keeps its ids as the template wrote them — its own BOS, if
 *  any — before the [eos]. */
export function packCausal(docs: Document[], tokenizer: { encode(text: string, o?: { addSpecialTokens?: boolean }): number[] },
  opts: { seqLen: number; bosId?: number; eosId?: number }): Windows {
  const ids = docs.map((d) => {
    const t = tokenizer.encode(d.text, { addSpecialTokens: false });
    return d.meta.rendered || opts.bosId === undefined ? t : [opts.bosId, ...t];
  });
  return packSequences(ids, { seqLen: opts.seqLen, eosId: opts.eosId, shift: true });
}

export interface Batch {
  /** Window indices in this batch (into Windows). */
  rows: number[];
  /** rows.length × seqLen input ids. */
  inputs: Int32Array;
  /** rows.length × seqLen next-token targets (only for shifted windows). */
  targets?: Int32Array;
}

/**
 * Batches over the windows in a seeded order: the permutation depends only on (seed, epoch),
 * so a run resumed at epoch e sees exactly the batches it would have. The last partial batch is
 * dropped unless dropLast is false (fixed shapes keep the trainer simple).
 */
export function* batches(windows: Windows, batchSize: number, seed: number, epoch: number, dropLast = true): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DataError('batches', undefined, `batchSize must be a positive integer, got ${batchSize}`);
  }
  if (dropLast && windows.count < batchSize) {
    throw new DataError('batches', undefined, `${windows.count} windows cannot fill one batch of ${batchSize}`,
      'use a smaller batch size or seqLen, or pass dropLast = false');
  }
  const order = new Rng(hash32(seed, epoch)).shuffle(Array.from({ length: windows.count }, (_, i) => i));
  const { seqLen, width, data } = windows;
  for (let start = 0; start < order.length; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    if (rows.length < batchSize && dropLast) break;
    const inputs = new Int32Array(rows.length * seqLen);
    const targets = windows.shift ? new Int32Array(rows.length * seqLen) : undefined;
    rows.forEach((r, b) => {
      inputs.set(data.subarray(r * width, r * width + seqLen), b * seqLen);
      targets?.set(data.subarray(r * width + 1, r * width + 1 + seqLen), b * seqLen);
    });
    yield { rows, inputs, targets };
  }
}
