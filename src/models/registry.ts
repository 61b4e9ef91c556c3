// The registry of architectures (HF's MODEL_MAPPING / AutoConfig, llama.cpp's llama-arch.cpp):
// model_type → record. A new family is one record file and one line here; nothing outside
// src/models tests a family's name, it asks the record (architecture.ts).
import type { Params } from '../nn/params.js';
import { moduleIn, type KindRules, type ModuleRef } from '../nn/modules.js';
import type { Architecture, Heads } from './architecture.js';
import { ConfigReader, isObj, type Obj } from './config-reader.js';
import { llama } from './llama-arch.js';
import { bert } from './bert-arch.js';
import { mistral } from './mistral-arch.js';
import { qwen2 } from './qwen2-arch.js';
import { qwen3 } from './qwen3-arch.js';
import { phi3 } from './phi3-arch.js';
import { seedOss } from './seed-oss-arch.js';
import { smollm3 } from './smollm3-arch.js';
import { roberta, xlmRoberta } from './roberta.js';
import { distilbert } from './distilbert.js';
import { roformer } from './roformer.js';

/** Every architecture kdqat supports, keyed by HF model_type (= Model.arch). */
export const ARCHITECTURES = {
  llama,
  bert,
  mistral,
  qwen2,
  qwen3,
  phi3,
  seed_oss: seedOss,
  smollm3,
  roberta,
  'xlm-roberta': xlmRoberta,
  distilbert,
  roformer,
} as const;

type Archs = typeof ARCHITECTURES;
export type ArchName = keyof Archs;
type ConfigOf<A> = A extends Architecture<infer C, unknown, unknown> ? C : never;
type MetaOf<A> = A extends Architecture<unknown, infer M, unknown> ? M : never;
type FieldsOf<A> = A extends Architecture<unknown, unknown, infer X> ? X : never;

/** A parsed config.json: the family, its numeric config and the rest (special ids, labels, …). */
export type HfModelConfig = { [K in ArchName]: { arch: K; config: ConfigOf<Archs[K]>; meta: MetaOf<Archs[K]> } }[ArchName];
/** A model of any registered family: config + parameters in HF names (+ family fields). */
export type Model = { [K in ArchName]: { arch: K; config: ConfigOf<Archs[K]>; params: Params } & FieldsOf<Archs[K]> }[ArchName];

export const SUPPORTED_MODEL_TYPES = Object.keys(ARCHITECTURES) as ArchName[];
const quoted = (): string => SUPPORTED_MODEL_TYPES.map((s) => `"${s}"`).join(', ');

export function isArchName(name: unknown): name is ArchName {
  return typeof name === 'string' && Object.hasOwn(ARCHITECTURES, name);
}

/** The record of a registered family (`what` says where the name came from, for the error). */
export function architecture(name: string, what = 'architecture'): Architecture {
  if (!isArchName(name)) throw new Error(`${what} ${JSON.stringify(name)} is not one kdqat supports (${quoted()})`);
  return ARCHITECTURES[name];
}

/** The record of a model (or of a parsed config). */
export const archOf = (m: { arch: string }): Architecture => architecture(m.arch);

/** Validates a parsed config.json; `file` names it in errors. */
export function parseHfConfig(json: unknown, file = 'config.json'): HfModelConfig {
  if (!isObj(json)) throw new Error(`${file}: not a JSON object; config.json must be an object like {"model_type": "llama", ...}: fix it or re-save the model`);
  const r: ConfigReader = new ConfigReader(file, json);
  const mt = json.model_type;
  if (mt === undefined) r.fail(`missing required key "model_type" (supported: ${quoted()})`);
  if (!isArchName(mt)) {
    // auto_map names Python classes to import (transformers' trust_remote_code): kdqat never runs
    // code from a model directory, so a model that needs it is one kdqat cannot build.
    const remote = json.auto_map !== undefined ? ` (its "auto_map" names custom code, which kdqat never runs)` : '';
    r.fail(`unknown model_type ${JSON.stringify(mt)}${remote}; kdqat supports ${quoted()}: use a model of one of these families`);
  }
  const { config, meta } = ARCHITECTURES[mt].config.parse(r);
  return { arch: mt, config, meta } as HfModelConfig;
}

/** The config.json object HF's save_pretrained would write (keys sorted when formatted). */
export function hfConfigJson(c: HfModelConfig): Obj {
  return archOf(c).config.toJson(c.config, c.meta);
}

/** The heads a parsed config's model carries. */
export const headsOfConfig = (c: HfModelConfig): Heads => archOf(c).headsOf(c.meta);

/** The Model of a parsed config with these parameters (heads from the config). */
export function modelOf(c: HfModelConfig, params: Params): Model {
  const rec = archOf(c);
  return { arch: c.arch, config: c.config, params, ...rec.modelFields(rec.headsOf(c.meta)) } as Model;
}

/** Every family's Linear module kinds, in plot order (what the signal log groups by). */
export const MODULE_KINDS: readonly string[] = [...new Set(Object.values(ARCHITECTURES).flatMap((a) => a.modules.kinds))];

/** Every family's name → kind rules, in registry order (family names do not overlap). */
const MODULE_RULES: KindRules = Object.values(ARCHITECTURES).flatMap((a) => a.modules.rules);

/** `model.layers.3.self_attn.v_proj.weight` → { layer: 3, kind: 'v' }, by the records' rules. */
export const moduleOf = (name: string): ModuleRef => moduleIn(name, MODULE_RULES);

/** The heads a model carries. */
export const headsOf = (m: Model): Heads => archOf(m).modelHeads(m);
