// Text classification data from JSONL or TSV.
//
// JSONL: one object per line: {"text": str, "label": int | str, "text_pair"?: str}.
// TSV:   a header row naming the columns text, label and optionally text_pair (any order, other
//        columns ignored); or, without a header, exactly 2 columns: text<TAB>label. No quoting:
//        a field cannot contain a tab or newline.
// CSV:   the same columns, comma-separated (RFC 4180: a quoted field may hold commas, line
//        breaks and "" for a quote).
// The text fields may also carry the names of GLUE and the Hugging Face datasets built on it
// (TEXT_FIELDS): "sentence" (SST-2, CoLA), "sentence1"/"sentence2" (MRPC, RTE, STS-B, WNLI),
// "premise"/"hypothesis" (MNLI, SNLI), "question1"/"question2" (QQP), "question"/"sentence"
// (QNLI), "title"/"content" (amazon_polarity, dbpedia_14), "content"; the label "label" or
// "labels". So those files load as they are; the first row decides which names the file uses.
//
// Label ids: integer labels (JSON integers, or TSV labels that are all digits) are used as the
// ids directly. String labels are SORTED and numbered 0…k-1 — not in order of appearance — so a
// train and a dev file with the same label set always agree on the ids. To pin the mapping
// (e.g. a dev file missing a class), pass opts.labels, typically the train set's `labels`.
import { DataError } from './errors.js';
import { readJsonLines } from './jsonl.js';
import { readUtf8File } from './text.js';
import { isTableFile, tableRows } from './tables.js';
import type { ClassificationData } from './types.js';

export interface ClassificationOptions {
  /** Fixed label list (string labels map to their index; unknown labels are an error). */
  labels?: string[];
  /** 'jsonl', 'tsv', 'csv' or 'table' (Parquet or Arrow, preloaded with every column: tables.ts);
   *  by default from the extension (.jsonl/.json, .tsv, .csv, .parquet, .arrow; anything else by
   *  content: an object on the first line is JSONL, otherwise TSV). */
  format?: 'jsonl' | 'tsv' | 'csv' | 'table';
  /** The field names to read instead of the ones recognized (a user's own layout: "review" and
   *  "sentiment"), from --text-field / --label-field. */
  fields?: FieldNames;
}

/** A file's own names for the text (and the second text of a pair) and the label. */
export interface FieldNames { text?: string; pair?: string; label?: string }

/** "--text-field A[,B]" and "--label-field L" as FieldNames (undefined when neither is given). */
export function fieldNames(textField: string | undefined, labelField: string | undefined): FieldNames | undefined {
  if (!textField && !labelField) return undefined;
  const [text, pair, extra] = (textField ?? '').split(',').map((x) => x.trim());
  if (extra !== undefined || (textField && !text) || pair === '') throw new Error(`--text-field ${JSON.stringify(textField)}: give the text's field, or two for a pair: --text-field premise,hypothesis`);
  return { ...(text ? { text } : {}), ...(pair ? { pair } : {}), ...(labelField ? { label: labelField.trim() } : {}) };
}

interface RawExample { line: number; text: string; textPair?: string; label: string | number }

const JSONL_EXAMPLE = '{"text": "a fine film", "label": "pos"}';

/** The field names of the text (and of the second text of a pair), first match wins. */
const TEXT_FIELDS: readonly { text: string; pair?: string }[] = [
  { text: 'text', pair: 'text_pair' }, { text: 'sentence1', pair: 'sentence2' }, { text: 'premise', pair: 'hypothesis' },
  { text: 'question1', pair: 'question2' }, { text: 'question', pair: 'sentence' }, { text: 'sentence' },
  { text: 'title', pair: 'content' }, { text: 'content' },
];
const TEXT_NAMES = 'text (with text_pair), sentence, sentence1/sentence2, premise/hypothesis, question1/question2, question/sentence, title/content or content';

/** The label's field: "label", or "labels" (some Hugging Face datasets' name for it). */
const LABEL_FIELDS = ['label', 'labels'] as const;
const labelField = (names: readonly string[]): string | undefined => LABEL_FIELDS.find((k) => names.includes(k));

/** For a row without a label field: the fix, naming the label-like fields it has (TREC's
 *  coarse_label / fine_label: which one is meant is the user's choice). */
function labelFix(names: readonly string[], example: string): string {
  const like = names.filter((n) => /label/i.test(n));
  return like.length ? `this file has ${like.map((n) => `"${n}"`).join(', ')}: name the one to train on with --label-field (or rename it to "label")`
    : `every line needs "text" and "label", e.g. ${example} (the text may also be named ${TEXT_NAMES})`;
}

/** The text fields a row with these names uses; the pair only when that row has it (text_pair is optional). */
function textFields(names: readonly string[]): { text: string; pair?: string } | undefined {
  const f = TEXT_FIELDS.find((c) => names.includes(c.text) && (c.text === 'text' || c.pair === undefined || names.includes(c.pair)));
  return f && { text: f.text, pair: f.pair !== undefined && names.includes(f.pair) ? f.pair : undefined };
}

/** JSON Lines objects, or a table file's rows (a row's number, from 1, stands for the line). */
function fromObjects(file: string, lines: { line: number; value: unknown }[], names?: FieldNames): RawExample[] {
  let firstType: string | undefined;
  let fields: { text: string; pair?: string } | undefined;
  let labelKey: string | undefined;
  return lines.map(({ line, value }) => {
    const o = value as Record<string, unknown>;
    fields ??= names?.text ? { text: names.text, pair: names.pair } : textFields(Object.keys(o));
    labelKey ??= names?.label ?? labelField(Object.keys(o)) ?? 'label';
    const textKey = fields?.text ?? 'text', pairKey = fields?.pair ?? (textKey === 'text' ? 'text_pair' : undefined);
    for (const key of [textKey, labelKey, ...(names?.pair ? [names.pair] : [])]) {
      if (!(key in o)) {
        const flag = key === names?.label ? '--label-field' : key === names?.text || key === names?.pair ? '--text-field' : undefined;
        throw new DataError(file, line, `missing field "${key}"${flag ? ` (${flag})` : ''}`, flag ? `this line has ${Object.keys(o).map((k) => `"${k}"`).join(', ')}`
          : key === labelKey ? labelFix(Object.keys(o), JSONL_EXAMPLE)
          : !fields ? `every line needs "text" and "label", e.g. ${JSONL_EXAMPLE} (the text may also be named ${TEXT_NAMES}; or name yours with --text-field)`
          : `the first line names its text "${textKey}", so every line needs it`);
      }
    }
    const text = o[textKey];
    if (typeof text !== 'string') throw new DataError(file, line, `"${textKey}" must be a string, got ${JSON.stringify(text)}`);
    if (!text.trim()) throw new DataError(file, line, `"${textKey}" is empty`, 'remove the line or fill in the text');
    if (pairKey !== undefined && pairKey !== 'text_pair' && !(pairKey in o)) {
      throw new DataError(file, line, `missing field "${pairKey}"`, `the first line has a pair ("${textKey}", "${pairKey}"), so every line needs both`);
    }
    const pair = pairKey !== undefined ? o[pairKey] : undefined;
    if (pair !== undefined && typeof pair !== 'string') {
      throw new DataError(file, line, `"${pairKey}" must be a string, got ${JSON.stringify(pair)}`);
    }
    const label = o[labelKey];
    const isInt = typeof label === 'number' && Number.isInteger(label) && label >= 0;
    if (!isInt && typeof label !== 'string') {
      throw new DataError(file, line, `"${labelKey}" must be a non-negative integer or a string, got ${JSON.stringify(label)}`);
    }
    const type = typeof label;
    firstType ??= type;
    if (type !== firstType) {
      throw new DataError(file, line, `label ${JSON.stringify(label)} is a ${type} but earlier labels are ${firstType}s`,
        'use integers or strings throughout the file');
    }
    return { line, text, textPair: pair as string | undefined, label: label as string | number };
  });
}

type Row = { line: number; cells: string[] };

/** How a delimited format is named in messages. */
interface Table { name: string; example: string; fieldFix: string }
const TSV: Table = { name: 'tab-separated', example: 'text<TAB>label', fieldFix: 'fields cannot contain tabs; check for a missing or extra tab' };
const CSV: Table = { name: 'comma-separated', example: 'text,label', fieldFix: 'quote a field that holds a comma or a line break: "a, b" (a quote inside it as "")' };

function tsvRows(file: string): Row[] {
  const rows: Row[] = [];
  readUtf8File(file).split('\n').forEach((l, i) => { if (l.trim()) rows.push({ line: i + 1, cells: l.split('\t') }); });
  return rows;
}

/** RFC 4180 records: comma-separated fields; a field that starts with a quote runs to the closing
 *  quote and may hold commas, line breaks and "" (one quote). Blank lines are skipped; a record's
 *  line is the line it starts on. */
function csvRows(file: string): Row[] {
  const text = readUtf8File(file);
  const rows: Row[] = [];
  let cells: string[] = [], cell = '', quoted = false, used = false, line = 1, start = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false;
      else { if (c === '\n') line++; cell += c; }
    } else if (c === '"' && cell === '') { quoted = true; used = true; }
    else if (c === ',') { cells.push(cell); cell = ''; used = true; }
    else if (c === '\n') {
      if (used || cell.trim()) rows.push({ line: start, cells: [...cells, cell] });
      cells = []; cell = ''; used = false; start = ++line;
    } else cell += c;
  }
  if (quoted) throw new DataError(file, start, 'a quoted field is not closed', 'end it with a quote (write a quote inside a field as "")');
  if (used || cell.trim()) rows.push({ line: start, cells: [...cells, cell] });
  return rows;
}

function fromTable(file: string, rows: Row[], t: Table, names?: FieldNames): RawExample[] {
  if (rows.length === 0) throw new DataError(file, undefined, 'is empty', `add a header row "${t.example}" and one example per line`);
  const head = rows[0].cells.map((c) => c.trim().toLowerCase());
  let cols: { text: number; label: number; pair: number };
  let body = rows;
  if (names) {
    // The user's names: each must be a column of the header row.
    for (const [flag, n] of [['--text-field', names.text], ['--text-field', names.pair], ['--label-field', names.label]] as const) {
      if (n !== undefined && !head.includes(n.toLowerCase())) {
        throw new DataError(file, rows[0].line, `has no column "${n}" (${flag})`, `its header row names ${head.map((h) => `"${h}"`).join(', ')}`);
      }
    }
  }
  const labelCol = names?.label?.toLowerCase() ?? labelField(head);
  const named = names?.text ? { text: names.text.toLowerCase(), pair: names.pair?.toLowerCase() } : labelCol ? textFields(head) : undefined;
  if (names && !(named && labelCol)) {
    throw new DataError(file, rows[0].line, `its header row (${head.map((h) => `"${h}"`).join(', ')}) names no ${labelCol ? 'text' : 'label'} column kdqat knows`,
      `name it with ${labelCol ? '--text-field' : '--label-field'}`);
  }
  if (named && labelCol) {
    cols = { text: head.indexOf(named.text), label: head.indexOf(labelCol), pair: named.pair === undefined ? -1 : head.indexOf(named.pair) };
    body = rows.slice(1);
    if (body.length === 0) throw new DataError(file, undefined, 'has a header but no examples', 'add one example per line');
  } else if (rows[0].cells.length === 2) {
    cols = { text: 0, label: 1, pair: -1 };
  } else {
    throw new DataError(file, rows[0].line, `no header and ${rows[0].cells.length} columns`,
      head.some((n) => /label/i.test(n)) && !labelCol ? labelFix(head, t.example)
        : `add a header row naming the "text" and "label" columns (and "text_pair"; the text may also be named ${TEXT_NAMES}), or use exactly 2 columns ${t.example}`);
  }
  const width = rows[0].cells.length;
  const raw = body.map(({ line, cells }) => {
    if (cells.length !== width) throw new DataError(file, line, `has ${cells.length} ${t.name} fields, expected ${width}`, t.fieldFix);
    const text = cells[cols.text];
    const label = cells[cols.label].trim();
    if (!text.trim()) throw new DataError(file, line, 'text is empty', 'remove the line or fill in the text');
    if (!label) throw new DataError(file, line, 'label is empty', 'every example needs a label');
    return { line, text, textPair: cols.pair >= 0 ? cells[cols.pair] : undefined, label: label as string | number };
  });
  // All-digit label columns are integer class ids, as in JSONL.
  if (raw.every((r) => /^\d+$/.test(r.label as string))) for (const r of raw) r.label = Number(r.label);
  return raw;
}

export function loadClassification(file: string, opts: ClassificationOptions = {}): ClassificationData {
  const name = file.replace(/\.(gz|zst)$/i, '');
  const format = opts.format ?? (isTableFile(name) ? 'table' : /\.jsonl?$/i.test(name) ? 'jsonl' : /\.tsv$/i.test(name) ? 'tsv' : /\.csv$/i.test(name) ? 'csv'
    : readUtf8File(file).trimStart().startsWith('{') ? 'jsonl' : 'tsv');
  const f = opts.fields;
  const raw = format === 'jsonl' ? fromObjects(file, readJsonLines(file, JSONL_EXAMPLE), f)
    : format === 'table' ? fromObjects(file, tableRows(file, 'all').map((value, i) => ({ line: i + 1, value })), f)
    : format === 'csv' ? fromTable(file, csvRows(file), CSV, f) : fromTable(file, tsvRows(file), TSV, f);
  if (raw.length === 0) throw new DataError(file, undefined, 'has no examples', 'point to a file with labelled examples');
  let labels: string[];
  if (opts.labels) labels = opts.labels;
  else if (typeof raw[0].label === 'number') {
    const max = raw.reduce((m, r) => Math.max(m, r.label as number), 0);
    labels = Array.from({ length: max + 1 }, (_, i) => String(i));
  } else labels = [...new Set(raw.map((r) => r.label as string))].sort();
  const index = new Map(labels.map((l, i) => [l, i]));
  const examples = raw.map((r) => {
    const id = index.get(String(r.label));
    if (id === undefined) {
      throw new DataError(file, r.line, `unknown label ${JSON.stringify(r.label)}`, `expected one of ${labels.join(', ')}`);
    }
    return r.textPair === undefined ? { text: r.text, label: id } : { text: r.text, textPair: r.textPair, label: id };
  });
  return { examples, labels };
}
