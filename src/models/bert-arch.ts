// The BERT record (architecture.ts): Hugging Face BertModel / BertForMaskedLM /
// BertForSequenceClassification. Config keys and defaults follow transformers' BertConfig
// (models/bert/configuration_bert.py); num_labels is implied by id2label, as in PretrainedConfig.
import { trainWordPiece } from '../tokenize/train-wordpiece.js';
import type { ConfigReader, Obj } from './config-reader.js';
import { bertClassify, bertEncode, bertMlmLogits, bertParamSpec, type BertConfig } from './bert.js';
import type { Architecture, Heads, Taps } from './architecture.js';
import type { EncoderOnnxSpec } from './onnx-spec.js';
import { DISTANCE_EMBEDDING, POSITION_EMBEDDING_TYPES, type PositionEmbeddingType } from './relative-position.js';
import {
  ENCODER_KINDS, atRows, bertStyleJson, encoderHeads, headFromTensors, inertKeys, labelsJson, parseLabels,
  type EncoderFields, type EncoderHead, type EncoderModel, type ProblemType,
} from './encoder.js';

export type BertHead = EncoderHead;

export interface BertMeta {
  head: BertHead;
  /** Class names by index (classifier); null = HF's default LABEL_0.. names. */
  labels: string[] | null;
  problemType: ProblemType | null;
  padTokenId: number | null;
  classifierDropout: number | null;
  torchDtype: string;
  /** Inert keys kept verbatim (transformers_version, gradient_checkpointing; encoder.ts INERT_KEYS). */
  extra?: Obj;
  /** config.json names no architecture: the loader picks the head from the tensors. */
  inferHead?: boolean;
}

/** The heads a BERT model carries (it may carry both; save_pretrained has a class for one). */
export type BertFields = EncoderFields;
type BertModel = EncoderModel<BertConfig>;

const CLASSES: Record<string, BertHead> = {
  BertForMaskedLM: 'mlm', BertForPreTraining: 'mlm', BertForSequenceClassification: 'classifier', BertModel: 'base',
};
const CLASS_OF: Record<BertHead, string> = { mlm: 'BertForMaskedLM', classifier: 'BertForSequenceClassification', base: 'BertModel' };

/** Module kinds of BERT-layout parameter names (RoBERTa's encoder shares them). */
export const BERT_RULES: readonly (readonly [RegExp, string])[] = [
  [/\.attention\.self\.query\./, 'query'],
  [/\.attention\.self\.key\./, 'key'],
  [/\.attention\.self\.value\./, 'value'],
  [/\.attention\.output\.dense\./, 'attn-out'],
  [/\.intermediate\.dense\./, 'ffn-in'],
  [/\.output\.dense\./, 'ffn-out'], // after attention.output.dense, which also ends this way
  [/LayerNorm\./, 'norm'],
  [/word_embeddings\.|position_embeddings\.|token_type_embeddings\.|distance_embedding\./, 'embed'],
  [/^cls\.predictions\./, 'head'],
  [/^bert\.pooler\.|^classifier\./, 'classifier'],
];

function parse(r: ConfigReader): { config: BertConfig; meta: BertMeta } {
  const archName = r.architectures(Object.keys(CLASSES));
  const C = r.int('hidden_size'), H = r.int('num_attention_heads');
  r.heads(C, H);
  const act = r.str('hidden_act', 'gelu');
  if (act !== 'gelu' && act !== 'gelu_new') r.fail(`hidden_act "${act}" is not supported for bert; kdqat supports "gelu", "gelu_new"`);
  const pe = r.str('position_embedding_type', 'absolute');
  if (!POSITION_EMBEDDING_TYPES.includes(pe as PositionEmbeddingType)) {
    r.fail(`position_embedding_type "${pe}" is not supported; kdqat supports ${POSITION_EMBEDDING_TYPES.map((t) => `"${t}"`).join(', ')}`);
  }
  const { labels, numLabels, problemType } = parseLabels(r);
  const head: BertHead = archName ? CLASSES[archName] : 'base';
  const config: BertConfig = {
    vocabSize: r.int('vocab_size'),
    hiddenSize: C,
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads: H,
    intermediateSize: r.int('intermediate_size'),
    maxPositionEmbeddings: r.int('max_position_embeddings', 512),
    typeVocabSize: r.int('type_vocab_size', 2),
    layerNormEps: r.num('layer_norm_eps', 1e-12),
    hiddenAct: act as BertConfig['hiddenAct'],
    hiddenDropoutProb: r.num('hidden_dropout_prob', 0.1),
    attentionProbsDropoutProb: r.num('attention_probs_dropout_prob', 0.1),
    initializerRange: r.num('initializer_range', 0.02),
    numLabels: head === 'classifier' ? numLabels : 0,
    // Absent means absolute (BertConfig), so absolute configs compare equal to hand-made ones.
    ...(pe === 'absolute' ? {} : { positionEmbeddingType: pe as PositionEmbeddingType }),
  };
  const cd = r.j.classifier_dropout;
  const extra = inertKeys(r);
  const meta: BertMeta = {
    head, labels: head === 'classifier' ? labels : null, problemType,
    padTokenId: r.j.pad_token_id === undefined ? 0 : r.tokenId('pad_token_id'),
    classifierDropout: cd === undefined || cd === null ? null : r.num('classifier_dropout', 0),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')),
    ...(Object.keys(extra).length ? { extra } : {}),
    ...(archName ? {} : { inferHead: true }),
  };
  return { config, meta };
}

function toJson(k: BertConfig, m: BertMeta): Obj {
  const out: Obj = {
    ...m.extra, ...bertStyleJson(k),
    architectures: [CLASS_OF[m.head]], classifier_dropout: m.classifierDropout, max_position_embeddings: k.maxPositionEmbeddings,
    model_type: 'bert', pad_token_id: m.padTokenId, position_embedding_type: k.positionEmbeddingType ?? 'absolute', torch_dtype: m.torchDtype,
  };
  return m.head === 'classifier' ? { ...out, ...labelsJson('bert', m.labels, k.numLabels, m.problemType) } : out;
}

/** ONNX export data (onnx-spec.ts): token types, positions from 0 (or relative distance scores),
 *  pooler + classifier. */
function onnxSpec(c: BertConfig, h: Heads): EncoderOnnxSpec {
  const pe = c.positionEmbeddingType ?? 'absolute';
  return {
    kind: 'encoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, vocab: c.vocabSize,
    layerNormEps: c.layerNormEps, act: c.hiddenAct,
    wordEmbed: 'bert.embeddings.word_embeddings.weight', positionOffset: 0,
    posEmbed: pe === 'absolute' ? 'bert.embeddings.position_embeddings.weight' : null,
    relative: pe === 'absolute' ? null : { type: pe, maxPositions: c.maxPositionEmbeddings },
    typeEmbed: 'bert.embeddings.token_type_embeddings.weight', embedNorm: 'bert.embeddings.LayerNorm.weight',
    layer: (l) => {
      const p = `bert.encoder.layer.${l}.`;
      return {
        q: `${p}attention.self.query.weight`, k: `${p}attention.self.key.weight`, v: `${p}attention.self.value.weight`,
        o: `${p}attention.output.dense.weight`, attnNorm: `${p}attention.output.LayerNorm.weight`,
        ffnIn: `${p}intermediate.dense.weight`, ffnOut: `${p}output.dense.weight`, ffnNorm: `${p}output.LayerNorm.weight`,
        ...(pe === 'absolute' ? {} : { distance: p + DISTANCE_EMBEDDING }),
      };
    },
    classifier: h.classifier ? { pooler: 'bert.pooler.dense.weight', poolerAct: 'tanh', dense: 'classifier.weight', labels: c.numLabels } : null,
  };
}

export const bert: Architecture<BertConfig, BertMeta, BertFields> = {
  name: 'bert',
  label: 'BERT',
  kind: 'encoder',
  legacyTokenizer: 'bert-vocab',
  hfClasses: CLASSES,
  canCarry: { lm: false, mlm: true, classifier: true },
  attnOutTap: 'attnOut',
  config: {
    parse,
    toJson,
    defaultMeta: (p = {}) => ({
      head: p.head ?? 'base', labels: null, problemType: null, padTokenId: 0, classifierDropout: null, torchDtype: 'float32', ...p,
    }),
  },
  pretrain: {
    check(s) {
      if (s.seq < 3) throw new Error('--seq-len must be at least 3 for BERT ([CLS] text [SEP])');
    },
    config: (s) => ({
      vocabSize: s.vocab, hiddenSize: s.hidden, numHiddenLayers: s.layers, numAttentionHeads: s.heads,
      intermediateSize: s.intermediate, maxPositionEmbeddings: s.seq, typeVocabSize: 2, layerNormEps: 1e-12,
      hiddenAct: 'gelu', hiddenDropoutProb: s.dropout, attentionProbsDropoutProb: s.dropout,
      initializerRange: 0.02, numLabels: 0,
      ...(s.positionEmbedding && s.positionEmbedding !== 'absolute' ? { positionEmbeddingType: s.positionEmbedding } : {}),
    }),
    relativePositions: true,
    tokenizer: { name: 'WordPiece', train: (texts, vocabSize) => trainWordPiece(texts, { vocabSize }) },
    meta: (sp) => ({ head: 'mlm', padTokenId: sp.pad ?? 0 }),
  },

  ...encoderHeads<BertMeta>('BERT'),
  specialIds: (m) => ({ bos: null, eos: null, pad: m.padTokenId }),

  paramSpec: (config, h) => bertParamSpec(config, { mlm: h.mlm, classifier: h.classifier }),
  forward(model: BertModel, x, o = {}): Taps {
    const enc = bertEncode(model.params, model.config, x.ids, {
      attentionMask: x.mask, tokenTypeIds: x.tokenTypeIds, weight: o.weight, capture: o.capture, dropoutSeed: o.dropoutSeed,
    });
    const logits = bertClassify(model.params, model.config, enc, { weight: o.weight, dropoutSeed: o.dropoutSeed });
    return { logits, hidden: enc.hidden, probs: enc.probs, scores: enc.scores, context: enc.context, saOut: enc.saOut, attnOut: enc.attnOut };
  },
  encode: (model: BertModel, ids, o = {}) => bertEncode(model.params, model.config, ids, o).last,
  lmLogits(model: BertModel, ids, o = {}) {
    if (!model.heads.mlm) throw new Error('this BERT model has no masked-LM head (cls.predictions.*)');
    const enc = bertEncode(model.params, model.config, ids, o);
    return bertMlmLogits(model.params, model.config, atRows(enc, o.rows), o);
  },

  modules: {
    kinds: ENCODER_KINDS,
    rules: BERT_RULES,
    freezePresets: { ov: ['attention.self.value', 'attention.output.dense'] },
    // The word embedding is read through the WeightFn by the lookup and the tied MLM decoder alike.
    extraTargets: () => ({ first: [{ name: 'bert.embeddings.word_embeddings.weight', logical: 'bert.embeddings.word_embeddings.weight' }], last: [] }),
  },
  load: {
    // BertModel saved alone has no "bert." prefix (BertFor* models have it); TF-era checkpoints
    // name LayerNorm parameters gamma/beta, which transformers renames on load.
    renamer(all) {
      const unprefixed = !all.some((n) => n.startsWith('bert.'));
      return (stored) => {
        const n = unprefixed && /^(embeddings|encoder|pooler)\./.test(stored) ? `bert.${stored}` : stored;
        return n.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
      };
    },
    tied: { 'cls.predictions.decoder.weight': 'bert.embeddings.word_embeddings.weight', 'cls.predictions.decoder.bias': 'cls.predictions.bias' },
    tiedReason: () => 'the MLM decoder is tied to the embeddings',
    skip: (name, m) => m.head !== 'classifier' && name.startsWith('bert.pooler.'), // unused pooler
    fromTensors(config, meta, shapes) {
      if (!meta.inferHead) return null;
      // No "architectures" in config.json: tell the head from the tensors.
      const { head, numLabels } = headFromTensors(shapes, 'classifier.weight', 'cls.predictions.');
      return { config: { ...config, numLabels }, meta: { ...meta, head, inferHead: false } };
    },
  },
  gguf: null,
  onnx: { spec: onnxSpec },
};
