// Weight quantization rules as data (METHODS.md §2) and their deployable form: integer codes +
// per-granule scales (+ zero points). Fake quantization (src/quant/ops.ts) and conversion run
// the same kernel (`fakeQuant`, semantics in src/tensor/kernels.ts), so
// dequantizeCodes(quantizeCodes(w)) === fakeQuantWeight(w) bit for bit (STYLE.md 6).
//
// Decisions (documented here once):
// - Rounding is C roundf (halves away from zero), as ggml does; torch.round rounds halves to even.
// - Asymmetric ranges include 0 (min(min w, 0), max(max w, 0)), as PyTorch's observers and GPTQ
//   do, so the zero point is an integer in [0, 2^b−1] and 0 is exact.
// - An all-zero granule (s = 0) gives codes 0 and ŵ = 0 (no NaN).
// - LSQ on asym learns s with the zero point recomputed from the current min and s (not
//   learned); its gradient scale uses Qp = 2^b−1.
// - llama.cpp rules imply their blocks (32, 32, 256 along cols; the K-quants q2_k … q6_k 256);
//   the granule is ignored for them, except that a group granule of another size is an error
//   (it contradicts the format).
// - The K-quants go through the `fakeQuantGrid` kernel: ŵ is a fixed point of llama.cpp's
//   quantize→dequantize (formats.ts gridQuantRef), so export re-quantizes it losslessly. Their
//   deployable form has one scale per sub-block (16 or 32 elements: the granule of
//   granuleCount) and, for q2_k/q4_k/q5_k, a float min per sub-block (Codes.mins).
import { kernel } from '../tensor/registry.js';
import { QuantRule, type QuantRuleCode } from '../tensor/kernels.js';
import { dequantizeUnpackedK, type KFormatName } from './kunpack.js';
import { FORMATS, formatOfRule } from './formats.js';

export type Rule =
  | { kind: 'sym'; bits: number } // uniform symmetric, 2..8 bits (METHODS.md §2)
  | { kind: 'asym'; bits: number } // uniform asymmetric with zero point
  | { kind: 'twn' } // TWN ternary
  | { kind: 'q4_0' } | { kind: 'q8_0' } | { kind: 'tq2_0' } // exact llama.cpp grids
  | { kind: KRuleKind }; // llama.cpp K-quant grids (super-blocks of 256)
export type KRuleKind = 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k';
/** K-quant rule → its format and sub-block (granule) size, read off the format table (formats.ts). */
export const K_RULES = Object.fromEntries(Object.values(FORMATS).filter((f) => f.kernel.name === 'fakeQuantGrid')
  .map((f) => [f.rule, { format: f.name as KFormatName, sub: f.grid.sub as number, mins: f.grid.mins as boolean }])) as
  Record<KRuleKind, { format: KFormatName; sub: number; mins: boolean }>;
export const isKRule = (rule: Rule): rule is { kind: KRuleKind } => Object.hasOwn(K_RULES, rule.kind);
export type Granule = { kind: 'tensor' } | { kind: 'channel' } | { kind: 'group'; size: number };
export interface WeightQuant {
  rule: Rule;
  granule: Granule;
  /** Learnable step (sym/asym only): the scale is a trained parameter, one per granule. */
  lsq?: boolean;
  /** Clipped STE: zero gradient where |w| > clip (absent: plain STE). */
  clip?: number;
}
/** The deployable form of a (rows = out, cols = in) weight: one code per weight (row-major),
 *  Int8Array for sym / twn (−1, 0, 1) / q8_0, Uint8Array for asym / q4_0 (0..15) / tq2_0 (0..2)
 *  / K-quants (kunpack.ts); scales per granule (row-major granules; ggml rules: the fp16-rounded
 *  d per block; K-quants: float(d·sc) per sub-block); zero points per granule for asym, else
 *  null; mins per sub-block for q2_k/q4_k/q5_k (float(dmin·m)), else absent or null. */
export interface Codes { codes: Int8Array | Uint8Array; scales: Float32Array; zeros: Int32Array | null; mins?: Float32Array | null }

/** The range of a rule's stored codes (Codes.codes): sym b-bit [−2^(b−1), 2^(b−1)−1] (METHODS.md
 *  §2's clamp), asym [0, 2^b−1] (its zero points too), twn [−1, 1], a llama.cpp grid its
 *  format's (formats.ts grid.codes). */
export function codeRange(rule: Rule): [number, number] {
  if (rule.kind === 'sym') return [-(2 ** (rule.bits - 1)), 2 ** (rule.bits - 1) - 1];
  if (rule.kind === 'asym') return [0, 2 ** rule.bits - 1];
  if (rule.kind === 'twn') return [-1, 1];
  const f = formatOfRule(rule.kind);
  if (!f) throw new RangeError(`codeRange: unknown rule ${JSON.stringify(rule.kind)}`);
  return [f.grid.codes[0], f.grid.codes[1]];
}

/** Block size of a llama.cpp rule (undefined for the others). */
export function ggmlBlock(rule: Rule): number | undefined {
  return formatOfRule(rule.kind)?.block;
}

/** "sym 4-bit per channel", "q4_0 (blocks of 32)", ... for messages. */
export function describeQuant(q: WeightQuant): string {
  const r = q.rule;
  const block = ggmlBlock(r);
  if (block !== undefined) return `${r.kind} (blocks of ${block})`;
  const name = r.kind === 'sym' || r.kind === 'asym' ? `${r.kind} ${r.bits}-bit` : r.kind;
  const g = q.granule;
  const gran = g.kind === 'tensor' ? 'per tensor' : g.kind === 'channel' ? 'per channel' : `per group of ${g.size}`;
  return `${name}${q.lsq ? ' LSQ' : ''} ${gran}`;
}

/** Throws a RangeError naming `where`, the quantizer and the shape unless q fits a (rows, cols) weight. */
export function checkWeightQuant(q: WeightQuant, rows: number, cols: number, where: string): void {
  const fail = (msg: string): never => {
    throw new RangeError(`${where}: ${safeDescribe(q)} on a [${rows}, ${cols}] weight: ${msg}`);
  };
  const r = q.rule as Rule | undefined;
  if (!r || !(r.kind in QuantRule)) {
    fail(`unknown rule ${JSON.stringify(r?.kind)} (use sym, asym, twn, q4_0, q8_0, tq2_0, q2_k, q3_k, q4_k, q5_k or q6_k)`);
  }
  if (r!.kind === 'sym' || r!.kind === 'asym') {
    const b = r!.bits;
    if (!(Number.isInteger(b) && b >= 2 && b <= 8)) fail(`bits ${b} is outside 2..8`);
  }
  const block = ggmlBlock(r!);
  const g = q.granule as Granule | undefined;
  if (block !== undefined) {
    if (g?.kind === 'group' && g.size !== block) {
      fail(`${r!.kind} has fixed blocks of ${block}; drop the granule or use group size ${block}`);
    }
    if (cols % block !== 0) fail(`cols ${cols} is not a multiple of the ${r!.kind} block ${block}`);
  } else if (!g || !['tensor', 'channel', 'group'].includes(g.kind)) {
    fail(`unknown granule ${JSON.stringify(g?.kind)} (use tensor, channel or group)`);
  } else if (g.kind === 'group') {
    if (!(Number.isInteger(g.size) && g.size > 0)) fail(`group size ${g.size} must be a positive integer`);
    if (cols % g.size !== 0) fail(`group size ${g.size} does not divide the ${cols} input columns (choose a divisor of ${cols})`);
  }
  if (q.lsq && r!.kind !== 'sym' && r!.kind !== 'asym') fail('LSQ (a learned step) applies to sym and asym only');
  if (q.clip !== undefined && !(q.clip > 0)) fail(`clip ${q.clip} must be > 0`);
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0)) fail('empty or invalid shape');
}

function safeDescribe(q: WeightQuant): string {
  try {
    return describeQuant(q);
  } catch {
    return JSON.stringify(q);
  }
}

/** The kernels' rule code. */
export function ruleCode(rule: Rule): QuantRuleCode {
  return QuantRule[rule.kind];
}

/** The kernels' `group`: 0 = per tensor, cols = per channel, g = per group (ggml: its block;
 *  K-quants: the sub-block, which has its own scale). */
export function groupOf(q: WeightQuant, cols: number): number {
  if (isKRule(q.rule)) return K_RULES[q.rule.kind].sub;
  const block = ggmlBlock(q.rule);
  if (block !== undefined) return block;
  return q.granule.kind === 'tensor' ? 0 : q.granule.kind === 'channel' ? cols : q.granule.size;
}

/** Bits of the uniform rules (the kernels ignore it for the others). */
export function bitsOf(rule: Rule): number {
  return rule.kind === 'sym' || rule.kind === 'asym' ? rule.bits : 0;
}

/** Number of scales (LSQ steps) of a (rows, cols) weight under q. */
export function granuleCount(rows: number, cols: number, q: WeightQuant): number {
  const group = groupOf(q, cols);
  return group === 0 ? 1 : (rows * cols) / group;
}

/** Runs fn, prefixing any error with where, the quantizer and the shape. */
export function withContext<T>(where: string, q: WeightQuant, rows: number, cols: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RangeError) {
      throw new RangeError(`${where}: ${describeQuant(q)} on a [${rows}, ${cols}] weight: ${e.message}`);
    }
    throw e;
  }
}

/** Checks the LSQ step against the quantizer: required iff q.lsq, one per granule. */
export function checkStep(q: WeightQuant, rows: number, cols: number, step: Float32Array | undefined, where: string): void {
  const G = granuleCount(rows, cols, q);
  const ctx = `${where}: ${describeQuant(q)} on a [${rows}, ${cols}] weight`;
  if (q.lsq && !step) throw new RangeError(`${ctx}: LSQ needs its learned step (${G} values; make it with initStep)`);
  if (!q.lsq && step) throw new RangeError(`${ctx}: a step was given but the quantizer is not LSQ (set lsq: true)`);
  if (step && step.length !== G) throw new RangeError(`${ctx}: step has ${step.length} values, expected ${G} (one per granule)`);
}

const SIGNED = new Set<Rule['kind']>(['sym', 'twn', 'q8_0']);

/** Integer codes + scales (+ zero points) of w (rows, cols); `step` for LSQ quantizers. */
export function quantizeCodes(w: Float32Array, rows: number, cols: number, q: WeightQuant, step?: Float32Array): Codes {
  const where = 'quantizeCodes';
  checkWeightQuant(q, rows, cols, where);
  checkStep(q, rows, cols, step, where);
  if (w.length !== rows * cols) {
    throw new RangeError(`${where}: ${describeQuant(q)}: w has ${w.length} values, expected ${rows}·${cols}`);
  }
  const G = granuleCount(rows, cols, q);
  if (isKRule(q.rule)) {
    const K = K_RULES[q.rule.kind];
    const codes32 = new Int32Array(w.length), scales = new Float32Array(G);
    const mins = K.mins ? new Float32Array(G) : null;
    withContext(where, q, rows, cols, () => kernel('fakeQuantGrid')(w, null, codes32, scales, mins, rows, cols, ruleCode(q.rule)));
    return { codes: Uint8Array.from(codes32), scales, zeros: null, mins };
  }
  const codes32 = new Int32Array(w.length);
  const scales = new Float32Array(G);
  const zeros = q.rule.kind === 'asym' ? new Int32Array(G) : null;
  withContext(where, q, rows, cols, () => kernel('fakeQuant')(w, null, codes32, scales, zeros, step ?? null,
    rows, cols, ruleCode(q.rule), bitsOf(q.rule), groupOf(q, cols)));
  const codes = SIGNED.has(q.rule.kind) ? new Int8Array(w.length) : new Uint8Array(w.length);
  codes.set(codes32);
  return { codes, scales, zeros };
}

/** ŵ from codes: code·s (sym, twn, q8_0), (code − z)·s (asym), (code − 8)·d (q4_0),
 *  (code − 1)·d (tq2_0), each product rounded to float32 once; K-quants as kunpack.ts. */
export function dequantizeCodes(c: Codes, rows: number, cols: number, q: WeightQuant): Float32Array {
  const where = 'dequantizeCodes';
  checkWeightQuant(q, rows, cols, where);
  const n = rows * cols, G = granuleCount(rows, cols, q), group = groupOf(q, cols);
  const ctx = `${where}: ${describeQuant(q)} on a [${rows}, ${cols}] weight`;
  if (c.codes.length !== n) throw new RangeError(`${ctx}: ${c.codes.length} codes, expected ${n}`);
  if (c.scales.length !== G) throw new RangeError(`${ctx}: ${c.scales.length} scales, expected ${G}`);
  const kind = q.rule.kind;
  if (isKRule(q.rule)) {
    const K = K_RULES[q.rule.kind];
    const withMins = K.mins;
    if (withMins && c.mins?.length !== G) throw new RangeError(`${ctx}: ${kind} needs ${G} mins (one per sub-block of ${K.sub})`);
    return dequantizeUnpackedK(K.format, { codes: Uint8Array.from(c.codes), scales: c.scales, mins: withMins ? c.mins! : null });
  }
  if (kind === 'asym' && c.zeros?.length !== G) throw new RangeError(`${ctx}: asym needs ${G} zero points`);
  const offset = formatOfRule(kind)?.grid.offset ?? 0; // q4_0: 8, tq2_0: 1
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const k = group === 0 ? 0 : Math.floor(i / group);
    const z = kind === 'asym' ? c.zeros![k] : offset;
    out[i] = (c.codes[i] - z) * c.scales[k];
  }
  return out;
}
