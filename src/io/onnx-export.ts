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
import { atomicWrite } from './atomic.js';
import { saveModelDir } from './model-dir.js';
import type { HfModelConfig } from './hf-config.js';
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from './half.js';
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

/** The ModelProto bytes of `m` with weights in `dtype` (see top). */
export function buildOnnx(m: OnnxModelIn, dtype: WeightMode, o: { spec?: (s: OnnxSpec) => OnnxSpec } = {}): Uint8Array {
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
  return g.encode({ doc: `kdqat ${rec.label} (${dtype} weights)`, graphName: `kdqat-${rec.name}` });
}

/** Largest |half(w) − w| / max|w| over the weights `names` (0: the half type holds them exactly). */
export function halfError(params: Params, names: Iterable<string>, kind: 'f16' | 'bf16' = 'f16'): { maxRel: number; worst: string | null } {
  let maxRel = 0, worst: string | null = null;
  for (const W of names) {
    const w = params.get(W)!.f32;
    const back = kind === 'f16' ? f16ToF32Array(f32ToF16Array(w)) : bf16ToF32Array(f32ToBf16Array(w));
    let err = 0, scale = 0;
    for (let i = 0; i < w.length; i++) {
      err = Math.max(err, Math.abs(back[i] - w[i]));
      scale = Math.max(scale, Math.abs(w[i]));
    }
    const rel = scale ? err / scale : 0;
    if (rel > maxRel) [maxRel, worst] = [rel, W];
  }
  return { maxRel, worst };
}

/** Refuses a dtype that cannot hold a student's weights exactly unless `lossy` (then a note). */
export function checkExact(m: OnnxModelIn, dtype: OnnxDType, lossy: boolean): string[] {
  if (!m.student || dtype !== 'f16') return [];
  const { maxRel, worst } = halfError(m.model.params, m.student.weights.keys());
  if (maxRel === 0) return [];
  const what = `f16 cannot hold the student's dequantized weights exactly (largest error ${maxRel.toExponential(2)} of max|w|, in ${worst})`;
  if (!lossy) {
    throw new Error(`--dtype f16: ${what}. Formats that hold them exactly: --dtype quantized (its codes: MatMulNBits / int8 codes) ` +
      'or --dtype f32 (dequantized); or pass --lossy to export f16 anyway');
  }
  return [`--lossy: ${what}`];
}

/** Writes one .onnx file atomically (an existing one is replaced only with force). */
export function exportOnnxFile(file: string, m: OnnxModelIn, dtype: OnnxDType, o: { force?: boolean } = {}): void {
  const bytes = buildOnnx(m, dtype);
  atomicWrite(file, !!o.force, (write) => write(bytes));
}

export interface OnnxFolderOptions {
  hf: HfModelConfig;
  tokenizerJson?: string;
  tokenizerConfig?: Record<string, unknown> | null;
  force?: boolean;
}

/** Writes the transformers.js model folder (see top). */
export function exportOnnxFolder(dir: string, m: OnnxModelIn, o: OnnxFolderOptions): string[] {
  if (!o.tokenizerJson) throw new Error(`${dir}: a transformers.js folder needs tokenizer.json; the model directory has none (pass --tokenizer FILE)`);
  const files = ['onnx/model.onnx', ...(m.student ? ['onnx/model_quantized.onnx'] : [])];
  saveModelDir(dir, {
    config: o.hf, params: m.model.params, dtype: 'F32', force: o.force, tokenizerJson: o.tokenizerJson, tokenizerConfig: o.tokenizerConfig,
    extra: (tmp) => {
      fs.mkdirSync(path.join(tmp, 'onnx'));
      fs.writeFileSync(path.join(tmp, 'onnx', 'model.onnx'), buildOnnx(m, 'f32'));
      if (m.student) fs.writeFileSync(path.join(tmp, 'onnx', 'model_quantized.onnx'), buildOnnx(m, 'quantized'));
    },
  });
  return files;
}
