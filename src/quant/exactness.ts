// Which export formats hold a student's quantizer exactly, and how far a lossy export is off: the
// one place `kdqat export`'s refusals and its --lossy reports come from.
//   - A llama.cpp rule (q4_0, q8_0, tq2_0, q2_k … q6_k) is held by its own GGUF block type (the
//     format table, formats.ts: QAT trains on the fixed point of that format, so its blocks
//     dequantize to the student's weights bit for bit), and by F32 anywhere.
//   - Every other rule (sym, asym, twn, LSQ) is held by F32 (GGUF or safetensors) only: no GGUF
//     block type has a per-channel scale or a zero point.
//   - F16 / BF16 hold the deployed weights when every value survives the round trip (checked on
//     the values: a 4-bit code times an fp16 scale often needs more than F16's 11 bits).
import { f32ToF16Array, f16ToF32Array, f32ToBf16Array, bf16ToF32Array } from '../io/half.js';
import { formatOfRule } from './formats.js';
import type { WeightQuant } from './rules.js';

/** Max |Δ| and RMS of Δ over all values compared so far (the student's deployed weights vs
 *  what the export stores). */
export interface ErrorStats { count: number; differing: number; maxAbs: number; sumSq: number }

export const noError = (): ErrorStats => ({ count: 0, differing: 0, maxAbs: 0, sumSq: 0 });

/** Adds |want − got| of every element to `e` (returned). */
export function addError(e: ErrorStats, want: Float32Array, got: Float32Array): ErrorStats {
  if (want.length !== got.length) throw new RangeError(`addError: ${want.length} vs ${got.length} values`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(want[i] - got[i]);
    if (d !== 0 || Object.is(want[i], -0) !== Object.is(got[i], -0)) e.differing++;
    e.maxAbs = Math.max(e.maxAbs, d);
    e.sumSq += d * d;
  }
  e.count += want.length;
  return e;
}

export const rmsOf = (e: ErrorStats): number => (e.count ? Math.sqrt(e.sumSq / e.count) : 0);

/** "max |Δ| 1.2e-3, RMS 3.4e-4 (5,123 of 1,048,576 values differ)". */
export function describeError(e: ErrorStats): string {
  return `max |Δ| ${e.maxAbs.toExponential(3)}, RMS ${rmsOf(e).toExponential(3)} ` +
    `(${e.differing.toLocaleString('en-US')} of ${e.count.toLocaleString('en-US')} values differ)`;
}

/** w rounded to F16 or BF16 and back (what a half-precision file stores). */
export function halfRoundTrip(w: Float32Array, dtype: 'F16' | 'BF16'): Float32Array {
  return dtype === 'F16' ? f16ToF32Array(f32ToF16Array(w)) : bf16ToF32Array(f32ToBf16Array(w));
}

/** The kdqat export targets that hold a weight quantized with `q` exactly whatever its values
 *  (F16/BF16 depend on the values: halfRoundTrip). */
export function exactTargets(q: WeightQuant): string[] {
  const f = formatOfRule(q.rule.kind);
  // ONNX holds every rule's codes (MatMulNBits or stored codes, io/onnx-weights.ts).
  return [...(f ? [`--format gguf --type ${f.name.toLowerCase()}`] : []), '--format gguf --type f32', '--format safetensors --dtype f32', '--format onnx'];
}

/** exactTargets of every quantizer in `qs`, in order, without repeats: the formats that hold
 *  all of them. */
export function exactTargetsOfAll(qs: Iterable<WeightQuant>): string[] {
  const lists = [...qs].map(exactTargets);
  if (!lists.length) return [];
  return lists[0].filter((t) => lists.every((l) => l.includes(t)));
}
