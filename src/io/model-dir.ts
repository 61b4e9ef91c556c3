// Hugging Face model directories, as PreTrainedModel.save_pretrained writes them:
//   config.json                    (hf-config.ts)
//   model.safetensors              HF parameter names, metadata {"format": "pt"}; tied weights
//                                  (lm_head with tie_word_embeddings, the BERT MLM decoder) are not
//                                  stored, as save_pretrained drops shared tensors;
//   or model-0000k-of-0000N.safetensors + model.safetensors.index.json {"metadata", "weight_map"}
//   tokenizer.json, tokenizer_config.json, generation_config.json (causal LMs).
//   .kdqat-output                  the marker of a directory kdqat wrote (io/outputs.ts): --force
//                                  replaces only directories that have it
// Saving is atomic: everything goes into a temp directory next to the target, which is then
// renamed into place; an existing directory is replaced only with `force`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import type { Params } from '../nn/params.js';
import { archOf, headsOfConfig, modelOf, type ArchName, type Model } from '../models/registry.js';
import { fusedOf, splitRows, stackRows, storedLayout } from '../models/fused.js';
import { checkFinite, openSafetensors, writeSafetensors, type SafetensorsFile, type WriteTensor } from './safetensors.js';
import { checkTokenizerJson } from '../tokenize/io.js';
import { readTokenizerConfig } from './tokenizer_config.js';
import { checkShardName, modelFile, readModelJson, readModelText, unsafeWeightFiles } from './model-files.js';
import { tokenizerFromLegacyFiles } from './tokenizer-from-vocab.js';
import { isObj } from '../models/config-reader.js';
import { configText, formatHfJson, hfConfigJson, readHfConfig, type HfModelConfig } from './hf-config.js';
import { checkOutput, removeStaleTemps, writeMarker } from './outputs.js';
import { crashPoint } from './test-hooks.js';
import { parseTokenizerJson, tokenizerConfigJson, tokenizerVocabSize, type TokenizerInfo } from './gguf_tokenizer.js';
import { companionFiles } from './companions.js';

export type SaveDType = 'F32' | 'F16' | 'BF16';

/** A config to save: meta (special token ids, labels, dtype) may be partial or left out. */
export type SaveConfig =
  | HfModelConfig
  | { [K in ArchName]: { arch: K; config: Extract<HfModelConfig, { arch: K }>['config']; meta?: Partial<Extract<HfModelConfig, { arch: K }>['meta']> } }[ArchName];

export interface SaveModelOptions {
  config: SaveConfig;
  params: Params;
  /** tokenizer.json, as text or parsed JSON. */
  tokenizerJson?: string | object;
  /** The source's tokenizer_config.json (parsed): its fields are kept in the one written
   *  (chat_template, add_bos_token, special tokens, ...), see tokenizer_config.ts. */
  tokenizerConfig?: Record<string, unknown> | null;
  /** The source directory whose companion files the saved model carries over (companions.ts): the
   *  chat template files beside its tokenizer, and its generation_config.json (sampling defaults
   *  and stop ids), which replaces the one written from config.json. */
  companionsFrom?: string;
  dtype?: SaveDType;
  force?: boolean;
  /** Writes more files into the directory before it is published (a student's quantized
   *  weights, quant/student.ts); gets the temp directory's path. */
  extra?: (dir: string) => void;
}

export interface LoadedModel {
  arch: ArchName;
  config: HfModelConfig['config'];
  hf: HfModelConfig;
  /** float32, requiresGrad true, named by HF parameter name. */
  params: Params;
  tokenizerPath?: string;
}

const TORCH_DTYPE: Record<SaveDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

function fullConfig(c: SaveConfig, dtype: SaveDType): HfModelConfig {
  const torchDtype = TORCH_DTYPE[dtype];
  return { arch: c.arch, config: c.config, meta: { ...archOf(c).config.defaultMeta(c.meta), torchDtype } } as HfModelConfig;
}

/** The parameter table of a config (HF names → shapes). */
export function paramSpecOf(c: HfModelConfig): Map<string, { shape: number[] }> {
  return archOf(c).paramSpec(c.config, headsOfConfig(c));
}

/** The trainable Model of a loaded directory (heads from its config.json), with its own
 *  parameters or `params` (a student's copy). The one place a directory becomes a Model. */
export function asModel(loaded: LoadedModel, params: Params = loaded.params): Model {
  return modelOf(loaded.hf, params);
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function checkTokenizer(t: TokenizerInfo, vocabSize: number, cfgFile: string): void {
  const n = tokenizerVocabSize(t);
  if (n > vocabSize) {
    throw new Error(`${t.file}: the tokenizer has ${n} tokens but ${cfgFile} has vocab_size ${vocabSize}; ` +
      `the embedding needs a row per token: raise vocab_size (and resize the embeddings) or use the model's own tokenizer`);
  }
}

/** Writes a model directory atomically (see top). */
export function saveModelDir(dir: string, opts: SaveModelOptions): void {
  const abs = path.resolve(dir);
  const dtype = opts.dtype ?? 'F32';
  if (!(dtype in TORCH_DTYPE)) throw new Error(`${abs}: dtype ${dtype} is not one of F32, F16, BF16`);
  if (fs.existsSync(abs) && !opts.force) throw new Error(`${abs}: already exists; refusing to overwrite it (use --force)`);
  // With force, only a directory kdqat wrote (it has the marker; a student of an older kdqat its
  // quantization.json) is replaced; never a file, never someone else's directory.
  checkOutput(abs, { flag: '', kind: 'dir', force: opts.force, legacy: ['quantization.json'] });
  const hf = fullConfig(opts.config, dtype);
  const spec = paramSpecOf(hf);
  for (const [name, { shape }] of spec) {
    const p = opts.params.get(name);
    if (!p) throw new Error(`${abs}: parameter "${name}" is missing from the model being saved`);
    if (!sameShape(p.shape, shape)) throw new Error(`${abs}: parameter "${name}" has shape ${fmt(p.shape)}, the config needs ${fmt(shape)}`);
  }
  // The checkpoint layout: fused families (Phi-3) stack their parts back (models/fused.ts).
  const tensors = new Map<string, WriteTensor>();
  for (const [name, { shape, parts }] of storedLayout(spec, fusedOf(archOf(hf), hf.config))) {
    tensors.set(name, { shape, data: parts ? stackRows(parts.map((q) => opts.params.get(q.name)!.f32)) : opts.params.get(name)!.f32 });
  }
  const extra = [...opts.params.keys()].filter((n) => !spec.has(n));
  if (extra.length) {
    throw new Error(`${abs}: ${extra.length} parameter(s) are not part of the Hugging Face ${hf.arch} model ` +
      `(${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}); fold or drop them before saving`);
  }
  let tok: { info: TokenizerInfo; text: string; raw: Record<string, unknown> } | null = null;
  if (opts.tokenizerJson !== undefined) {
    const text = typeof opts.tokenizerJson === 'string' ? opts.tokenizerJson : JSON.stringify(opts.tokenizerJson, null, 2);
    const info = parseTokenizerJson(text, 'tokenizer.json');
    checkTokenizer(info, hf.config.vocabSize, 'config.json');
    tok = { info, text, raw: JSON.parse(text) };
  }

  fs.mkdirSync(path.dirname(abs), { recursive: true });
  // What an earlier writer of this directory left when it was killed.
  removeStaleTemps(path.dirname(abs), `.${path.basename(abs)}.tmp-`);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(tmp);
  try {
    writeText(path.join(tmp, 'config.json'), configText(opts.config, hfConfigJson(hf)));
    const carried = companionFiles(opts.companionsFrom, !!tok);
    for (const [name, json] of Object.entries(archOf(hf).config.extraFiles?.(hf.meta) ?? {})) writeText(path.join(tmp, name), carried.get(name) ?? formatHfJson(json));
    for (const [name, text] of carried) if (name !== 'generation_config.json') writeText(path.join(tmp, name), text);
    writeSafetensors(path.join(tmp, 'model.safetensors'), tensors, { dtype, metadata: { format: 'pt' } });
    crashPoint('model-dir:model.safetensors');
    if (tok) {
      writeText(path.join(tmp, 'tokenizer.json'), tok.text);
      writeText(path.join(tmp, 'tokenizer_config.json'), formatHfJson(tokenizerConfigJson(hf, tok.info, tok.raw, opts.tokenizerConfig)));
    }
    opts.extra?.(tmp);
    writeMarker(tmp);
    fsyncDir(tmp);
    publishDir(tmp, abs, !!opts.force);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(path.dirname(abs));
}

function writeText(file: string, text: string): void {
  const fd = fs.openSync(file, 'wx');
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch { /* not every platform can fsync a directory */ }
}

/** Renames tmp → target; with force an existing target is first moved aside, then removed. */
function publishDir(tmp: string, target: string, force: boolean): void {
  if (!fs.existsSync(target)) {
    try {
      return fs.renameSync(tmp, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error(`${target}: already exists; refusing to overwrite it (use --force)`);
      throw e;
    }
  }
  if (!force) throw new Error(`${target}: already exists; refusing to overwrite it (use --force)`);
  const old = `${tmp}.old`;
  fs.renameSync(target, old);
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.renameSync(old, target);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

// ---- loading ------------------------------------------------------------------------------------

/** Buffers HF may store that are not parameters (rotary inv_freq, BERT position_ids) and heads
 *  kdqat does not model (BERT's next-sentence head); skipped on load. */
const IGNORED = [/(^|\.)rotary_emb\.inv_freq$/, /(^|\.)position_ids$/, /^cls\.seq_relationship\./];

interface Located { file: SafetensorsFile; name: string }

/** Opens model.safetensors or the shards of model.safetensors.index.json: stored name → file.
 *  Every path is checked to stay inside the directory (model-files.ts). */
function openWeights(dir: string): { where: Map<string, Located>; files: SafetensorsFile[]; label: string } {
  const where = new Map<string, Located>();
  const single = modelFile(dir, 'model.safetensors');
  if (single) {
    const f = openSafetensors(single);
    for (const n of f.names()) where.set(n, { file: f, name: n });
    return { where, files: [f], label: single };
  }
  const index = modelFile(dir, 'model.safetensors.index.json');
  if (!index) {
    const unsafe = unsafeWeightFiles(dir);
    if (unsafe.length) {
      throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json, only ${unsafe.join(', ')}: PyTorch/TensorFlow/Flax checkpoints, ` +
        'which kdqat never opens (unpickling can run code); convert them to safetensors first (transformers: ' +
        'model.save_pretrained(dir, safe_serialization=True))');
    }
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json; a model directory needs its weights as safetensors`);
  }
  const j = readModelJson(index, 'an object {"weight_map": {tensor name: shard file}}');
  const map = (j as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new Error(`${index}: no "weight_map" object; it must be {"weight_map": {tensor name: shard file}}: fix it or re-save the model`);
  }
  const files = new Map<string, SafetensorsFile>();
  try {
    for (const [name, value] of Object.entries(map)) {
      const shard = checkShardName(index, name, value);
      let f = files.get(shard);
      if (!f) {
        const p = modelFile(dir, shard, `the model directory (${path.basename(index)} names it)`);
        if (!p) throw new Error(`${index}: weight_map lists shard ${shard} for "${name}", but ${path.join(dir, shard)} is missing; download it or fix weight_map`);
        f = openSafetensors(p);
        files.set(shard, f);
      }
      if (!f.infos.has(name)) throw new Error(`${f.path}: has no tensor "${name}", which ${index} says is in it; fix weight_map or re-save the model`);
      where.set(name, { file: f, name });
    }
  } catch (e) {
    for (const f of files.values()) f.close();
    throw e;
  }
  return { where, files: [...files.values()], label: index };
}

/** The size keys of a config.json (for a shape mismatch: one of them disagrees with the weights). */
function sizeKeys(hf: HfModelConfig): string {
  const j = hfConfigJson(hf) as Record<string, unknown>;
  const keys = Object.keys(j).filter((k) => /(_size|_heads|_layers|^head_dim|_embeddings|^num_labels)$/.test(k) && typeof j[k] === 'number').sort();
  const labels = isObj(j.id2label) ? [`id2label: ${Object.keys(j.id2label).length} labels`] : [];
  return [...keys.map((k) => `${k} ${j[k]}`), ...labels].join(', ');
}

/** Special-token ids config.json names must index the embedding (else generation reads past it). */
function checkSpecialIds(hf: HfModelConfig, cfgFile: string): void {
  const V = hf.config.vocabSize;
  const ids = archOf(hf).specialIds(hf.meta) as unknown as Record<string, number | number[] | null>;
  for (const [role, v] of Object.entries(ids)) {
    for (const id of v === null ? [] : ([] as number[]).concat(v)) {
      if (!(id < V)) {
        throw new Error(`${cfgFile}: "${role}_token_id" ${id} is outside the vocabulary (vocab_size ${V}: ids 0…${V - 1}); ` +
          `set it to the tokenizer's ${role} token id (or null)`);
      }
    }
  }
}

const equalData = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Loads a Hugging Face model directory (see top) into float32 parameters. */
export function loadModelDir(dir: string): LoadedModel {
  const abs = path.resolve(dir);
  if (!fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${abs}: not a directory`);
  const cfgFile = path.join(abs, 'config.json');
  modelFile(abs, 'config.json');
  let hf = readHfConfig(cfgFile);
  checkSpecialIds(hf, cfgFile);
  const { where: stored, files, label } = openWeights(abs);
  try {
    // The family's name quirks (stored name → HF name), then its head from the tensors when
    // config.json names no class.
    const rec = archOf(hf);
    const rename = rec.load.renamer?.([...stored.keys()]) ?? ((n: string) => n);
    const where = new Map<string, Located>();
    for (const [stName, loc] of stored) where.set(rename(stName), loc);
    if (rec.load.fromTensors) {
      const shapes = new Map([...where].map(([n, l]) => [n, l.file.info(l.name).shape]));
      const fixed = rec.load.fromTensors(hf.config, hf.meta, shapes);
      if (fixed) hf = { arch: hf.arch, ...fixed } as HfModelConfig;
    }
    const spec = paramSpecOf(hf);
    const params: Params = new Map();
    const missing: string[] = [];
    // Fused tensors (Phi-3's qkv_proj, gate_up_proj) are read whole and split into their parts.
    const fusedNames = new Set<string>();
    const fromFused = new Map<string, Tensor>();
    for (const [fname, { shape, parts }] of storedLayout(spec, fusedOf(rec, hf.config))) {
      const loc = parts && where.get(fname);
      if (!parts || !loc) continue;
      fusedNames.add(fname);
      const info = loc.file.info(loc.name);
      if (!['F32', 'F16', 'BF16'].includes(info.dtype)) throw new Error(`${loc.file.path}: tensor "${loc.name}" has dtype ${info.dtype}; weights must be F32, F16 or BF16`);
      if (!sameShape(info.shape, shape)) {
        throw new Error(`${loc.file.path}: tensor "${loc.name}" has shape ${fmt(info.shape)} but ${cfgFile} implies ${fmt(shape)} ` +
          `(${parts.map((p) => `${p.name.split('.').slice(-2, -1)[0]} ${p.rows}`).join(' + ')} rows; ${sizeKeys(hf)}); fix the config.json key that disagrees, or use the weights it was saved with`);
      }
      const whole = loc.file.read(loc.name).data as Float32Array;
      checkFinite(whole, loc.file.path, loc.name, shape);
      const pieces = splitRows(whole, parts, shape[1]);
      parts.forEach((p, i) => {
        const t = new Tensor(pieces[i], [p.rows, shape[1]], true);
        t.name = p.name;
        fromFused.set(p.name, t);
      });
    }
    for (const [name, { shape }] of spec) {
      const part = fromFused.get(name);
      if (part) { params.set(name, part); continue; }
      const loc = where.get(name);
      if (!loc) { missing.push(name); continue; }
      const info = loc.file.info(loc.name);
      if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
        throw new Error(`${loc.file.path}: tensor "${loc.name}" has dtype ${info.dtype}; weights must be F32, F16 or BF16: convert the checkpoint`);
      }
      if (!sameShape(info.shape, shape)) {
        throw new Error(`${loc.file.path}: tensor "${loc.name}" has shape ${fmt(info.shape)} but ${cfgFile} implies ${fmt(shape)} ` +
          `(${sizeKeys(hf)}); fix the config.json key that disagrees, or use the weights it was saved with`);
      }
      const data = loc.file.read(loc.name).data as Float32Array;
      checkFinite(data, loc.file.path, loc.name, shape);
      const t = new Tensor(data, shape, true);
      t.name = name;
      params.set(name, t);
    }
    if (missing.length) {
      let hint = '';
      if (missing.includes('lm_head.weight')) hint = '; if the output head is tied to the embeddings, set "tie_word_embeddings": true in config.json';
      throw new Error(`${label}: missing ${missing.length} tensor(s) ${cfgFile} needs: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}${hint || `; check num_hidden_layers and the other keys of config.json (${sizeKeys(hf)}), or the checkpoint is incomplete: re-save it`}`);
    }
    // Extra tensors: tied copies are checked and dropped, known buffers skipped, others refused.
    const tied = rec.load.tied;
    const unknown: string[] = [];
    for (const [name, loc] of where) {
      if (spec.has(name) || fusedNames.has(name) || IGNORED.some((re) => re.test(name))) continue;
      const src = tied[name];
      if (src && params.has(src)) {
        const a = loc.file.read(loc.name).data as Float32Array;
        if (!equalData(a, params.get(src)!.f32)) {
          throw new Error(`${loc.file.path}: "${loc.name}" differs from "${src}", but kdqat ties them ` +
            `(${rec.load.tiedReason(name)}); untied heads are not supported`);
        }
        continue;
      }
      if (rec.load.skip?.(name, hf.meta)) continue;
      unknown.push(loc.name);
    }
    if (unknown.length) {
      throw new Error(`${label}: ${unknown.length} tensor(s) are not part of a ${hf.arch} model with this config.json ` +
        `(${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}); check "architectures", num_hidden_layers and the other keys of ${cfgFile} (${sizeKeys(hf)})`);
    }
    // Without tokenizer.json, the slow tokenizer's files (many fine-tuned BERTs ship only vocab.txt).
    const legacy = archOf(hf).legacyTokenizer;
    const own = modelFile(abs, 'tokenizer.json');
    const built = own || !legacy ? null : tokenizerFromLegacyFiles(abs, legacy);
    const tokFile = own ?? built?.path ?? null;
    const tokName = built?.from ?? tokFile;  // what messages call it: the user's files, not a temp path
    let tokenizerPath: string | undefined;
    if (tokFile) {
      modelFile(abs, 'tokenizer_config.json');
      const text = readModelText(tokFile);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new Error(`${tokFile}: not valid JSON (${(e as Error).message}); use the model's own tokenizer.json (re-save or re-download it)`);
      }
      // The checks the tokenizer loader makes, so that commands that only copy the tokenizer
      // (quantize, export) refuse one that eval could not run.
      checkTokenizerJson(json, tokName!);
      const info = parseTokenizerJson(json, tokName!);
      checkTokenizer(info, hf.config.vocabSize, cfgFile);
      // Checked now, so a command that writes it at the end (qat, finetune) does not fail there.
      readTokenizerConfig(tokFile);
      tokenizerPath = tokFile;
    }
    return { arch: hf.arch, config: hf.config, hf, params, tokenizerPath };
  } finally {
    for (const f of files) f.close();
  }
}
