// `rope_scaling` of a decoder's config.json as kdqat reads it (rope-scaling.ts has the math): the
// types a family allows, each type's keys (an unknown one is refused, not ignored), the
// readings transformers versions disagree on refused, and the object written back.
import { isObj, type ConfigReader, type Obj } from './config-reader.js';
import type { RopeScaling } from './rope-scaling.js';

/** What LongRoPE needs beyond rope_scaling: the head size (one factor per rotated pair) and the
 *  pre-training context, the config's top-level `original_max_position_embeddings` (Phi3Config
 *  always has one: 4096 by default). */
export interface LongropeContext { headDim: number; originalMax: number }

/** Reads `rope_scaling` (null / {"rope_type": "default"}: none) for a family that allows `types`. */
export function parseRopeScaling(r: ConfigReader, maxPos: number, types: readonly RopeScaling['type'][], longrope?: LongropeContext): RopeScaling | null {
  const rs = r.j.rope_scaling;
  if (rs === undefined || rs === null) return null;
  if (!isObj(rs)) r.fail(`"rope_scaling" must be an object or null, got ${JSON.stringify(rs)}`);
  let type = (rs.rope_type ?? rs.type) as RopeScaling['type'];
  if ((type as string) === 'default') return null;
  if ((type as string) === 'su' && types.includes('longrope')) type = 'longrope'; // Phi3Config's old name for it
  if (typeof type !== 'string' || !types.includes(type)) {
    r.fail(`rope_scaling.rope_type ${JSON.stringify(type)} is not supported for model_type "${r.j.model_type}"; kdqat supports ` +
      `${['default', ...types].map((t) => `"${t}"`).join(', ')} (rope_scaling ${JSON.stringify(rs)})`);
  }
  const known: Record<string, string[]> = {
    linear: ['factor'],
    llama3: ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'],
    yarn: ['factor', 'original_max_position_embeddings', 'beta_fast', 'beta_slow', 'attention_factor', 'mscale', 'mscale_all_dim', 'truncate'],
    longrope: ['long_factor', 'short_factor', 'factor', 'attention_factor', 'original_max_position_embeddings'],
  };
  for (const k of Object.keys(rs)) {
    if (k !== 'rope_type' && k !== 'type' && !known[type].includes(k)) r.fail(`rope_scaling.${k} (${JSON.stringify(rs[k])}) is not a key of rope_type "${type}" kdqat knows; refusing rather than ignoring it`);
  }
  const num = (k: string, dflt?: number, positive = true): number => {
    const v = rs[k];
    if (v === undefined || v === null) {
      if (dflt === undefined) r.fail(`rope_scaling.${k} is required for rope_type "${type}" (rope_scaling ${JSON.stringify(rs)})`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && !(v > 0))) r.fail(`rope_scaling.${k} must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (type === 'longrope') {
    if (!longrope) throw new Error('parseRopeScaling: longrope needs the head size and original context');
    const orig = longrope.originalMax;
    if (rs.original_max_position_embeddings != null && num('original_max_position_embeddings') !== orig) {
      r.fail(`rope_scaling.original_max_position_embeddings ${rs.original_max_position_embeddings} ≠ the config's original_max_position_embeddings ${orig}; ` +
        'transformers reads the latter, llama.cpp\'s converter too: make them agree');
    }
    // transformers (Phi3Config has original_max_position_embeddings) and convert_hf_to_gguf.py both
    // take factor = max_position_embeddings / original; a different rope_scaling.factor is refused.
    const factor = maxPos / orig;
    if (rs.factor != null && Math.abs(num('factor') - factor) > 1e-9 * factor) {
      r.fail(`rope_scaling.factor ${rs.factor} ≠ max_position_embeddings / original_max_position_embeddings = ${maxPos}/${orig}, ` +
        'which transformers and llama.cpp use for LongRoPE: make them agree or remove it');
    }
    const factors = (k: string): number[] => {
      const v = rs[k];
      if (!Array.isArray(v) || v.length !== longrope.headDim / 2 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x) || !(x > 0))) {
        r.fail(`rope_scaling.${k} must be ${longrope.headDim / 2} positive numbers (one per rotated pair of the ${longrope.headDim}-wide head), got ${JSON.stringify(v)?.slice(0, 120)}`);
      }
      return v as number[];
    };
    const attentionFactor = rs.attention_factor != null ? num('attention_factor') : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
    return { type, shortFactor: factors('short_factor'), longFactor: factors('long_factor'), originalMaxPositionEmbeddings: orig, attentionFactor, json: rs };
  }
  const factor = num('factor');
  if (type === 'linear') return { type, factor, json: rs };
  if (type === 'llama3') {
    const lowFreqFactor = num('low_freq_factor'), highFreqFactor = num('high_freq_factor');
    if (!(highFreqFactor > lowFreqFactor)) r.fail(`rope_scaling.high_freq_factor ${highFreqFactor} must exceed low_freq_factor ${lowFreqFactor}`);
    return { type, factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: num('original_max_position_embeddings'), json: rs };
  }
  if (type !== 'yarn') throw new Error(`parseRopeScaling: ${type}`);
  // yarn. transformers versions disagree on `factor` when original_max_position_embeddings is
  // given (some replace it by max_position_embeddings / original); kdqat takes the config only
  // when both readings agree.
  const orig = num('original_max_position_embeddings', maxPos);
  if (rs.original_max_position_embeddings != null && Math.abs(maxPos / orig - factor) > 1e-9 * factor) {
    r.fail(`rope_scaling.factor ${factor} ≠ max_position_embeddings / rope_scaling.original_max_position_embeddings = ${maxPos}/${orig}; ` +
      'transformers versions compute YaRN differently for such a config, so kdqat refuses it: make them agree');
  }
  const mscale = (s: number, m = 1): number => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
  const ms = rs.mscale == null ? 0 : num('mscale'), msAll = rs.mscale_all_dim == null ? 0 : num('mscale_all_dim');
  const attentionFactor = rs.attention_factor != null ? num('attention_factor')
    : ms && msAll ? mscale(factor, ms) / mscale(factor, msAll) : mscale(factor);
  const truncate = rs.truncate ?? true;
  if (typeof truncate !== 'boolean') r.fail(`rope_scaling.truncate must be true or false, got ${JSON.stringify(truncate)}`);
  return {
    type, factor, originalMaxPositionEmbeddings: orig, betaFast: num('beta_fast', 32), betaSlow: num('beta_slow', 1),
    attentionFactor, truncate, json: rs,
  };
}

/** rope_scaling as config.json writes it (the source object when there was one). */
export function ropeScalingJson(s: RopeScaling | null | undefined): Obj | null {
  if (!s) return null;
  if (s.json) return s.json;
  switch (s.type) {
    case 'linear': return { factor: s.factor, rope_type: 'linear' };
    case 'llama3': return {
      factor: s.factor, high_freq_factor: s.highFreqFactor, low_freq_factor: s.lowFreqFactor,
      original_max_position_embeddings: s.originalMaxPositionEmbeddings, rope_type: 'llama3',
    };
    case 'yarn': return { factor: s.factor, original_max_position_embeddings: s.originalMaxPositionEmbeddings, rope_type: 'yarn' };
    case 'longrope': return { long_factor: s.longFactor, short_factor: s.shortFactor, type: 'longrope' };
  }
}
