// BERT-family encoder (Hugging Face BertModel with BertForMaskedLM / BertForSequenceClassification
// heads): word + position + token-type embeddings, post-LayerNorm blocks, GELU, pooler.
import { Tensor } from '../tensor/tensor.js';
import { add, dropout, embedding, layerNorm, linear, reshape, slice, tanh } from '../tensor/ops/index.js';
import { intTensor } from '../tensor/tensor.js';
import { identityWeight, linearInput, param, type Init, type Params, type WeightFn } from '../nn/params.js';
import { DISTANCE_EMBEDDING, distanceRows, type PositionEmbeddingType } from './relative-position.js';
import {
  activation, checkIds, embeddingDropout, encoderLayer, encoderStack, type EncoderBlockCapture,
  type EncoderBlockOptions, type EncoderForwardOptions, type EncoderLayerNames, type EncoderOutput,
} from './encoder.js';

export interface BertConfig {
  vocabSize: number;
  hiddenSize: number; // C
  numHiddenLayers: number; // L
  numAttentionHeads: number; // H
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenAct: 'gelu' | 'gelu_new';
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  initializerRange: number;
  /** position_embedding_type: absolute position vectors added to the input (absent: this), or
   *  relative distance scores in every attention layer (src/models/relative-position.ts). */
  positionEmbeddingType?: PositionEmbeddingType;
  /** Classification labels (BertForSequenceClassification); 0 = no classifier. */
  numLabels: number;
}

export type { EncoderCapture, EncoderOutput, EncoderBlockOptions, EncoderBlockCapture, EncoderForwardOptions } from './encoder.js';

export function bertParamSpec(cfg: BertConfig, heads: { mlm?: boolean; classifier?: boolean } = {}): Map<string, { shape: number[]; init: Init }> {
  const C = cfg.hiddenSize, F = cfg.intermediateSize;
  const w: Init = { kind: 'normal', std: cfg.initializerRange };
  const z: Init = { kind: 'zeros' }, one: Init = { kind: 'ones' };
  const spec = new Map<string, { shape: number[]; init: Init }>();
  const lin = (name: string, out: number, inp: number): void => {
    spec.set(`${name}.weight`, { shape: [out, inp], init: w });
    spec.set(`${name}.bias`, { shape: [out], init: z });
  };
  const ln = (name: string): void => {
    spec.set(`${name}.weight`, { shape: [C], init: one });
    spec.set(`${name}.bias`, { shape: [C], init: z });
  };
  spec.set('bert.embeddings.word_embeddings.weight', { shape: [cfg.vocabSize, C], init: w });
  spec.set('bert.embeddings.position_embeddings.weight', { shape: [cfg.maxPositionEmbeddings, C], init: w });
  spec.set('bert.embeddings.token_type_embeddings.weight', { shape: [cfg.typeVocabSize, C], init: w });
  ln('bert.embeddings.LayerNorm');
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `bert.encoder.layer.${l}.`;
    lin(`${p}attention.self.query`, C, C);
    lin(`${p}attention.self.key`, C, C);
    lin(`${p}attention.self.value`, C, C);
    if ((cfg.positionEmbeddingType ?? 'absolute') !== 'absolute') {
      spec.set(p + DISTANCE_EMBEDDING, { shape: [distanceRows(cfg.maxPositionEmbeddings), C / cfg.numAttentionHeads], init: w });
    }
    lin(`${p}attention.output.dense`, C, C);
    ln(`${p}attention.output.LayerNorm`);
    lin(`${p}intermediate.dense`, F, C);
    lin(`${p}output.dense`, C, F);
    ln(`${p}output.LayerNorm`);
  }
  if (heads.classifier) {
    lin('bert.pooler.dense', C, C);
    lin('classifier', cfg.numLabels, C);
  }
  if (heads.mlm) {
    lin('cls.predictions.transform.dense', C, C);
    ln('cls.predictions.transform.LayerNorm');
    spec.set('cls.predictions.bias', { shape: [cfg.vocabSize], init: z });
    // The decoder weight is tied to the word embeddings (HF ties them by default).
  }
  return spec;
}

/** BERT's layer names (relative to bert.encoder.layer.N.). */
export const BERT_LAYER: EncoderLayerNames = {
  query: 'attention.self.query', key: 'attention.self.key', value: 'attention.self.value',
  attnOut: 'attention.output.dense', attnNorm: 'attention.output.LayerNorm',
  ffnIn: 'intermediate.dense', ffnOut: 'output.dense', outNorm: 'output.LayerNorm',
};

/** One post-LN encoder layer. x (B, T, C). `prefix` ends in '.'. */
export function bertBlock(
  params: Params, prefix: string, cfg: BertConfig, x: Tensor, opts: EncoderBlockOptions,
): { y: Tensor; cap: EncoderBlockCapture } {
  return encoderLayer(params, prefix, BERT_LAYER, cfg, x, opts);
}

/** Embeddings + encoder: ids (B, T) → last hidden state (B, T, C) and captures. */
export function bertEncode(params: Params, cfg: BertConfig, ids: Tensor, opts: EncoderForwardOptions = {}): EncoderOutput {
  const [B, T] = checkIds('bert', ids, cfg.maxPositionEmbeddings);
  const wf = opts.weight ?? identityWeight;
  const word = 'bert.embeddings.word_embeddings.weight';
  let x = embedding(wf(word, param(params, word)), ids); // (B, T, C)
  if ((cfg.positionEmbeddingType ?? 'absolute') === 'absolute') {
    x = add(x, slice(param(params, 'bert.embeddings.position_embeddings.weight'), 0, 0, T)); // (T, C)
  } // relative: the table stays in the checkpoint (as in HF), positions enter as distances in attention
  const types = opts.tokenTypeIds ?? intTensor(new Int32Array(B * T), [B, T]);
  x = add(x, embedding(param(params, 'bert.embeddings.token_type_embeddings.weight'), types));
  x = layerNorm(x, param(params, 'bert.embeddings.LayerNorm.weight'), param(params, 'bert.embeddings.LayerNorm.bias'), cfg.layerNormEps);
  x = embeddingDropout(x, cfg.hiddenDropoutProb, opts.dropoutSeed);
  return encoderStack(params, (l) => `bert.encoder.layer.${l}.`, cfg.numHiddenLayers, BERT_LAYER, cfg, x, opts);
}

/** Sequence classification logits (B, numLabels) from the [CLS] position via the pooler. */
export function bertClassify(params: Params, cfg: BertConfig, enc: EncoderOutput, opts: { weight?: WeightFn; dropoutSeed?: number } = {}): Tensor {
  const [B, , C] = enc.last.shape;
  const cls = reshape(slice(enc.last, 1, 0, 1), [B, C]); // (B, C)
  let pooled = tanh(linear(cls, param(params, 'bert.pooler.dense.weight'), param(params, 'bert.pooler.dense.bias')));
  if (opts.dropoutSeed !== undefined) pooled = dropout(pooled, cfg.hiddenDropoutProb, opts.dropoutSeed * 31 + 7);
  return linear(pooled, param(params, 'classifier.weight'), param(params, 'classifier.bias'));
}

/** Masked-LM logits (B, T, V): transform (dense, GELU, LayerNorm) then the tied decoder. */
export function bertMlmLogits(params: Params, cfg: BertConfig, enc: EncoderOutput, opts: { weight?: WeightFn } = {}): Tensor {
  const act = activation(cfg.hiddenAct);
  const h = layerNorm(
    act(linear(enc.last, param(params, 'cls.predictions.transform.dense.weight'), param(params, 'cls.predictions.transform.dense.bias'))),
    param(params, 'cls.predictions.transform.LayerNorm.weight'), param(params, 'cls.predictions.transform.LayerNorm.bias'), cfg.layerNormEps,
  );
  const word = 'bert.embeddings.word_embeddings.weight';
  return linear(linearInput(opts.weight, word, h), (opts.weight ?? identityWeight)(word, param(params, word)), param(params, 'cls.predictions.bias'));
}
