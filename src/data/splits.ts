// Document-level train/valid/test splits. Splitting by document (not by window or passage) keeps
// every piece of a held-out document out of training, which the held-out evaluations rely on.
//
// Hash split: each document goes to a split by u = sha256(`${seed}:${id}`) mapped to [0, 1):
// u < test → test, u < test + valid → valid, else train. The decision for one document depends
// only on its id and the seed — not on the array order or the other documents — so adding
// documents never moves existing ones. The price: split sizes are binomial around the requested
// fractions (with 500 documents and 5%, expect 25 ± 5 test documents).
//
// Stratified split: within each stratum (e.g. the Brown corpus's 15 genre categories), documents
// are ranked by the same sha256 position u and the first round(test·n) of each stratum are test,
// the next round(valid·n) valid. Every split then has the strata in the proportions of the whole
// corpus, which a plain hash split of a few hundred documents does not guarantee (Brown's hash
// 10%/10% split put 2 of the 80 'learned' files in dev but 10 in test). Deterministic and
// independent of array order; adding documents to a stratum can move its boundary.
//
// Chronological split: the latest documents (by a numeric key, e.g. SOTU year) are held out,
// which measures extrapolation to later text; appending newer documents does move the boundary.
import { createHash } from 'node:crypto';
import { DataError } from './errors.js';
import type { Document } from './types.js';

export interface Split<T = Document> {
  train: T[];
  valid: T[];
  test: T[];
}

export interface SplitOptions {
  /** Fraction of documents for validation (default 0.05). */
  valid?: number;
  /** Fraction of documents for test (default 0.05). */
  test?: number;
  /** Changing the seed gives an independent split (default 0). */
  seed?: number;
}

function checkFractions(valid: number, test: number): void {
  if (!(valid >= 0 && test >= 0 && valid + test < 1)) {
    throw new DataError('splitDocuments', undefined, `invalid fractions valid=${valid} test=${test}`,
      'use fractions in [0, 1) that sum to less than 1');
  }
}

/** Position of an id in [0, 1), from 48 bits of sha256 (uniform and platform-independent). */
export function hashUnit(id: string, seed = 0): number {
  const h = createHash('sha256').update(`${seed}:${id}`).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

/** Which split a document id belongs to under a hash split (see the file comment). */
export function splitOf(id: string, opts: SplitOptions = {}): 'train' | 'valid' | 'test' {
  const { valid = 0.05, test = 0.05, seed = 0 } = opts;
  const u = hashUnit(id, seed);
  return u < test ? 'test' : u < test + valid ? 'valid' : 'train';
}

/** Hash split of documents by their `id`; each part keeps the input order. */
export function splitDocuments<T extends { id: string }>(docs: T[], opts: SplitOptions = {}): Split<T> {
  checkFractions(opts.valid ?? 0.05, opts.test ?? 0.05);
  const out: Split<T> = { train: [], valid: [], test: [] };
  for (const d of docs) out[splitOf(d.id, opts)].push(d);
  return out;
}

/**
 * Chronological split: sort by key (ties by id), the last round(test·n) documents are test, the
 * round(valid·n) before them valid, the rest train. For SOTU with key = year and 5%/5% this
 * holds out the 12 latest addresses for test and the 12 before them for validation.
 */
export function splitChronological<T extends { id: string }>(
  docs: T[], key: (d: T) => number, opts: { valid?: number; test?: number } = {},
): Split<T> {
  const { valid = 0.05, test = 0.05 } = opts;
  checkFractions(valid, test);
  const sorted = [...docs].sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const nTest = Math.round(test * sorted.length);
  const nValid = Math.round(valid * sorted.length);
  const cut = sorted.length - nTest - nValid;
  return { train: sorted.slice(0, cut), valid: sorted.slice(cut, cut + nValid), test: sorted.slice(cut + nValid) };
}

/**
 * Stratified hash split (see the file comment): per stratum, documents sorted by hashUnit(id,
 * seed) (ties by id); the first round(test·n) are test, the next round(valid·n) valid. Each part
 * keeps the input order.
 */
export function splitStratified<T extends { id: string }>(
  docs: T[], stratum: (d: T) => string, opts: SplitOptions = {},
): Split<T> {
  const { valid = 0.05, test = 0.05, seed = 0 } = opts;
  checkFractions(valid, test);
  const groups = new Map<string, { id: string; u: number }[]>();
  for (const d of docs) {
    const k = stratum(d);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push({ id: d.id, u: hashUnit(d.id, seed) });
  }
  const where = new Map<string, 'train' | 'valid' | 'test'>();
  for (const g of groups.values()) {
    g.sort((a, b) => a.u - b.u || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const nTest = Math.round(test * g.length), nValid = Math.round(valid * g.length);
    g.forEach((x, i) => where.set(x.id, i < nTest ? 'test' : i < nTest + nValid ? 'valid' : 'train'));
  }
  const out: Split<T> = { train: [], valid: [], test: [] };
  for (const d of docs) out[where.get(d.id)!].push(d);
  return out;
}

/** SOTU convenience: chronological split on the `year` metadata. */
export function splitSotuChronological(docs: Document[], opts: { valid?: number; test?: number } = {}): Split {
  return splitChronological(docs, (d) => Number(d.meta.year), opts);
}

export interface CorpusSplitOptions extends SplitOptions {
  /** 'hash' (default), 'chronological' (needs a numeric `year` in every document's meta) or
   * 'stratified' (needs a string meta field named by `stratum` in every document). */
  method?: 'hash' | 'chronological' | 'stratified';
  /** 'stratified': the meta field whose values are the strata (default 'genre'). */
  stratum?: string;
}

/**
 * The split every command uses for a corpus by name, so pre-training never sees the documents the
 * built-in evaluations hold out:
 *   sotu   chronological 5%/5% (the latest addresses are held out);
 *   brown  stratified by genre category, 10%/10%, seed 0: the files 'brown-genre' uses for
 *          dev/test, with each of the 15 categories in its corpus proportion;
 *   other  hash 5%/5%, seed 0.
 */
export function defaultCorpusSplit(corpus: string): CorpusSplitOptions {
  if (corpus === 'sotu') return { method: 'chronological', valid: 0.05, test: 0.05 };
  if (corpus === 'brown') return { method: 'stratified', stratum: 'genre', valid: 0.1, test: 0.1, seed: 0 };
  return { method: 'hash', valid: 0.05, test: 0.05, seed: 0 };
}

/** The one place training and held-out evaluation agree on which documents are held out. */
export function splitCorpus(corpus: { name: string; documents: Document[] }, opts: CorpusSplitOptions = {}): Split {
  if ((opts.method ?? 'hash') === 'hash') return splitDocuments(corpus.documents, opts);
  if (opts.method === 'stratified') {
    const key = opts.stratum ?? 'genre';
    const missing = corpus.documents.find((d) => typeof d.meta[key] !== 'string');
    if (missing) {
      throw new DataError(corpus.name, undefined, `document ${missing.id} has no string "${key}" to stratify the split by`,
        'use method "hash" for this corpus, or name an existing meta field as the stratum');
    }
    return splitStratified(corpus.documents, (d) => d.meta[key] as string, opts);
  }
  const missing = corpus.documents.find((d) => typeof d.meta.year !== 'number');
  if (missing) {
    throw new DataError(corpus.name, undefined, `document ${missing.id} has no numeric "year" for a chronological split`,
      'use method "hash" for this corpus');
  }
  return splitSotuChronological(corpus.documents, opts);
}
