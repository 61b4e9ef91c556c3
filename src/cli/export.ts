// `kdqat export`: a model directory to a GGUF file for llama.cpp (the decoder families whose
// record has a GGUF layout; F32, F16, the
// llama.cpp block formats Q8_0/Q4_0/TQ2_0/Q2_K…Q6_K, see src/io/gguf.ts, or the Q4_K_M/Q5_K_M
// mixes, src/quant/kmix.ts), or re-saved as a model directory
// in half precision (safetensors F16/BF16).
// The model modules are imported when the command runs (see eval.ts).
import { Command } from 'commander';
import { JSON_HELP, printJson } from './options.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SaveDType } from '../io/model-dir.js';
import type { GgmlType, GgufEmbedType, GgufWeightType } from '../io/gguf.js';
import { FORMATS, FORMAT_LIST, formatOfRule, type FormatName } from '../quant/formats.js';
import type { KMixName } from '../quant/kmix.js';
import type { LlamaConfig } from '../models/llama.js';
import type { OpenedModel } from './open-model.js';
import { describeQuant, type WeightQuant } from '../quant/rules.js';
import { addError, describeError, exactTargets, halfRoundTrip, noError, type ErrorStats } from '../quant/exactness.js';

export interface ExportOptions {
  model?: string;
  format?: string;
  out?: string;
  dtype?: string;
  /** gguf: type of the projection matrices (f32, f16, q8_0, q4_0, tq2_0, q2_k…q6_k, q4_k_m, q5_k_m); --dtype is its alias. */
  type?: string;
  /** gguf: type of token_embd / output (f32, f16, q8_0). */
  embedType?: string;
  tokenizer?: string;
  /** gguf: tokenizer.ggml.pre (llama.cpp's pre-tokenizer name) instead of the detected one. */
  tokenizerPre?: string;
  force?: boolean;
  /** A student's latent full-precision weights instead of its deployed (dequantized) ones. */
  latent?: boolean;
  /** Allow a format that cannot hold the student's quantizer exactly; the error is reported. */
  lossy?: boolean;
  /** Where notes go (default: stderr). */
  onNote?: (note: string) => void;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('export a model directory: --format gguf (decoders, for llama.cpp), --format onnx (onnxruntime / transformers.js) or --format safetensors (half-precision model directory)')
    .requiredOption('--model <dir>', 'Hugging Face model directory')
    .requiredOption('--format <format>', 'gguf, onnx or safetensors')
    .requiredOption('--out <path>', 'FILE.gguf; FILE.onnx or a transformers.js model folder; or the output directory for safetensors')
    .option('--type <type>', 'gguf: type of the 7 projection matrices of every layer: f32, f16, q8_0, q4_0, tq2_0, q2_k … q6_k, or llama-quantize\'s mixes q4_k_m / q5_k_m (default f32; for a student on a llama.cpp grid its own format, exported losslessly)')
    .option('--embed-type <type>', 'gguf: type of token_embd and output: f32, f16 or q8_0 (default: as --type for f32/f16, else q8_0)')
    .option('--dtype <dtype>', 'safetensors: f16 (default; a student: f32, which holds its deployed weights exactly), bf16 or f32; gguf: same as --type; onnx FILE.onnx: quantized (a student\'s codes, its default), f32 or f16 (a folder holds f32 model.onnx and, for a student, model_quantized.onnx)')
    .option('--tokenizer <file>', 'tokenizer.json to use when the model directory has none (its tokenizer_config.json, if beside it, too)')
    .option('--tokenizer-pre <name>', 'gguf: llama.cpp pre-tokenizer name (tokenizer.ggml.pre, e.g. llama-bpe, qwen2, gpt-2, smollm) for a byte-level BPE tokenizer whose pre_tokenizer kdqat does not recognise; default: detected from tokenizer.json')
    .option('--latent', "a student directory: export its latent full-precision weights instead of the deployed (dequantized) ones")
    .option('--lossy', 'a student: allow a --type/--dtype that cannot hold its quantizer exactly (gguf: re-quantized; safetensors/onnx: rounded to f16/bf16), reporting the error (else refused, naming the formats that can)')
    .option('--force', 'replace an earlier kdqat output at --out (never an input, never a directory kdqat did not write)')
    .option('--json', JSON_HELP + ': {"out", "format", "model"}')
    .addHelpText('after', '\nExamples:\n  kdqat export --model out/llama --format gguf --out llama.gguf --type f16\n' +
      '  kdqat export --model out/student-q4_0 --format gguf --out student.gguf --type q4_0\n' +
      '  kdqat export --model out/bert-cls --format safetensors --dtype bf16 --out out/bert-cls-bf16\n' +
      '  kdqat export --model out/student-4bit --format onnx --out out/student-onnx      # transformers.js folder\n' +
      '  kdqat export --model out/student-4bit --format onnx --out student.onnx          # MatMulNBits')
    .action(async (opts: ExportOptions & { json?: boolean }) => {
      const out = await runExport(opts);
      if (opts.json) printJson({ out, format: opts.format, model: opts.model });
      else process.stdout.write(`wrote ${out}\n`);
    });
}

/** Where an export's notes go: opts.onNote, else stderr as `note: …`. */
const noteOf = (opts: ExportOptions) => opts.onNote ?? ((n: string): void => { process.stderr.write(`note: ${n}\n`); });

/** A rule kind's GGUF block format (the format table, quant/formats.ts), or undefined. */
const blockFormatOf = (kind: string): FormatName | undefined => formatOfRule(kind)?.name;

/** How the weights go into a GGUF; `lossy`: the student's weights it stores inexactly, with the
 *  type they are stored in (runExport reports their error). */
export interface GgufPlan { dtype: GgufWeightType; types: Map<string, GgmlType>; lossless: Set<string>; notes: string[]; lossy: Map<string, GgmlType> }

/** The refusal of a weight a format cannot hold (quant/exactness.ts lists the ones that can). */
function cannotHold(flag: string, what: string, q: WeightQuant, lossyAction: string): Error {
  return new Error(`${flag}: ${what}. Formats that hold ${describeQuant(q)} exactly: ` +
    `${exactTargets(q).join('; ')}; or pass --lossy to ${lossyAction} and report the error`);
}

/** How the weights go into the GGUF. A plain model: everything by `given` (default F32). A
 *  student (quant/student.ts) opens as its dequantized weights; each weight it quantized with a
 *  llama.cpp rule (q4_0 … q6_k) is written in that block format, which is lossless (checked
 *  while writing), and --type defaults to the projections' format. A --type that cannot hold a
 *  weight's quantizer (another block format; any block format for sym/asym/twn; F16 for values
 *  F16 cannot represent) is refused with the formats that can, unless `lossy`. */
export function studentPlan(m: OpenedModel, given: GgufWeightType | undefined, embedGiven: boolean, lossy = false): GgufPlan {
  const types = new Map<string, GgmlType>(), lossless = new Set<string>(), notes: string[] = [];
  const lossyW = new Map<string, GgmlType>();
  if (!m.student || m.latent) return { dtype: given ?? 'F32', types, lossless, notes, lossy: lossyW };
  const isHead = (W: string): boolean => W === 'lm_head.weight' || W === 'model.embed_tokens.weight';
  const block = new Map<string, FormatName>();
  const other = new Map<string, string>();
  for (const [W, e] of m.student.weights) {
    const f = blockFormatOf(e.quant.rule.kind);
    if (f) block.set(W, f); else other.set(W, e.quant.rule.kind);
  }
  const projFormats = new Set([...block].filter(([W]) => !isHead(W)).map(([, f]) => f));
  const dtype: GgufWeightType = given ?? (projFormats.size === 1 ? [...projFormats][0] : 'F32');
  const blockOut = dtype !== 'F32' && dtype !== 'F16';
  const quantOf = (W: string): WeightQuant => m.student!.weights.get(W)!.quant;
  for (const [W, f] of block) {
    if (blockOut && !isHead(W) && f !== dtype) {
      if (!lossy) {
        throw cannotHold(`--type ${dtype.toLowerCase()}`, `the student ${m.dir} has ${W} on the ${f} grid (quantization.json); ` +
          `${dtype} would re-quantize it`, quantOf(W), `re-quantize it to ${dtype}`);
      }
      lossyW.set(W, dtype);
      continue;
    }
    if (!blockOut || (isHead(W) && embedGiven)) continue;
    types.set(W, f);
    lossless.add(W);
  }
  if (blockOut && other.size) {
    const [W0, kind] = [...other][0];
    if (!lossy) {
      throw cannotHold(`--type ${dtype.toLowerCase()}`, `${other.size} weight(s) of the student ${m.dir} (${W0}, …) are quantized ` +
        `${describeQuant(quantOf(W0))} (${kind}), which no GGUF block type holds, so ${dtype} would re-quantize them`, quantOf(W0), `re-quantize them to ${dtype} round-to-nearest`);
    }
    for (const W of other.keys()) lossyW.set(W, isHead(W) ? 'Q8_0' : dtype);
    notes.push(`${other.size} weight(s) of ${m.dir} use ${[...new Set(other.values())].join(', ')} quantization; --lossy: they are ` +
      `re-quantized to ${dtype} round-to-nearest from their dequantized values`);
  }
  if (dtype === 'F16') {
    // F16 holds a deployed weight only if every value survives the round trip.
    for (const W of m.student.weights.keys()) {
      const w = m.loaded.params.get(W)!.f32;
      if (addError(noError(), w, halfRoundTrip(w, 'F16')).differing === 0) continue;
      if (!lossy) {
        throw cannotHold('--type f16', `the deployed values of ${W} are not all representable in F16`, quantOf(W), 'round them to F16');
      }
      lossyW.set(W, 'F16');
    }
  }
  if (m.student.activations) {
    notes.push(`the student's ${m.student.activations.bits}-bit activation quantization is not stored in GGUF; ` +
      'llama.cpp quantizes Linear inputs to 8 bits (Q8_0 / Q8_K) on its own');
  }
  return { dtype, types, lossless, notes, lossy: lossyW };
}

// --type values for gguf (the block types of io/gguf.ts GGUF_WEIGHT_TYPES, and llama-quantize's
// mixed K-quant recipes of quant/kmix.ts), listed here so that a typo fails before loading.
const GGUF_TYPES = ['F32', 'F16', ...FORMAT_LIST.map((f) => f.name)];
const MIXES = ['Q4_K_M', 'Q5_K_M'] as const;

/** --type q4_k_m / q5_k_m: llama-quantize's type per tensor (quant/kmix.ts). A student's weight on
 *  a llama.cpp grid must be on the type the recipe gives that tensor (kMixQuantConfig trains so);
 *  it is then written losslessly (checked). --embed-type, when given, sets token_embd/output. */
function mixPlan(m: OpenedModel, mix: KMixName, embedGiven: boolean, kMixTypes: (cfg: LlamaConfig, mix: KMixName) => Map<string, string>,
  lossy = false): GgufPlan {
  const types = kMixTypes(m.loaded.hf.config as LlamaConfig, mix) as Map<string, GgmlType>;
  if (embedGiven) for (const W of ['model.embed_tokens.weight', 'lm_head.weight']) types.delete(W);
  const lossless = new Set<string>(), notes: string[] = [], lossyW = new Map<string, GgmlType>();
  for (const [W, e] of m.student && !m.latent ? m.student.weights : []) {
    const f = blockFormatOf(e.quant.rule.kind), t = types.get(W);
    if (f && f === t) {
      lossless.add(W);
      continue;
    }
    if (!lossy) {
      throw cannotHold(`--type ${mix.toLowerCase()}`, f
        ? `the student ${m.dir} has ${W} on the ${f} grid, but ${mix} stores it as ${types.get(W) ?? 'its --embed-type'} ` +
          `(train with kMixQuantConfig, quant/kmix.ts, for a lossless ${mix})`
        : `the student ${m.dir} has ${W} quantized ${describeQuant(e.quant)}, which ${mix} re-quantizes to ${t ?? 'its --embed-type'}`,
      e.quant, `re-quantize it to ${t ?? 'the --embed-type'}`);
    }
    lossyW.set(W, t ?? 'Q8_0');
  }
  if (lossyW.size) notes.push(`--lossy: ${lossyW.size} weight(s) of ${m.dir} are not on the grid ${mix} gives them; they are re-quantized round-to-nearest`);
  return { dtype: mix === 'Q4_K_M' ? 'Q4_K' : 'Q5_K', types, lossless, notes, lossy: lossyW };
}

/** The error of the lossy weights of a plan: the student's deployed weights vs what the file
 *  stores (a row permutation, as for q/k in GGUF, changes no block, so rows are taken as they are). */
async function lossyError(m: OpenedModel, lossy: ReadonlyMap<string, GgmlType>): Promise<ErrorStats> {
  const { quantizeTensor } = await import('../io/gguf.js');
  const e = noError();
  for (const [W, t] of lossy) {
    const p = m.loaded.params.get(W)!;
    const [rows, cols] = p.shape;
    const stored = t === 'F16' ? halfRoundTrip(p.f32, t)
      : t === 'F32' ? p.f32 : FORMATS[t as FormatName].dequantizeRef(quantizeTensor(t as FormatName, p.f32, rows, cols, W));
    addError(e, p.f32, stored);
  }
  return e;
}

/** Returns the absolute path written. */
export async function runExport(opts: ExportOptions): Promise<string> {
  const format = (opts.format ?? '').toLowerCase();
  if (format !== 'gguf' && format !== 'safetensors' && format !== 'onnx') throw new Error(`--format must be gguf, onnx or safetensors, got ${JSON.stringify(opts.format)}`);
  if (!opts.out) throw new Error('--out is required');
  if (format === 'onnx') return runOnnxExport(opts);
  if (format === 'gguf' && opts.type && opts.dtype && opts.type.toLowerCase() !== opts.dtype.toLowerCase()) {
    throw new Error(`--type ${opts.type} and --dtype ${opts.dtype} disagree; for gguf --dtype is an alias of --type, give one`);
  }
  if (format !== 'gguf' && (opts.type || opts.embedType)) throw new Error(`--type/--embed-type are for --format gguf; safetensors takes --dtype`);
  if (format !== 'gguf' && opts.tokenizerPre) throw new Error('--tokenizer-pre is for --format gguf (it names the pre-tokenizer llama.cpp runs)');
  if (opts.tokenizerPre !== undefined) {
    const { checkTokenizerPre } = await import('../io/gguf_pretokenizer.js');
    checkTokenizerPre(opts.tokenizerPre); // before loading the model
  }
  const flag = format === 'gguf' && opts.type ? '--type' : '--dtype';
  const given = format === 'gguf' ? opts.type ?? opts.dtype : opts.dtype;
  // gguf without --type: F32, or a student's own block format (decided once it is loaded).
  const dtype = (given ?? '').toUpperCase(); // unset: decided once the model is loaded
  const allowed = format === 'gguf' ? [...GGUF_TYPES, ...MIXES] : ['F16', 'BF16', 'F32'];
  if (dtype && !allowed.includes(dtype)) throw new Error(`${flag} ${given}: ${format} export supports ${allowed.map((d) => d.toLowerCase()).join(', ')}`);
  const embedType = opts.embedType?.toUpperCase();
  if (embedType !== undefined && !['F32', 'F16', 'Q8_0'].includes(embedType)) {
    throw new Error(`--embed-type ${opts.embedType}: token_embd/output can be f32, f16 or q8_0`);
  }
  const out = path.resolve(opts.out);
  // Checked before loading, which can take a while for a large model.
  if (fs.existsSync(out) && !opts.force) throw new Error(`--out ${opts.out}: ${out} already exists; pass --force to replace it`);
  await checkExportOut(opts, format === 'gguf' ? 'file' : 'dir');
  const { describeModel, openModel } = await import('./open-model.js');
  const { exportLlamaGguf } = await import('../io/gguf.js');
  const { saveModelDir } = await import('../io/model-dir.js');
  const m = openModel(opts.model, { latent: opts.latent });
  const note = noteOf(opts);
  if (opts.tokenizer && !fs.existsSync(opts.tokenizer)) throw new Error(`--tokenizer ${opts.tokenizer}: file not found`);
  const tokFile = opts.tokenizer ?? m.loaded.tokenizerPath;
  const tokenizerJson = tokFile ? (await import('../io/files.js')).readFileChecked(tokFile, 'utf8') : undefined;
  // tokenizer_config.json beside the tokenizer.json used: special tokens, add_bos_token, chat_template.
  const { readTokenizerConfig } = await import('../io/tokenizer_config.js');
  // A template kept in chat_template.jinja / .json goes along as "chat_template" (GGUF, ONNX, safetensors).
  const { withChatTemplateFile } = await import('../io/chat-template.js');
  const tokenizerConfig = tokFile ? withChatTemplateFile(readTokenizerConfig(tokFile), path.dirname(tokFile)) : null;

  if (format === 'gguf') {
    const hf = m.loaded.hf;
    const { architecture } = await import('../models/registry.js');
    if (!architecture(hf.arch).gguf) {
      throw new Error(`--model ${m.dir} is ${describeModel(m)}: GGUF export is for the decoder families llama.cpp runs (llama.cpp runs no encoders from kdqat); use --format safetensors`);
    }
    if (!tokenizerJson) throw new Error(`--model ${m.dir}: no tokenizer.json in the model directory, and GGUF embeds the vocabulary; pass --tokenizer FILE`);
    const plan = (MIXES as readonly string[]).includes(dtype)
      ? mixPlan(m, dtype as KMixName, embedType !== undefined, (await import('../quant/kmix.js')).kMixTypes, opts.lossy)
      : studentPlan(m, (dtype || undefined) as GgufWeightType | undefined, embedType !== undefined, opts.lossy);
    for (const n of plan.notes) note(n);
    if (plan.lossy.size) {
      const kinds = [...new Set(plan.lossy.values())].join(', ');
      note(`--lossy: ${plan.lossy.size} weight(s) stored as ${kinds}, not exactly the student's deployed weights: ${describeError(await lossyError(m, plan.lossy))}`);
    } else if (m.student && !m.latent) {
      note(`the GGUF holds the student's ${m.student.weights.size} quantized weight(s) exactly`);
    }
    try {
      const notes = exportLlamaGguf(out, {
        config: hf, params: m.loaded.params, tokenizerJson, tokenizerConfig, pre: opts.tokenizerPre,
        force: opts.force, defaultName: path.basename(m.dir),
        dtype: plan.dtype, embedType: embedType as GgufEmbedType | undefined, types: plan.types, lossless: plan.lossless,
      });
      for (const n of notes) note(n);
    } catch (e) {
      throw new Error(`export to ${out} failed: ${(e as Error).message}`);
    }
    return out;
  }
  // A student: its deployed (dequantized) weights, F32 by default (exact); F16/BF16 only if they
  // hold every deployed value, or with --lossy. --latent: the latent weights, F16 by default.
  const sdtype = (given ? dtype : m.student && !m.latent ? 'F32' : 'F16') as SaveDType;
  if (m.student && !m.latent && sdtype !== 'F32') {
    const e = noError();
    let first: [string, WeightQuant] | null = null;
    for (const [W, s] of m.student.weights) {
      const w = m.loaded.params.get(W)!.f32;
      const before = e.differing;
      addError(e, w, halfRoundTrip(w, sdtype as 'F16' | 'BF16'));
      if (e.differing > before && !first) first = [W, s.quant];
    }
    if (first && !opts.lossy) {
      throw cannotHold(`--dtype ${sdtype.toLowerCase()}`, `the deployed values of ${first[0]} (and ${describeError(e)} over all quantized weights) ` +
        `are not all representable in ${sdtype}`, first[1], `round them to ${sdtype}`);
    }
    note(first ? `--lossy: ${sdtype} rounds the student's deployed weights: ${describeError(e)}`
      : `${sdtype} holds the student's deployed (dequantized) weights exactly`);
  }
  if (m.student?.activations && !m.latent) {
    note(`the student's ${m.student.activations.bits}-bit activation quantization is not part of a Hugging Face model directory; the weights are`);
  }
  saveModelDir(out, {
    config: m.loaded.hf, params: m.loaded.params, tokenizerJson, tokenizerConfig, companionsFrom: tokFile ? path.dirname(tokFile) : m.dir, dtype: sdtype, force: opts.force,
  });
  return out;
}

/** --out is never the model, a file in it or its tokenizer, and --force replaces only kdqat's own
 *  output (io/outputs.ts). */
async function checkExportOut(opts: ExportOptions, kind: 'file' | 'dir'): Promise<void> {
  const { checkOutput } = await import('../io/outputs.js');
  checkOutput(opts.out!, {
    kind, force: opts.force, legacy: ['quantization.json'],
    inputs: [{ flag: '--model', path: opts.model }, { flag: '--tokenizer', path: opts.tokenizer }],
  });
}

/** --format onnx: FILE.onnx (one graph, --dtype) or a transformers.js model folder (io/onnx-export.ts). */
async function runOnnxExport(opts: ExportOptions): Promise<string> {
  if (opts.type || opts.embedType || opts.tokenizerPre) throw new Error('--type/--embed-type/--tokenizer-pre are for --format gguf; onnx takes --dtype');
  const out = path.resolve(opts.out!);
  const file = out.endsWith('.onnx');
  const { ONNX_DTYPES, checkExact, exportOnnxFile, exportOnnxFolder } = await import('../io/onnx-export.js');
  const dtype = opts.dtype?.toLowerCase();
  if (dtype !== undefined && !(ONNX_DTYPES as readonly string[]).includes(dtype)) throw new Error(`--dtype ${opts.dtype}: onnx export supports ${ONNX_DTYPES.join(', ')}`);
  if (!file && dtype !== undefined) throw new Error(`--dtype ${opts.dtype}: a model folder always holds onnx/model.onnx (f32) and, for a student, onnx/model_quantized.onnx; give --out FILE.onnx for one graph in another dtype`);
  if (fs.existsSync(out) && !opts.force) throw new Error(`--out ${opts.out}: ${out} already exists; pass --force to replace it`);
  await checkExportOut(opts, file ? 'file' : 'dir');
  const { openModel } = await import('./open-model.js');
  const m = openModel(opts.model);
  const student = m.student && !m.latent ? m.student : null;
  const input = { model: m.model, student };
  if (file) {
    const d = (dtype ?? (student ? 'quantized' : 'f32')) as import('../io/onnx-export.js').OnnxDType;
    const note = noteOf(opts);
    for (const n of checkExact(input, d, !!opts.lossy)) note(n);
    exportOnnxFile(out, input, d, { force: opts.force });
    return out;
  }
  if (opts.lossy) throw new Error('--lossy: a model folder is f32 and quantized only, both exact; nothing is lossy');
  if (opts.tokenizer && !fs.existsSync(opts.tokenizer)) throw new Error(`--tokenizer ${opts.tokenizer}: file not found`);
  const tokFile = opts.tokenizer ?? m.loaded.tokenizerPath;
  const { readTokenizerConfig } = await import('../io/tokenizer_config.js');
  const { withChatTemplateFile } = await import('../io/chat-template.js');
  exportOnnxFolder(out, input, {
    hf: m.loaded.hf, tokenizerJson: tokFile ? (await import('../io/files.js')).readFileChecked(tokFile, 'utf8') : undefined,
    // transformers.js reads the template from tokenizer_config.json: one kept in chat_template.jinja goes in too.
    tokenizerConfig: tokFile ? withChatTemplateFile(readTokenizerConfig(tokFile), path.dirname(tokFile)) : null,
    companionsFrom: tokFile ? path.dirname(tokFile) : m.dir, force: opts.force,
  });
  return out;
}
