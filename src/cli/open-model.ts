// Shared by the commands that read a model directory: loads it (loadModelDir's errors already
// name the file; we add which flag pointed there), builds the Model (asModel), and finds the
// tokenizer (the directory's tokenizer.json, or --tokenizer FILE). A student directory
// (quant/student.ts: quantization.json + model.quantized.safetensors) opens as the deployable
// model — quantized weights dequantized from their codes, activations fake-quantized through
// `weight` — or, with `latent`, as its latent full-precision weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
// Loading tensor/index.js sets up the kernel backends for every command that runs a model.
import '../tensor/index.js';
import { asModel, loadModelDir, type LoadedModel } from '../io/model-dir.js';
import { loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { archOf, headsOf, type Model } from '../models/model.js';
import type { WeightFn } from '../nn/params.js';
import type { SpecialIds } from '../models/architecture.js';
import { isStudentDir, loadStudent, type StudentQuant } from '../quant/student.js';
import { UsageError } from '../train/usage.js';

export interface OpenedModel {
  dir: string;
  loaded: LoadedModel;
  model: Model;
  /** The forward's WeightFn: a student's activation quantization; undefined = plain weights. */
  weight?: WeightFn;
  /** Set for a student directory: its quantization (config, weights, LSQ steps). */
  student?: StudentQuant;
  /** The student was opened with its latent full-precision weights. */
  latent?: boolean;
}

export function openModel(dir: string | undefined, opts: { latent?: boolean } = {}): OpenedModel {
  if (!dir) throw new Error('--model DIR is required (a Hugging Face model directory: config.json + model.safetensors)');
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs)) throw new Error(`--model ${dir}: ${abs} does not exist`);
  let loaded: LoadedModel;
  let weight: WeightFn | undefined;
  let student: StudentQuant | undefined;
  try {
    if (isStudentDir(abs)) {
      const s = loadStudent(abs, { latent: opts.latent });
      loaded = s.loaded;
      weight = s.weight ?? undefined;
      student = s.quant;
    } else {
      if (opts.latent) throw new Error(`--latent: ${abs} is not a student directory (no quantization.json); its weights are the only ones it has`);
      loaded = loadModelDir(abs);
    }
  } catch (e) {
    throw new Error(`--model ${dir}: cannot load the model: ${(e as Error).message}`);
  }
  const model = asModel(loaded);
  return { dir: abs, loaded, model, weight, student, latent: student ? !!opts.latent : undefined };
}

/** What the model is, for messages: "a LLaMA decoder", "a BERT encoder with a classifier head". */
export function describeModel(m: OpenedModel): string {
  const q = m.student ? (m.latent ? ', quantized student read as its latent weights' : `, quantized student (${m.student.weights.size} low-bit weights${m.student.activations ? `, ${m.student.activations.bits}-bit activations` : ''})`) : '';
  return `${archOf(m.model).describe(headsOf(m.model))}${q})`;
}

/** The tokenizer: --tokenizer FILE when given, else DIR/tokenizer.json. */
export function openTokenizer(m: OpenedModel, file: string | undefined): LoadedTokenizer {
  const p = file ?? m.loaded.tokenizerPath;
  if (!p) {
    throw new Error(`--model ${m.dir}: no tokenizer.json in the model directory; pass --tokenizer FILE (the Hugging Face tokenizer.json the model was trained with)`);
  }
  if (file && !fs.existsSync(file)) throw new Error(`--tokenizer ${file}: file not found; check the path`);
  if (file && !fs.statSync(file).isFile()) throw new Error(`--tokenizer ${file}: is a directory; pass the tokenizer.json file`);
  let tok: LoadedTokenizer;
  try {
    tok = loadTokenizer(p);
  } catch (e) {
    throw new Error(`${file ? `--tokenizer ${file}` : p}: cannot load the tokenizer: ${(e as Error).message}`);
  }
  const V = m.model.config.vocabSize;
  if (tok.vocabSize > V) {
    throw new Error(`${p}: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${V}; use the tokenizer the model was trained with`);
  }
  return tok;
}

/** The special-token ids config.json names (null where it names none). */
export function specialIds(m: OpenedModel): SpecialIds {
  return archOf(m.loaded.hf).specialIds(m.loaded.hf.meta);
}

/** The ids generation stops at: config.json's eos_token_id (one or a list), else the tokenizer's
 *  EOS; then any other generation_config.json names (instruct models list their end-of-turn
 *  tokens there, e.g. Phi-3.5's <|end|>, Llama 3's <|eot_id|>), as transformers' generate stops. */
export function eosIds(m: OpenedModel, tok: LoadedTokenizer): number[] {
  const e = specialIds(m).eos;
  const ids = Array.isArray(e) ? [...e] : e !== null ? [e] : tok.specials.eos === undefined ? [] : [tok.specials.eos];
  for (const id of generationConfigEos(m.dir, m.model.config.vocabSize)) if (!ids.includes(id)) ids.push(id);
  return ids;
}

/** generation_config.json's eos_token_id (one or a list; none when the file is absent). */
function generationConfigEos(dir: string, vocab: number): number[] {
  const file = path.join(dir, 'generation_config.json');
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return [];
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix or remove it`);
  }
  const v = (j as { eos_token_id?: unknown } | null)?.eos_token_id;
  if (v === undefined || v === null) return [];
  const ids = Array.isArray(v) ? v : [v];
  if (!ids.every((x) => Number.isSafeInteger(x) && x >= 0 && x < vocab)) {
    throw new Error(`${file}: "eos_token_id" must be a token id or a list of ids below vocab_size ${vocab}, got ${JSON.stringify(v)}; fix or remove it`);
  }
  return ids as number[];
}

export function positiveInt(flag: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}
