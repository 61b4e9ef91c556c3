// The measurements of the reproductions, on a model directory (the teacher, or a student whose
// weights load as the dequantized low-bit codes — what `kdqat eval` measures too):
//   decoder: perplexity over the SOTU validation addresses (held out chronologically, as the
//            teacher was trained; an EOS after each address, non-overlapping windows as in
//            src/eval/stream-perplexity.ts), and acc / acc_norm on the built-in multiple-choice
//            tasks continuation and wordnet-def;
//   encoder: accuracy on the dev and the test split of the built-in classification task the
//            teacher was fine-tuned on (teacherTask: found by its labels).
// The tokenizer is always the teacher's (a student shares its vocabulary).
import * as fs from 'node:fs';
import '../tensor/index.js';
import { asModel, loadModelDir, type LoadedModel } from '../io/model-dir.js';
import { isStudentDir, loadStudent } from '../quant/student.js';
import type { WeightFn } from '../nn/params.js';
import { loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { archOf, headsOf, type Model } from '../models/model.js';
import { builtinClassification, builtinMultipleChoice, loadCorpus, splitCorpus } from '../data/index.js';
import { builtinClassificationWithLabels, CLASSIFICATION_TASKS } from '../data/tasks.js';
import { readHfConfig } from '../io/hf-config.js';
import { streamPerplexity } from '../eval/stream-perplexity.js';
import { scoreMultipleChoice } from '../eval/multiple-choice.js';
import { classificationAccuracy } from '../eval/classification.js';
import type { ReproSettings } from './types.js';

export type EvalProgress = (what: string, done: number, total: number) => void;

/** A model directory as it is deployed: a student (quant/student.ts) opens with its quantized
 *  weights dequantized from their codes, and `weight` fake-quantizes the activations when the
 *  student quantizes them (twn-a8); a plain directory (the teacher) as it is. */
export function loadModel(dir: string): { model: Model; weight?: WeightFn } {
  let m: LoadedModel, weight: WeightFn | undefined;
  if (isStudentDir(dir)) {
    const s = loadStudent(dir);
    m = s.loaded;
    weight = s.weight ?? undefined;
  } else m = loadModelDir(dir);
  return { model: asModel(m), weight };
}

export function teacherTokenizer(teacherDir: string): LoadedTokenizer {
  const file = `${teacherDir}/tokenizer.json`;
  if (!fs.existsSync(file)) throw new Error(`${teacherDir}: no tokenizer.json; the reproductions need the teacher's tokenizer beside its weights`);
  return loadTokenizer(file);
}

const raw = (tok: LoadedTokenizer) => (text: string): number[] => tok.encode(text, { addSpecialTokens: false });

/** The SOTU validation stream: each address's tokens then EOS, cut to `maxTokens` (0 = all). */
export function sotuValidStream(tok: LoadedTokenizer, eos: number | undefined, maxTokens: number): number[] {
  const docs = splitCorpus(loadCorpus('sotu'), { method: 'chronological' }).valid;
  const enc = raw(tok);
  const stream: number[] = [];
  for (const d of docs) {
    for (const id of enc(d.text)) stream.push(id);
    if (eos !== undefined) stream.push(eos);
    if (maxTokens > 0 && stream.length >= maxTokens) break;
  }
  return maxTokens > 0 ? stream.slice(0, maxTokens) : stream;
}

export interface DecoderEvalData { stream: number[]; mc: { key: string; records: ReturnType<typeof builtinMultipleChoice> }[]; eos: number | undefined }

/** Data prepared once per reproduction (tokenizing the validation text takes seconds). */
export function decoderEvalData(tok: LoadedTokenizer, eos: number | undefined, s: ReproSettings): DecoderEvalData {
  const limit = s.evalItems > 0 ? { count: s.evalItems } : {};
  const mc = [
    { key: 'cont', records: builtinMultipleChoice('continuation', limit) },
    { key: 'wn', records: builtinMultipleChoice('wordnet-def', limit) },
  ].map((t) => ({ ...t, records: s.evalItems > 0 ? t.records.slice(0, s.evalItems) : t.records }));
  return { stream: sotuValidStream(tok, eos, s.evalTokens), mc, eos };
}

export function evaluateDecoder(model: Model, weight: WeightFn | undefined, tok: LoadedTokenizer, data: DecoderEvalData, progress: EvalProgress): Record<string, number> {
  if (archOf(model).kind !== 'decoder') throw new Error('the ov-freeze reproduction needs a decoder teacher (causal LM)');
  const seq = Math.min(model.config.maxPositionEmbeddings, 512);
  const ppl = streamPerplexity(model, data.stream, seq, { batchSize: 8, weight, onBatch: (d, t) => progress('perplexity', d, t) });
  const out: Record<string, number> = { ppl: ppl.ppl, nll: ppl.nll, ppl_tokens: ppl.tokens };
  for (const t of data.mc) {
    // An empty context is predicted from EOS, as lm-evaluation-harness does (kdqat eval too).
    const r = scoreMultipleChoice(model, { encode: raw(tok) }, t.records, { batchSize: 8, weight, prefixId: data.eos, onBatch: (d, n) => progress(t.key, d, n) });
    out[`${t.key}_acc`] = r.acc;
    out[`${t.key}_acc_norm`] = r.accNorm;
    out[`${t.key}_items`] = r.n;
  }
  return out;
}

export interface EncoderEvalData { dev: ReturnType<typeof builtinClassification>['dev']; test: ReturnType<typeof builtinClassification>['test'] }

/** The built-in classification task an encoder teacher was fine-tuned on (`kdqat finetune
 *  --task NAME`), recognised by its labels (config.json id2label, in order). */
export function teacherTask(teacherDir: string): string {
  const file = `${teacherDir}/config.json`;
  const { meta } = readHfConfig(file);
  const labels = 'labels' in meta ? meta.labels : null;
  if (!labels) throw new Error(`${file}: no id2label, so not a classifier; the encoder reproductions need a teacher fine-tuned with kdqat finetune --task (${CLASSIFICATION_TASKS.join(', ')})`);
  const task = builtinClassificationWithLabels(labels);
  if (!task) {
    throw new Error(`${file}: the labels ${JSON.stringify(labels)} are not those of a built-in task (${CLASSIFICATION_TASKS.join(', ')}); ` +
      'the reproductions measure a teacher on the task it was fine-tuned on: fine-tune it with kdqat finetune --task NAME');
  }
  return task;
}

export function encoderEvalData(s: ReproSettings): EncoderEvalData {
  const task = builtinClassification(teacherTask(s.teacher));
  // The splits are ordered by file, so genre by genre: a budget takes evenly spaced examples.
  const cut = <T>(xs: T[]): T[] => s.evalItems > 0 && s.evalItems < xs.length
    ? Array.from({ length: s.evalItems }, (_, i) => xs[Math.floor((i * xs.length) / s.evalItems)]) : xs;
  return { dev: cut(task.dev), test: cut(task.test) };
}

export function evaluateEncoder(model: Model, weight: WeightFn | undefined, tok: LoadedTokenizer, data: EncoderEvalData, s: ReproSettings, progress: EvalProgress): Record<string, number> {
  if (!headsOf(model).classifier) throw new Error('the attn-kd reproduction needs an encoder classifier teacher');
  const out: Record<string, number> = {};
  for (const split of ['dev', 'test'] as const) {
    const r = classificationAccuracy(model, tok, data[split], { maxLen: s.seqLen, batchSize: 32, weight, onBatch: (d, t) => progress(split, d, t) });
    out[`${split}_acc`] = r.accuracy;
    out[`${split}_n`] = r.n;
  }
  return out;
}
