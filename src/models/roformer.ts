// RoFormer (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding";
// Hugging Face RoFormerModel with RoFormerForMaskedLM / RoFormerForSequenceClassification,
// transformers models/roformer/modeling_roformer.py): BERT's post-LN encoder whose attention sees
// positions only as rotations of queries and keys.
//   - embeddings: word + token type, LayerNorm, dropout; no position vector is added;
//   - every layer rotates each interleaved pair (q_2i, q_2i+1) of a head, and of k, by the angle
//     t·10000^(−2i/D) of its position t (D the head size), before q·kᵀ/√D; the sines and cosines
//     are the fixed table roformer.encoder.embed_positions.weight (P, D): sin in its first D/2
//     columns, cos in the last D/2, which checkpoints store and kdqat reads as stored (built, not
//     trained, when pretraining from scratch);
//   - the classifier reads the first token through dropout → dense → hidden_act → dropout →
//     out_proj (no pooler); the masked-LM head is BERT's (cls.predictions.*, decoder tied).
// Not built (refused naming the key): embedding_size ≠ hidden_size (embeddings_project),
// rotary_value true, is_decoder / add_cross_attention. The whole family is this file plus one
// registry line.
import type { Tensor } from '../tensor/tensor.js';
import { add, dropout, embedding, layerNorm, linear, reshape, slice } from '../tensor/ops/index.js';
import { intTensor } from '../tensor/tensor.js';
import { identityWeight, linearInput, param, type Params, type WeightFn } from '../nn/params.js';
import { trainWordPiece } from '../tokenize/train-wordpiece.js';
import type { ConfigReader, Obj } from './config-reader.js';
import type { Architecture, Heads, Taps } from './architecture.js';
import type { EncoderOnnxSpec } from './onnx-spec.js';
import { BERT_LAYER } from './bert.js';
import { BERT_RULES } from './bert-arch.js';
import {
  ENCODER_ACTS, ENCODER_KINDS, activation, atRows, bertStyleJson, checkIds, embeddingDropout, encoderHeads, encoderStack, headFromTensors,
  inertKeys, labelsJson, layerSpec, parseLabels, specWriter,
  type EncoderAct, type EncoderFields, type EncoderForwardOptions, type EncoderHead, type EncoderModel, type EncoderOutput,
  type ParamSpec, type ProblemType, type RotaryTables,
} from './encoder.js';

export interface RoFormerConfig {
  vocabSize: number;
  hiddenSize: number; // C (= embedding_size)
  numHiddenLayers: number; // L
  numAttentionHeads: number; // H; the head size D = C/H is even
  intermediateSize: number; // F
  maxPositionEmbeddings: number; // P: rows of the sinusoid table
  typeVocabSize: number;
  layerNormEps: number;
  hiddenAct: EncoderAct;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  initializerRange: number;
  /** Classification labels (RoFormerForSequenceClassification); 0 = no classifier. */
  numLabels: number;
}

export interface RoFormerMeta {
  head: EncoderHead;
  labels: string[] | null;
  problemType: ProblemType | null;
  padTokenId: number | null;
  torchDtype: string;
  /** Inert keys kept verbatim (transformers_version, …; encoder.ts INERT_KEYS). */
  extra: Obj;
  inferHead?: boolean;
}

type RoFormerModel = EncoderModel<RoFormerConfig>;

const E = 'roformer.embeddings.';
const WORD = `${E}word_embeddings.weight`;
/** The fixed sinusoid table (P, D), RoFormerEncoder.embed_positions. */
export const SINUSOIDS = 'roformer.encoder.embed_positions.weight';
const layerPrefix = (l: number): string => `roformer.encoder.layer.${l}.`;

/** RoFormerSinusoidalPositionalEmbedding's table (P, D): row t = [sin(t·ω_0) … sin(t·ω_{D/2−1}),
 *  cos(t·ω_0) … cos(t·ω_{D/2−1})], ω_i = 10000^(−2i/D), computed in float64 and rounded once. */
export function roformerSinusoids(P: number, D: number): Float32Array {
  const out = new Float32Array(P * D), half = D / 2;
  for (let t = 0; t < P; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t / 10000 ** ((2 * i) / D);
      out[t * D + i] = Math.sin(angle);
      out[t * D + half + i] = Math.cos(angle);
    }
  }
  return out;
}

/** The rotary tables for positions 0..T−1 from the stored sinusoids, in the rope op's layout
 *  (T, D): each row's D/2 cosines (sines) twice. Read as data: the table gets no gradient. */
function rotaryTables(params: Params, T: number, D: number): RotaryTables {
  const table = param(params, SINUSOIDS).f32, half = D / 2;
  const cos = new Float32Array(T * D), sin = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      sin[t * D + i] = sin[t * D + half + i] = table[t * D + i];
      cos[t * D + i] = cos[t * D + half + i] = table[t * D + half + i];
    }
  }
  return { cos, sin };
}

/** Embeddings + encoder: ids (B, T) → last hidden state (B, T, C) and taps. */
export function roformerEncode(params: Params, cfg: RoFormerConfig, ids: Tensor, opts: EncoderForwardOptions = {}): EncoderOutput {
  const [B, T] = checkIds('roformer', ids, cfg.maxPositionEmbeddings);
  const wf = opts.weight ?? identityWeight;
  const types = opts.tokenTypeIds ?? intTensor(new Int32Array(B * T), [B, T]);
  let x = add(embedding(wf(WORD, param(params, WORD)), ids), embedding(param(params, `${E}token_type_embeddings.weight`), types)); // (B, T, C)
  x = layerNorm(x, param(params, `${E}LayerNorm.weight`), param(params, `${E}LayerNorm.bias`), cfg.layerNormEps);
  x = embeddingDropout(x, cfg.hiddenDropoutProb, opts.dropoutSeed);
  const rotary = rotaryTables(params, T, cfg.hiddenSize / cfg.numAttentionHeads);
  return encoderStack(params, layerPrefix, cfg.numHiddenLayers, BERT_LAYER, cfg, x, { ...opts, rotary });
}

/** RoFormerClassificationHead on the first token: dropout, dense, hidden_act, dropout, out_proj. (B, K) */
export function roformerClassify(params: Params, cfg: RoFormerConfig, enc: EncoderOutput, opts: { weight?: WeightFn; dropoutSeed?: number } = {}): Tensor {
  const [B, , C] = enc.last.shape;
  const drop = (t: Tensor, salt: number): Tensor => (opts.dropoutSeed === undefined ? t : dropout(t, cfg.hiddenDropoutProb, opts.dropoutSeed * 31 + salt));
  const lin = (x: Tensor, n: string): Tensor =>
    linear(linearInput(opts.weight, `${n}.weight`, x), (opts.weight ?? identityWeight)(`${n}.weight`, param(params, `${n}.weight`)), param(params, `${n}.bias`));
  const first = drop(reshape(slice(enc.last, 1, 0, 1), [B, C]), 7); // (B, C)
  return lin(drop(activation(cfg.hiddenAct)(lin(first, 'classifier.dense')), 8), 'classifier.out_proj');
}

/** RoFormerOnlyMLMHead: transform (dense, hidden_act, LayerNorm), then the tied decoder. (B, T, V) */
export function roformerMlmLogits(params: Params, cfg: RoFormerConfig, enc: EncoderOutput, opts: { weight?: WeightFn } = {}): Tensor {
  const t = 'cls.predictions.transform.';
  const h = layerNorm(
    activation(cfg.hiddenAct)(linear(enc.last, param(params, `${t}dense.weight`), param(params, `${t}dense.bias`))),
    param(params, `${t}LayerNorm.weight`), param(params, `${t}LayerNorm.bias`), cfg.layerNormEps,
  );
  return linear(linearInput(opts.weight, WORD, h), (opts.weight ?? identityWeight)(WORD, param(params, WORD)), param(params, 'cls.predictions.bias'));
}

export function roformerParamSpec(cfg: RoFormerConfig, heads: { mlm?: boolean; classifier?: boolean } = {}): ParamSpec {
  const C = cfg.hiddenSize, D = C / cfg.numAttentionHeads;
  const spec: ParamSpec = new Map();
  const s = specWriter(spec, cfg.initializerRange);
  s.set(WORD, [cfg.vocabSize, C]);
  s.set(`${E}token_type_embeddings.weight`, [cfg.typeVocabSize, C]);
  s.ln(`${E}LayerNorm`, C);
  spec.set(SINUSOIDS, { shape: [cfg.maxPositionEmbeddings, D], init: { kind: 'values', data: roformerSinusoids(cfg.maxPositionEmbeddings, D) } });
  layerSpec(spec, cfg.initializerRange, layerPrefix, cfg.numHiddenLayers, BERT_LAYER, C, cfg.intermediateSize);
  if (heads.classifier) {
    s.lin('classifier.dense', C, C);
    s.lin('classifier.out_proj', cfg.numLabels, C);
  }
  if (heads.mlm) {
    s.lin('cls.predictions.transform.dense', C, C);
    s.ln('cls.predictions.transform.LayerNorm', C);
    spec.set('cls.predictions.bias', { shape: [cfg.vocabSize], init: { kind: 'zeros' } }); // decoder tied to the embeddings
  }
  return spec;
}

const CLASSES: Record<string, EncoderHead> = {
  RoFormerForMaskedLM: 'mlm', RoFormerForSequenceClassification: 'classifier', RoFormerModel: 'base',
};
const CLASS_OF: Record<EncoderHead, string> = { mlm: 'RoFormerForMaskedLM', classifier: 'RoFormerForSequenceClassification', base: 'RoFormerModel' };

function parse(r: ConfigReader): { config: RoFormerConfig; meta: RoFormerMeta } {
  const archName = r.architectures(Object.keys(CLASSES));
  const C = r.int('hidden_size'), H = r.int('num_attention_heads');
  r.heads(C, H);
  if ((C / H) % 2 !== 0) r.fail(`hidden_size ${C} / num_attention_heads ${H} = ${C / H}: RoFormer rotates pairs of a head's dimensions, so the head size must be even`);
  const es = r.j.embedding_size;
  if (es !== undefined && es !== null && r.int('embedding_size') !== C) {
    r.fail(`embedding_size ${es} ≠ hidden_size ${C} is not supported (kdqat builds no embeddings_project); use a checkpoint whose embedding_size equals hidden_size`);
  }
  if (r.bool('rotary_value', false)) r.fail('"rotary_value": true is not supported; kdqat rotates queries and keys only (rotary_value false)');
  for (const k of ['is_decoder', 'add_cross_attention']) if (r.bool(k, false)) r.fail(`"${k}": true is not supported; kdqat runs RoFormer as a bidirectional encoder`);
  const act = r.str('hidden_act', 'gelu');
  if (!ENCODER_ACTS.includes(act as EncoderAct)) r.fail(`hidden_act "${act}" is not supported for roformer; kdqat supports ${ENCODER_ACTS.map((a) => `"${a}"`).join(', ')}`);
  const { labels, numLabels, problemType } = parseLabels(r);
  const head: EncoderHead = archName ? CLASSES[archName] : 'base';
  const config: RoFormerConfig = {
    vocabSize: r.int('vocab_size'),
    hiddenSize: C,
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads: H,
    intermediateSize: r.int('intermediate_size'),
    maxPositionEmbeddings: r.int('max_position_embeddings', 1536),
    typeVocabSize: r.int('type_vocab_size', 2),
    layerNormEps: r.num('layer_norm_eps', 1e-12),
    hiddenAct: act as EncoderAct,
    hiddenDropoutProb: r.num('hidden_dropout_prob', 0.1),
    attentionProbsDropoutProb: r.num('attention_probs_dropout_prob', 0.1),
    initializerRange: r.num('initializer_range', 0.02),
    numLabels: head === 'classifier' ? numLabels : 0,
  };
  const meta: RoFormerMeta = {
    head, labels: head === 'classifier' ? labels : null, problemType,
    padTokenId: r.j.pad_token_id === undefined ? 0 : r.tokenId('pad_token_id'),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')), extra: inertKeys(r),
    ...(archName ? {} : { inferHead: true }),
  };
  return { config, meta };
}

function toJson(k: RoFormerConfig, m: RoFormerMeta): Obj {
  const out: Obj = {
    ...m.extra, ...bertStyleJson(k),
    architectures: [CLASS_OF[m.head]], embedding_size: k.hiddenSize, max_position_embeddings: k.maxPositionEmbeddings,
    model_type: 'roformer', pad_token_id: m.padTokenId, rotary_value: false, torch_dtype: m.torchDtype,
  };
  return m.head === 'classifier' ? { ...out, ...labelsJson('roformer', m.labels, k.numLabels, m.problemType) } : out;
}

/** ONNX export data (onnx-spec.ts): token types, rotary positions from the stored sinusoids,
 *  classifier dense → hidden_act → out_proj. */
function onnxSpec(c: RoFormerConfig, h: Heads): EncoderOnnxSpec {
  return {
    kind: 'encoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, vocab: c.vocabSize,
    layerNormEps: c.layerNormEps, act: c.hiddenAct,
    wordEmbed: WORD, posEmbed: null, positionOffset: 0, rotaryInterleaved: SINUSOIDS,
    typeEmbed: `${E}token_type_embeddings.weight`, embedNorm: `${E}LayerNorm.weight`,
    layer: (l) => {
      const p = layerPrefix(l);
      return {
        q: `${p}attention.self.query.weight`, k: `${p}attention.self.key.weight`, v: `${p}attention.self.value.weight`,
        o: `${p}attention.output.dense.weight`, attnNorm: `${p}attention.output.LayerNorm.weight`,
        ffnIn: `${p}intermediate.dense.weight`, ffnOut: `${p}output.dense.weight`, ffnNorm: `${p}output.LayerNorm.weight`,
      };
    },
    classifier: h.classifier ? { pooler: 'classifier.dense.weight', poolerAct: c.hiddenAct, dense: 'classifier.out_proj.weight', labels: c.numLabels } : null,
  };
}

const encode = (model: RoFormerModel, ids: Tensor, o: EncoderForwardOptions): EncoderOutput => roformerEncode(model.params, model.config, ids, o);

export const roformer: Architecture<RoFormerConfig, RoFormerMeta, EncoderFields> = {
  name: 'roformer',
  label: 'RoFormer',
  kind: 'encoder',
  hfClasses: CLASSES,
  canCarry: { lm: false, mlm: true, classifier: true },
  attnOutTap: 'attnOut',
  config: {
    parse,
    toJson,
    defaultMeta: (p = {}) => ({ head: 'base', labels: null, problemType: null, padTokenId: 0, torchDtype: 'float32', extra: {}, ...p }),
  },
  pretrain: {
    check(s) {
      if (s.seq < 3) throw new Error('--seq-len must be at least 3 for RoFormer ([CLS] text [SEP])');
      if ((s.hidden / s.heads) % 2 !== 0) throw new Error(`--hidden ${s.hidden} / --heads ${s.heads}: RoFormer rotates pairs of a head's dimensions, so the head size must be even`);
    },
    config: (s) => ({
      vocabSize: s.vocab, hiddenSize: s.hidden, numHiddenLayers: s.layers, numAttentionHeads: s.heads, intermediateSize: s.intermediate,
      maxPositionEmbeddings: s.seq, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: s.dropout,
      attentionProbsDropoutProb: s.dropout, initializerRange: 0.02, numLabels: 0,
    }),
    tokenizer: { name: 'WordPiece', train: (texts, vocabSize) => trainWordPiece(texts, { vocabSize }) },
    meta: (sp) => ({ head: 'mlm', padTokenId: sp.pad ?? 0 }),
  },

  ...encoderHeads<RoFormerMeta>('RoFormer'),
  specialIds: (m) => ({ bos: null, eos: null, pad: m.padTokenId }),

  paramSpec: (config, h) => roformerParamSpec(config, { mlm: h.mlm, classifier: h.classifier }),
  forward(model: RoFormerModel, x, o = {}): Taps {
    const enc = encode(model, x.ids, { attentionMask: x.mask, tokenTypeIds: x.tokenTypeIds, weight: o.weight, capture: o.capture, dropoutSeed: o.dropoutSeed });
    const logits = roformerClassify(model.params, model.config, enc, { weight: o.weight, dropoutSeed: o.dropoutSeed });
    return { logits, hidden: enc.hidden, probs: enc.probs, scores: enc.scores, context: enc.context, saOut: enc.saOut, attnOut: enc.attnOut };
  },
  encode: (model: RoFormerModel, ids, o = {}) => encode(model, ids, o).last,
  lmLogits(model: RoFormerModel, ids, o = {}) {
    if (!model.heads.mlm) throw new Error('this RoFormer model has no masked-LM head (cls.predictions.*)');
    return roformerMlmLogits(model.params, model.config, atRows(encode(model, ids, o), o.rows), o);
  },

  modules: {
    kinds: ENCODER_KINDS,
    // BERT's layer names; the sinusoid table is an embedding that is never quantized or trained.
    rules: [[/\.embed_positions\./, 'embed'], ...BERT_RULES],
    freezePresets: { ov: ['attention.self.value', 'attention.output.dense'] },
    extraTargets: () => ({ first: [{ name: WORD, logical: WORD }], last: [] }),
  },
  load: {
    // A bare RoFormerModel is saved without the "roformer." prefix.
    renamer(all) {
      const unprefixed = !all.some((n) => n.startsWith('roformer.'));
      return (stored) => (unprefixed && /^(embeddings|encoder)\./.test(stored) ? `roformer.${stored}` : stored);
    },
    tied: { 'cls.predictions.decoder.weight': WORD, 'cls.predictions.decoder.bias': 'cls.predictions.bias' },
    tiedReason: () => 'the MLM decoder is tied to the embeddings',
    fromTensors(config, meta, shapes) {
      if (!meta.inferHead) return null;
      const { head, numLabels } = headFromTensors(shapes, 'classifier.out_proj.weight', 'cls.predictions.');
      return { config: { ...config, numLabels }, meta: { ...meta, head, inferHead: false } };
    },
  },
  gguf: null,
  onnx: { spec: onnxSpec },
};
