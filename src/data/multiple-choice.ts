// Multiple-choice items: JSONL {"context": str, "choices": [str, ...], "label": int, "id"?: str,
// "continuation"?: str}. Built-in tasks (continuation.ts, wordnet.ts) produce the same records,
// so they can be written with writeJsonl and read back here, and scored the same way. Rows of
// the Hugging Face datasets LMs are scored on (HellaSwag, ARC, MMLU, …) are read too, as
// lm-evaluation-harness prompts them (mc-layouts.ts).
import { DataError } from './errors.js';
import { readJsonLines } from './jsonl.js';
import { layoutNames, layoutOf, type RowReader } from './mc-layouts.js';
import { isTableFile, tableRows } from './tables.js';
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
  if ('continuation' in o && (typeof o.continuation !== 'string' || !o.continuation.trim())) {
    throw new DataError(file, line, `"continuation" must be a non-empty string, got ${JSON.stringify(o.continuation)}`,
      'with a continuation each choice is a context, and the continuation is what is scored after it');
  }
  const rec: MultipleChoiceRecord = { context: o.context, choices: choices as string[], label };
  if (typeof o.id === 'string') rec.id = o.id;
  if (typeof o.continuation === 'string') rec.continuation = o.continuation;
  return rec;
}

export interface MultipleChoiceFile {
  /** "kdqat" for kdqat's own items, else the dataset layout's name (mc-layouts.ts). */
  layout: string;
  /** Which datasets that layout is, and whose prompt it reproduces (empty for kdqat's own). */
  describe: string;
  records: MultipleChoiceRecord[];
}

export function loadMultipleChoice(file: string): MultipleChoiceRecord[] {
  return loadMultipleChoiceFile(file).records;
}

/** Read a file of kdqat's items, or of rows of one of the dataset layouts (its first line decides). */
export function loadMultipleChoiceFile(file: string): MultipleChoiceFile {
  // A table file (Parquet, Arrow; preloaded with every column: tables.ts) reads as JSON Lines, row by row.
  const lines = isTableFile(file) ? tableRows(file, 'all').map((value, i) => ({ line: i + 1, value })) : readJsonLines(file, EXAMPLE);
  if (lines.length === 0) throw new DataError(file, undefined, 'has no rows', `add items like ${EXAMPLE}`);
  const first = lines[0].value as Record<string, unknown>;
  const layout = ['context', 'choices'].every((k) => k in first) ? undefined : layoutOf(first);
  if (!layout) {
    if (!('context' in first) && !('choices' in first)) {
      throw new DataError(file, lines[0].line, `no multiple-choice layout has these fields (${Object.keys(first).join(', ')})`,
        `write kdqat's items, e.g. ${EXAMPLE}, or rows of a dataset kdqat reads: ${layoutNames()}`);
    }
    return { layout: 'kdqat', describe: '', records: lines.map(({ line, value }) => checkMultipleChoice(value as Record<string, unknown>, file, line)) };
  }
  const records = lines.map(({ line, value }) => {
    const o = value as Record<string, unknown>;
    for (const key of layout.fields) {
      if (!(key in o)) {
        throw new DataError(file, line, `missing field "${key}"`, `the first line is in the ${layout.name} layout (${layout.fields.join(', ')}), so every line needs these fields`);
      }
    }
    const rec = layout.read(rowReader(o, file, line, layout.name));
    const empty = rec.choices.findIndex((c) => !c.trim());
    if (empty >= 0) throw new DataError(file, line, `choice ${empty} is empty after the ${layout.name} prompt's preprocessing`, 'fill it in or remove the row');
    return rec;
  });
  return { layout: layout.name, describe: `${layout.datasets}, prompted as lm-evaluation-harness's ${layout.harness}`, records };
}

function rowReader(o: Record<string, unknown>, file: string, line: number, layout: string): RowReader {
  const fail = (problem: string, fix?: string): never => { throw new DataError(file, line, `${problem} (${layout} layout)`, fix); };
  const get = (key: string): unknown => (key in o ? o[key] : fail(`missing field "${key}"`));
  const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);
  const reader: RowReader = {
    has: (key) => key in o,
    str: (key) => { const v = get(key); return typeof v === 'string' ? v : fail(`"${key}" must be a string, got ${show(v)}`); },
    index: (key) => {
      const v = get(key);
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v);
      return fail(`"${key}" must be an integer (or a string of digits), got ${show(v)}`);
    },
    strings: (key) => {
      const v = get(key);
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : fail(`"${key}" must be an array of strings, got ${show(v)}`);
    },
    obj: (key) => {
      const v = get(key);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? rowReader(v as Record<string, unknown>, file, line, layout)
        : fail(`"${key}" must be an object, got ${show(v)}`);
    },
    bool: (key) => { const v = get(key); return typeof v === 'boolean' ? v : fail(`"${key}" must be true or false, got ${show(v)}`); },
    optStr: (key) => (typeof o[key] === 'string' ? o[key] as string : undefined),
    fail,
  };
  return reader;
}
