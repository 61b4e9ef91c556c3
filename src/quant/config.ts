// Quantization configs as data (STYLE.md 5; torchao's `quantize_(model, config)`): one default
// weight quantizer, which modules it applies to, per-pattern overrides, and optional activation
// quantization. A config is a preset name (QUANT_PRESETS) or a JSON file; parseQuantConfig
// validates JSON against the format below and names the source file and the field on error.
//
// JSON format (docs/quantization.md has the long form):
//   {
//     "preset": "w4-channel",                   optional: start from a preset, the keys below replace its keys
//     "weights": {                              the default quantizer
//       "rule": {"kind": "sym", "bits": 4},     sym|asym (bits 2..8), twn, q4_0, q8_0, tq2_0, q2_k … q6_k; "q4_0"… as a string too
//       "granule": {"kind": "channel"},         tensor | channel | {"kind": "group", "size": 128}; "tensor"/"channel" as strings too
//       "lsq": false,                           learnable step (sym/asym only)
//       "clip": 2.5                             clipped STE: zero gradient where |w| > clip
//     },
//     "modules": ["q_proj", "re:…"],            patterns (src/nn/modules.ts); default: METHODS.md §2 per arch
//     "overrides": [{"pattern": "lm_head", "quant": {…} | null}],   later entries win; null = full precision
//     "activations": {"bits": 8, "clip": 2.5}   8-bit dynamic per-tensor inputs of quantized Linears; null = off
//   }
import * as fs from 'node:fs';
import { describeQuant, ggmlBlock, type Granule, type Rule, type WeightQuant } from './rules.js';
import { FORMAT_LIST } from './formats.js';
import { readFileChecked } from '../io/files.js';

export interface QuantConfig {
  /** The default quantizer of the selected modules. */
  weights: WeightQuant;
  /** Module patterns; absent: the Linear weights of every block, by the architecture record's
   *  module kinds (METHODS.md §2: embeddings, norms, heads stay full precision). */
  modules?: string[];
  /** Per-pattern quantizers, applied in order (later wins); null = full precision. A non-null
   *  override also adds the weights it matches to the selection (e.g. lm_head 8-bit). */
  overrides?: { pattern: string; quant: WeightQuant | null }[];
  /** Paper B: fake-quantize the input of every quantized Linear (dynamic, per tensor, symmetric). */
  activations?: { bits: number; clip?: number } | null;
}


export const MIN_BITS = 2;
export const MAX_BITS = 8;

// The uniform rules, then one per format of the table (formats.ts): q4_0, q8_0, tq2_0, q2_k … q6_k.
const RULE_KINDS: readonly string[] = ['sym', 'asym', 'twn', ...FORMAT_LIST.map((f) => f.rule)];

/** Error for a config field: "<source>: <field>: <message>". */
export class QuantConfigError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], fail: (f: string, m: string) => never, at: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(at ? `${at}.${k}` : k, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function bitsOf(v: unknown, fail: (f: string, m: string) => never, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_BITS || v > MAX_BITS) {
    fail(at, `bits must be an integer from ${MIN_BITS} to ${MAX_BITS}, got ${show(v)}`);
  }
  return v;
}

function parseRule(v: unknown, fail: (f: string, m: string) => never, at: string): Rule {
  if (typeof v === 'string') v = { kind: v };
  if (!isObj(v)) fail(at, `must be an object {"kind": …} or a rule name, got ${show(v)}`);
  const kind = v.kind;
  if (typeof kind !== 'string' || !(RULE_KINDS as readonly string[]).includes(kind)) {
    fail(`${at}.kind`, `unknown rule ${show(kind)} (known: ${RULE_KINDS.join(', ')})`);
  }
  if (kind === 'sym' || kind === 'asym') {
    checkKeys(v, ['kind', 'bits'], fail, at);
    if (!('bits' in v)) fail(`${at}.bits`, `rule ${kind} needs "bits" (${MIN_BITS}..${MAX_BITS})`);
    return { kind, bits: bitsOf(v.bits, fail, `${at}.bits`) };
  }
  checkKeys(v, ['kind'], fail, at);
  return { kind } as Rule;
}

function parseGranule(v: unknown, fail: (f: string, m: string) => never, at: string): Granule {
  if (v === 'tensor' || v === 'channel') return { kind: v };
  if (!isObj(v)) fail(at, `must be "tensor", "channel" or {"kind": "group", "size": N}, got ${show(v)}`);
  if (v.kind === 'tensor' || v.kind === 'channel') {
    checkKeys(v, ['kind'], fail, at);
    return { kind: v.kind };
  }
  if (v.kind !== 'group') fail(`${at}.kind`, `unknown granule ${show(v.kind)} (known: tensor, channel, group)`);
  checkKeys(v, ['kind', 'size'], fail, at);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) {
    fail(`${at}.size`, `group size must be a positive integer (e.g. 32, 64, 128), got ${show(size)}`);
  }
  return { kind: 'group', size };
}

/** A weight quantizer from JSON; llama.cpp rules get their own block as granule when it is left out. */
function parseWeightQuant(v: unknown, fail: (f: string, m: string) => never, at: string): WeightQuant {
  if (!isObj(v)) fail(at, `must be an object {"rule", "granule", "lsq"?, "clip"?}, got ${show(v)}`);
  checkKeys(v, ['rule', 'granule', 'lsq', 'clip'], fail, at);
  if (!('rule' in v)) fail(`${at}.rule`, 'missing (e.g. {"kind": "sym", "bits": 4})');
  const rule = parseRule(v.rule, fail, `${at}.rule`);
  const block = ggmlBlock(rule);
  let granule: Granule;
  if (v.granule === undefined) {
    if (block === undefined) fail(`${at}.granule`, 'missing ("tensor", "channel" or {"kind": "group", "size": N})');
    granule = { kind: 'group', size: block };
  } else {
    granule = parseGranule(v.granule, fail, `${at}.granule`);
  }
  const q: WeightQuant = { rule, granule };
  if (v.lsq !== undefined) {
    if (typeof v.lsq !== 'boolean') fail(`${at}.lsq`, `must be true or false, got ${show(v.lsq)}`);
    if (v.lsq) q.lsq = true;
  }
  if (v.clip !== undefined) {
    if (typeof v.clip !== 'number' || !(v.clip > 0) || !Number.isFinite(v.clip)) fail(`${at}.clip`, `must be a positive number, got ${show(v.clip)}`);
    q.clip = v.clip;
  }
  validateWeightQuant(q, fail, at);
  return q;
}

/**
 * Consistency of a quantizer, whoever built it (JSON or code): bits in range, LSQ only on the
 * uniform rules, llama.cpp rules only on their own blocks.
 */
export function validateWeightQuant(q: WeightQuant, fail: (f: string, m: string) => never, at: string): void {
  const r = q.rule;
  if (r.kind === 'sym' || r.kind === 'asym') bitsOf(r.bits, fail, `${at}.rule.bits`);
  else if (!(RULE_KINDS as readonly string[]).includes(r.kind)) fail(`${at}.rule.kind`, `unknown rule ${show(r.kind)}`);
  const g = q.granule;
  if (g.kind === 'group' && (!Number.isInteger(g.size) || g.size < 1)) fail(`${at}.granule.size`, `group size must be a positive integer, got ${show(g.size)}`);
  if (q.lsq && r.kind !== 'sym' && r.kind !== 'asym') fail(`${at}.lsq`, `LSQ (learnable step) applies to the sym and asym rules only, not ${r.kind}`);
  const block = RULE_KINDS.includes(r.kind) ? ggmlBlock(r) : undefined;
  if (block !== undefined && !(g.kind === 'group' && g.size === block)) {
    fail(`${at}.granule`, `${r.kind} is llama.cpp's block format with blocks of ${block} inputs; leave "granule" out or give {"kind": "group", "size": ${block}}`);
  }
}

function parseActivations(v: unknown, fail: (f: string, m: string) => never): QuantConfig['activations'] {
  if (v === null) return null;
  if (!isObj(v)) fail('activations', `must be {"bits": 8, "clip"?: 2.5} or null, got ${show(v)}`);
  checkKeys(v, ['bits', 'clip'], fail, 'activations');
  const a: { bits: number; clip?: number } = { bits: bitsOf(v.bits, fail, 'activations.bits') };
  if (v.clip !== undefined) {
    if (typeof v.clip !== 'number' || !(v.clip > 0) || !Number.isFinite(v.clip)) fail('activations.clip', `must be a positive number, got ${show(v.clip)}`);
    a.clip = v.clip;
  }
  return a;
}

function parsePatterns(v: unknown, fail: (f: string, m: string) => never, at: string): string[] {
  if (!Array.isArray(v)) fail(at, `must be an array of module patterns, got ${show(v)}`);
  return v.map((p, i) => {
    if (typeof p !== 'string' || !p) fail(`${at}[${i}]`, `must be a non-empty pattern string, got ${show(p)}`);
    if (p.startsWith('re:')) {
      try { new RegExp(p.slice(3)); } catch (e) { fail(`${at}[${i}]`, `'${p}' is not a valid regular expression (${(e as Error).message})`); }
    }
    return p;
  });
}

/** Validates a parsed JSON config; every error is "<source>: <field>: what is wrong". */
export function parseQuantConfig(json: unknown, source: string): QuantConfig {
  const fail: (field: string, msg: string) => never = (field, msg) => {
    throw new QuantConfigError(`${source}: ${field}: ${msg}`);
  };
  if (!isObj(json)) fail('(top level)', `a quantization config must be a JSON object, got ${show(json)}`);
  checkKeys(json, ['preset', 'weights', 'modules', 'overrides', 'activations'], fail, '');
  let base: QuantConfig | undefined;
  if (json.preset !== undefined) {
    if (typeof json.preset !== 'string' || !Object.hasOwn(QUANT_PRESETS, json.preset)) {
      fail('preset', `unknown preset ${show(json.preset)} (known: ${Object.keys(QUANT_PRESETS).join(', ')})`);
    }
    base = cloneConfig(QUANT_PRESETS[json.preset]);
  }
  if (json.weights === undefined && !base) fail('weights', 'missing: give the default quantizer, or a "preset" to start from');
  const cfg: QuantConfig = base ?? ({} as QuantConfig);
  if (json.weights !== undefined) cfg.weights = parseWeightQuant(json.weights, fail, 'weights');
  if (json.modules !== undefined) cfg.modules = parsePatterns(json.modules, fail, 'modules');
  if (json.overrides !== undefined) {
    if (!Array.isArray(json.overrides)) fail('overrides', `must be an array of {"pattern", "quant"}, got ${show(json.overrides)}`);
    cfg.overrides = json.overrides.map((o, i) => {
      const at = `overrides[${i}]`;
      if (!isObj(o)) fail(at, `must be {"pattern": "...", "quant": {...} | null}, got ${show(o)}`);
      checkKeys(o, ['pattern', 'quant'], fail, at);
      const [pattern] = parsePatterns([o.pattern], (_f, m) => fail(`${at}.pattern`, m), at);
      if (!('quant' in o)) fail(`${at}.quant`, 'missing (a quantizer, or null for full precision)');
      return { pattern, quant: o.quant === null ? null : parseWeightQuant(o.quant, fail, `${at}.quant`) };
    });
  }
  if (json.activations !== undefined) cfg.activations = parseActivations(json.activations, fail);
  return cfg;
}

/**
 * Code-built configs may give a llama.cpp rule any tensor/channel granule (rules.ts ignores it
 * for those rules); prepare normalizes it to the rule's block so codes and files are uniform.
 * A group of another size stays, and fails validation.
 */
export function normalizeQuant(q: WeightQuant): WeightQuant {
  const block = ggmlBlock(q.rule);
  if (block === undefined || q.granule?.kind === 'group') return q;
  return { ...q, granule: { kind: 'group', size: block } };
}

/** A JSON-ready deep copy (configs are data; presets must not be mutated through a copy). */
export function cloneConfig(c: QuantConfig): QuantConfig {
  return JSON.parse(JSON.stringify(c)) as QuantConfig;
}

// ---- presets --------------------------------------------------------------------------------------

const sym = (bits: number, granule: Granule, extra: Partial<WeightQuant> = {}): WeightQuant => ({ rule: { kind: 'sym', bits }, granule, ...extra });
const asym = (bits: number, granule: Granule, extra: Partial<WeightQuant> = {}): WeightQuant => ({ rule: { kind: 'asym', bits }, granule, ...extra });
const channel: Granule = { kind: 'channel' };
const group = (size: number): Granule => ({ kind: 'group', size });
/** TernaryBERT: ternary per matrix with the STE clipped at ±2.5 (its code's `clip_val`). */
const TWN: WeightQuant = { rule: { kind: 'twn' }, granule: { kind: 'tensor' }, clip: 2.5 };
/** lm_head at 8 bits per output channel (METHODS.md §2's option). */
const HEAD8 = { pattern: 'lm_head', quant: sym(8, channel) };
/** BERT word embedding ternary per row (paper B's option); the MLM decoder shares it. */
const EMB_TWN = { pattern: 'word_embeddings', quant: { ...TWN, granule: channel } };

export const QUANT_PRESETS: Record<string, QuantConfig> = {
  // uniform symmetric per output channel (paper A's harder setting), per group, per tensor
  'w8-channel': { weights: sym(8, channel) },
  'w4-channel': { weights: sym(4, channel) },
  'w3-channel': { weights: sym(3, channel) },
  'w2-channel': { weights: sym(2, channel) },
  'w4-tensor': { weights: sym(4, { kind: 'tensor' }) },
  'w4-g32': { weights: sym(4, group(32)) },
  'w4-g64': { weights: sym(4, group(64)) },
  'w4-g128': { weights: sym(4, group(128)) },
  'w3-g128': { weights: sym(3, group(128)) },
  'w3-g32': { weights: sym(3, group(32)) },
  'w2-g32': { weights: sym(2, group(32)) },
  // asymmetric (zero point)
  'w4-channel-asym': { weights: asym(4, channel) },
  'w4-g128-asym': { weights: asym(4, group(128)) },
  // learnable step (LSQ) on top
  'w4-channel-lsq': { weights: sym(4, channel, { lsq: true }) },
  'w3-channel-lsq': { weights: sym(3, channel, { lsq: true }) },
  'w4-g128-lsq': { weights: sym(4, group(128), { lsq: true }) },
  // lm_head 8-bit as well (LLaMA)
  'w4-channel-head8': { weights: sym(4, channel), overrides: [HEAD8] },
  // llama.cpp grids (blocks along the input dim)
  q4_0: { weights: { rule: { kind: 'q4_0' }, granule: group(32) } },
  q8_0: { weights: { rule: { kind: 'q8_0' }, granule: group(32) } },
  tq2_0: { weights: { rule: { kind: 'tq2_0' }, granule: group(256) } },
  // llama.cpp K-quants (super-blocks of 256; QAT on the fixed points of llama.cpp's quantizer)
  q2_k: { weights: { rule: { kind: 'q2_k' }, granule: group(256) } },
  q3_k: { weights: { rule: { kind: 'q3_k' }, granule: group(256) } },
  q4_k: { weights: { rule: { kind: 'q4_k' }, granule: group(256) } },
  q5_k: { weights: { rule: { kind: 'q5_k' }, granule: group(256) } },
  q6_k: { weights: { rule: { kind: 'q6_k' }, granule: group(256) } },
  // paper B: ternary weights (W2), with 8-bit activations clipped at 2.5 (TernaryBERT's setting)
  twn: { weights: TWN },
  'twn-a8': { weights: TWN, activations: { bits: 8, clip: 2.5 } },
  'twn-a8-emb': { weights: TWN, overrides: [EMB_TWN], activations: { bits: 8, clip: 2.5 } },
};

/** A quantizer for messages (rules.ts describeQuant), null = full precision. */
export function describeQuantOrFp(q: WeightQuant | null): string {
  return q ? describeQuant(q) : 'full precision';
}

/**
 * `--quant PRESET|FILE`: a preset name, else a JSON file. Errors name the file (malformed JSON,
 * bad fields) or list the presets.
 */
export function loadQuantConfig(spec: string): { config: QuantConfig; source: string } {
  if (Object.hasOwn(QUANT_PRESETS, spec)) return { config: cloneConfig(QUANT_PRESETS[spec]), source: `preset ${spec}` };
  if (!fs.existsSync(spec)) {
    throw new QuantConfigError(`--quant ${spec}: neither a preset (${Object.keys(QUANT_PRESETS).join(', ')}) nor an existing JSON file`);
  }
  if (!fs.statSync(spec).isFile()) throw new QuantConfigError(`--quant ${spec}: is a directory; pass a preset name or a JSON config file`);
  let json: unknown;
  const text = readFileChecked(spec, 'utf8');
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QuantConfigError(`${spec}: not valid JSON (${(e as Error).message}); fix it (docs/quantization.md has the format) or pass a preset`);
  }
  return { config: parseQuantConfig(json, spec), source: spec };
}
