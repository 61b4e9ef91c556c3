// The evaluations `kdqat eval` can run. Each is prepared up front — data read, tokenized and
// checked against the model — so a malformed file fails at once, not after an hour of another
// evaluation; `run` then does the model work.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CLASSIFICATION_TASKS, CORPUS_NAMES, MULTIPLE_CHOICE_TASKS, builtinClassification, builtinMultipleChoice,
  defaultCorpusSplit, isJsonl, jsonlTexts, loadClassification, loadCorpus, loadMultipleChoiceFile, readUtf8File, splitCorpus, type CorpusName,
} from '../data/index.js';
import type { LoadedTokenizer } from '../tokenize/index.js';
import { streamPerplexity } from '../eval/stream-perplexity.js';
import { llamaCppPerplexity } from '../eval/llamacpp-perplexity.js';
import { readTokenizerConfig, specialVocab } from '../io/tokenizer_config.js';
import { scoreMultipleChoice } from '../eval/multiple-choice.js';
import { chatRendererOf } from '../io/chat-template.js';
import { isTableFile } from '../data/tables.js';
import type { FieldNames } from '../data/classification.js';
import { loadTextCorpus, readTableTexts } from '../data/text.js';
import { classificationAccuracy, classifierSpecials } from '../eval/classification.js';
import { describeModel, type OpenedModel } from './open-model.js';
import { archOf, headsOf } from '../models/model.js';

export type EvalKind = 'perplexity' | 'multiple-choice' | 'classification';

/** One row of the report; metrics and counts sit side by side for easy JSON use. */
export interface EvalResult {
  kind: EvalKind;
  source: string;
  [metricOrCount: string]: string | number;
}

export interface EvalJob {
  kind: EvalKind;
  source: string;
  /** Units for progress: windows, requests, examples. */
  run(onBatch: (done: number, total: number) => void): EvalResult;
}

export interface JobSettings {
  seq: number;
  /** Perplexity convention: kdqat's (every token after the first, once) or llama.cpp's. */
  convention: 'kdqat' | 'llama.cpp';
  batchSize: number;
  limit?: number;
  split: 'test' | 'valid';
  /** --cls files' own names for the text and the label (--text-field / --label-field). */
  fields?: FieldNames;
}

/** Raw text encoding: the evaluations place BOS/EOS themselves. */
const raw = (tok: LoadedTokenizer) => (text: string): number[] => tok.encode(text, { addSpecialTokens: false });

function needCausal(m: OpenedModel, flag: string): void {
  if (archOf(m.model).kind !== 'decoder') {
    throw new Error(`${flag}: ${m.dir} is ${describeModel(m)}; ${flag.split(' ')[0]} scores a causal LM (LLaMA-family decoder) by next-token log-likelihood`);
  }
}

/** The BOS llama.cpp puts in front of a text and whether it appends an EOS, as the GGUF export
 *  writes them (tokenizer_config.json's add_bos_token / add_eos_token, else the tokenizer.json
 *  template post-processor, else neither: src/io/tokenizer_config.ts). */
export function addedSpecials(tok: LoadedTokenizer): { bos: number | null; addsEos: boolean } {
  const sv = specialVocab(tok.json as unknown as Record<string, unknown>, readTokenizerConfig(tok.path), 'tokenizer_config.json');
  const bos = sv.ids.bos ?? tok.specials.bos;
  return { bos: sv.add.bos && bos !== undefined ? bos : null, addsEos: sv.add.eos ?? false };
}

function perplexityJob(m: OpenedModel, tok: LoadedTokenizer, source: string, stream: number[], s: JobSettings, extra: Record<string, string | number>): EvalJob {
  let bos: number | null = null;
  if (s.convention === 'llama.cpp') {
    const added = addedSpecials(tok);
    if (added.addsEos) {
      throw new Error(`--ppl-convention llama.cpp: ${tok.path} appends an EOS to every text, which llama.cpp's perplexity refuses; ` +
        'use the kdqat convention, or a tokenizer whose post-processor adds no EOS');
    }
    bos = added.bos;
    if (stream.length + (bos === null ? 0 : 1) < 2 * s.seq) {
      throw new Error(`--ppl-convention llama.cpp: ${source} tokenizes to ${stream.length} tokens; llama.cpp's perplexity needs at least ` +
        `2·--seq-len = ${2 * s.seq} (give more text or a smaller --seq-len)`);
    }
  }
  return {
    kind: 'perplexity', source,
    run: (onBatch) => {
      const opts = { batchSize: s.batchSize, weight: m.weight, onBatch };
      const r = s.convention === 'llama.cpp'
        ? llamaCppPerplexity(m.model, bos === null ? stream : [bos, ...stream], s.seq, bos, opts)
        : streamPerplexity(m.model, stream, s.seq, opts);
      return {
        kind: 'perplexity', source, ppl: r.ppl, nll: r.nll, tokens: r.tokens, windows: r.windows, seq: r.seq,
        convention: s.convention, ...extra,
      };
    },
  };
}

/** A text file scored whole; a JSON Lines file (.jsonl, .ndjson, .json: {"text": …} per line, or
 *  conversations rendered with the model's chat template), a Parquet / Arrow file (preloaded) or a
 *  directory of such files (a `datasets` save_to_disk directory, a Hub dataset's folder) as its
 *  documents joined with the EOS token after each, as --corpus and training pack them. */
export function textJob(m: OpenedModel, tok: LoadedTokenizer, file: string, s: JobSettings, eosId: number | undefined): EvalJob {
  needCausal(m, `--text ${file}`);
  const enc = raw(tok);
  let stream: number[];
  let extra = {};
  const dir = fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false;
  if (dir || isJsonl(file) || isTableFile(file)) {
    const chat = chatRendererOf(path.dirname(tok.path));
    const field = s.fields?.text;
    const docs = withFlag('--text', () => (dir ? loadTextCorpus(file, { chat, field }).documents.map((d) => d.text)
      : isTableFile(file) ? readTableTexts(file, chat, field).map((d) => d.text) : jsonlTexts(file, chat, field)));
    if (docs.length === 0) throw new Error(`--text ${file}: every line's "text" is empty; point --text at a file with the text to score`);
    stream = documentStream(enc, docs, eosId);
    extra = { documents: docs.length };
  } else {
    if (s.fields?.text) throw new Error(`--text ${file}: --text-field ${s.fields.text} names a field of JSON Lines, Parquet or Arrow files; this is plain text`);
    const text = withFlag('--text', () => readUtf8File(file));
    if (!text.trim()) throw new Error(`--text ${file}: the file is empty (only whitespace); point --text at a file with the text to score`);
    stream = enc(text);
  }
  if (stream.length < 2) throw new Error(`--text ${file}: only ${stream.length} token(s); perplexity needs at least 2`);
  return perplexityJob(m, tok, file, stream, s, extra);
}

/** A built-in corpus split as the training commands split it (defaultCorpusSplit: SOTU
 *  chronologically, Brown stratified by genre 10%/10%, others by a hash of the document id
 *  5%/5%); documents are joined with the EOS token after each, as packSequences packs them. */
export function corpusJob(m: OpenedModel, tok: LoadedTokenizer, name: string, s: JobSettings, eosId: number | undefined): EvalJob {
  needCausal(m, `--corpus ${name}`);
  if (!(CORPUS_NAMES as readonly string[]).includes(name)) throw new Error(`--corpus ${name}: unknown corpus; use one of ${CORPUS_NAMES.join(', ')} (or --text FILE for your own text)`);
  const corpus = loadCorpus(name as CorpusName);
  const split = splitCorpus(corpus, defaultCorpusSplit(name));
  const docs = split[s.split];
  if (docs.length === 0) throw new Error(`--corpus ${name}: the ${s.split} split is empty`);
  const stream = documentStream(raw(tok), docs.map((d) => d.text), eosId);
  return perplexityJob(m, tok, `${name}:${s.split}`, stream, s, { documents: docs.length });
}

/** Documents' tokens with the EOS token after each, as packSequences packs training text. */
function documentStream(enc: (text: string) => number[], docs: readonly string[], eosId: number | undefined): number[] {
  const stream: number[] = [];
  for (const d of docs) {
    for (const id of enc(d)) stream.push(id);
    if (eosId !== undefined) stream.push(eosId);
  }
  return stream;
}

/** Data-layer errors already say file:line, problem and fix; add the flag that named the file. */
function withFlag<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${flag} ${(e as Error).message}`);
  }
}

const isFile = (p: string): boolean => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;

export function mcJob(m: OpenedModel, tok: LoadedTokenizer, spec: string, s: JobSettings, prefixId: number | undefined): EvalJob {
  needCausal(m, `--mc ${spec}`);
  const builtin = (MULTIPLE_CHOICE_TASKS as readonly string[]).includes(spec) && !isFile(spec);
  if (!builtin && !fs.existsSync(spec)) {
    throw new Error(`--mc ${spec}: no such file, and not a built-in task (${MULTIPLE_CHOICE_TASKS.join(', ')}); give a JSONL file of {"context", "choices", "label"} lines (or of HellaSwag, ARC, MMLU, … rows)`);
  }
  const file = builtin ? undefined : withFlag('--mc', () => loadMultipleChoiceFile(spec));
  let records = file?.records ?? builtinMultipleChoice(spec, s.limit ? { count: s.limit } : {});
  if (s.limit) records = records.slice(0, s.limit);
  const layout: Record<string, string> = file && file.layout !== 'kdqat' ? { layout: file.layout, layout_from: file.describe } : {};
  const source = spec; // continuation is built from the test split whatever --split says
  return {
    kind: 'multiple-choice', source,
    run: (onBatch) => {
      const r = scoreMultipleChoice(m.model, { encode: raw(tok) }, records, { batchSize: s.batchSize, prefixId, weight: m.weight, onBatch });
      const choices = records.reduce((n, x) => n + x.choices.length, 0);
      return { kind: 'multiple-choice', source, ...layout, acc: r.acc, acc_norm: r.accNorm, items: r.n, choices, truncated_choices: r.truncatedChoices };
    },
  };
}

export function clsJob(m: OpenedModel, tok: LoadedTokenizer, spec: string, s: JobSettings): EvalJob {
  const model = m.model;
  if (!headsOf(model).classifier || !('numLabels' in model.config)) {
    throw new Error(`--cls ${spec}: ${m.dir} is ${describeModel(m)}; --cls needs an encoder classifier (…ForSequenceClassification, e.g. from kdqat finetune)`);
  }
  classifierSpecials(tok); // the input's special tokens exist (padding is masked out, so any id will do)
  const K = model.config.numLabels;
  // Class names from config.json (id2label), unless they are HF's LABEL_i placeholders.
  const names = archOf(m.loaded.hf).labels(m.loaded.hf.meta);
  const named = names && !names.every((l, i) => l === `LABEL_${i}`) ? names : null;
  const builtin = CLASSIFICATION_TASKS.includes(spec) && !isFile(spec);
  let examples, labels: string[];
  if (builtin) {
    const task = builtinClassification(spec);
    examples = s.split === 'test' ? task.test : task.dev;
    labels = task.labels;
    if (named && named.join() !== labels.join()) {
      throw new Error(`--cls ${spec}: the classifier's labels (${named.join(', ')}) are not the task's (${labels.join(', ')}); was it fine-tuned on ${spec}?`);
    }
  } else {
    if (!fs.existsSync(spec)) throw new Error(`--cls ${spec}: no such file, and not a built-in task (${CLASSIFICATION_TASKS.join(', ')}); give a JSONL or TSV file of text and label`);
    // Integer labels are class ids as they are. String labels map through the class names when
    // the model has them; otherwise they are numbered in sorted order, loadClassification's
    // convention, which the training side shares.
    let d = withFlag('--cls', () => loadClassification(spec, { fields: s.fields }));
    const numeric = d.labels.every((l) => /^\d+$/.test(l));
    if (!numeric && named) d = withFlag('--cls', () => loadClassification(spec, { labels: named, fields: s.fields }));
    examples = d.examples;
    labels = d.labels;
  }
  if (labels.length > K) {
    throw new Error(`--cls ${spec}: the data has ${labels.length} labels (${labels.slice(0, 6).join(', ')}${labels.length > 6 ? ', …' : ''}) but the classifier in ${m.dir} has ${K} outputs`);
  }
  if (s.limit) examples = examples.slice(0, s.limit);
  const all = examples, source = builtin ? `${spec}:${s.split}` : spec;
  return {
    kind: 'classification', source,
    run: (onBatch) => {
      const r = classificationAccuracy(model, tok, all, { maxLen: s.seq, batchSize: s.batchSize, weight: m.weight, onBatch });
      return { kind: 'classification', source, acc: r.accuracy, examples: r.n, labels: labels.length };
    },
  };
}
