// Weights held as bf16 (Tensor dtype 'bf16'): a frozen model's weight whose every value is a bf16
// value (the low 16 bits of each float32 are zero, as in a checkpoint stored BF16, which is how
// Llama 3, Qwen2.5 and SmolLM2 ship) is kept as its high 16 bits: half the memory, no value
// changed. Such a tensor is read only as a GEMM's B operand, which the matmul kernel widens
// exactly as it packs (kernels.ts Kernels.matmul), so every product is bit for bit the one of
// the float32 weight; an embedding table is read by gather, which widens the rows it takes. A
// KD-QAT teacher keeps its weight matrices this way (src/train/qat-models.ts narrowTeacher).
import { Tensor } from './tensor.js';
import { uninitF32 } from './storage.js';
import { bf16ToF32Array } from '../io/half.js';

/** gather (ops/shape.ts) from a bf16 x (outer, n, inner): out (outer, idx.length, inner) holds
 *  the rows idx widened to float32. Throws a RangeError for an index outside [0, n). */
export function gatherBf16(x: Uint16Array, idx: Int32Array, out: Float32Array, outer: number, n: number, inner: number): void {
  const m = idx.length;
  for (let j = 0; j < m; j++) {
    if (!(idx[j] >= 0 && idx[j] < n)) throw new RangeError(`gather: index ${idx[j]} at position ${j} is out of range [0, ${n})`);
  }
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const from = (o * n + idx[j]) * inner, to = (o * m + j) * inner;
      bf16ToF32Array(x.subarray(from, from + inner), out.subarray(to, to + inner));
    }
  }
}

/** t as a bf16 tensor when every value of the float32 tensor t is a bf16 value (the same values,
 *  bit for bit, NaN payloads included), else null. Never for a tensor that requires a gradient. */
export function narrowBf16(t: Tensor): Tensor | null {
  if (t.dtype !== 'f32' || t.requiresGrad) return null;
  const f = t.f32;
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < u.length; i++) if ((u[i] & 0xffff) !== 0) return null;
  const h = new Uint16Array(u.length);
  for (let i = 0; i < u.length; i++) h[i] = u[i] >>> 16;
  const out = new Tensor(h, t.shape);
  out.name = t.name;
  return out;
}

/** The float32 tensor of a bf16 tensor's values (a fresh buffer); a float32 tensor as it is. */
export function widenBf16(t: Tensor): Tensor {
  if (t.dtype !== 'bf16') return t;
  return new Tensor(bf16ToF32Array(t.bf16, uninitF32(t.size)), t.shape);
}
