// Tiny random models for the quantization API tests, and a bitwise comparison helper.
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import type { Model } from '../../src/models/model.js';
import { ARCHITECTURES, modelOf, parseHfConfig } from '../../src/models/registry.js';
import type { Architecture, ModelSizes } from '../../src/models/architecture.js';
import { intTensor } from '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/rng.js';

export function llamaCfg(o: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    vocabSize: 96, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 32, tieWordEmbeddings: false, initializerRange: 0.1, ...o,
  };
}

export function bertCfg(o: Partial<BertConfig> = {}): BertConfig {
  return {
    vocabSize: 80, hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 128, maxPositionEmbeddings: 32,
    typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
    initializerRange: 0.1, numLabels: 3, ...o,
  };
}

export function tinyLlama(o: Partial<LlamaConfig> = {}, seed = 3): Model & { arch: 'llama' } {
  const config = llamaCfg(o);
  return { arch: 'llama', config, params: initParams(llamaParamSpec(config), seed) };
}

export function tinyBert(heads: { mlm: boolean; classifier: boolean }, o: Partial<BertConfig> = {}, seed = 4): Model & { arch: 'bert' } {
  const config = bertCfg(o);
  return { arch: 'bert', config, params: initParams(bertParamSpec(config, heads), seed), heads };
}

/** Random token ids (B, T) below vocab. */
export function randomIds(B: number, T: number, vocab: number, seed = 11) {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(rng.uniform() * vocab);
  return intTensor(ids, [B, T]);
}

export { tmpDir } from '../util.js';

export function assertBitwise(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: index ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/**
 * A random model of a registered family built from its record alone (what `kdqat pretrain`
 * would configure from these sizes; encoders with a 3-label classifier), with biases and norm
 * weights perturbed so that every optional piece a config switches on changes the outputs.
 */
export function familyModel(name: string, sizes: ModelSizes, seed = 5): { model: Model; hf: ReturnType<typeof parseHfConfig> } {
  const rec = ARCHITECTURES[name as keyof typeof ARCHITECTURES] as Architecture;
  assert.ok(rec, `no family ${name}`);
  const s = { ...sizes, kvHeads: rec.kind === 'encoder' ? sizes.heads : sizes.kvHeads };
  const json = rec.config.toJson(rec.pretrain.config(s), rec.config.defaultMeta(rec.pretrain.meta({})));
  json.initializer_range = 0.1; // visible activations
  if (rec.kind === 'encoder') {
    const cls = Object.entries(rec.hfClasses).find(([, h]) => h === 'classifier');
    assert.ok(cls, `${name}: an encoder family without a classifier class`);
    json.architectures = [cls[0]];
    json.id2label = { 0: 'a', 1: 'b', 2: 'c' };
    json.label2id = { a: 0, b: 1, c: 2 };
  }
  const hf = parseHfConfig(json);
  const r: Architecture = ARCHITECTURES[hf.arch];
  const params = initParams(r.paramSpec(hf.config, r.headsOf(hf.meta)), seed);
  const rng = new Rng(seed + 1);
  for (const p of params.values()) if (p.ndim === 1) for (let i = 0; i < p.size; i++) p.f32[i] += 0.1 * rng.normal();
  return { model: modelOf(hf, params), hf };
}
