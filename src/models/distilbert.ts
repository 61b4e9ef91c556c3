// DistilBERT (Sanh et al. 2019; Hugging Face DistilBertModel with DistilBertForMaskedLM /
// DistilBertForSequenceClassification, transformers models/distilbert/modeling_distilbert.py):
// BERT's post-LN layer under other names, word + learned position embeddings (no token types),
// LayerNorm eps 1e-12 fixed (not a config key); the classifier reads the first token through
// pre_classifier → ReLU → dropout → classifier (no pooler), the masked-LM head is
// vocab_transform → activation → vocab_layer_norm → vocab_projector (tied to the embeddings).
// The whole family is this file plus one registry line.
import type { Tensor } from '../tensor/tensor.js';
import { add, dropout, embedding, layerNorm, linear, relu, reshape, slice } from '../tensor/ops/index.js';
import { identityWeight, linearInput, param, type Params, type WeightFn } from '../nn/params.js';
import { trainWordPiece } from '../tokenize/train-wordpiece.js';
import type { ConfigReader, Obj } from './config-reader.js';
import type { Architecture, Heads, Taps } from './architecture.js';
import type { EncoderOnnxSpec } from './onnx-spec.js';
import {
  ENCODER_ACTS, ENCODER_KINDS, activation, atRows, checkIds, embeddingDropout, encoderHeads, encoderStack, headFromTensors,
  inertKeys, labelsJson, layerSpec, parseLabels, specWriter,
  type EncoderAct, type EncoderFields, type EncoderForwardOptions, type EncoderHead, type EncoderLayerNames, type EncoderModel,
  type EncoderOutput, type ParamSpec, type ProblemType,
} from './encoder.js';

/** DistilBertConfig under kdqat's encoder field names (dim → hiddenSize, n_layers → numHiddenLayers, …). */
export interface DistilBertConfig {
  vocabSize: number;
  hiddenSize: number; // C (dim)
  numHiddenLayers: number; // L (n_layers)
  numAttentionHeads: number; // H (n_heads)
  intermediateSize: number; // F (hidden_dim)
  maxPositionEmbeddings: number;
  hiddenAct: EncoderAct; // activation
  hiddenDropoutProb: number; // dropout
  attentionProbsDropoutProb: number; // attention_dropout
  seqClassifDropout: number;
  initializerRange: number;
  /** Fixed by the model code (nn.LayerNorm(dim, eps=1e-12)), not read from config.json. */
  layerNormEps: number;
  /** Classification labels; 0 = no classifier. */
  numLabels: number;
}

export interface DistilBertMeta {
  head: EncoderHead;
  labels: string[] | null;
  problemType: ProblemType | null;
  padTokenId: number | null;
  /** Settings of heads kdqat does not build (question answering) or legacy flags, kept for save. */
  qaDropout: number;
  tieWeights: boolean;
  torchDtype: string;
  extra: Obj;
  inferHead?: boolean;
}

type DistilBertModel = EncoderModel<DistilBertConfig>;

const LAYER: EncoderLayerNames = {
  query: 'attention.q_lin', key: 'attention.k_lin', value: 'attention.v_lin', attnOut: 'attention.out_lin',
  attnNorm: 'sa_layer_norm', ffnIn: 'ffn.lin1', ffnOut: 'ffn.lin2', outNorm: 'output_layer_norm',
  attnOutDropout: false, // sa_layer_norm(attention(x) + x): dropout only on the attention weights and the FFN
};
const layerPrefix = (l: number): string => `distilbert.transformer.layer.${l}.`;
const WORD = 'distilbert.embeddings.word_embeddings.weight';

/** Embeddings (word + position, LayerNorm, dropout) + the layers: ids (B, T) → (B, T, C) and taps. */
export function distilbertEncode(params: Params, cfg: DistilBertConfig, ids: Tensor, opts: EncoderForwardOptions = {}): EncoderOutput {
  const [, T] = checkIds('distilbert', ids, cfg.maxPositionEmbeddings);
  const wf = opts.weight ?? identityWeight;
  let x = embedding(wf(WORD, param(params, WORD)), ids); // (B, T, C)
  x = add(x, slice(param(params, 'distilbert.embeddings.position_embeddings.weight'), 0, 0, T)); // + (T, C)
  x = layerNorm(x, param(params, 'distilbert.embeddings.LayerNorm.weight'), param(params, 'distilbert.embeddings.LayerNorm.bias'), cfg.layerNormEps);
  x = embeddingDropout(x, cfg.hiddenDropoutProb, opts.dropoutSeed);
  return encoderStack(params, layerPrefix, cfg.numHiddenLayers, LAYER, cfg, x, opts);
}

/** DistilBertForSequenceClassification: first token → pre_classifier → ReLU → dropout → classifier. (B, K) */
export function distilbertClassify(params: Params, cfg: DistilBertConfig, enc: EncoderOutput, opts: { weight?: WeightFn; dropoutSeed?: number } = {}): Tensor {
  const [B, , C] = enc.last.shape;
  const lin = (x: Tensor, n: string): Tensor =>
    linear(linearInput(opts.weight, `${n}.weight`, x), (opts.weight ?? identityWeight)(`${n}.weight`, param(params, `${n}.weight`)), param(params, `${n}.bias`));
  let h = relu(lin(reshape(slice(enc.last, 1, 0, 1), [B, C]), 'pre_classifier')); // (B, C)
  if (opts.dropoutSeed !== undefined) h = dropout(h, cfg.seqClassifDropout, opts.dropoutSeed * 31 + 7);
  return lin(h, 'classifier');
}

/** DistilBertForMaskedLM's head: (B, T, V) logits. */
export function distilbertMlmLogits(params: Params, cfg: DistilBertConfig, enc: EncoderOutput, opts: { weight?: WeightFn } = {}): Tensor {
  const h = layerNorm(
    activation(cfg.hiddenAct)(linear(enc.last, param(params, 'vocab_transform.weight'), param(params, 'vocab_transform.bias'))),
    param(params, 'vocab_layer_norm.weight'), param(params, 'vocab_layer_norm.bias'), cfg.layerNormEps,
  );
  return linear(linearInput(opts.weight, WORD, h), (opts.weight ?? identityWeight)(WORD, param(params, WORD)), param(params, 'vocab_projector.bias'));
}

export function distilbertParamSpec(cfg: DistilBertConfig, heads: { mlm?: boolean; classifier?: boolean } = {}): ParamSpec {
  const C = cfg.hiddenSize;
  const spec: ParamSpec = new Map();
  const s = specWriter(spec, cfg.initializerRange);
  s.set(WORD, [cfg.vocabSize, C]);
  s.set('distilbert.embeddings.position_embeddings.weight', [cfg.maxPositionEmbeddings, C]);
  s.ln('distilbert.embeddings.LayerNorm', C);
  layerSpec(spec, cfg.initializerRange, layerPrefix, cfg.numHiddenLayers, LAYER, C, cfg.intermediateSize);
  if (heads.classifier) {
    s.lin('pre_classifier', C, C);
    s.lin('classifier', cfg.numLabels, C);
  }
  if (heads.mlm) {
    s.lin('vocab_transform', C, C);
    s.ln('vocab_layer_norm', C);
    spec.set('vocab_projector.bias', { shape: [cfg.vocabSize], init: { kind: 'zeros' } }); // weight tied to WORD
  }
  return spec;
}

const CLASSES: Record<string, EncoderHead> = {
  DistilBertForMaskedLM: 'mlm', DistilBertForSequenceClassification: 'classifier', DistilBertModel: 'base',
};
const CLASS_OF: Record<EncoderHead, string> = { mlm: 'DistilBertForMaskedLM', classifier: 'DistilBertForSequenceClassification', base: 'DistilBertModel' };

function parse(r: ConfigReader): { config: DistilBertConfig; meta: DistilBertMeta } {
  const archName = r.architectures(Object.keys(CLASSES));
  const C = r.int('dim'), H = r.int('n_heads');
  if (C % H !== 0) r.fail(`dim ${C} is not divisible by n_heads ${H}; fix one of them`);
  const act = r.str('activation', 'gelu');
  if (!ENCODER_ACTS.includes(act as EncoderAct)) r.fail(`activation "${act}" is not supported for distilbert; kdqat supports ${ENCODER_ACTS.map((a) => `"${a}"`).join(', ')}`);
  // Sinusoidal positions are a fixed (non-trained) table: kdqat learns position embeddings.
  if (r.bool('sinusoidal_pos_embds', false)) r.fail('"sinusoidal_pos_embds": true is not supported; kdqat implements learned position embeddings (sinusoidal_pos_embds false)');
  if (!r.bool('tie_word_embeddings', true)) r.fail('"tie_word_embeddings": false is not supported; kdqat ties vocab_projector to the word embeddings');
  const { labels, numLabels, problemType } = parseLabels(r);
  const head: EncoderHead = archName ? CLASSES[archName] : 'base';
  const config: DistilBertConfig = {
    vocabSize: r.int('vocab_size'),
    hiddenSize: C,
    numHiddenLayers: r.int('n_layers'),
    numAttentionHeads: H,
    intermediateSize: r.int('hidden_dim'),
    maxPositionEmbeddings: r.int('max_position_embeddings', 512),
    hiddenAct: act as EncoderAct,
    hiddenDropoutProb: r.num('dropout', 0.1),
    attentionProbsDropoutProb: r.num('attention_dropout', 0.1),
    seqClassifDropout: r.num('seq_classif_dropout', 0.2),
    initializerRange: r.num('initializer_range', 0.02),
    layerNormEps: 1e-12,
    numLabels: head === 'classifier' ? numLabels : 0,
  };
  const meta: DistilBertMeta = {
    head, labels: head === 'classifier' ? labels : null, problemType,
    padTokenId: r.j.pad_token_id === undefined ? 0 : r.tokenId('pad_token_id'),
    qaDropout: r.num('qa_dropout', 0.1), tieWeights: r.bool('tie_weights_', true),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')), extra: inertKeys(r),
    ...(archName ? {} : { inferHead: true }),
  };
  return { config, meta };
}

function toJson(k: DistilBertConfig, m: DistilBertMeta): Obj {
  const out: Obj = {
    ...m.extra,
    activation: k.hiddenAct, architectures: [CLASS_OF[m.head]], attention_dropout: k.attentionProbsDropoutProb, dim: k.hiddenSize,
    dropout: k.hiddenDropoutProb, hidden_dim: k.intermediateSize, initializer_range: k.initializerRange,
    max_position_embeddings: k.maxPositionEmbeddings, model_type: 'distilbert', n_heads: k.numAttentionHeads,
    n_layers: k.numHiddenLayers, pad_token_id: m.padTokenId, qa_dropout: m.qaDropout, seq_classif_dropout: k.seqClassifDropout,
    sinusoidal_pos_embds: false, tie_weights_: m.tieWeights, torch_dtype: m.torchDtype, vocab_size: k.vocabSize,
  };
  return m.head === 'classifier' ? { ...out, ...labelsJson('distilbert', m.labels, k.numLabels, m.problemType) } : out;
}

/** ONNX export data (onnx-spec.ts): no token types, positions from 0, pre_classifier + ReLU. */
function onnxSpec(c: DistilBertConfig, h: Heads): EncoderOnnxSpec {
  return {
    kind: 'encoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, vocab: c.vocabSize,
    layerNormEps: c.layerNormEps, act: c.hiddenAct,
    wordEmbed: WORD, posEmbed: 'distilbert.embeddings.position_embeddings.weight', positionOffset: 0,
    typeEmbed: null, embedNorm: 'distilbert.embeddings.LayerNorm.weight',
    layer: (l) => {
      const p = layerPrefix(l);
      return {
        q: `${p}${LAYER.query}.weight`, k: `${p}${LAYER.key}.weight`, v: `${p}${LAYER.value}.weight`, o: `${p}${LAYER.attnOut}.weight`,
        attnNorm: `${p}${LAYER.attnNorm}.weight`, ffnIn: `${p}${LAYER.ffnIn}.weight`, ffnOut: `${p}${LAYER.ffnOut}.weight`,
        ffnNorm: `${p}${LAYER.outNorm}.weight`,
      };
    },
    classifier: h.classifier ? { pooler: 'pre_classifier.weight', poolerAct: 'relu', dense: 'classifier.weight', labels: c.numLabels } : null,
  };
}

const encode = (model: DistilBertModel, ids: Tensor, o: EncoderForwardOptions): EncoderOutput => distilbertEncode(model.params, model.config, ids, o);

export const distilbert: Architecture<DistilBertConfig, DistilBertMeta, EncoderFields> = {
  name: 'distilbert',
  label: 'DistilBERT',
  kind: 'encoder',
  legacyTokenizer: 'bert-vocab',
  hfClasses: CLASSES,
  canCarry: { lm: false, mlm: true, classifier: true },
  attnOutTap: 'attnOut',
  classifierInput: { pairSeparators: 1, tokenTypes: false }, // [CLS] a [SEP] b [SEP], no segment ids
  config: {
    parse,
    toJson,
    defaultMeta: (p = {}) => ({
      head: 'base', labels: null, problemType: null, padTokenId: 0, qaDropout: 0.1, tieWeights: true, torchDtype: 'float32', extra: {}, ...p,
    }),
  },
  pretrain: {
    check() {
      throw new Error('--arch distilbert: kdqat pretrain does not train DistilBERT from scratch (DistilBERT is distilled from a BERT teacher); fine-tune or distill a DistilBERT checkpoint instead');
    },
    config: (s) => ({
      vocabSize: s.vocab, hiddenSize: s.hidden, numHiddenLayers: s.layers, numAttentionHeads: s.heads, intermediateSize: s.intermediate,
      maxPositionEmbeddings: s.seq, hiddenAct: 'gelu', hiddenDropoutProb: s.dropout, attentionProbsDropoutProb: s.dropout,
      seqClassifDropout: 0.2, initializerRange: 0.02, layerNormEps: 1e-12, numLabels: 0,
    }),
    tokenizer: { name: 'WordPiece', train: (texts, vocabSize) => trainWordPiece(texts, { vocabSize }) },
    meta: (sp) => ({ head: 'mlm', padTokenId: sp.pad ?? 0 }),
  },

  ...encoderHeads<DistilBertMeta>('DistilBERT'),
  specialIds: (m) => ({ bos: null, eos: null, pad: m.padTokenId }),

  paramSpec: (config, h) => distilbertParamSpec(config, { mlm: h.mlm, classifier: h.classifier }),
  forward(model: DistilBertModel, x, o = {}): Taps {
    // No token types: DistilBERT has no segment embeddings (x.tokenTypeIds is not read).
    const enc = encode(model, x.ids, { attentionMask: x.mask, weight: o.weight, capture: o.capture, dropoutSeed: o.dropoutSeed });
    const logits = distilbertClassify(model.params, model.config, enc, { weight: o.weight, dropoutSeed: o.dropoutSeed });
    return { logits, hidden: enc.hidden, probs: enc.probs, scores: enc.scores, context: enc.context, saOut: enc.saOut, attnOut: enc.attnOut };
  },
  encode: (model: DistilBertModel, ids, o = {}) => encode(model, ids, o).last,
  lmLogits(model: DistilBertModel, ids, o = {}) {
    if (!model.heads.mlm) throw new Error('this DistilBERT model has no masked-LM head (vocab_transform, vocab_projector)');
    return distilbertMlmLogits(model.params, model.config, atRows(encode(model, ids, o), o.rows), o);
  },

  modules: {
    kinds: ENCODER_KINDS,
    rules: [
      [/\.attention\.q_lin\./, 'query'],
      [/\.attention\.k_lin\./, 'key'],
      [/\.attention\.v_lin\./, 'value'],
      [/\.attention\.out_lin\./, 'attn-out'],
      [/\.ffn\.lin1\./, 'ffn-in'],
      [/\.ffn\.lin2\./, 'ffn-out'],
      [/\.sa_layer_norm\.|\.output_layer_norm\.|^distilbert\.embeddings\.LayerNorm\./, 'norm'],
      [/^distilbert\.embeddings\./, 'embed'],
      [/^vocab_(transform|layer_norm|projector)\./, 'head'],
      [/^pre_classifier\.|^classifier\./, 'classifier'],
    ],
    freezePresets: { ov: ['attention.v_lin', 'attention.out_lin'] },
    extraTargets: () => ({ first: [{ name: WORD, logical: WORD }], last: [] }),
  },
  load: {
    // A bare DistilBertModel is saved without the "distilbert." prefix.
    renamer(all) {
      const unprefixed = !all.some((n) => n.startsWith('distilbert.'));
      return (stored) => (unprefixed && /^(embeddings|transformer)\./.test(stored) ? `distilbert.${stored}` : stored);
    },
    tied: { 'vocab_projector.weight': WORD },
    tiedReason: () => 'vocab_projector is tied to the word embeddings',
    fromTensors(config, meta, shapes) {
      if (!meta.inferHead) return null;
      const { head, numLabels } = headFromTensors(shapes, 'classifier.weight', 'vocab_');
      return { config: { ...config, numLabels }, meta: { ...meta, head, inferHead: false } };
    },
  },
  gguf: null,
  onnx: { spec: onnxSpec },
};
