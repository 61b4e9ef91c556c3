// Applying a QuantConfig to a model, torchao-style (STYLE.md 5, 6): `prepare` checks the config
// against the model and hands back the WeightFn of fake-quantized weights (what QAT trains
// through); `convert` turns the latent weights into integer codes + scales with the same rules.
// fakeQuantWeight ≡ dequantizeCodes(quantizeCodes(·)) bitwise (quant-ops' contract), so a model
// rebuilt from the converted codes computes exactly what the prepared one did.
//
// Which weights can be quantized: the Linear weights the forward passes read through the WeightFn
// (METHODS.md §2). Their names are the Hugging Face parameter names, with one twist:
// - LLaMA with tied embeddings: the head's weight is the parameter model.embed_tokens.weight,
//   and the forward calls the WeightFn with that name for the head only (the embedding lookup
//   reads the parameter directly, llama.ts). Patterns select it by its logical name
//   `lm_head.weight`; `Prepared.quantized` keys it by the name the WeightFn sees,
//   'model.embed_tokens.weight', meaning the head; the student file stores it as lm_head.weight
//   (student.ts), and the loaded student is untied. The embedding lookup is never quantized.
// - BERT: the word embedding (option) is read through the WeightFn by the lookup and by the tied
//   MLM decoder alike, so quantizing it quantizes both.
// Trainable quantizer parameters (LSQ steps): `${weightName}.step`, one value per granule
// (initStep's shape), e.g. model.layers.0.self_attn.q_proj.weight.step; a pattern selecting a
// weight (freeze, optimizer groups) therefore selects its step too.
import { archOf, type Model } from '../models/model.js';
import type { Params, WeightFn } from '../nn/params.js';
import { matchesPattern, selectByPatterns } from '../nn/modules.js';
import { moduleOf } from '../models/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { normalizeQuant, validateWeightQuant, MAX_BITS, MIN_BITS, QuantConfigError, type QuantConfig } from './config.js';
import { describeQuant, ggmlBlock, quantizeCodes, type Codes, type WeightQuant } from './rules.js';
import { inputQuantizer, fakeQuantWeight, initStep } from './ops.js';

/** A weight that may be quantized. */
export interface QuantTarget {
  /** The name the WeightFn is called with (a key of model.params). */
  name: string;
  /** The name patterns match and the student file stores (differs only for a tied LLaMA head). */
  logical: string;
  rows: number; // out features
  cols: number; // in features
}

export interface Prepared {
  /** Fake-quantized weights; `.input` fake-quantizes the inputs of quantized Linears when activations are on. */
  weight: WeightFn;
  /** Trainable quantizer parameters: LSQ steps `${weightName}.step` (see top). */
  quantParams: Params;
  /** WeightFn name → its quantizer. */
  quantized: Map<string, WeightQuant>;
  /** WeightFn name → target (logical name, shape) for every quantized weight. */
  targets: Map<string, QuantTarget>;
  config: QuantConfig;
  activations: { bits: number; clip?: number } | null;
}

export interface ConvertedWeight {
  target: QuantTarget;
  quant: WeightQuant;
  codes: Codes;
}
/** WeightFn name → its deployable form. */
export type Converted = Map<string, ConvertedWeight>;

export interface PrepareOptions {
  /** Where the config came from (a file, "preset w4-channel"), for messages. */
  source?: string;
  /** Trained LSQ steps to start from (e.g. a student dir's), by the names of Prepared.quantParams;
   *  the rest are initialized by initStep. */
  steps?: Params;
}

/** The quantizable weights of a model (see top), in parameter order. */
export function quantTargets(model: Model): QuantTarget[] {
  const rec = archOf(model);
  const kinds = rec.modules.kinds;
  const extra = rec.modules.extraTargets(model.config);
  const out: QuantTarget[] = [];
  const add = (name: string, logical: string): void => {
    const p = model.params.get(name);
    if (!p) throw new Error(`quantization: the model has no parameter '${name}'`);
    if (p.ndim !== 2) throw new Error(`quantization: '${name}' has shape [${p.shape.join(', ')}], expected a matrix (out, in)`);
    out.push({ name, logical, rows: p.shape[0], cols: p.shape[1] });
  };
  for (const t of extra.first) add(t.name, t.logical);
  for (const name of model.params.keys()) {
    if (name.endsWith('.weight') && kinds.includes(moduleOf(name).kind)) add(name, name);
  }
  for (const t of extra.last) add(t.name, t.logical);
  return out;
}

/** Logical names matched by `patterns`; a pattern that selects nothing quantizable is an error. */
function select(targets: QuantTarget[], allNames: string[], patterns: string[], what: string): Set<string> {
  const logical = targets.map((t) => t.logical);
  for (const pat of patterns) {
    if (logical.some((n) => matchesPattern(n, pat))) continue;
    const elsewhere = allNames.filter((n) => matchesPattern(n, pat));
    if (elsewhere.length) {
      throw new QuantConfigError(`${what}: pattern '${pat}' matches only parameters kdqat does not quantize (${elsewhere.slice(0, 4).join(', ')}); ` +
        `quantizable weights are the Linear weights of the blocks, the head (lm_head) and the BERT word embedding`);
    }
  }
  return selectByPatterns(logical, patterns, what);
}

/** The weight → quantizer map of `config` on `model`, after checking every quantizer fits. */
export function planQuantization(model: Model, config: QuantConfig, opts: PrepareOptions = {}): { quantized: Map<string, WeightQuant>; targets: Map<string, QuantTarget> } {
  const src = opts.source ?? 'quantization config';
  const fail = (field: string, msg: string): never => {
    throw new QuantConfigError(`${src}: ${field}: ${msg}`);
  };
  const dflt = normalizeQuant(config.weights);
  validateWeightQuant(dflt, fail, 'weights');
  const acts = config.activations;
  if (acts) {
    if (!Number.isInteger(acts.bits) || acts.bits < MIN_BITS || acts.bits > MAX_BITS) fail('activations.bits', `bits must be an integer from ${MIN_BITS} to ${MAX_BITS}, got ${acts.bits}`);
    if (acts.clip !== undefined && !(acts.clip > 0)) fail('activations.clip', `must be a positive number, got ${acts.clip}`);
  }
  const targets = quantTargets(model);
  const allNames = [...model.params.keys()];
  const chosen = new Map<string, WeightQuant | null>();
  // Default (METHODS.md §2): the record's defaultQuant patterns, or every Linear of every block
  // (the weights of the record's module kinds).
  const rec = archOf(model);
  const dq = config.modules ?? (rec.modules.defaultQuant ? [...rec.modules.defaultQuant] : null);
  const picked = dq
    ? select(targets, allNames, dq, `${src}: modules`)
    : targets.filter((t) => rec.modules.kinds.includes(moduleOf(t.logical).kind)).map((t) => t.logical);
  for (const n of picked) chosen.set(n, dflt);
  (config.overrides ?? []).forEach((o, i) => {
    const q = o.quant ? normalizeQuant(o.quant) : null;
    if (q) validateWeightQuant(q, fail, `overrides[${i}].quant`);
    for (const n of select(targets, allNames, [o.pattern], `${src}: overrides[${i}].pattern`)) chosen.set(n, q);
  });
  const quantized = new Map<string, WeightQuant>();
  const chosenTargets = new Map<string, QuantTarget>();
  for (const t of targets) { // parameter order, whatever order the patterns came in
    const q = chosen.get(t.logical);
    if (!q) continue;
    checkFits(t, q, src);
    quantized.set(t.name, q);
    chosenTargets.set(t.name, t);
  }
  return { quantized, targets: chosenTargets };
}

/** Granule and block sizes must tile the weight's input dimension. */
function checkFits(t: QuantTarget, q: WeightQuant, src: string): void {
  const shape = `[${t.rows}, ${t.cols}] (out, in)`;
  const block = ggmlBlock(q.rule);
  if (block !== undefined && t.cols % block !== 0) {
    throw new QuantConfigError(`${src}: ${t.logical} has shape ${shape}: ${q.rule.kind} quantizes blocks of ${block} inputs, ` +
      `and ${t.cols} is not a multiple of ${block}; exclude this module (an override with "quant": null) or pick another rule`);
  }
  if (q.granule.kind === 'group' && t.cols % q.granule.size !== 0) {
    const divisors = [32, 64, 128, 16, 8].filter((d) => t.cols % d === 0).slice(0, 3);
    throw new QuantConfigError(`${src}: ${t.logical} has shape ${shape}: group size ${q.granule.size} does not divide its ${t.cols} inputs; ` +
      `use a group size that divides ${t.cols}${divisors.length ? ` (e.g. ${divisors.join(', ')})` : ''}, per-channel, or an override for this module`);
  }
}

/** Fake quantization of `model` under `config`; validates everything before building anything. */
export function prepare(model: Model, config: QuantConfig, opts: PrepareOptions = {}): Prepared {
  const { quantized, targets } = planQuantization(model, config, opts);
  const quantParams: Params = new Map();
  for (const [name, q] of quantized) {
    if (!q.lsq) continue;
    const init = initStep(model.params.get(name)!, q);
    const given = opts.steps?.get(`${name}.step`);
    if (given && given.size !== init.size) {
      throw new Error(`${name}.step: ${given.size} values given, but ${describeQuant(q)} on this weight has ${init.size} granules`);
    }
    const step = given ? new Tensor(given.f32.slice(), init.shape, true) : init;
    step.requiresGrad = true;
    step.name = `${name}.step`;
    quantParams.set(step.name, step);
  }
  const weight: WeightFn = (name: string, p: Tensor): Tensor => {
    const q = quantized.get(name);
    return q ? fakeQuantWeight(p, q, quantParams.get(`${name}.step`)) : p;
  };
  const acts = config.activations ?? null;
  if (acts) {
    const quant = inputQuantizer(acts.bits, acts.clip);
    weight.input = (name: string, x: Tensor): Tensor => (quantized.has(name) ? quant(x) : x);
  }
  return { weight, quantParams, quantized, targets, config, activations: acts };
}

/** Integer codes + scales of every quantized weight, from the latent weights and trained steps. */
export function convert(model: Model, prepared: Prepared): Converted {
  const out: Converted = new Map();
  for (const [name, q] of prepared.quantized) {
    const t = prepared.targets.get(name)!;
    const w = model.params.get(name);
    if (!w) throw new Error(`convert: the model has no parameter '${name}' (was it prepared for another model?)`);
    const step = prepared.quantParams.get(`${name}.step`);
    out.set(name, { target: t, quant: q, codes: quantizeCodes(w.f32, t.rows, t.cols, q, step?.f32) });
  }
  return out;
}

/** "12 weights: 8 × sym 4-bit per channel, …" for logs. */
export function summarizePlan(p: Prepared): string {
  const counts = new Map<string, number>();
  for (const q of p.quantized.values()) counts.set(describeQuant(q), (counts.get(describeQuant(q)) ?? 0) + 1);
  const parts = [...counts].map(([d, n]) => `${n} × ${d}`);
  const a = p.activations ? `; ${p.activations.bits}-bit activations${p.activations.clip !== undefined ? ` (clip ${p.activations.clip})` : ''}` : '';
  return `${p.quantized.size} weights quantized: ${parts.join(', ')}${a}`;
}
