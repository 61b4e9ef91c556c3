// Multiple-choice layouts: the row shapes of the Hugging Face datasets causal LMs are usually
// scored on, each read into kdqat's item ({context, choices, label}) the way lm-evaluation-
// harness builds its requests from the same row: the context is the task's doc_to_text, the
// choices its doc_to_choice, the label its doc_to_target (the task file named in `harness`).
// So `kdqat eval --mc hellaswag-validation.jsonl` scores what `lm_eval --tasks hellaswag`
// scores, from the rows `datasets.load_dataset(...)["validation"].to_json(...)` writes (or the
// Hub's Parquet files of them, read by tables.ts).
//
// A layout is one record in LAYOUTS. The first line of a file picks it (kdqat's own items,
// multiple-choice.ts, when it has "context", "choices" and "label"): the first layout whose
// `fields` are all on that line; every later line must then have them too. The reference for
// each layout's output is scripts/ref_mc_layouts.py (the harness's templates transcribed in
// Python), whose results on test/fixtures/data/mc-layouts/ the tests compare with.
import type { MultipleChoiceRecord } from './types.js';

/** Reads one row's fields, with type checks whose errors name the field. */
export interface RowReader {
  has(key: string): boolean;
  str(key: string): string;
  /** A non-negative integer, or a string of digits (HellaSwag, Winogrande keep them as text). */
  index(key: string): number;
  strings(key: string): string[];
  /** An object field (ARC's `choices: {text: [...], label: [...]}`). */
  obj(key: string): RowReader;
  bool(key: string): boolean;
  /** The field if it is a string, else undefined (ids: ARC's are strings, COPA's numbers). */
  optStr(key: string): string | undefined;
  /** An error at this row: what is wrong and how to fix it. */
  fail(problem: string, fix?: string): never;
}

export interface McLayout {
  name: string;
  /** The datasets whose rows have this shape. */
  datasets: string;
  /** The lm-evaluation-harness task file whose prompt this reproduces. */
  harness: string;
  /** The fields that select this layout (all present on a file's first line). */
  fields: readonly string[];
  /** The shape of `fields[0]` when another layout shares its name (ARC's object `choices`
   *  against MMLU's array); checked on the first line only. */
  firstLine?: (o: Record<string, unknown>) => boolean;
  read(row: RowReader): MultipleChoiceRecord;
}

/** HellaSwag's preprocess (lm_eval/tasks/hellaswag/utils.py): WikiHow's bracketed markers out. */
function hellaswagText(s: string): string {
  return s.trim().replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

/** Python's str.capitalize(): the first character upper-cased, the rest lower-cased. */
function capitalize(s: string): string {
  const [first = '', ...rest] = [...s];
  return first.toUpperCase() + rest.join('').toLowerCase();
}

/** A label an unlabelled split marks as -1 or "" gets this fix. */
const UNLABELLED = 'the test splits of these datasets carry no answers; score the validation split';

/** The answer's index among n choices, from a field counting from `base`. */
function answerIndex(row: RowReader, key: string, n: number, base = 0): number {
  if (row.optStr(key)?.trim() === '') row.fail(`"${key}" is empty`, UNLABELLED);
  const v = row.index(key);
  if (v === -1) row.fail(`"${key}" is -1`, UNLABELLED);
  if (v < base || v - base >= n) row.fail(`"${key}" ${v} is out of range for ${n} choices`, `use ${base}…${n - 1 + base}`);
  return v - base;
}

/** ARC / OpenBookQA: choices {text: [...], label: ["A", ...]} and an answerKey among the labels. */
function lettered(row: RowReader): { choices: string[]; label: number } {
  const c = row.obj('choices');
  const text = c.strings('text'), labels = c.strings('label');
  if (text.length !== labels.length) row.fail(`"choices" has ${text.length} texts and ${labels.length} labels`, 'give one label per text');
  const key = row.str('answerKey').trimStart(); // OpenBookQA: answerKey.lstrip()
  const label = labels.indexOf(key);
  if (label < 0) row.fail(`"answerKey" ${JSON.stringify(key)} is not one of the choice labels ${JSON.stringify(labels)}`, 'use the label of the right choice');
  return { choices: text, label };
}

/** The row's "id" when it is a string, as kdqat's own items carry it. */
function withId(row: RowReader, rec: MultipleChoiceRecord): MultipleChoiceRecord {
  const id = row.optStr('id');
  return id === undefined ? rec : { ...rec, id };
}

export const LAYOUTS: readonly McLayout[] = [
  {
    name: 'hellaswag', datasets: 'HellaSwag (Rowan/hellaswag)', harness: 'hellaswag/hellaswag.yaml + utils.py',
    fields: ['activity_label', 'ctx_a', 'ctx_b', 'endings', 'label'],
    read: (row) => {
      const ctx = row.str('ctx_a') + ' ' + capitalize(row.str('ctx_b'));
      const choices = row.strings('endings').map(hellaswagText);
      return withId(row, { context: hellaswagText(row.str('activity_label') + ': ' + ctx), choices, label: answerIndex(row, 'label', choices.length) });
    },
  },
  {
    name: 'arc', datasets: 'ARC-Easy / ARC-Challenge (allenai/ai2_arc), CommonsenseQA (tau/commonsense_qa)', harness: 'arc/arc_easy.yaml',
    fields: ['question', 'choices', 'answerKey'],
    read: (row) => withId(row, { context: `Question: ${row.str('question')}\nAnswer:`, ...lettered(row) }),
  },
  {
    name: 'openbookqa', datasets: 'OpenBookQA (allenai/openbookqa, main)', harness: 'openbookqa/openbookqa.yaml',
    fields: ['question_stem', 'choices', 'answerKey'],
    read: (row) => withId(row, { context: row.str('question_stem'), ...lettered(row) }),
  },
  {
    name: 'mmlu', datasets: 'MMLU (cais/mmlu)', harness: 'mmlu/default/_default_template_yaml',
    fields: ['question', 'choices', 'answer'],
    firstLine: (o) => Array.isArray(o.choices),
    read: (row) => {
      const options = row.strings('choices');
      if (options.length > 26) row.fail(`"choices" has ${options.length} entries; the prompt letters them A…Z`, 'give at most 26');
      const letters = options.map((_, i) => String.fromCharCode(65 + i));
      const listed = options.map((c, i) => `\n${letters[i]}. ${c}`).join('');
      return withId(row, { context: `${row.str('question').trim()}${listed}\nAnswer:`, choices: letters, label: answerIndex(row, 'answer', options.length) });
    },
  },
  {
    name: 'piqa', datasets: 'PIQA (ybisk/piqa)', harness: 'piqa/piqa.yaml',
    fields: ['goal', 'sol1', 'sol2', 'label'],
    read: (row) => withId(row, { context: `Question: ${row.str('goal')}\nAnswer:`, choices: [row.str('sol1'), row.str('sol2')], label: answerIndex(row, 'label', 2) }),
  },
  {
    name: 'sciq', datasets: 'SciQ (allenai/sciq)', harness: 'sciq/sciq.yaml',
    fields: ['support', 'question', 'distractor1', 'distractor2', 'distractor3', 'correct_answer'],
    read: (row) => withId(row, {
      context: `${row.str('support').trimStart()}\nQuestion: ${row.str('question')}\nAnswer:`,
      choices: ['distractor1', 'distractor2', 'distractor3', 'correct_answer'].map((k) => row.str(k)), label: 3,
    }),
  },
  {
    // Partial scoring: each option completes the sentence up to the blank, and what is scored
    // is the same rest of the sentence after it (the harness's multiple_inputs).
    name: 'winogrande', datasets: 'WinoGrande (allenai/winogrande)', harness: 'winogrande/default.yaml + preprocess_winogrande.py',
    fields: ['sentence', 'option1', 'option2', 'answer'],
    read: (row) => {
      const s = row.str('sentence');
      const blank = s.indexOf('_');
      if (blank < 0) row.fail('"sentence" has no "_" blank for the options to fill', 'write "_" where the options go, as WinoGrande does');
      const choices = [row.str('option1'), row.str('option2')].map((o) => s.slice(0, blank) + o);
      return withId(row, { context: '', choices, continuation: s.slice(blank + 1).trim(), label: answerIndex(row, 'answer', 2, 1) });
    },
  },
  {
    name: 'copa', datasets: 'COPA (super_glue copa)', harness: 'super_glue/copa/default.yaml + utils.py',
    fields: ['premise', 'choice1', 'choice2', 'question', 'label'],
    read: (row) => {
      const connector = ({ cause: 'because', effect: 'therefore' } as Record<string, string>)[row.str('question')];
      if (!connector) row.fail(`"question" is ${JSON.stringify(row.str('question'))}`, 'use "cause" or "effect", as COPA does');
      const lowerFirst = (c: string): string => c.slice(0, 1).toLowerCase() + c.slice(1);
      return withId(row, {
        context: row.str('premise').trim().slice(0, -1) + ` ${connector}`, // drops the premise's period
        choices: [lowerFirst(row.str('choice1')), lowerFirst(row.str('choice2'))], label: answerIndex(row, 'label', 2),
      });
    },
  },
  {
    name: 'boolq', datasets: 'BoolQ (super_glue boolq: "label" 0/1; google/boolq: "answer" true/false)', harness: 'super_glue/boolq/default.yaml',
    fields: ['passage', 'question'],
    read: (row) => {
      const label = row.has('label') ? answerIndex(row, 'label', 2) : row.has('answer') ? Number(row.bool('answer'))
        : row.fail('missing field "label" (or "answer")', 'a BoolQ row needs its answer: "label" 0/1 or "answer" true/false');
      return withId(row, { context: `${row.str('passage')}\nQuestion: ${row.str('question')}?\nAnswer:`, choices: ['no', 'yes'], label });
    },
  },
];

/** The layout a file's first line selects, or undefined. */
export function layoutOf(first: Record<string, unknown>): McLayout | undefined {
  return LAYOUTS.find((l) => l.fields.every((k) => k in first) && (l.firstLine?.(first) ?? true));
}

/** The fields of every layout, for the error a file of none of them gets. */
export function layoutNames(): string {
  return LAYOUTS.map((l) => `${l.name} (${l.fields.join(', ')})`).join('; ');
}
