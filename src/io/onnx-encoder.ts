// The ONNX graph of a post-norm BERT-style encoder (models/onnx-spec.ts EncoderOnnxSpec) with the
// inputs and outputs of Optimum's feature-extraction / sequence-classification exports, which
// transformers.js runs (absolute positions, BERT's relative ones, or RoFormer's rotary ones):
//   input_ids (B, T) int64, attention_mask (B, T) int64, token_type_ids (B, T) int64 (families
//   with token types) → last_hidden_state (B, T, C) and, with a classifier head, logits (B, K).
import { biasOf, type EncoderOnnxSpec } from '../models/onnx-spec.js';
import { DT, type OnnxGraph } from './onnx.js';
import type { OnnxWeights } from './onnx-weights.js';
import { attend, gelu, layerNorm } from './onnx-layers.js';

export function emitEncoder(g: OnnxGraph, s: EncoderOnnxSpec, w: OnnxWeights): void {
  const H = s.heads, D = s.hidden / H;
  const ids = g.input('input_ids', DT.INT64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', DT.INT64, ['batch_size', 'sequence_length']);
  const types = s.typeEmbed && s.typeInput !== false ? g.input('token_type_ids', DT.INT64, ['batch_size', 'sequence_length']) : null;
  const ln = (x: string, weight: string): string => layerNorm(g, x, w.vector(weight), w.vector(biasOf(weight)), s.layerNormEps);
  const lin = (x: string, weight: string): string => w.linear(x, weight, biasOf(weight));

  const T = g.op('Gather', [g.op('Shape', [ids]), g.scalarI64(1)]);
  let posIds: string;
  if (s.positionsFromPadding !== undefined && s.positionsFromPadding !== null) {
    const pad = g.scalarI64(s.positionsFromPadding);
    const real = g.op('Cast', [g.op('Not', [g.op('Equal', [ids, pad])])], { to: DT.INT64 }); // (B, T) 1 = not padding
    posIds = g.op('Add', [g.op('Mul', [g.op('CumSum', [real, g.scalarI64(1)]), real]), pad]); // (B, T)
  } else {
    posIds = g.op('Range', [g.scalarI64(s.positionOffset), g.op('Add', [T, g.scalarI64(s.positionOffset)]), g.scalarI64(1)]); // (T)
  }
  let x = g.op('Gather', [w.matrix(s.wordEmbed), ids]); // (B, T, C)
  if (s.posEmbed) x = g.op('Add', [x, g.op('Gather', [w.matrix(s.posEmbed), posIds])]);
  if (s.typeEmbed && types) x = g.op('Add', [x, g.op('Gather', [w.matrix(s.typeEmbed), types])]);
  else if (s.typeEmbed) x = g.op('Add', [x, g.op('Gather', [w.matrix(s.typeEmbed), g.scalarI64(0)])]); // (C): row 0 for every token
  x = ln(x, s.embedNorm);

  const allowed = g.op('Unsqueeze', [g.op('Cast', [mask], { to: DT.BOOL }), g.i64(1, 2)]); // (B, 1, 1, T)
  const heads = (y: string): string => g.op('Transpose', [g.op('Reshape', [y, g.i64(0, 0, H, D)])], { perm: [0, 2, 1, 3] }); // (B, H, T, D)
  // Relative positions: row ids l − r + P − 1 of every layer's distance table, (T, T).
  const rel = s.relative ?? null;
  let distIds = '';
  if (rel) {
    const pos = g.op('Range', [g.scalarI64(0), T, g.scalarI64(1)]); // (T)
    const d = g.op('Sub', [g.op('Unsqueeze', [pos, g.i64(1)]), g.op('Unsqueeze', [pos, g.i64(0)])]); // (T, 1) − (1, T)
    distIds = g.op('Add', [d, g.scalarI64(rel.maxPositions - 1)]);
  }
  // Rotary positions (RoFormer): rows 0..T−1 of the sinusoid table, sines then cosines, (T, D/2) each.
  let rotate = (y: string): string => y;
  if (s.rotaryInterleaved) {
    const rows = g.op('Slice', [w.matrix(s.rotaryInterleaved), g.i64(0), g.op('Unsqueeze', [T, g.i64(0)]), g.i64(0)]); // (T, D)
    const sin = g.op('Slice', [rows, g.i64(0), g.i64(D / 2), g.i64(1)]), cos = g.op('Slice', [rows, g.i64(D / 2), g.i64(D), g.i64(1)]);
    // Each interleaved pair (y_2i, y_2i+1) of (B, H, T, D) turned by its angle, back in place.
    rotate = (y: string): string => {
      const pairs = g.op('Reshape', [y, g.i64(0, 0, 0, D / 2, 2)]); // (B, H, T, D/2, 2)
      const even = g.op('Gather', [pairs, g.scalarI64(0)], { axis: 4 }), odd = g.op('Gather', [pairs, g.scalarI64(1)], { axis: 4 });
      const e2 = g.op('Sub', [g.op('Mul', [even, cos]), g.op('Mul', [odd, sin])]);
      const o2 = g.op('Add', [g.op('Mul', [odd, cos]), g.op('Mul', [even, sin])]);
      const both = g.op('Concat', [g.op('Unsqueeze', [e2, g.i64(4)]), g.op('Unsqueeze', [o2, g.i64(4)])], { axis: 4 });
      return g.op('Reshape', [both, g.i64(0, 0, 0, D)]);
    };
  }
  for (let l = 0; l < s.layers; l++) {
    const n = s.layer(l);
    const q = rotate(heads(lin(x, n.q))), k = rotate(heads(lin(x, n.k)));
    let bias: string | undefined;
    if (rel) {
      if (!n.distance) throw new Error(`ONNX export: layer ${l} has no distance table for ${rel.type} positions`);
      const E = g.op('Gather', [w.matrix(n.distance), distIds]); // (T_l, T_r, D)
      bias = g.op('Einsum', [q, E], { equation: 'bhld,lrd->bhlr' }); // q_l · E_{l−r}
      if (rel.type === 'relative_key_query') bias = g.op('Add', [bias, g.op('Einsum', [k, E], { equation: 'bhrd,lrd->bhlr' })]); // + k_r · E_{l−r}
    }
    const ctx4 = attend(g, q, k, heads(lin(x, n.v)), allowed, D, 4, bias);
    const ctx = g.op('Reshape', [g.op('Transpose', [ctx4], { perm: [0, 2, 1, 3] }), g.i64(0, 0, s.hidden)]); // (B, T, C)
    const a = ln(g.op('Add', [lin(ctx, n.o), x]), n.attnNorm);
    const inter = gelu(g, lin(a, n.ffnIn), s.act);
    x = ln(g.op('Add', [lin(inter, n.ffnOut), a]), n.ffnNorm);
  }
  g.output('last_hidden_state', x, DT.FLOAT, ['batch_size', 'sequence_length', s.hidden]);
  if (s.classifier) {
    let cls = g.op('Gather', [x, g.scalarI64(0)], { axis: 1 }); // (B, C)
    if (s.classifier.pooler) {
      const act = s.classifier.poolerAct, pooled = lin(cls, s.classifier.pooler);
      cls = act === 'tanh' ? g.op('Tanh', [pooled]) : gelu(g, pooled, act);
    }
    g.output('logits', lin(cls, s.classifier.dense), DT.FLOAT, ['batch_size', s.classifier.labels]);
  }
}
