// Pre-training text: corpora by name or path, split into train/valid/test by document with the
// SAME split the built-in evaluation tasks use (src/data/tasks.ts), so documents that tasks are
// built from are never trained on:
//   sotu        chronological 5%/5%: the latest addresses are held out (the 'continuation' task's
//               default for SOTU);
//   brown       stratified by genre category 10%/10% (seed 0): exactly the files 'brown-genre'
//               and 'continuation --corpus brown' hold out;
//   other text  hash 5%/5% (seed 0), the data layer's default.
import * as fs from 'node:fs';
import { loadCorpus, CORPUS_NAMES, type CorpusName } from '../data/corpora.js';
import { loadTextCorpus } from '../data/text.js';
import { defaultCorpusSplit, splitCorpus, type CorpusSplitOptions } from '../data/splits.js';
import type { Corpus, Document } from '../data/types.js';
import type { ChatRenderer } from '../data/chat.js';

export interface CorpusSplitInfo {
  corpus: string;
  split: CorpusSplitOptions;
  documents: { train: number; valid: number; test: number };
}

export interface PretrainText {
  train: Document[];
  valid: Document[];
  test: Document[];
  splits: CorpusSplitInfo[];
}

/** The split of a corpus for pre-training (see the top of the file). */
export function pretrainSplit(corpus: string): CorpusSplitOptions {
  return defaultCorpusSplit(corpus);
}

/** "--corpus a,b --corpus c" → ['a', 'b', 'c']. */
export function corpusList(values: string | string[]): string[] {
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new Error(`--corpus: no corpus given; use ${CORPUS_NAMES.join(', ')} or a path to a .txt or .jsonl file or a directory`);
  return list;
}

function openCorpus(spec: string, chat: ChatRenderer | undefined, field: string | undefined): Corpus {
  if ((CORPUS_NAMES as readonly string[]).includes(spec)) return loadCorpus(spec as CorpusName);
  if (!fs.existsSync(spec)) {
    throw new Error(`--corpus ${spec}: not a built-in corpus (${CORPUS_NAMES.join(', ')}) and no such file or directory; check the name or path`);
  }
  return loadTextCorpus(spec, { chat, field });
}

/** The documents of `specs`, split; a JSON Lines corpus of conversations is rendered by
 *  opts.chat (the model's chat template; none for a model trained from scratch); opts.field names
 *  the field holding the text of JSON Lines / Parquet / Arrow corpora (--text-field). */
export function loadPretrainText(specs: string[], opts: { chat?: ChatRenderer; field?: string } = {}): PretrainText {
  if (opts.field && specs.every((s) => (CORPUS_NAMES as readonly string[]).includes(s))) {
    throw new Error(`--text-field ${opts.field}: names the field of JSON Lines, Parquet or Arrow corpora; ${specs.join(', ')} ${specs.length > 1 ? 'are' : 'is'} built in`);
  }
  const out: PretrainText = { train: [], valid: [], test: [], splits: [] };
  for (const spec of specs) {
    const corpus = openCorpus(spec, opts.chat, opts.field);
    const split = pretrainSplit(spec);
    const s = splitCorpus(corpus, split);
    out.train.push(...s.train);
    out.valid.push(...s.valid);
    out.test.push(...s.test);
    out.splits.push({ corpus: spec, split, documents: { train: s.train.length, valid: s.valid.length, test: s.test.length } });
  }
  if (out.train.length === 0) {
    throw new Error(`--corpus ${specs.join(',')}: the training split is empty; give more documents (blank-line-separated blocks in a .txt file, lines of a .jsonl file)`);
  }
  return out;
}
