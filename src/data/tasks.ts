// Built-in evaluation tasks by name, for the CLI and config files.
import { BROWN_GENRE_LABELS, brownGenreTask, type BrownGenreTask } from './brown-genre.js';
import { continuationTask, type ContinuationOptions } from './continuation.js';
import { loadCorpus, type CorpusName } from './corpora.js';
import { DataError } from './errors.js';
import { defaultCorpusSplit, type CorpusSplitOptions } from './splits.js';
import type { MultipleChoiceRecord } from './types.js';
import { buildWordNetTask, type WordNetTaskOptions } from './wordnet.js';
import { WORD_ORDER_LABELS, wordOrderTask } from './word-order.js';

export const MULTIPLE_CHOICE_TASKS = ['continuation', 'wordnet-def'] as const;
/** A built-in classification task: labels and the three parts, split by document. */
export type ClassificationTask = BrownGenreTask;

/** Built-in classification tasks, one line each: their labels (id order) and how to build them. */
const CLASSIFICATION: Record<string, { labels: readonly string[]; make: () => ClassificationTask }> = {
  'brown-genre': { labels: BROWN_GENRE_LABELS, make: () => brownGenreTask() },
  'word-order': { labels: WORD_ORDER_LABELS, make: () => wordOrderTask() },
};
export const CLASSIFICATION_TASKS = Object.keys(CLASSIFICATION) as readonly string[];

export interface BuiltinMultipleChoiceOptions extends ContinuationOptions, WordNetTaskOptions {
  /** continuation: the corpus whose held-out documents are used (default 'sotu'). */
  corpus?: CorpusName;
  /** continuation: how that corpus is split — must match the LM training split. Default: the
   * corpus's defaultCorpusSplit (chronological for 'sotu', stratified by genre for 'brown'). */
  split?: CorpusSplitOptions;
}

export function builtinMultipleChoice(name: string, opts: BuiltinMultipleChoiceOptions = {}): MultipleChoiceRecord[] {
  if (name === 'continuation') {
    const corpus = opts.corpus ?? 'sotu';
    const split = opts.split ?? defaultCorpusSplit(corpus);
    return continuationTask(loadCorpus(corpus), split, opts);
  }
  if (name === 'wordnet-def') return buildWordNetTask(opts);
  throw new DataError(name, undefined, 'unknown multiple-choice task', `use one of ${MULTIPLE_CHOICE_TASKS.join(', ')}, or a JSONL file`);
}

export function builtinClassification(name: string): ClassificationTask {
  const task = CLASSIFICATION[name];
  if (task) return task.make();
  throw new DataError(name, undefined, 'unknown classification task', `use one of ${CLASSIFICATION_TASKS.join(', ')}, or a JSONL/TSV file`);
}

/** The built-in classification task whose labels are `labels` in this order (a classifier's
 *  id2label, as `kdqat finetune --task NAME` writes it), or undefined. */
export function builtinClassificationWithLabels(labels: readonly string[]): string | undefined {
  return CLASSIFICATION_TASKS.find((name) => JSON.stringify(CLASSIFICATION[name].labels) === JSON.stringify(labels));
}
