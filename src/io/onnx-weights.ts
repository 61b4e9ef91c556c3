// How a model's weights go into an ONNX graph (onnx.ts), one Linear at a time:
//   f32        — the float weights (a quantized student: its dequantized weights);
//   f16        — half-precision initializers, Cast to float32 in the graph (computed in f32);
//   quantized  — a student's codes, held exactly:
//     MatMulNBits (com.microsoft; onnxruntime's docs/ContribOperators.md: B (N, k_blocks,
//     block·bits/8) uint8 packed LSB-first along K within each block, scales (N·k_blocks),
//     optional zero points packed the same way, default 2^(bits−1); ŵ = (q − zp)·scale) for every
//     rule whose ŵ is (integer − integer)·scale with blocks that are a power of two ≥ 16 and
//     codes that fit 2, 4 or 8 bits (onnxruntime 1.30's CPU kernel takes only those): sym/asym
//     b-bit (in the smallest of 2/4/8 bits ≥ b), twn, q4_0, q8_0, tq2_0, q3_k, q6_k. A
//     per-channel or per-tensor scale is repeated over the row's blocks.
//     Otherwise (the K-quants with mins, ŵ = float(float(code·scale) − min); groups that are not
//     a power of two ≥ 16) the int8/uint8 codes, scales, zero points and mins are initializers
//     and the graph dequantizes them with Cast/Sub/Mul (each one float32 rounding, as kdqat's
//     dequantizeCodes), which onnxruntime constant-folds when the session loads.
// A student's activation quantization (dynamic per-tensor symmetric, quant/ops.ts
// fakeQuantInput) goes before the Linears it applies to as QuantizeLinear → DequantizeLinear
// (int8) with the scale computed in the graph. ONNX rounds ties to even where kdqat rounds them
// away from zero; the two differ only when x/s is exactly k + ½.
import type { Params } from '../nn/params.js';
import { f32ToF16Array as halfBits } from './half.js';
import { DT, MS_DOMAIN, type OnnxGraph } from './onnx.js';
import { groupOf, isKRule, K_RULES, type Codes, type WeightQuant } from '../quant/rules.js';

export type WeightMode = 'f32' | 'f16' | 'quantized';

export interface QuantizedWeight { quant: WeightQuant; codes: Codes }

export interface WeightSource {
  /** The deployed float weights (a student: dequantized), HF names. */
  params: Params;
  mode: WeightMode;
  /** Quantized weights by parameter name (mode 'quantized'). */
  quantized?: ReadonlyMap<string, QuantizedWeight>;
  /** Activation quantization of the Linears whose weight is in `names`. */
  activations?: { bits: number; clip?: number; names: ReadonlySet<string> } | null;
}

/** How one quantized weight is stored (see top). */
export type Storage =
  | { kind: 'nbits'; bits: 2 | 4 | 8; block: number; shift: number; zeros: boolean }
  | { kind: 'codes' };

const containerBits = (b: number): 2 | 4 | 8 => (b <= 2 ? 2 : b <= 4 ? 4 : 8);
const pow2Block = (n: number): boolean => n >= 16 && (n & (n - 1)) === 0;

/** The storage of a quantizer on a (rows, cols) weight in a `quantized` export. */
export function storageOf(q: WeightQuant, cols: number): Storage {
  const r = q.rule;
  if (isKRule(r)) {
    const K = K_RULES[r.kind];
    if (r.kind === 'q3_k') return { kind: 'nbits', bits: 4, block: K.sub, shift: 4, zeros: false }; // code − 4 = (code + 4) − 8
    if (r.kind === 'q6_k') return { kind: 'nbits', bits: 8, block: K.sub, shift: 96, zeros: false }; // code − 32 = (code + 96) − 128
    return { kind: 'codes' };
  }
  if (r.kind === 'q4_0') return { kind: 'nbits', bits: 4, block: 32, shift: 0, zeros: false };
  if (r.kind === 'q8_0') return { kind: 'nbits', bits: 8, block: 32, shift: 128, zeros: false };
  if (r.kind === 'tq2_0') return { kind: 'nbits', bits: 2, block: 256, shift: 1, zeros: false };
  const g = groupOf(q, cols); // 0 tensor, cols channel, else the group
  const block = g === 0 || g === cols ? [256, 128, 64, 32, 16].find((b) => cols % b === 0) ?? 32 : g;
  if (!pow2Block(block)) return { kind: 'codes' };
  if (r.kind === 'twn') return { kind: 'nbits', bits: 2, block, shift: 2, zeros: false };
  const bits = containerBits(r.bits);
  if (r.kind === 'sym') return { kind: 'nbits', bits, block, shift: 2 ** (bits - 1), zeros: false };
  return { kind: 'nbits', bits, block, shift: 0, zeros: true };
}

/** Code offsets of the codes form: ŵ = (code − offset)·scale. */
function codeOffset(q: WeightQuant): number {
  const k = q.rule.kind;
  return k === 'q4_0' ? 8 : k === 'tq2_0' ? 1 : k === 'q3_k' ? 4 : k === 'q6_k' ? 32 : 0;
}

/** Packs values (rows, cols) < 2^bits into MatMulNBits' (rows, k_blocks, block·bits/8) layout. */
export function packNBits(u: ArrayLike<number>, rows: number, cols: number, bits: number, block: number): Uint8Array {
  const kb = Math.ceil(cols / block), blob = (block * bits) / 8;
  const out = new Uint8Array(rows * kb * blob);
  for (let n = 0; n < rows; n++) {
    for (let k = 0; k < cols; k++) {
      const v = u[n * cols + k];
      const bit = ((n * kb + Math.floor(k / block)) * blob) * 8 + (k % block) * bits;
      out[bit >> 3] |= v << (bit & 7); // bits divides 8: a value never straddles bytes
    }
  }
  return out;
}

/** The value (q − zp)·scale MatMulNBits dequantizes element (n, k) to (the spec's formula). */
export function unpackNBits(B: Uint8Array, scales: Float32Array, zp: Uint8Array | null, rows: number, cols: number,
  bits: number, block: number): Float32Array {
  const kb = Math.ceil(cols / block), blob = (block * bits) / 8, zpRow = Math.ceil((kb * bits) / 8), mask = (1 << bits) - 1;
  const out = new Float32Array(rows * cols);
  for (let n = 0; n < rows; n++) {
    for (let k = 0; k < cols; k++) {
      const b = Math.floor(k / block);
      const bit = ((n * kb + b) * blob) * 8 + (k % block) * bits;
      const q = (B[bit >> 3] >> (bit & 7)) & mask;
      const zbit = n * zpRow * 8 + b * bits;
      const z = zp ? (zp[zbit >> 3] >> (zbit & 7)) & mask : 2 ** (bits - 1);
      out[n * cols + k] = (q - z) * scales[n * kb + b];
    }
  }
  return out;
}

/** Per-block values (rows, k_blocks) from per-granule ones (granule order, quant/rules.ts). */
function perBlock(v: ArrayLike<number>, rows: number, cols: number, q: WeightQuant, block: number): number[] {
  const kb = Math.ceil(cols / block), g = groupOf(q, cols), out: number[] = [];
  for (let n = 0; n < rows; n++) {
    for (let b = 0; b < kb; b++) out.push(g === 0 ? v[0] : v[Math.floor((n * cols + b * block) / g)]);
  }
  return out;
}

export class OnnxWeights {
  private readonly mats = new Map<string, string>();
  private readonly vecs = new Map<string, string>();
  constructor(private readonly g: OnnxGraph, private readonly src: WeightSource) {}

  private p(name: string) {
    const t = this.src.params.get(name);
    if (!t) throw new Error(`ONNX export: parameter "${name}" is missing from the model`);
    return t;
  }

  /** A 1-D parameter (norm weights, biases), float32. */
  vector(name: string): string {
    let v = this.vecs.get(name);
    if (!v) {
      const t = this.p(name);
      v = this.g.init(name, DT.FLOAT, [...t.shape], t.f32);
      this.vecs.set(name, v);
    }
    return v;
  }

  private quantOf(name: string): QuantizedWeight | undefined {
    return this.src.mode === 'quantized' ? this.src.quantized?.get(name) : undefined;
  }

  /** The (rows, cols) float matrix of a 2-D parameter as a graph value (embedding tables, tied heads). */
  matrix(name: string): string {
    let m = this.mats.get(name);
    if (m) return m;
    const t = this.p(name);
    const [rows, cols] = t.shape;
    const qw = this.quantOf(name);
    if (qw) m = this.codesMatrix(name, qw, rows, cols);
    else if (this.src.mode === 'f16') m = this.g.op('Cast', [this.g.init(name, DT.FLOAT16, [rows, cols], halfBits(t.f32))], { to: DT.FLOAT });
    else m = this.g.init(name, DT.FLOAT, [rows, cols], t.f32);
    this.mats.set(name, m);
    return m;
  }

  /** Codes → ŵ (rows, cols) in the graph: Cast, − offset or zero points, · scales, − mins. */
  private codesMatrix(name: string, { quant: q, codes: c }: QuantizedWeight, rows: number, cols: number): string {
    const g = this.g;
    const group = groupOf(q, cols) || rows * cols, G = (rows * cols) / group;
    const signed = c.codes instanceof Int8Array;
    const codes = g.init(`${name}.codes`, signed ? DT.INT8 : DT.UINT8, [G, group], c.codes);
    let x = g.op('Cast', [codes], { to: DT.FLOAT }); // (G, group)
    if (c.zeros) x = g.op('Sub', [x, g.init(`${name}.zeros`, DT.FLOAT, [G, 1], Float32Array.from(c.zeros))]);
    else if (codeOffset(q)) x = g.op('Sub', [x, g.scalarF(codeOffset(q))]);
    x = g.op('Mul', [x, g.init(`${name}.scales`, DT.FLOAT, [G, 1], c.scales)]);
    if (c.mins) x = g.op('Sub', [x, g.init(`${name}.mins`, DT.FLOAT, [G, 1], c.mins)]);
    return g.op('Reshape', [x, g.i64(rows, cols)]);
  }

  /** x (…, K) → x·Wᵀ (+ b), W (N, K) = parameter `name`, through the student's activation quantizer. */
  linear(x: string, name: string, bias?: string): string {
    const g = this.g;
    const a = this.src.activations;
    if (a && a.names.has(name)) x = this.quantizeActivations(x, a.bits, a.clip);
    const t = this.p(name);
    const [N, K] = t.shape;
    const qw = this.quantOf(name);
    const st = qw ? storageOf(qw.quant, K) : null;
    if (qw && st?.kind === 'nbits') {
      const c = qw.codes;
      const u = new Uint8Array(N * K);
      for (let i = 0; i < u.length; i++) u[i] = c.codes[i] + st.shift;
      const kb = Math.ceil(K / st.block);
      const B = g.init(`${name}.qweight`, DT.UINT8, [N, kb, (st.block * st.bits) / 8], packNBits(u, N, K, st.bits, st.block));
      const scales = g.init(`${name}.scales`, DT.FLOAT, [N * kb], Float32Array.from(perBlock(c.scales, N, K, qw.quant, st.block)));
      let zp = '';
      if (st.zeros) {
        const z = perBlock(c.zeros!, N, K, qw.quant, st.block);
        const zpRow = Math.ceil((kb * st.bits) / 8); // bytes per row: (N, ⌈k_blocks·bits/8⌉)
        zp = g.init(`${name}.qzeros`, DT.UINT8, [N * zpRow], packNBits(z, N, kb, st.bits, (zpRow * 8) / st.bits));
      }
      const inputs = [x, B, scales, zp];
      if (bias) inputs.push('', this.vector(bias));
      // accuracy_level 1: A stays float32 (4 would quantize it to int8 inside the kernel).
      return g.op('MatMulNBits', inputs, { K, N, bits: st.bits, block_size: st.block, accuracy_level: 1 }, { domain: MS_DOMAIN });
    }
    let wT: string;
    if (qw || this.mats.has(name)) wT = g.op('Transpose', [this.matrix(name)], { perm: [1, 0] });
    else {
      const T = new Float32Array(N * K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) T[k * N + n] = t.f32[n * K + k];
      wT = this.src.mode === 'f16'
        ? g.op('Cast', [g.init(`${name}.T`, DT.FLOAT16, [K, N], halfBits(T))], { to: DT.FLOAT })
        : g.init(`${name}.T`, DT.FLOAT, [K, N], T);
    }
    const y = g.op('MatMul', [x, wT]);
    return bias ? g.op('Add', [y, this.vector(bias)]) : y;
  }

  /** quant/ops.ts fakeQuantInput: s = max|clamp(x, ±clip)| / (2^(b−1) − 1) over the whole tensor,
   *  x̂ = clamp(round(x/s))·s; here QuantizeLinear → DequantizeLinear (int8) with that s. */
  private quantizeActivations(x: string, bits: number, clip?: number): string {
    const g = this.g;
    const xc = clip === undefined ? x : g.op('Clip', [x, g.scalarF(-Math.fround(clip)), g.scalarF(Math.fround(clip))]);
    const amax = g.op('ReduceMax', [g.op('Abs', [xc])], { keepdims: 0 });
    // s = 0 (all zero): kdqat gives 0; any positive scale does too, so floor it at the smallest normal.
    const s = g.op('Max', [g.op('Div', [amax, g.scalarF(2 ** (bits - 1) - 1)]), g.scalarF(2 ** -126)]);
    const zp = g.const(DT.INT8, [], [0]);
    const q = g.op('QuantizeLinear', [xc, s, zp]);
    return g.op('DequantizeLinear', [q, s, zp]);
  }
}

