// `kdqat pretrain --init DIR`: continue a pre-trained model on new text (domain- or task-adaptive
// pre-training) instead of starting from scratch. DIR fixes the family and sizes (INIT_KEYS: a
// setting that disagrees is refused, naming its flag) and the tokenizer; --seq-len defaults to at
// most its positions. The run itself is pretrain.ts's, from DIR's weights with the heads
// pretraining trains (a decoder's LM head, an encoder's masked-LM head).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Params } from '../nn/params.js';
import type { Architecture, Heads } from '../models/architecture.js';
import { archOf, type Model } from '../models/model.js';
import { modelOf, type HfModelConfig } from '../models/registry.js';
import { loadModelDir, paramSpecOf } from '../io/model-dir.js';
import { readHfConfig } from '../io/hf-config.js';
import type { PositionEmbeddingType } from '../models/relative-position.js';
import { UsageError, flagName as flagOf } from './usage.js';
import type { PretrainConfig } from './pretrain.js';

/** The heads pretraining trains: a decoder's causal LM head, an encoder's masked-LM head. */
export const pretrainHeads = (rec: Architecture): Heads => ({ lm: rec.kind === 'decoder', mlm: rec.kind === 'encoder', classifier: false });

/** The settings a model directory fixes: its family and sizes (and an encoder's dropout). */
export const INIT_KEYS = ['arch', 'hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'vocab', 'positionEmbedding', 'dropout'] as const;
type InitSettings = Pick<PretrainConfig, (typeof INIT_KEYS)[number]>;

/** The family and sizes of a model directory, read from its config.json, in PretrainConfig's
 *  keys (every family's config names its sizes alike; a config without a dropout, a decoder's,
 *  fixes none), and its positions (max_position_embeddings, if it has the key). */
function readInit(dir: string): { fixed: Partial<InitSettings>; maxPositions?: number } {
  const cfgFile = path.join(path.resolve(dir), 'config.json');
  if (!fs.existsSync(cfgFile)) throw new UsageError(`--init ${dir}: no config.json there; give a model directory (config.json, model.safetensors, tokenizer.json), e.g. one kdqat pretrain wrote`);
  const hf = readHfConfig(cfgFile);
  const c = hf.config as unknown as Record<string, unknown>;
  const num = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number') throw new UsageError(`--init ${dir}: ${cfgFile} gives no ${k} kdqat can continue from (a ${hf.arch} config)`);
    return v;
  };
  const fixed: Partial<InitSettings> = {
    arch: hf.arch, hidden: num('hiddenSize'), layers: num('numHiddenLayers'), heads: num('numAttentionHeads'),
    kvHeads: typeof c.numKeyValueHeads === 'number' ? c.numKeyValueHeads : num('numAttentionHeads'),
    intermediate: num('intermediateSize'), vocab: num('vocabSize'),
    positionEmbedding: (c.positionEmbeddingType as PositionEmbeddingType | undefined) ?? 'absolute',
    ...(typeof c.hiddenDropoutProb === 'number' ? { dropout: c.hiddenDropoutProb } : {}),
  };
  return { fixed, maxPositions: typeof c.maxPositionEmbeddings === 'number' ? c.maxPositionEmbeddings : undefined };
}

/** The settings of a run continuing `dir` where none are given: the ones the model fixes, and
 *  --seq-len (default `seq`) capped at its positions. */
export function initDefaults(dir: string, seq: number): Partial<PretrainConfig> {
  const { fixed, maxPositions } = readInit(dir);
  return { ...fixed, seq: Math.min(seq, maxPositions ?? Infinity), init: dir };
}

/** Checks `c` against its --init model: the settings it fixes agree, the objective continues a
 *  model, the length fits its positions. */
export function checkInit(c: PretrainConfig): void {
  const { fixed: s, maxPositions: maxPos } = readInit(c.init);
  const diffs = INIT_KEYS.filter((k) => k in s && c[k] !== s[k]);
  if (diffs.length) {
    throw new UsageError(`--init ${c.init}: ${diffs.map((k) => `${flagOf(k)} ${c[k]} differs from the model's ${s[k]}`).join('; ')}; ` +
      'a continued model keeps its family and sizes: drop these options');
  }
  if ((c.objective ?? 'lm') !== 'lm') throw new UsageError(`--init ${c.init}: --objective ${c.objective} trains a new discriminator and generator from scratch; continue the model with --objective lm, or drop --init`);
  if (maxPos !== undefined && c.seq > maxPos) throw new UsageError(`--seq-len ${c.seq} exceeds --init ${c.init}'s max_position_embeddings ${maxPos}; use --seq-len ${maxPos} or less`);
}

/** The --init model with the heads pretraining trains (a masked-LM encoder's classifier head is
 *  dropped; a model without the head is refused), its config and meta, and its tokenizer file. */
export function initModel(c: PretrainConfig): { model: Model; hf: HfModelConfig; tokenizer: string } {
  let loaded;
  try {
    loaded = loadModelDir(c.init);
  } catch (e) {
    throw new Error(`--init ${c.init}: ${(e as Error).message}`);
  }
  const rec = archOf(loaded.hf), want = pretrainHeads(rec), has = rec.headsOf(loaded.hf.meta);
  if ((want.mlm && !has.mlm) || (want.lm && !has.lm)) {
    throw new UsageError(`--init ${c.init}: is ${rec.describe(has)}), without the ${want.mlm ? 'masked-LM' : 'LM'} head pretraining continues; give the pre-trained model it was made from`);
  }
  if (!loaded.tokenizerPath) throw new UsageError(`--init ${c.init}: has no tokenizer.json; a continued model keeps its own tokenizer`);
  const hf = { ...loaded.hf, meta: { ...loaded.hf.meta, ...rec.metaForHeads(want) } } as HfModelConfig;
  const params: Params = new Map([...paramSpecOf(hf).keys()].map((n) => [n, loaded.params.get(n)!]));
  return { model: modelOf(hf, params), hf, tokenizer: loaded.tokenizerPath };
}
