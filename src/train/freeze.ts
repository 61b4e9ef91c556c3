// Freezing parameters during (KD-)QAT (METHODS.md §4; paper A's ov-freeze): a frozen latent
// weight keeps requiresGrad false, so backward gives it no gradient, AdamW skips it (no update,
// no moment buffers — hence none in checkpoints either), and its quantizer parameters (LSQ
// steps, named `<weight>.step…`) are frozen with it. It still goes through its fake quantizer
// in the forward pass; since neither the latent weight nor its step changes, that fake-quantized
// value is a constant, computed once (cacheFrozen) instead of at every step.
import { noGrad } from '../tensor/autograd.js';
import { unscoped } from '../tensor/storage.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Params, WeightFn } from '../nn/params.js';
import { selectByPatterns } from '../nn/modules.js';
import { architecture } from '../models/registry.js';

/**
 * The patterns a --freeze value stands for: '' → none; a preset name (ov) → its patterns for
 * the architecture; otherwise a comma-separated list of patterns (src/nn/modules.ts
 * matchesPattern), in which preset names may appear too ('ov,layers.0.mlp').
 */
export function freezePatterns(spec: string, arch: string): string[] {
  const presets = architecture(arch).modules.freezePresets;
  const out: string[] = [];
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const preset = Object.hasOwn(presets, item) ? presets[item] : null;
    out.push(...(preset ?? [item]));
  }
  return out;
}

export interface FreezeResult {
  /** Frozen model parameters (latent weights, biases, …). */
  params: string[];
  /** Frozen quantizer parameters (matched directly, or belonging to a frozen weight). */
  quantParams: string[];
}

/**
 * Freezes the parameters of `params` and `quantParams` whose names match `spec` (an error names
 * a pattern that matches nothing), plus the quantizer parameters of every frozen weight.
 */
export function freeze(spec: string, arch: string, params: Params, quantParams: Params): FreezeResult {
  const patterns = freezePatterns(spec, arch);
  if (patterns.length === 0) return { params: [], quantParams: [] };
  const hit = selectByPatterns([...params.keys(), ...quantParams.keys()], patterns, `--freeze ${spec}`);
  const frozen = [...params.keys()].filter((n) => hit.has(n));
  const ofFrozenWeight = (q: string): boolean => frozen.some((w) => q.startsWith(`${w}.`));
  const frozenQuant = [...quantParams.keys()].filter((q) => hit.has(q) || ofFrozenWeight(q));
  for (const n of frozen) params.get(n)!.requiresGrad = false;
  for (const n of frozenQuant) quantParams.get(n)!.requiresGrad = false;
  return { params: frozen, quantParams: frozenQuant };
}

/**
 * `weight` with the values of the `frozen` weights computed once, without a gradient record, and
 * reused. The cache is keyed by the parameter tensor too, so a different tensor under the same
 * name is never served a stale value. `.input` (activation quantization) is passed through.
 */
export function cacheFrozen(weight: WeightFn, frozen: ReadonlySet<string>): WeightFn {
  const cache = new Map<string, { p: Tensor; value: Tensor }>();
  const cached: WeightFn = (name, p) => {
    if (!frozen.has(name) || p.requiresGrad) return weight(name, p);
    const hit = cache.get(name);
    if (hit && hit.p === p) return hit.value;
    const value = unscoped(() => noGrad(() => weight(name, p))); // outlives any layer's scope
    cache.set(name, { p, value });
    return value;
  };
  if (weight.input) cached.input = weight.input;
  return cached;
}
