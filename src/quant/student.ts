// A student directory: what `kdqat quantize` and `kdqat qat` write, and `kdqat eval` reads.
//
//   config.json, model.safetensors, generation_config.json, tokenizer*.json
//       a plain Hugging Face model directory (io/model-dir.ts) of the LATENT weights, F32, tied
//       weights tied as in the source model; any HF tool loads it as a full-precision model.
//   quantization.json
//       {"format": "kdqat-quantization", "version": 1,
//        "config": <the QuantConfig, parseQuantConfig's JSON format>,
//        "weights": {"<stored name>": {"param": "<WeightFn name>", "shape": [out, in], "quant": <WeightQuant>}}}
//   model.quantized.safetensors — the deployable low-bit weights; for each quantized weight W
//   (its stored name, = the HF parameter name; a tied LLaMA head is stored as lm_head.weight):
//       W.codes   I8 (sym, twn: signed codes q) or U8 (asym: q + z ∈ [0, 2^b−1]; llama.cpp rules:
//                 quant-ops' code convention), shape [out, in], row-major
//       W.scales  F32, one per granule in quant-ops' granule order (row-major: [out] per channel,
//                 [out, in/g] per group, [1] per tensor)
//       W.zeros   I32, same shape as scales (asym only)
//       W.mins    F32, same shape as scales (K-quants with mins: q2_k, q4_k, q5_k; kunpack.ts)
//       W.step    F32, the trained LSQ step (LSQ weights only; scales are derived from it)
//     __metadata__: {"format": "kdqat-quantized", "version": "1", "W": JSON of W's WeightQuant,
//                   "activations": JSON of {bits, clip} or "null"}
//   The dequantized weight is rules.ts dequantizeCodes(codes, scales, zeros) — bitwise the
//   fake-quantized weight QAT trained through.
//
// Loading (loadStudent): the model whose quantized weights are the dequantized codes (what is
// deployed, what `kdqat eval` measures), plus the activation quantizer as a WeightFn; with
// `latent`, the latent full-precision weights. A tied LLaMA head that was quantized is untied on
// load: lm_head.weight = the dequantized head, model.embed_tokens.weight stays full precision
// (the embedding lookup is never quantized; prepare.ts explains the name collision).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { archOf, headsOf, type Model } from '../models/model.js';
import type { Params, WeightFn } from '../nn/params.js';
import { Tensor } from '../tensor/tensor.js';
import { loadModelDir, saveModelDir, type LoadedModel, type SaveConfig } from '../io/model-dir.js';
import type { HfModelConfig } from '../io/hf-config.js';
import { openSafetensors, writeSafetensors, type WriteTensor } from '../io/safetensors.js';
import { atomicWrite } from '../io/atomic.js';
import { readTokenizerConfig } from '../io/tokenizer_config.js';
import { parseQuantConfig, type QuantConfig } from './config.js';
import { convert, type Converted, type Prepared } from './prepare.js';
import { codeRange, describeQuant, dequantizeCodes, granuleCount, type Codes, type WeightQuant } from './rules.js';
import { checkFinite } from '../io/safetensors.js';
import { modelFile, readModelJson } from '../io/model-files.js';
import { inputQuantizer, weightGrid } from './ops.js';
import { onIntegerGrid } from '../tensor/ops/matmul.js';
import { formatOfRule } from './formats.js';
import { readFileChecked } from '../io/files.js';

export const QUANT_JSON = 'quantization.json';
export const QUANT_WEIGHTS = 'model.quantized.safetensors';
export const STUDENT_FORMAT_VERSION = 1;

export interface SaveStudentOptions {
  force?: boolean;
  /** tokenizer.json to copy: a file, or a model directory holding one. */
  tokenizerFrom?: string;
  /** The source model's config.json as loaded (keeps special token ids, labels); else defaults. */
  hf?: HfModelConfig;
  /** convert(model, prepared), when the caller already has it. */
  converted?: Converted;
}

/** One entry of quantization.json "weights". */
export interface StudentWeight {
  param: string;
  shape: [number, number];
  quant: WeightQuant;
}

/** Is `dir` a student directory (has quantization.json)? */
export function isStudentDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, QUANT_JSON));
}

/** The name W a quantized weight is stored under (see top). */
function storedName(model: Model, name: string): string {
  const { first, last } = archOf(model).modules.extraTargets(model.config);
  return [...first, ...last].find((t) => t.name === name)?.logical ?? name;
}

function saveConfigOf(model: Model, hf: HfModelConfig | undefined): SaveConfig {
  if (hf) {
    if (hf.arch !== model.arch) throw new Error(`saveStudent: opts.hf is a ${hf.arch} config but the model is ${model.arch}`);
    return { ...hf, config: model.config } as HfModelConfig;
  }
  return { arch: model.arch, config: model.config, meta: archOf(model).metaForHeads(headsOf(model)) } as SaveConfig;
}

function readTokenizer(from: string): string {
  const file = fs.statSync(from, { throwIfNoEntry: false })?.isDirectory() ? path.join(from, 'tokenizer.json') : from;
  if (!fs.existsSync(file)) throw new Error(`${file}: no tokenizer.json to copy into the student directory`);
  return readFileChecked(file, 'utf8');
}

/** Writes the student directory (layout at the top) atomically; refuses an existing dir without force. */
export function saveStudent(dir: string, model: Model, prepared: Prepared, opts: SaveStudentOptions = {}): void {
  const abs = path.resolve(dir);
  if (fs.existsSync(abs) && !opts.force) throw new Error(`${abs}: already exists; refusing to overwrite it (use --force)`);
  const converted = opts.converted ?? convert(model, prepared);
  const tensors = new Map<string, WriteTensor>();
  const metadata: Record<string, string> = {
    format: 'kdqat-quantized', version: String(STUDENT_FORMAT_VERSION), activations: JSON.stringify(prepared.activations),
  };
  const weights: Record<string, StudentWeight> = {};
  for (const [name, c] of converted) {
    const W = storedName(model, name);
    const { rows, cols } = c.target;
    const gshape = granuleShape(rows, cols, c.quant);
    tensors.set(`${W}.codes`, { shape: [rows, cols], data: c.codes.codes });
    tensors.set(`${W}.scales`, { shape: gshape, data: c.codes.scales });
    if (c.codes.zeros) tensors.set(`${W}.zeros`, { shape: gshape, data: c.codes.zeros });
    if (c.codes.mins) tensors.set(`${W}.mins`, { shape: gshape, data: c.codes.mins });
    const step = prepared.quantParams.get(`${name}.step`);
    if (step) tensors.set(`${W}.step`, { shape: [...step.shape], data: step.f32 });
    metadata[W] = JSON.stringify(c.quant);
    weights[W] = { param: name, shape: [rows, cols], quant: c.quant };
  }
  const quantJson = JSON.stringify({ format: 'kdqat-quantization', version: STUDENT_FORMAT_VERSION, config: prepared.config, weights }, null, 2) + '\n';
  saveModelDir(abs, {
    config: saveConfigOf(model, opts.hf), params: model.params, dtype: 'F32', force: opts.force,
    tokenizerJson: opts.tokenizerFrom ? readTokenizer(opts.tokenizerFrom) : undefined,
    tokenizerConfig: opts.tokenizerFrom ? readTokenizerConfig(opts.tokenizerFrom) : undefined,
    companionsFrom: opts.tokenizerFrom ? path.dirname(opts.tokenizerFrom) : undefined,
    extra: (tmp) => {
      writeSafetensors(path.join(tmp, QUANT_WEIGHTS), tensors, { metadata });
      atomicWrite(path.join(tmp, QUANT_JSON), false, (write) => write(quantJson));
    },
  });
}

/** Scales/zeros shape: [1], [out] or [out, in/g] (granule order, see top); K-quants: [sub-blocks]. */
function granuleShape(rows: number, cols: number, q: WeightQuant): number[] {
  const n = granuleCount(rows, cols, q);
  const g = q.granule;
  if (g.kind === 'channel' && n === rows) return [rows];
  if (g.kind === 'group' && n === rows * (cols / g.size)) return [rows, cols / g.size];
  return [n];
}

// ---- loading ---------------------------------------------------------------------------------------

export interface StudentQuant {
  config: QuantConfig;
  /** stored name → entry of quantization.json. */
  weights: Map<string, StudentWeight>;
  activations: { bits: number; clip?: number } | null;
  /** Trained LSQ steps by Prepared.quantParams names (`${param}.step`), to resume QAT from. */
  steps: Params;
  /** The deployable codes of each quantized weight, by stored name (what low-bit export writes). */
  codes: Map<string, Codes>;
}

export interface LoadedStudent {
  loaded: LoadedModel;
  quant: StudentQuant;
  /** Activation fake-quantization of the quantized Linears (null when activations are off or latent). */
  weight: WeightFn | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readQuantJson(file: string): { config: QuantConfig; weights: Map<string, StudentWeight> } {
  const j = readModelJson(file, 'the quantization.json kdqat quantize/qat wrote');
  const redo = 're-run kdqat quantize (or qat) to write the student again';
  if (!isObj(j)) throw new Error(`${file}: not a JSON object; a student's quantization.json is {"format": "kdqat-quantization", ...}: ${redo}`);
  if (j.format !== 'kdqat-quantization') {
    throw new Error(`${file}: "format" is ${JSON.stringify(j.format)}, not "kdqat-quantization"; not a kdqat quantization.json: remove it (a plain model) or ${redo}`);
  }
  if (j.version !== STUDENT_FORMAT_VERSION) {
    throw new Error(`${file}: format "version" ${JSON.stringify(j.version)}; this kdqat reads version ${STUDENT_FORMAT_VERSION}: use the kdqat that wrote it, or ${redo}`);
  }
  const config = parseQuantConfig(j.config, `${file}: config`);
  if (!isObj(j.weights)) throw new Error(`${file}: "weights" must be an object {stored name: {param, shape, quant}}`);
  const weights = new Map<string, StudentWeight>();
  for (const [W, e] of Object.entries(j.weights)) {
    if (!isObj(e) || typeof e.param !== 'string' || !Array.isArray(e.shape) || e.shape.length !== 2 ||
        !e.shape.every((d) => Number.isSafeInteger(d) && (d as number) > 0)) {
      throw new Error(`${file}: weights["${W}"] must be {"param": name, "shape": [out, in] (positive integers), "quant": {...}}, got ${JSON.stringify(e).slice(0, 200)}`);
    }
    // The stored quantizer goes through the same checks as a config's.
    const quant = parseQuantConfig({ weights: e.quant }, `${file}: weights["${W}"]`).weights;
    weights.set(W, { param: e.param, shape: [Number(e.shape[0]), Number(e.shape[1])], quant });
  }
  return { config, weights };
}

/** Loads a student dir: dequantized low-bit weights (default) or the latent ones (see top). */
export function loadStudent(dir: string, opts: { latent?: boolean } = {}): LoadedStudent {
  const abs = path.resolve(dir);
  const qfile = path.join(abs, QUANT_JSON);
  modelFile(abs, QUANT_JSON);
  const { config, weights } = readQuantJson(qfile);
  const loaded = loadModelDir(abs);
  const wfile = path.join(abs, QUANT_WEIGHTS);
  if (!modelFile(abs, QUANT_WEIGHTS)) {
    throw new Error(`${abs}: has ${QUANT_JSON} but no ${QUANT_WEIGHTS}; the student directory is incomplete: copy the file back, or re-run kdqat quantize/qat`);
  }
  const f = openSafetensors(wfile);
  const steps: Params = new Map();
  let activations: StudentQuant['activations'];
  const deq = new Map<string, Float32Array>();
  const allCodes = new Map<string, Codes>();
  try {
    const meta = f.metadata;
    const redo = 're-run kdqat quantize (or qat) to write the student again';
    if (meta.format !== 'kdqat-quantized') throw new Error(`${wfile}: __metadata__.format is ${JSON.stringify(meta.format)}, expected "kdqat-quantized"; ${redo}`);
    try {
      activations = JSON.parse(meta.activations ?? 'null');
    } catch {
      throw new Error(`${wfile}: __metadata__.activations is not JSON (expected {"bits", "clip"} or null); ${redo}`);
    }
    const known = new Set<string>();
    for (const [W, e] of weights) {
      const [rows, cols] = e.shape;
      const p = loaded.params.get(e.param);
      if (!p || p.shape[0] !== rows || p.shape[1] !== cols) {
        throw new Error(`${qfile}: weights["${W}"] says param ${e.param} shape [${rows}, ${cols}], but ${abs}/model.safetensors ${p ? `has [${p.shape.join(', ')}]` : 'has no such tensor'}; ` +
          'quantization.json belongs to another model: re-run kdqat quantize (or qat)');
      }
      const read = (suffix: string, dtypes: string[], n: number): Tensor['data'] | Int8Array | Uint8Array => {
        const name = `${W}.${suffix}`;
        known.add(name);
        if (!f.infos.has(name)) {
          throw new Error(`${wfile}: no tensor "${name}", which ${qfile} (weights["${W}"], ${describeQuant(e.quant)}) needs; the student is incomplete: ${redo}`);
        }
        const info = f.info(name);
        if (!dtypes.includes(info.dtype)) throw new Error(`${wfile}: tensor "${name}" has dtype ${info.dtype}, expected ${dtypes.join(' or ')}; ${redo}`);
        const t = f.read(name);
        if (t.data.length !== n) {
          throw new Error(`${wfile}: tensor "${name}" has ${t.data.length} values, but ${describeQuant(e.quant)} on [${rows}, ${cols}] ` +
            `(${qfile}, weights["${W}"]) needs ${n}; the two files disagree: ${redo}`);
        }
        if (t.data instanceof Float32Array) checkFinite(t.data, wfile, name, info.shape);
        return t.data as Tensor['data'] | Int8Array | Uint8Array;
      };
      const n = granuleCount(rows, cols, e.quant);
      const codes: Codes = {
        codes: read('codes', ['I8', 'U8'], rows * cols) as Int8Array | Uint8Array,
        scales: read('scales', ['F32'], n) as Float32Array,
        zeros: e.quant.rule.kind === 'asym' ? read('zeros', ['I32'], n) as Int32Array : null,
        mins: formatOfRule(e.quant.rule.kind)?.grid.mins ? read('mins', ['F32'], n) as Float32Array : null,
      };
      // Codes (and asym zero points) outside the rule's range are not what quantize/qat wrote;
      // dequantizing them would give weights off the grid QAT trained on.
      const [lo, hi] = codeRange(e.quant.rule);
      const inRange = (a: ArrayLike<number>, name: string): void => {
        for (let i = 0; i < a.length; i++) {
          if (a[i] >= lo && a[i] <= hi) continue;
          const at = name.endsWith('.codes') ? ` (row ${Math.floor(i / cols)}, column ${i % cols})` : '';
          throw new Error(`${wfile}: tensor "${name}" has ${a[i]} at index ${i}${at}, outside the range [${lo}, ${hi}] of ` +
            `${describeQuant(e.quant)} (${qfile}); the file is damaged or belongs to another quantizer: ${redo}`);
        }
      };
      inRange(codes.codes, `${W}.codes`);
      if (codes.zeros) inRange(codes.zeros, `${W}.zeros`);
      if (f.infos.has(`${W}.step`)) {
        const s = read('step', ['F32'], f.info(`${W}.step`).shape.reduce((a, b) => a * b, 1)) as Float32Array;
        const t = new Tensor(s, f.info(`${W}.step`).shape, true);
        t.name = `${e.param}.step`;
        steps.set(t.name, t);
      }
      deq.set(W, dequantizeCodes(codes, rows, cols, e.quant));
      allCodes.set(W, codes);
    }
    const extra = f.names().filter((n) => !known.has(n));
    if (extra.length) {
      throw new Error(`${wfile}: tensor(s) ${extra.slice(0, 4).join(', ')} belong to no weight listed in ${qfile}; the two files disagree: ${redo}`);
    }
  } finally {
    f.close();
  }
  const quant: StudentQuant = { config, weights, activations, steps, codes: allCodes };
  if (opts.latent) return { loaded, quant, weight: null };

  // The deployable model: quantized weights replaced by their dequantized codes.
  let hf = loaded.hf;
  const params = loaded.params;
  for (const [W, e] of weights) {
    const data = deq.get(W)!;
    if (W !== e.param) {
      // A tied head (the only stored name that differs, LLaMA's lm_head): untie it (see top).
      const untied = archOf(hf).modules.untie?.(hf.config, W) ?? null;
      if (!untied) throw new Error(`${qfile}: weights["${W}"] has param ${e.param}; only a tied LLaMA head is stored under another name`);
      hf = { ...hf, config: untied } as HfModelConfig;
    }
    const t = new Tensor(data, e.shape, true);
    t.name = W;
    // code·s, as fakeQuantWeight made it in training: the same integer forward (matmulQ8 checks
    // the values against the grid, so a weight changed later falls back to float32).
    const grid = weightGrid(e.quant, e.shape[0], e.shape[1], allCodes.get(W)!.scales);
    if (grid) onIntegerGrid(t, grid);
    params.set(W, t);
  }
  const weight: WeightFn | null = activations ? activationWeightFn(new Set(weights.keys()), activations) : null;
  return { loaded: { ...loaded, hf, config: hf.config, params }, quant, weight };
}

/** Identity weights, fake-quantized inputs for the Linears whose weight is in `names`. */
export function activationWeightFn(names: ReadonlySet<string>, a: { bits: number; clip?: number }): WeightFn {
  const w: WeightFn = (_name, p) => p;
  const quant = inputQuantizer(a.bits, a.clip);
  w.input = (name, x) => (names.has(name) ? quant(x) : x);
  return w;
}
