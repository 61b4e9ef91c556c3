// ONNX export of a kdqat model or QAT student (quant/student.ts): the graph comes from the
// family's record (architecture.ts `onnx`, models/onnx-spec.ts), the weights as
// io/onnx-weights.ts describes (f32, f16, or the student's codes held exactly), and
//   exportOnnxFile   one .onnx file;
//   exportOnnxFolder a transformers.js / Optimum-style model folder: config.json (+
//                    generation_config.json), tokenizer.json, tokenizer_config.json,
//                    model.safetensors (kdqat's own loader reads the folder too),
//                    onnx/model.onnx (float32; a student's dequantized weights) and, for a
//                    student, onnx/model_quantized.onnx (its codes; transformers.js dtype "q8").
// A format that cannot hold a student's weights exactly (f16) is refused unless `lossy`, which
// reports the largest error it introduces.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { archOf, headsOf, type Model } from '../models/model.js';
import type { OnnxSpec } from '../models/onnx-spec.js';
import type { StudentQuant } from '../quant/student.js';
import { saveModelDir } from './model-dir.js';
import type { HfModelConfig } from './hf-config.js';
import { addError, describeError, halfRoundTrip, noError } from '../quant/exactness.js';
import type { Params } from '../nn/params.js';
import { OnnxGraph } from './onnx.js';
import { emitDecoder } from './onnx-decoder.js';
import { emitEncoder } from './onnx-encoder.js';
import { OnnxWeights, type QuantizedWeight, type WeightMode } from './onnx-weights.js';

export type OnnxDType = 'f32' | 'f16' | 'quantized';
export const ONNX_DTYPES: readonly OnnxDType[] = ['f32', 'f16', 'quantized'];

export interface OnnxModelIn {
  model: Model;
  /** A student opened with its deployed (dequantized) weights. */
  student?: StudentQuant | null;
}

/** Above this many bytes of initializers a model is written with external data (protobuf's
 *  2 GiB limit on one message, with room for the graph). */
export const EXTERNAL_DATA_BYTES = 1.5 * 2 ** 30;

/** The ModelProto bytes of `m` with weights in `dtype` (see top). */
export function buildOnnx(m: OnnxModelIn, dtype: WeightMode, o: { spec?: (s: OnnxSpec) => OnnxSpec } = {}): Uint8Array {
  return buildOnnxGraph(m, dtype, o).encode(graphDoc(m, dtype));
}

const graphDoc = (m: OnnxModelIn, dtype: WeightMode): { doc: string; graphName: string } =>
  ({ doc: `kdqat ${archOf(m.model).label} (${dtype} weights)`, graphName: `kdqat-${archOf(m.model).name}` });

/** Writes `file` (.onnx) and, when the weights pass `externalAt` bytes, `file`_data beside it
 *  (ONNX external data); returns the files written. Not atomic: callers write into a fresh
 *  directory or use exportOnnxFile. */
export function writeOnnx(file: string, m: OnnxModelIn, dtype: WeightMode, externalAt = EXTERNAL_DATA_BYTES): string[] {
  const g = buildOnnxGraph(m, dtype);
  if (g.initializerBytes() < externalAt) {
    fs.writeFileSync(file, g.encode(graphDoc(m, dtype)));
    return [file];
  }
  const dataFile = `${file}_data`;
  const chunks = g.externalize(path.basename(dataFile));
  const fd = fs.openSync(dataFile, 'w');
  try {
    for (const c of chunks) fs.writeSync(fd, c);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(file, g.encode(graphDoc(m, dtype)));
  return [file, dataFile];
}

function buildOnnxGraph(m: OnnxModelIn, dtype: WeightMode, o: { spec?: (s: OnnxSpec) => OnnxSpec } = {}): OnnxGraph {
  const rec = archOf(m.model);
  if (!rec.onnx) throw new Error(`ONNX export: ${rec.label} has no ONNX graph in kdqat (its architecture record has no "onnx" field)`);
  // o.spec edits the record's spec (tests switch on pieces no registered family uses yet).
  const base = rec.onnx.spec(m.model.config, headsOf(m.model));
  const spec = o.spec ? o.spec(base) : base;
  if (dtype === 'quantized' && !m.student) throw new Error('ONNX export: --dtype quantized needs a QAT student (a directory with quantization.json); use f32 or f16');
  const quantized = new Map<string, QuantizedWeight>();
  for (const [W, e] of m.student?.weights ?? []) quantized.set(W, { quant: e.quant, codes: m.student!.codes.get(W)! });
  const a = m.student?.activations;
  const g = new OnnxGraph();
  const w = new OnnxWeights(g, {
    params: m.model.params, mode: dtype, quantized,
    activations: a ? { bits: a.bits, clip: a.clip, names: new Set(quantized.keys()) } : null,
  });
  if (spec.kind === 'decoder') emitDecoder(g, spec, w);
  else emitEncoder(g, spec, w);
  return g;
}

/** Largest |half(w) − w| / max|w| over the weights `names` (0: the half type holds them exactly). */
/** Refuses a dtype that cannot hold a student's weights exactly unless `lossy` (then a note). */
export function checkExact(m: OnnxModelIn, dtype: OnnxDType, lossy: boolean): string[] {
  if (!m.student || dtype !== 'f16') return [];
  const e = noError();
  for (const W of m.student.weights.keys()) {
    const w = m.model.params.get(W)!.f32;
    addError(e, w, halfRoundTrip(w, 'F16'));
  }
  if (e.differing === 0) return [];
  const what = `f16 cannot hold the student's dequantized weights exactly (${describeError(e)})`;
  if (!lossy) {
    throw new Error(`--dtype f16: ${what}. Formats that hold them exactly: --dtype quantized (its codes: MatMulNBits / int8 codes) ` +
      'or --dtype f32 (dequantized); or pass --lossy to export f16 anyway');
  }
  return [`--lossy: ${what}`];
}

/** Writes one .onnx file (and its _data file past EXTERNAL_DATA_BYTES of weights) through a
 *  scratch directory, then renames them into place; an existing file is replaced only with force. */
export function exportOnnxFile(file: string, m: OnnxModelIn, dtype: OnnxDType, o: { force?: boolean; externalAt?: number } = {}): string[] {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new Error(`${file}: directory ${dir} does not exist; create it first`);
  if (!o.force && fs.existsSync(file)) throw new Error(`${file}: already exists; refusing to overwrite it (use --force)`);
  const tmp = fs.mkdtempSync(path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-`)); // the pid: io/outputs.ts tempOwner
  try {
    const written = writeOnnx(path.join(tmp, path.basename(file)), m, dtype, o.externalAt);
    const out = written.map((w) => path.join(dir, path.basename(w)));
    if (!written.some((w) => w.endsWith('_data'))) fs.rmSync(`${path.resolve(file)}_data`, { force: true }); // a stale one
    written.forEach((w, i) => fs.renameSync(w, out[i]));
    return out;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export interface OnnxFolderOptions {
  hf: HfModelConfig;
  tokenizerJson?: string;
  tokenizerConfig?: Record<string, unknown> | null;
  /** The source model directory (chat template files, generation_config.json: see model-dir.ts). */
  companionsFrom?: string;
  force?: boolean;
}

/** Writes the transformers.js model folder (see top). */
export function exportOnnxFolder(dir: string, m: OnnxModelIn, o: OnnxFolderOptions & { externalAt?: number }): string[] {
  if (!o.tokenizerJson) throw new Error(`${dir}: a transformers.js folder needs tokenizer.json; the model directory has none (pass --tokenizer FILE)`);
  const files: string[] = [];
  saveModelDir(dir, {
    config: o.hf, params: m.model.params, dtype: 'F32', force: o.force, tokenizerJson: o.tokenizerJson, tokenizerConfig: o.tokenizerConfig,
    companionsFrom: o.companionsFrom,
    extra: (tmp) => {
      fs.mkdirSync(path.join(tmp, 'onnx'));
      files.push(...writeOnnx(path.join(tmp, 'onnx', 'model.onnx'), m, 'f32', o.externalAt));
      // One setting for the folder (config.json's flag covers every file): external if f32 is.
      const external = files.length > 1;
      if (m.student) files.push(...writeOnnx(path.join(tmp, 'onnx', 'model_quantized.onnx'), m, 'quantized', external ? 0 : Infinity));
      if (files.some((f) => f.endsWith('_data'))) {
        // transformers.js fetches model.onnx_data only when config.json says so.
        const cfgFile = path.join(tmp, 'config.json');
        const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
        cfg['transformers.js_config'] = { use_external_data_format: true };
        fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2) + '\n');
      }
    },
  });
  return files.map((f) => path.join('onnx', path.basename(f)));
}
