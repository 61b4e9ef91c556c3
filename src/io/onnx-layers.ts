// Layers the ONNX emitters share, composed from opset-17 operators (RMSNorm and GELU have no
// operator before opset 23 / 20; onnxruntime fuses these patterns itself).
import { float, type OnnxGraph } from './onnx.js';

/** x · (1/√(mean(x²) + eps)) · w over the last axis (kdqat's rmsNorm, HF LlamaRMSNorm). */
export function rmsNorm(g: OnnxGraph, x: string, w: string, eps: number): string {
  const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const r = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.scalarF(eps)])])]);
  return g.op('Mul', [g.op('Mul', [x, r]), w]);
}

export function layerNorm(g: OnnxGraph, x: string, w: string, b: string, eps: number): string {
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: float(eps) });
}

/** The FFN activation: GELU in erf form (HF "gelu"), its tanh approximation ("gelu_new"), or ReLU. */
export function gelu(g: OnnxGraph, x: string, kind: 'gelu' | 'gelu_new' | 'relu'): string {
  if (kind === 'relu') return g.op('Relu', [x]);
  const halfX = g.op('Mul', [x, g.scalarF(0.5)]);
  if (kind === 'gelu') return g.op('Mul', [halfX, g.op('Add', [g.scalarF(1), g.op('Erf', [g.op('Mul', [x, g.scalarF(Math.SQRT1_2)])])])]);
  const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.scalarF(0.044715)])]), g.scalarF(Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [halfX, g.op('Add', [g.scalarF(1), g.op('Tanh', [inner])])]);
}

/** softmax((q·kᵀ + bias)/√D, masked) · v over the last two axes; `allowed` (bool) broadcasts to
 *  the scores; masked scores become the lowest float32 (HF's finfo.min), so they get probability
 *  0. `bias` (optional) has the scores' shape: relative position scores. */
export function attend(g: OnnxGraph, q: string, k: string, v: string, allowed: string, D: number, rank: number, bias?: string): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  let qk = g.op('MatMul', [q, g.op('Transpose', [k], { perm })]);
  if (bias) qk = g.op('Add', [qk, bias]);
  const scores = g.op('Mul', [qk, g.scalarF(1 / Math.sqrt(D))]);
  const masked = g.op('Where', [allowed, scores, g.scalarF(-3.4028234663852886e38)]);
  return g.op('MatMul', [g.op('Softmax', [masked], { axis: -1 }), v]);
}
