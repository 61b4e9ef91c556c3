// BERT-family encoder (Hugging Face BertModel with BertForMaskedLM / BertForSequenceClassification
// heads): word + position + token-type embeddings, post-LayerNorm blocks, GELU, pooler.
import { Tensor } from '../tensor/tensor.js';
import {
  add, attention, dropout, embedding, gather, gelu, geluTanh, layerNorm, linear, reshape, slice, tanh,
} from '../tensor/ops/index.js';
import { intTensor } from '../tensor/tensor.js';
import { identityWeight, linearInput, param, type Init, type Params, type WeightFn } from '../nn/params.js';

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
  /** Classification labels (BertForSequenceClassification); 0 = no classifier. */
  numLabels: number;
}

export interface EncoderCapture {
  hidden?: boolean; // embedding output + every layer's output (L+1)
  probs?: boolean; // (B, H, T, T)
  scores?: boolean; // (B, H, T, T), masked entries 0
  context?: boolean; // softmax(QKᵀ)V before the output projection (B, T, C)
  saOut?: boolean; // after attention.output.dense, before the residual (B, T, C)
  attnOut?: boolean; // after the residual add and attention.output.LayerNorm (B, T, C)
}

export interface EncoderOutput {
  last: Tensor; // (B, T, C)
  hidden: Tensor[];
  probs: Tensor[];
  scores: Tensor[];
  context: Tensor[];
  saOut: Tensor[];
  attnOut: Tensor[];
}

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

export interface EncoderBlockOptions {
  keyMask?: Tensor | null;
  weight?: WeightFn;
  capture?: EncoderCapture;
  /** Dropout seed (training); dropout is off when undefined. */
  dropoutSeed?: number;
}

export interface EncoderBlockCapture {
  probs: Tensor | null;
  scores: Tensor | null;
  context: Tensor | null;
  saOut: Tensor | null;
  attnOut: Tensor | null;
}

/** One post-LN encoder layer. x (B, T, C). `prefix` ends in '.'. */
export function bertBlock(
  params: Params, prefix: string, cfg: BertConfig, x: Tensor, opts: EncoderBlockOptions,
): { y: Tensor; cap: EncoderBlockCapture } {
  const [B, T, C] = x.shape;
  const H = cfg.numAttentionHeads, D = C / H;
  const p = (n: string): Tensor => param(params, prefix + n);
  const w = (n: string): Tensor => (opts.weight ?? identityWeight)(prefix + n, p(n));
  // Linear `n` (a prefix-relative module name): input hook, weight hook, bias.
  const lin = (x: Tensor, n: string): Tensor => linear(linearInput(opts.weight, `${prefix}${n}.weight`, x), w(`${n}.weight`), p(`${n}.bias`));
  const cap = opts.capture ?? {};
  const drop = (t: Tensor, salt: number): Tensor =>
    opts.dropoutSeed === undefined ? t : dropout(t, cfg.hiddenDropoutProb, opts.dropoutSeed * 7919 + salt);

  const q = reshape(lin(x, 'attention.self.query'), [B, T, H, D]);
  const k = reshape(lin(x, 'attention.self.key'), [B, T, H, D]);
  const v = reshape(lin(x, 'attention.self.value'), [B, T, H, D]);
  const att = attention(q, k, v, { keyMask: opts.keyMask, returnProbs: cap.probs, returnScores: cap.scores });
  const context = reshape(att.out, [B, T, C]);
  const sa = lin(context, 'attention.output.dense');
  const a = layerNorm(add(drop(sa, 1), x), p('attention.output.LayerNorm.weight'), p('attention.output.LayerNorm.bias'), cfg.layerNormEps);
  const act = cfg.hiddenAct === 'gelu_new' ? geluTanh : gelu;
  const inter = act(lin(a, 'intermediate.dense'));
  const o = lin(inter, 'output.dense');
  const y = layerNorm(add(drop(o, 2), a), p('output.LayerNorm.weight'), p('output.LayerNorm.bias'), cfg.layerNormEps);
  return {
    y,
    cap: {
      probs: att.probs, scores: att.scores,
      context: cap.context ? context : null, saOut: cap.saOut ? sa : null, attnOut: cap.attnOut ? a : null,
    },
  };
}

export interface EncoderForwardOptions {
  /** (B, T) int32, 1 = real token, 0 = padding. */
  attentionMask?: Tensor | null;
  tokenTypeIds?: Tensor | null;
  weight?: WeightFn;
  capture?: EncoderCapture;
  dropoutSeed?: number;
}

/** Embeddings + encoder: ids (B, T) → last hidden state (B, T, C) and captures. */
export function bertEncode(params: Params, cfg: BertConfig, ids: Tensor, opts: EncoderForwardOptions = {}): EncoderOutput {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new RangeError(`bert: ids must be int32 (B, T), got ${ids.dtype} [${ids.shape}]`);
  const [B, T] = ids.shape;
  if (T > cfg.maxPositionEmbeddings) throw new RangeError(`bert: sequence length ${T} exceeds max_position_embeddings ${cfg.maxPositionEmbeddings}`);
  const wf = opts.weight ?? identityWeight;
  const word = 'bert.embeddings.word_embeddings.weight';
  let x = embedding(wf(word, param(params, word)), ids); // (B, T, C)
  const pos = slice(param(params, 'bert.embeddings.position_embeddings.weight'), 0, 0, T); // (T, C)
  x = add(x, pos);
  const types = opts.tokenTypeIds ?? intTensor(new Int32Array(B * T), [B, T]);
  x = add(x, embedding(param(params, 'bert.embeddings.token_type_embeddings.weight'), types));
  x = layerNorm(x, param(params, 'bert.embeddings.LayerNorm.weight'), param(params, 'bert.embeddings.LayerNorm.bias'), cfg.layerNormEps);
  if (opts.dropoutSeed !== undefined) x = dropout(x, cfg.hiddenDropoutProb, opts.dropoutSeed * 7919);
  const cap = opts.capture ?? {};
  const out: EncoderOutput = { last: x, hidden: [], probs: [], scores: [], context: [], saOut: [], attnOut: [] };
  if (cap.hidden) out.hidden.push(x);
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const r = bertBlock(params, `bert.encoder.layer.${l}.`, cfg, x, {
      keyMask: opts.attentionMask, weight: opts.weight, capture: cap,
      dropoutSeed: opts.dropoutSeed === undefined ? undefined : opts.dropoutSeed + 1000 * (l + 1),
    });
    x = r.y;
    if (r.cap.probs) out.probs.push(r.cap.probs);
    if (r.cap.scores) out.scores.push(r.cap.scores);
    if (r.cap.context) out.context.push(r.cap.context);
    if (r.cap.saOut) out.saOut.push(r.cap.saOut);
    if (r.cap.attnOut) out.attnOut.push(r.cap.attnOut);
    if (cap.hidden) out.hidden.push(x);
  }
  out.last = x;
  return out;
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
  const act = cfg.hiddenAct === 'gelu_new' ? geluTanh : gelu;
  const h = layerNorm(
    act(linear(enc.last, param(params, 'cls.predictions.transform.dense.weight'), param(params, 'cls.predictions.transform.dense.bias'))),
    param(params, 'cls.predictions.transform.LayerNorm.weight'), param(params, 'cls.predictions.transform.LayerNorm.bias'), cfg.layerNormEps,
  );
  const word = 'bert.embeddings.word_embeddings.weight';
  return linear(linearInput(opts.weight, word, h), (opts.weight ?? identityWeight)(word, param(params, word)), param(params, 'cls.predictions.bias'));
}

/** Rows of `x` (N, C) picked by int32 positions, a helper for MLM on masked positions only. */
export function pickRows(x: Tensor, rows: Int32Array): Tensor {
  return gather(x, intTensor(rows), 0);
}
