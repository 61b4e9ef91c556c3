// The ONNX graph of a pre-norm RoPE decoder (models/onnx-spec.ts DecoderOnnxSpec) with the inputs
// and outputs Optimum / transformers.js / onnxruntime-genai use for a causal LM with a KV cache:
//   input_ids (B, T) int64, attention_mask (B, P+T) int64, position_ids (B, T) int64,
//   past_key_values.{l}.key / .value (B, Hkv, P, D) float32
//   → logits (B, T, V), present.{l}.key / .value (B, Hkv, P+T, D).
// The first call passes P = 0 (empty pasts). RoPE reads cos/sin caches (maxPositions, D/2) at
// position_ids, as onnxruntime-genai's models do, so a RoPE scaling variant is only other tables.
// Attention: query i (absolute position P+i) sees keys j ≤ P+i (and > P+i−W with a sliding
// window W) whose attention_mask is 1;
// grouped-query heads share kv head h / (H/Hkv) (HF repeat_kv).
import type { DecoderOnnxSpec } from '../models/onnx-spec.js';
import { DT, type OnnxGraph } from './onnx.js';
import type { OnnxWeights } from './onnx-weights.js';
import { attend, rmsNorm } from './onnx-layers.js';

export function emitDecoder(g: OnnxGraph, s: DecoderOnnxSpec, w: OnnxWeights): void {
  const { heads: H, kvHeads: Hkv, headDim: D, layers: L } = s;
  const G = H / Hkv, R = s.rotaryDim, half = R / 2;
  const ids = g.input('input_ids', DT.INT64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', DT.INT64, ['batch_size', 'total_sequence_length']);
  const pos = g.input('position_ids', DT.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: L }, (_, l) => ({
    k: g.input(`past_key_values.${l}.key`, DT.FLOAT, ['batch_size', Hkv, 'past_sequence_length', D]),
    v: g.input(`past_key_values.${l}.value`, DT.FLOAT, ['batch_size', Hkv, 'past_sequence_length', D]),
  }));

  // RoPE: cos/sin (B, 1, T, D/2) at the given positions.
  const rope = s.rope();
  const table = (name: string, data: Float32Array): string => g.op('Gather', [g.init(name, DT.FLOAT, [rope.maxPositions, half], data), pos]);
  let cosT = table('cos_cache', rope.cos), sinT = table('sin_cache', rope.sin);
  if (rope.long) {
    // LongRoPE: the long tables when the call's largest position id is `beyond` or more (its
    // sequence is longer than the original context), as transformers switches per forward.
    const long = g.op('GreaterOrEqual', [g.op('ReduceMax', [pos], { keepdims: 0 }), g.scalarI64(rope.long.beyond)]);
    cosT = g.op('Where', [long, table('cos_cache_long', rope.long.cos), cosT]);
    sinT = g.op('Where', [long, table('sin_cache_long', rope.long.sin), sinT]);
  }
  const cos = g.op('Unsqueeze', [cosT, g.i64(1)]);
  const sin = g.op('Unsqueeze', [sinT, g.i64(1)]);
  const rotate = (x: string): string => { // x (B, h, T, D), HF rotate_half over the first R entries, the rest passed
    const parts = g.node('Split', [x, g.i64(...(R === D ? [half, half] : [half, half, D - R]))], { axis: -1 }, { outputs: R === D ? 2 : 3 });
    const [x1, x2] = parts;
    const o1 = g.op('Sub', [g.op('Mul', [x1, cos]), g.op('Mul', [x2, sin])]);
    const o2 = g.op('Add', [g.op('Mul', [x2, cos]), g.op('Mul', [x1, sin])]);
    return g.op('Concat', [o1, o2, ...parts.slice(2)], { axis: -1 });
  };

  // allowed (B, 1, 1, T, S): causal over absolute positions and the key padding mask.
  const S = g.op('Gather', [g.op('Shape', [mask]), g.scalarI64(1)]);
  const T = g.op('Gather', [g.op('Shape', [ids]), g.scalarI64(1)]);
  const kpos = g.op('Range', [g.scalarI64(0), S, g.scalarI64(1)]); // (S)
  const qpos = g.op('Range', [g.op('Sub', [S, T]), S, g.scalarI64(1)]); // (T)
  const k2 = g.op('Unsqueeze', [kpos, g.i64(0)]), q2 = g.op('Unsqueeze', [qpos, g.i64(1)]); // (1, S), (T, 1)
  let causal = g.op('LessOrEqual', [k2, q2]); // (T, S)
  if (s.slidingWindow) causal = g.op('And', [causal, g.op('Greater', [k2, g.op('Sub', [q2, g.scalarI64(s.slidingWindow)])])]);
  const keyOk = g.op('Unsqueeze', [g.op('Cast', [mask], { to: DT.BOOL }), g.i64(1, 2, 3)]); // (B, 1, 1, 1, S)
  const allowed = g.op('And', [causal, keyOk]);

  const heads = (x: string, n: number): string => // (B, T, n·D) → (B, n, T, D)
    g.op('Transpose', [g.op('Reshape', [x, g.i64(0, 0, n, D)])], { perm: [0, 2, 1, 3] });
  let x = g.op('Gather', [w.matrix(s.embed), ids]); // (B, T, C)
  for (let l = 0; l < L; l++) {
    const n = s.layer(l);
    const h = rmsNorm(g, x, w.vector(n.inputNorm), s.rmsEps);
    let q = heads(w.linear(h, n.q, n.qBias), H);
    let k = heads(w.linear(h, n.k, n.kBias), Hkv);
    const v = heads(w.linear(h, n.v, n.vBias), Hkv);
    if (n.qNorm) q = rmsNorm(g, q, w.vector(n.qNorm), s.rmsEps);
    if (n.kNorm) k = rmsNorm(g, k, w.vector(n.kNorm), s.rmsEps);
    if (!n.noRope) {
      q = rotate(q);
      k = rotate(k);
    }
    const kAll = g.op('Concat', [past[l].k, k], { axis: 2 }); // (B, Hkv, S, D)
    const vAll = g.op('Concat', [past[l].v, v], { axis: 2 });
    g.output(`present.${l}.key`, kAll, DT.FLOAT, ['batch_size', Hkv, 'total_sequence_length', D]);
    g.output(`present.${l}.value`, vAll, DT.FLOAT, ['batch_size', Hkv, 'total_sequence_length', D]);
    // Grouped heads: q (B, Hkv, G, T, D) against k, v (B, Hkv, 1, S, D).
    const q5 = g.op('Reshape', [q, g.i64(0, Hkv, G, -1, D)]);
    const ctx5 = attend(g, q5, g.op('Unsqueeze', [kAll, g.i64(2)]), g.op('Unsqueeze', [vAll, g.i64(2)]), allowed, D, 5);
    const ctx = g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [ctx5, g.i64(0, H, -1, D)])], { perm: [0, 2, 1, 3] }), g.i64(0, 0, H * D)]);
    x = g.op('Add', [x, w.linear(ctx, n.o, n.oBias)]);
    const h2 = rmsNorm(g, x, w.vector(n.postAttnNorm), s.rmsEps);
    const gate = w.linear(h2, n.gate);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate])]); // SiLU
    x = g.op('Add', [x, w.linear(g.op('Mul', [act, w.linear(h2, n.up)]), n.down)]);
  }
  x = rmsNorm(g, x, w.vector(s.finalNorm), s.rmsEps);
  g.output('logits', w.linear(x, s.head), DT.FLOAT, ['batch_size', 'sequence_length', s.vocab]);
}
