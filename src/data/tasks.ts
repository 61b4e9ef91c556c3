// Built-in evaluation tasks by name, for the CLI and config files.
import { brownGenreTask, type BrownGenreTask } from './brown-genre.js';
import { continuationTask, type ContinuationOptions } from './continuation.js';
import { loadCorpus, type CorpusName } from './corpora.js';
import { DataError } from './errors.js';
import { defaultCorpusSplit, type CorpusSplitOptions } from './splits.js';
import type { MultipleChoiceRecord } from './types.js';
import { buildWordNetTask, type WordNetTaskOptions } from './wordnet.js';

export const MULTIPLE_CHOICE_TASKS = ['continuation', 'wordnet-def'] as const;
export const CLASSIFICATION_TASKS = ['brown-genre'] as const;

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

export function builtinClassification(name: string, opts: Parameters<typeof brownGenreTask>[0] = {}): BrownGenreTask {
  if (name === 'brown-genre') return brownGenreTask(opts);
  throw new DataError(name, undefined, 'unknown classification task', `use one of ${CLASSIFICATION_TASKS.join(', ')}, or a JSONL/TSV file`);
}
