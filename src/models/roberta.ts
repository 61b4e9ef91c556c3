// RoBERTa and XLM-RoBERTa (Hugging Face RobertaModel / XLMRobertaModel with the ForMaskedLM and
// ForSequenceClassification heads): BERT's encoder under `roberta.*`, with two differences that
// change the numbers (Liu et al. 2019; transformers models/roberta/modeling_roberta.py):
//   - positions count real tokens from padding_idx + 1: position_id = cumsum(ids ≠ pad)·(ids ≠ pad)
//     + pad (fairseq's make_positions), so position_embeddings has max_position_embeddings =
//     512 + pad + 1 rows and a padding token sits at row pad, wherever the padding is;
//   - the classifier reads the <s> token through dense → tanh → out_proj (no pooler), and the
//     masked-LM head is lm_head.{dense, layer_norm} with the decoder tied to the word embeddings.
// XLM-RoBERTa is the same model under another model_type and class names (its modeling file
// copies RoBERTa's), so one parameterized record serves both registry entries.
import type { Tensor } from '../tensor/tensor.js';
import { add, dropout, embedding, layerNorm, linear, reshape, slice, tanh } from '../tensor/ops/index.js';
import { intTensor } from '../tensor/tensor.js';
import { identityWeight, linearInput, param, type Params, type WeightFn } from '../nn/params.js';
import { trainByteLevelBpe } from '../tokenize/train-bpe.js';
import type { ConfigReader, Obj } from './config-reader.js';
import type { Architecture, Heads, Taps } from './architecture.js';
import type { EncoderOnnxSpec } from './onnx-spec.js';
import { BERT_LAYER, type BertConfig } from './bert.js';
import {
  ENCODER_ACTS, ENCODER_KINDS, activation, atRows, bertStyleJson, checkIds, embeddingDropout, encoderHeads, encoderStack, headFromTensors,
  inertKeys, labelsJson, layerSpec, parseLabels, specWriter,
  type EncoderAct, type EncoderFields, type EncoderForwardOptions, type EncoderHead, type EncoderModel, type EncoderOutput,
  type ParamSpec, type ProblemType,
} from './encoder.js';

/** BERT's numbers plus the padding index. `maxPositionEmbeddings` is the number of tokens the
 *  model can embed (512 for roberta-base); config.json's max_position_embeddings is that + pad + 1
 *  (the rows of the table). */
export interface RobertaConfig extends Omit<BertConfig, 'hiddenAct'> {
  hiddenAct: EncoderAct;
  /** pad_token_id: the padding index positions are counted from. */
  padTokenId: number;
  /** classifier_dropout (null: hidden_dropout_prob), the head's dropout. */
  classifierDropout: number | null;
}

export interface RobertaMeta {
  head: EncoderHead;
  labels: string[] | null;
  problemType: ProblemType | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  torchDtype: string;
  /** Inert keys kept verbatim (transformers_version, …; encoder.ts INERT_KEYS). */
  extra: Obj;
  inferHead?: boolean;
}

type RobertaModel = EncoderModel<RobertaConfig>;

/** HF create_position_ids_from_input_ids: (B, T) ids → (B, T) positions. */
export function robertaPositions(ids: Int32Array, B: number, T: number, pad: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (ids[i] === pad) pos[i] = pad;
      else pos[i] = pad + ++n;
    }
  }
  return pos;
}

/** Embeddings + encoder: ids (B, T) → last hidden state (B, T, C) and taps. */
export function robertaEncode(params: Params, cfg: RobertaConfig, ids: Tensor, opts: EncoderForwardOptions = {}): EncoderOutput {
  const [B, T] = checkIds('roberta', ids, cfg.maxPositionEmbeddings); // positions pad+1 … pad+T must be rows of the table
  const wf = opts.weight ?? identityWeight;
  const word = 'roberta.embeddings.word_embeddings.weight';
  const types = opts.tokenTypeIds ?? intTensor(new Int32Array(B * T), [B, T]);
  let x = add(embedding(wf(word, param(params, word)), ids), embedding(param(params, 'roberta.embeddings.token_type_embeddings.weight'), types));
  const pos = intTensor(robertaPositions(ids.i32, B, T, cfg.padTokenId), [B, T]);
  x = add(x, embedding(param(params, 'roberta.embeddings.position_embeddings.weight'), pos)); // (B, T, C)
  x = layerNorm(x, param(params, 'roberta.embeddings.LayerNorm.weight'), param(params, 'roberta.embeddings.LayerNorm.bias'), cfg.layerNormEps);
  x = embeddingDropout(x, cfg.hiddenDropoutProb, opts.dropoutSeed);
  return encoderStack(params, (l) => `roberta.encoder.layer.${l}.`, cfg.numHiddenLayers, BERT_LAYER, cfg, x, opts);
}

/** RobertaClassificationHead on the first (<s>) token: dropout, dense, tanh, dropout, out_proj. */
export function robertaClassify(params: Params, cfg: RobertaConfig, enc: EncoderOutput, opts: { weight?: WeightFn; dropoutSeed?: number } = {}): Tensor {
  const [B, , C] = enc.last.shape;
  const p = cfg.classifierDropout ?? cfg.hiddenDropoutProb;
  const drop = (t: Tensor, salt: number): Tensor => (opts.dropoutSeed === undefined ? t : dropout(t, p, opts.dropoutSeed * 31 + salt));
  const lin = (x: Tensor, n: string): Tensor =>
    linear(linearInput(opts.weight, `${n}.weight`, x), (opts.weight ?? identityWeight)(`${n}.weight`, param(params, `${n}.weight`)), param(params, `${n}.bias`));
  const s = drop(reshape(slice(enc.last, 1, 0, 1), [B, C]), 7); // (B, C)
  return lin(drop(tanh(lin(s, 'classifier.dense')), 8), 'classifier.out_proj'); // (B, K)
}

/** RobertaLMHead: dense, GELU, layer_norm, then the tied decoder with lm_head.bias. (B, T, V) */
export function robertaMlmLogits(params: Params, cfg: RobertaConfig, enc: EncoderOutput, opts: { weight?: WeightFn } = {}): Tensor {
  const h = layerNorm(
    activation(cfg.hiddenAct)(linear(enc.last, param(params, 'lm_head.dense.weight'), param(params, 'lm_head.dense.bias'))),
    param(params, 'lm_head.layer_norm.weight'), param(params, 'lm_head.layer_norm.bias'), cfg.layerNormEps,
  );
  const word = 'roberta.embeddings.word_embeddings.weight';
  return linear(linearInput(opts.weight, word, h), (opts.weight ?? identityWeight)(word, param(params, word)), param(params, 'lm_head.bias'));
}

export function robertaParamSpec(cfg: RobertaConfig, heads: { mlm?: boolean; classifier?: boolean } = {}): ParamSpec {
  const C = cfg.hiddenSize;
  const spec: ParamSpec = new Map();
  const s = specWriter(spec, cfg.initializerRange);
  s.set('roberta.embeddings.word_embeddings.weight', [cfg.vocabSize, C]);
  s.set('roberta.embeddings.position_embeddings.weight', [cfg.maxPositionEmbeddings + cfg.padTokenId + 1, C]);
  s.set('roberta.embeddings.token_type_embeddings.weight', [cfg.typeVocabSize, C]);
  s.ln('roberta.embeddings.LayerNorm', C);
  layerSpec(spec, cfg.initializerRange, (l) => `roberta.encoder.layer.${l}.`, cfg.numHiddenLayers, BERT_LAYER, C, cfg.intermediateSize);
  if (heads.classifier) {
    s.lin('classifier.dense', C, C);
    s.lin('classifier.out_proj', cfg.numLabels, C);
  }
  if (heads.mlm) {
    s.lin('lm_head.dense', C, C);
    s.ln('lm_head.layer_norm', C);
    spec.set('lm_head.bias', { shape: [cfg.vocabSize], init: { kind: 'zeros' } }); // decoder tied to the embeddings
  }
  return spec;
}

/** ONNX export data (onnx-spec.ts): positions counted from the padding index as HF does, the one
 *  token-type row added to every token (no token_type_ids input), classifier dense → tanh → out_proj. */
function onnxSpec(c: RobertaConfig, h: Heads): EncoderOnnxSpec {
  const e = 'roberta.embeddings.';
  return {
    kind: 'encoder', layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, vocab: c.vocabSize,
    layerNormEps: c.layerNormEps, act: c.hiddenAct,
    wordEmbed: `${e}word_embeddings.weight`, posEmbed: `${e}position_embeddings.weight`, positionOffset: 0,
    positionsFromPadding: c.padTokenId, typeEmbed: `${e}token_type_embeddings.weight`, typeInput: false, embedNorm: `${e}LayerNorm.weight`,
    layer: (l) => {
      const p = `roberta.encoder.layer.${l}.`;
      return {
        q: `${p}attention.self.query.weight`, k: `${p}attention.self.key.weight`, v: `${p}attention.self.value.weight`,
        o: `${p}attention.output.dense.weight`, attnNorm: `${p}attention.output.LayerNorm.weight`,
        ffnIn: `${p}intermediate.dense.weight`, ffnOut: `${p}output.dense.weight`, ffnNorm: `${p}output.LayerNorm.weight`,
      };
    },
    classifier: h.classifier ? { pooler: 'classifier.dense.weight', poolerAct: 'tanh', dense: 'classifier.out_proj.weight', labels: c.numLabels } : null,
  };
}

/** One record per model_type; `classPrefix` names its HF classes (Roberta, XLMRoberta). */
export function robertaFamily(name: string, label: string, classPrefix: string): Architecture<RobertaConfig, RobertaMeta, EncoderFields> {
  const CLASSES: Record<string, EncoderHead> = {
    [`${classPrefix}ForMaskedLM`]: 'mlm', [`${classPrefix}ForSequenceClassification`]: 'classifier', [`${classPrefix}Model`]: 'base',
  };
  const CLASS_OF: Record<EncoderHead, string> = {
    mlm: `${classPrefix}ForMaskedLM`, classifier: `${classPrefix}ForSequenceClassification`, base: `${classPrefix}Model`,
  };

  function parse(r: ConfigReader): { config: RobertaConfig; meta: RobertaMeta } {
    const archName = r.architectures(Object.keys(CLASSES));
    const C = r.int('hidden_size'), H = r.int('num_attention_heads');
    r.heads(C, H);
    const act = r.str('hidden_act', 'gelu');
    if (!ENCODER_ACTS.includes(act as EncoderAct)) r.fail(`hidden_act "${act}" is not supported for ${name}; kdqat supports ${ENCODER_ACTS.map((a) => `"${a}"`).join(', ')}`);
    const pe = r.str('position_embedding_type', 'absolute');
    if (pe !== 'absolute') r.fail(`position_embedding_type "${pe}" is not supported; kdqat supports "absolute"`);
    for (const k of ['is_decoder', 'add_cross_attention']) if (r.bool(k, false)) r.fail(`"${k}": true is not supported; kdqat runs ${label} as a bidirectional encoder`);
    if (!r.bool('tie_word_embeddings', true)) r.fail(`"tie_word_embeddings": false is not supported; kdqat ties the masked-LM decoder to the word embeddings`);
    // HF's defaults for these are BERT's (512 positions, 2 token types, eps 1e-12, pad 1), which
    // no RoBERTa checkpoint has; a config without them is not guessed at.
    const pad = r.int('pad_token_id', undefined, 0);
    const rows = r.int('max_position_embeddings');
    if (rows <= pad + 1) r.fail(`"max_position_embeddings" ${rows} leaves no positions after the padding offset pad_token_id + 1 = ${pad + 1}`);
    const { labels, numLabels, problemType } = parseLabels(r);
    const head: EncoderHead = archName ? CLASSES[archName] : 'base';
    const cd = r.j.classifier_dropout;
    const config: RobertaConfig = {
      vocabSize: r.int('vocab_size'),
      hiddenSize: C,
      numHiddenLayers: r.int('num_hidden_layers'),
      numAttentionHeads: H,
      intermediateSize: r.int('intermediate_size'),
      maxPositionEmbeddings: rows - pad - 1,
      typeVocabSize: r.int('type_vocab_size'),
      layerNormEps: r.has('layer_norm_eps') ? r.num('layer_norm_eps', 0) : r.fail(`missing required key "layer_norm_eps" (RoBERTa uses 1e-05); add it to config.json`),
      hiddenAct: act as EncoderAct,
      hiddenDropoutProb: r.num('hidden_dropout_prob', 0.1),
      attentionProbsDropoutProb: r.num('attention_probs_dropout_prob', 0.1),
      initializerRange: r.num('initializer_range', 0.02),
      numLabels: head === 'classifier' ? numLabels : 0,
      padTokenId: pad,
      classifierDropout: cd === undefined || cd === null ? null : r.num('classifier_dropout', 0),
    };
    const meta: RobertaMeta = {
      head, labels: head === 'classifier' ? labels : null, problemType,
      bosTokenId: r.tokenId('bos_token_id'), eosTokenId: r.tokenId('eos_token_id'),
      torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')), extra: inertKeys(r),
      ...(archName ? {} : { inferHead: true }),
    };
    return { config, meta };
  }

  function toJson(k: RobertaConfig, m: RobertaMeta): Obj {
    const out: Obj = {
      ...m.extra, ...bertStyleJson(k),
      architectures: [CLASS_OF[m.head]], bos_token_id: m.bosTokenId, classifier_dropout: k.classifierDropout, eos_token_id: m.eosTokenId,
      max_position_embeddings: k.maxPositionEmbeddings + k.padTokenId + 1, model_type: name, pad_token_id: k.padTokenId,
      position_embedding_type: 'absolute', torch_dtype: m.torchDtype,
    };
    return m.head === 'classifier' ? { ...out, ...labelsJson(name, m.labels, k.numLabels, m.problemType) } : out;
  }

  const encode = (model: RobertaModel, ids: Tensor, o: EncoderForwardOptions): EncoderOutput => robertaEncode(model.params, model.config, ids, o);

  return {
    name,
    label,
    kind: 'encoder',
    // RoBERTa's slow tokenizer is GPT-2's BPE files; XLM-RoBERTa's is SentencePiece (not read).
    ...(name === 'roberta' ? { legacyTokenizer: 'roberta-bpe' as const } : {}),
    hfClasses: CLASSES,
    canCarry: { lm: false, mlm: true, classifier: true },
    attnOutTap: 'attnOut',
    classifierInput: { pairSeparators: 2, tokenTypes: false }, // <s> a </s></s> b </s>, no segment ids
    config: {
      parse,
      toJson,
      defaultMeta: (p = {}) => ({
        head: 'base', labels: null, problemType: null, bosTokenId: 0, eosTokenId: 2, torchDtype: 'float32', extra: {}, ...p,
      }),
    },
    pretrain: {
      check() {
        throw new Error(`--arch ${name}: kdqat pretrain does not train ${label} from scratch (its masked-LM objective is BERT's [CLS]/[SEP] setup); fine-tune or distill a ${label} checkpoint instead`);
      },
      config: (s) => ({
        vocabSize: s.vocab, hiddenSize: s.hidden, numHiddenLayers: s.layers, numAttentionHeads: s.heads,
        intermediateSize: s.intermediate, maxPositionEmbeddings: s.seq, typeVocabSize: 1, layerNormEps: 1e-5,
        hiddenAct: 'gelu', hiddenDropoutProb: s.dropout, attentionProbsDropoutProb: s.dropout,
        initializerRange: 0.02, numLabels: 0, padTokenId: 1, classifierDropout: null,
      }),
      // RoBERTa's special tokens at its ids: <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4.
      tokenizer: { name: 'byte-level BPE', train: (texts, vocabSize) => trainByteLevelBpe(texts, { vocabSize, specialTokens: ['<s>', '<pad>', '</s>', '<unk>', '<mask>'] }) },
      meta: (sp) => ({ head: 'mlm', bosTokenId: sp.bos ?? 0, eosTokenId: sp.eos ?? 2 }),
    },

    ...encoderHeads<RobertaMeta>(label),
    // The padding id is in the config (it moves the positions), so not repeated here.
    specialIds: (m) => ({ bos: m.bosTokenId, eos: m.eosTokenId, pad: null }),

    paramSpec: (config, h) => robertaParamSpec(config, { mlm: h.mlm, classifier: h.classifier }),
    forward(model: RobertaModel, x, o = {}): Taps {
      const enc = encode(model, x.ids, { attentionMask: x.mask, tokenTypeIds: x.tokenTypeIds, weight: o.weight, capture: o.capture, dropoutSeed: o.dropoutSeed });
      const logits = robertaClassify(model.params, model.config, enc, { weight: o.weight, dropoutSeed: o.dropoutSeed });
      return { logits, hidden: enc.hidden, probs: enc.probs, scores: enc.scores, context: enc.context, saOut: enc.saOut, attnOut: enc.attnOut };
    },
    encode: (model: RobertaModel, ids, o = {}) => encode(model, ids, o).last,
    lmLogits(model: RobertaModel, ids, o = {}) {
      if (!model.heads.mlm) throw new Error(`this ${label} model has no masked-LM head (lm_head.*)`);
      return robertaMlmLogits(model.params, model.config, atRows(encode(model, ids, o), o.rows), o);
    },

    onnx: { spec: onnxSpec },

    modules: {
      kinds: ENCODER_KINDS,
      rules: [
        [/\.attention\.self\.query\./, 'query'],
        [/\.attention\.self\.key\./, 'key'],
        [/\.attention\.self\.value\./, 'value'],
        [/\.attention\.output\.dense\./, 'attn-out'],
        [/\.intermediate\.dense\./, 'ffn-in'],
        [/\.output\.dense\./, 'ffn-out'],
        [/LayerNorm\./, 'norm'],
        [/^roberta\.embeddings\./, 'embed'],
        [/^lm_head\./, 'head'],
        [/^classifier\./, 'classifier'],
      ],
      freezePresets: { ov: ['attention.self.value', 'attention.output.dense'] },
      extraTargets: () => ({ first: [{ name: 'roberta.embeddings.word_embeddings.weight', logical: 'roberta.embeddings.word_embeddings.weight' }], last: [] }),
    },
    load: {
      // A bare RobertaModel is saved without the "roberta." prefix.
      renamer(all) {
        const unprefixed = !all.some((n) => n.startsWith('roberta.'));
        return (stored) => (unprefixed && /^(embeddings|encoder|pooler)\./.test(stored) ? `roberta.${stored}` : stored);
      },
      tied: { 'lm_head.decoder.weight': 'roberta.embeddings.word_embeddings.weight', 'lm_head.decoder.bias': 'lm_head.bias' },
      tiedReason: () => 'the masked-LM decoder is tied to the embeddings',
      skip: (n) => n.startsWith('roberta.pooler.'), // RobertaModel's pooler: no head kdqat builds reads it
      fromTensors(config, meta, shapes) {
        if (!meta.inferHead) return null;
        const { head, numLabels } = headFromTensors(shapes, 'classifier.out_proj.weight', 'lm_head.');
        return { config: { ...config, numLabels }, meta: { ...meta, head, inferHead: false } };
      },
    },
    gguf: null,
  };
}

export const roberta = robertaFamily('roberta', 'RoBERTa', 'Roberta');
export const xlmRoberta = robertaFamily('xlm-roberta', 'XLM-RoBERTa', 'XLMRoberta');
