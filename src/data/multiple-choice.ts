// Multiple-choice items: JSONL {"context": str, "choices": [str, ...], "label": int, "id"?: str}.
// Built-in tasks (continuation.ts, wordnet.ts) produce the same records, so they can be written
// with writeJsonl and read back here, and scored the same way.
import { DataError } from './errors.js';
import { readJsonLines } from './jsonl.js';
import type { MultipleChoiceRecord } from './types.js';

const EXAMPLE = '{"context": "The river", "choices": ["flows.", "sings."], "label": 0}';

/** Check one record; `file`/`line` only locate the error. Returns the normalized record. */
export function checkMultipleChoice(o: Record<string, unknown>, file: string, line?: number): MultipleChoiceRecord {
  for (const key of ['context', 'choices', 'label']) {
    if (!(key in o)) throw new DataError(file, line, `missing field "${key}"`, `every item needs context, choices and label, e.g. ${EXAMPLE}`);
  }
  if (typeof o.context !== 'string') throw new DataError(file, line, `"context" must be a string, got ${JSON.stringify(o.context)}`);
  const choices = o.choices;
  if (!Array.isArray(choices) || choices.some((c) => typeof c !== 'string')) {
    throw new DataError(file, line, '"choices" must be an array of strings', `e.g. ${EXAMPLE}`);
  }
  if (choices.length < 2) throw new DataError(file, line, `"choices" has ${choices.length} entries, need at least 2`);
  if (choices.some((c: string) => !c.trim())) throw new DataError(file, line, '"choices" contains an empty string', 'fill it in or remove it');
  if (new Set(choices).size !== choices.length) {
    throw new DataError(file, line, '"choices" contains duplicates', 'an item with two identical choices cannot be scored; make them distinct');
  }
  const label = o.label;
  if (typeof label !== 'number' || !Number.isInteger(label)) {
    throw new DataError(file, line, `"label" must be an integer index into "choices", got ${JSON.stringify(label)}`);
  }
  if (label < 0 || label >= choices.length) {
    throw new DataError(file, line, `"label" ${label} is out of range for ${choices.length} choices`, `use 0…${choices.length - 1}`);
  }
  if ('id' in o && typeof o.id !== 'string') throw new DataError(file, line, `"id" must be a string, got ${JSON.stringify(o.id)}`);
  const rec: MultipleChoiceRecord = { context: o.context, choices: choices as string[], label };
  if (typeof o.id === 'string') rec.id = o.id;
  return rec;
}

export function loadMultipleChoice(file: string): MultipleChoiceRecord[] {
  return readJsonLines(file, EXAMPLE).map(({ line, value }) => checkMultipleChoice(value as Record<string, unknown>, file, line));
}
