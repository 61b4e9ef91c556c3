// What the post-LayerNorm encoder families (BERT, RoBERTa/XLM-RoBERTa, DistilBERT, RoFormer) share: the
// layer (self-attention → residual → LayerNorm → FFN → residual → LayerNorm, Vaswani et al. 2017
// §3.1 as BERT uses it), the stack with its taps, the classifier labels of config.json, and the
// head bookkeeping of their records. A family names its modules (EncoderLayerNames) and writes
// its own embeddings and heads; everything else is here, once.
import type { Tensor } from '../tensor/tensor.js';
import { add, attention, dropout, gather, gelu, geluTanh, layerNorm, linear, permute, relu, reshape, rope } from '../tensor/ops/index.js';
import { intTensor } from '../tensor/tensor.js';
import { consumed, layer } from '../tensor/recompute.js';
import { identityWeight, linearInput, param, type Init, type Params, type WeightFn } from '../nn/params.js';
import { isObj, type ConfigReader, type Obj } from './config-reader.js';
import type { Heads } from './architecture.js';
import { DISTANCE_EMBEDDING, relativeAttention, type PositionEmbeddingType } from './relative-position.js';

/** The activations the encoder families use (HF ACT2FN names). */
export type EncoderAct = 'gelu' | 'gelu_new' | 'relu';
export const ENCODER_ACTS: readonly EncoderAct[] = ['gelu', 'gelu_new', 'relu'];
export const activation = (a: EncoderAct): ((x: Tensor) => Tensor) => (a === 'gelu_new' ? geluTanh : a === 'relu' ? relu : gelu);

/** The Linear module kinds of an encoder layer, in plot order (the same roles in every family). */
export const ENCODER_KINDS = ['query', 'key', 'value', 'attn-out', 'ffn-in', 'ffn-out'] as const;

/** What one encoder layer needs of its family's config. */
export interface EncoderLayerConfig {
  numAttentionHeads: number; // H
  layerNormEps: number;
  hiddenAct: EncoderAct;
  hiddenDropoutProb: number;
  /** How attention sees positions (BERT's position_embedding_type); absolute when absent. */
  positionEmbeddingType?: PositionEmbeddingType;
}

/** A layer's module names, relative to the layer prefix (BERT: attention.self.query, …). */
export interface EncoderLayerNames {
  query: string; key: string; value: string; attnOut: string; attnNorm: string;
  ffnIn: string; ffnOut: string; outNorm: string;
  /** Training: dropout on the attention output before its residual (BertSelfOutput has it,
   *  DistilBERT's TransformerBlock does not). Default true. */
  attnOutDropout?: boolean;
}

export interface EncoderCapture {
  hidden?: boolean; // embedding output + every layer's output (L+1)
  probs?: boolean; // (B, H, T, T)
  scores?: boolean; // (B, H, T, T), masked entries 0
  context?: boolean; // softmax(QKᵀ)V before the output projection (B, T, C)
  saOut?: boolean; // after the attention output projection, before the residual (B, T, C)
  attnOut?: boolean; // after the residual add and the attention LayerNorm (B, T, C)
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

/** Rotary position tables (T, D) in HF's rotate_half layout (ops/nn.ts rope), for families that
 *  rotate query and key pairs (RoFormer): the layer applies them to interleaved pairs. */
export interface RotaryTables { cos: Float32Array; sin: Float32Array }

/**
 * RoFormer's rotary embedding: each interleaved pair (x_2i, x_2i+1) of a head rotated by its
 * position's angle i, x (B, T, H, D). Returned with each head's dims reordered to (x_0, x_2, …,
 * x_1, x_3, …): that reorder turns the interleaved rotation into the rotate_half one the rope op
 * computes, and as queries and keys get the same reorder, q·k (all attention reads) is unchanged.
 */
export function rotateInterleavedPairs(x: Tensor, t: RotaryTables): Tensor {
  const [B, T, H, D] = x.shape;
  const halves = reshape(permute(reshape(x, [B, T, H, D / 2, 2]), [0, 1, 2, 4, 3]), [B, T, H, D]); // evens, then odds
  return rope(halves, t.cos, t.sin);
}

export interface EncoderBlockOptions {
  /** Rotary positions (rotateInterleavedPairs on q and k); null/absent: none. */
  rotary?: RotaryTables | null;
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

/** One post-LN encoder layer. x (B, T, C). `prefix` ends in '.' (or is ''). */
export function encoderLayer(
  params: Params, prefix: string, names: EncoderLayerNames, cfg: EncoderLayerConfig, x: Tensor, opts: EncoderBlockOptions,
): { y: Tensor; cap: EncoderBlockCapture } {
  const [B, T, C] = x.shape;
  const H = cfg.numAttentionHeads, D = C / H;
  const p = (n: string): Tensor => param(params, prefix + n);
  const w = (n: string): Tensor => (opts.weight ?? identityWeight)(prefix + n, p(n));
  // Linear `n` (a prefix-relative module name): input hook, weight hook, bias.
  const lin = (x: Tensor, n: string): Tensor => linear(linearInput(opts.weight, `${prefix}${n}.weight`, x), w(`${n}.weight`), p(`${n}.bias`));
  const norm = (x: Tensor, n: string): Tensor => layerNorm(x, p(`${n}.weight`), p(`${n}.bias`), cfg.layerNormEps);
  const cap = opts.capture ?? {};
  const drop = (t: Tensor, salt: number): Tensor =>
    opts.dropoutSeed === undefined ? t : dropout(t, cfg.hiddenDropoutProb, opts.dropoutSeed * 7919 + salt);

  let q = reshape(lin(x, names.query), [B, T, H, D]);
  let k = reshape(lin(x, names.key), [B, T, H, D]);
  if (opts.rotary) {
    q = rotateInterleavedPairs(q, opts.rotary);
    k = rotateInterleavedPairs(k, opts.rotary);
  }
  const v = reshape(lin(x, names.value), [B, T, H, D]);
  const rel = cfg.positionEmbeddingType ?? 'absolute';
  const att = rel === 'absolute'
    ? attention(q, k, v, { keyMask: opts.keyMask, returnProbs: cap.probs, returnScores: cap.scores })
    : relativeAttention(q, k, v, p(DISTANCE_EMBEDDING), rel, { keyMask: opts.keyMask, returnProbs: cap.probs, returnScores: cap.scores });
  const context = reshape(att.out, [B, T, C]); // (B, T, C)
  const sa = lin(context, names.attnOut);
  const a = norm(add(names.attnOutDropout === false ? sa : drop(sa, 1), x), names.attnNorm);
  const inter = activation(cfg.hiddenAct)(lin(a, names.ffnIn)); // (B, T, F)
  const o = lin(inter, names.ffnOut);
  const y = norm(add(drop(o, 2), a), names.outNorm);
  return {
    y,
    cap: {
      probs: att.probs, scores: att.scores,
      context: cap.context ? context : null, saOut: cap.saOut ? sa : null, attnOut: cap.attnOut ? a : null,
    },
  };
}

export interface EncoderStackOptions {
  /** (B, T) int32, 1 = real token, 0 = padding. */
  attentionMask?: Tensor | null;
  /** Rotary positions for every layer (EncoderBlockOptions.rotary). */
  rotary?: RotaryTables | null;
  weight?: WeightFn;
  capture?: EncoderCapture;
  dropoutSeed?: number;
}

/** A family's embeddings + stack: what its encode function takes. */
export interface EncoderForwardOptions extends EncoderStackOptions {
  tokenTypeIds?: Tensor | null;
}

/** L layers over the embedding output x (B, T, C), collecting the requested taps. */
export function encoderStack(
  params: Params, layerPrefix: (l: number) => string, L: number, names: EncoderLayerNames, cfg: EncoderLayerConfig,
  x: Tensor, opts: EncoderStackOptions,
): EncoderOutput {
  const cap = opts.capture ?? {};
  const out: EncoderOutput = { last: x, hidden: [], probs: [], scores: [], context: [], saOut: [], attnOut: [] };
  if (cap.hidden) out.hidden.push(x);
  for (let l = 0; l < L; l++) {
    const r = layer((xl) => encoderLayer(params, layerPrefix(l), names, cfg, xl, {
      keyMask: opts.attentionMask, rotary: opts.rotary, weight: opts.weight, capture: cap,
      dropoutSeed: opts.dropoutSeed === undefined ? undefined : opts.dropoutSeed + 1000 * (l + 1),
    }), x);
    if (l > 0 && !cap.hidden) consumed(x, r.y); // (layer 0's input is the caller's)
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

/** The encoder output with `last` cut to the flattened positions `rows` ((N, C)), for a
 *  masked-LM head on the masked tokens only (LmLogitsOptions.rows); unchanged without rows. */
export function atRows(enc: EncoderOutput, rows?: Int32Array): EncoderOutput {
  if (!rows) return enc;
  const [B, T, C] = enc.last.shape;
  return { ...enc, last: gather(reshape(enc.last, [B * T, C]), intTensor(rows), 0) };
}

/** Embedding dropout (seeded as the stack seeds its layers). */
export function embeddingDropout(x: Tensor, p: number, seed: number | undefined): Tensor {
  return seed === undefined ? x : dropout(x, p, seed * 7919);
}

/** Checks ids (B, T) int32 and T against the positions the family can embed. */
export function checkIds(family: string, ids: Tensor, maxPositions: number): [number, number] {
  if (ids.dtype !== 'i32' || ids.ndim !== 2) throw new RangeError(`${family}: ids must be int32 (B, T), got ${ids.dtype} [${ids.shape}]`);
  const [B, T] = ids.shape;
  if (T > maxPositions) throw new RangeError(`${family}: sequence length ${T} exceeds the model's ${maxPositions} positions`);
  return [B, T];
}

// ---- config.json: the classifier's labels and the encoders' shared meta ----------------------------

export type EncoderHead = 'mlm' | 'classifier' | 'base';
export const PROBLEM_TYPES = ['regression', 'single_label_classification', 'multi_label_classification'] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];

/** id2label / label2id / num_labels / problem_type, as PretrainedConfig reads them (num_labels
 *  is implied by id2label). */
export function parseLabels(r: ConfigReader): { labels: string[] | null; numLabels: number; problemType: ProblemType | null } {
  let labels: string[] | null = null;
  const id2 = r.j.id2label;
  if (id2 !== undefined && id2 !== null) {
    if (!isObj(id2)) r.fail(`"id2label" must be an object {"0": "name", ...}`);
    const n = Object.keys(id2).length;
    labels = [];
    for (let i = 0; i < n; i++) {
      const v = id2[String(i)];
      if (typeof v !== 'string') r.fail(`"id2label" must map every index 0..${n - 1} to a name; "${i}" is ${JSON.stringify(v)}`);
      labels.push(v);
    }
    const l2i = r.j.label2id;
    if (isObj(l2i)) {
      labels.forEach((name, i) => {
        if (l2i[name] !== i) r.fail(`"label2id" disagrees with "id2label": "${name}" → ${JSON.stringify(l2i[name])}, expected ${i}`);
      });
    }
  }
  const numLabels = labels?.length ?? r.int('num_labels', 2);
  if (r.has('num_labels') && r.int('num_labels') !== numLabels) r.fail(`"num_labels" ${r.j.num_labels} ≠ the ${numLabels} entries of "id2label"; make them agree (or remove num_labels)`);
  const pt = r.j.problem_type ?? null;
  if (pt !== null && !PROBLEM_TYPES.includes(pt as never)) r.fail(`"problem_type" ${JSON.stringify(pt)} is not one of ${PROBLEM_TYPES.join(', ')}`);
  // kdqat's classifier is single-label (a softmax over the labels: accuracy, cross-entropy, KD
  // on the softmax); a regression or multi-label head would be scored and trained wrongly.
  if (pt !== null && pt !== 'single_label_classification') {
    r.fail(`"problem_type" ${JSON.stringify(pt)} is not supported: kdqat's classifiers are single-label (softmax over the labels); ` +
      'set it to "single_label_classification" (or remove it) only if the head was trained that way');
  }
  const l2i = r.j.label2id;
  if (l2i !== undefined && l2i !== null && !isObj(l2i)) r.fail(`"label2id" must be an object {"name": index, ...}, got ${JSON.stringify(l2i)}; fix or remove it`);
  return { labels, numLabels, problemType: pt as ProblemType | null };
}

/** id2label / label2id / problem_type for config.json (a classifier's). */
export function labelsJson(family: string, labels: string[] | null, numLabels: number, problemType: ProblemType | null): Obj {
  const names = labels ?? Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
  if (names.length !== numLabels) throw new Error(`${family} config: ${names.length} labels given but numLabels is ${numLabels}`);
  return {
    id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    label2id: Object.fromEntries(names.map((n, i) => [n, i])),
    ...(problemType ? { problem_type: problemType } : {}),
  };
}

/** The config.json keys of BERT's numbers that the BERT-style families (BERT, RoBERTa, RoFormer)
 *  write under the same names (save_pretrained sorts them; the family adds its own). */
export function bertStyleJson(k: {
  attentionProbsDropoutProb: number; hiddenAct: string; hiddenDropoutProb: number; hiddenSize: number; initializerRange: number;
  intermediateSize: number; layerNormEps: number; numAttentionHeads: number; numHiddenLayers: number; typeVocabSize: number; vocabSize: number;
}): Obj {
  return {
    attention_probs_dropout_prob: k.attentionProbsDropoutProb, hidden_act: k.hiddenAct, hidden_dropout_prob: k.hiddenDropoutProb,
    hidden_size: k.hiddenSize, initializer_range: k.initializerRange, intermediate_size: k.intermediateSize, layer_norm_eps: k.layerNormEps,
    num_attention_heads: k.numAttentionHeads, num_hidden_layers: k.numHiddenLayers, type_vocab_size: k.typeVocabSize, use_cache: true,
    vocab_size: k.vocabSize,
  };
}

/** Keys some checkpoints carry that change nothing kdqat computes; kept verbatim on save, so a
 *  loaded config.json is written back with them. */
export const INERT_KEYS = ['transformers_version', 'output_past', 'gradient_checkpointing'] as const;
export function inertKeys(r: ConfigReader): Obj {
  return Object.fromEntries(INERT_KEYS.filter((k) => r.j[k] !== undefined).map((k) => [k, r.j[k]]));
}

/** What every encoder record's meta has (BertMeta, RobertaMeta, DistilBertMeta extend it). */
export interface EncoderMeta {
  head: EncoderHead;
  /** Class names by index (classifier); null = HF's default LABEL_0.. names. */
  labels: string[] | null;
  problemType: ProblemType | null;
  torchDtype: string;
  /** The padding id, where it is meta (it is config where it moves positions: RoBERTa). */
  padTokenId?: number | null;
}

/** A model field of the encoder records: which heads it carries. */
export interface EncoderFields { heads: { mlm: boolean; classifier: boolean } }
export type EncoderModel<C> = { arch: string; config: C; params: Params } & EncoderFields;

export const headsOfHead = (h: EncoderHead): Heads => ({ lm: false, mlm: h === 'mlm', classifier: h === 'classifier' });

/** The head bookkeeping every encoder record shares (architecture.ts headsOf … describe). */
export function encoderHeads<M extends { head: EncoderHead; labels: string[] | null }>(label: string) {
  return {
    headsOf: (m: M): Heads => headsOfHead(m.head),
    modelFields: (h: Heads): EncoderFields => ({ heads: { mlm: h.mlm, classifier: h.classifier } }),
    modelHeads: (m: EncoderFields): Heads => ({ lm: false, mlm: m.heads.mlm, classifier: m.heads.classifier }),
    metaForHeads(h: Heads): Partial<M> {
      if (h.mlm && h.classifier) throw new Error(`saveStudent: a ${label} model with both an MLM and a classifier head has no Hugging Face class; drop one head`);
      return { head: h.classifier ? 'classifier' : h.mlm ? 'mlm' : 'base' } as Partial<M>;
    },
    labels: (m: M): string[] | null => (m.head === 'classifier' ? m.labels : null),
    describe: (h: Heads): string => `a ${label} encoder (${h.mlm ? 'masked-LM head' : h.classifier ? 'classifier head' : 'no head'}`,
  };
}

/** "architectures" absent: the head from the stored tensors (a classifier's weight gives the
 *  label count as its rows). */
export function headFromTensors(shapes: ReadonlyMap<string, readonly number[]>, classifierWeight: string, mlmPrefix: string): { head: EncoderHead; numLabels: number } {
  const cls = shapes.get(classifierWeight);
  const head: EncoderHead = cls ? 'classifier' : [...shapes.keys()].some((n) => n.startsWith(mlmPrefix)) ? 'mlm' : 'base';
  return { head, numLabels: cls ? cls[0] : 0 };
}

// ---- parameter tables ----------------------------------------------------------------------------

export type ParamSpec = Map<string, { shape: number[]; init: Init }>;

/** Adds to `spec` a Linear (weight (out, in), bias (out)) and a LayerNorm (weight, bias (C)). */
export function specWriter(spec: ParamSpec, std: number): {
  lin(name: string, out: number, inp: number): void; ln(name: string, C: number): void; set(name: string, shape: number[]): void;
} {
  const w: Init = { kind: 'normal', std };
  return {
    lin(name, out, inp) {
      spec.set(`${name}.weight`, { shape: [out, inp], init: w });
      spec.set(`${name}.bias`, { shape: [out], init: { kind: 'zeros' } });
    },
    ln(name, C) {
      spec.set(`${name}.weight`, { shape: [C], init: { kind: 'ones' } });
      spec.set(`${name}.bias`, { shape: [C], init: { kind: 'zeros' } });
    },
    set(name, shape) { spec.set(name, { shape, init: w }); },
  };
}

/** The parameters of L encoder layers: Linears C→C ×4, C→F, F→C and two LayerNorms each. */
export function layerSpec(spec: ParamSpec, std: number, layerPrefix: (l: number) => string, L: number, names: EncoderLayerNames, C: number, F: number): void {
  const s = specWriter(spec, std);
  for (let l = 0; l < L; l++) {
    const p = layerPrefix(l);
    for (const n of [names.query, names.key, names.value, names.attnOut]) s.lin(p + n, C, C);
    s.ln(p + names.attnNorm, C);
    s.lin(p + names.ffnIn, F, C);
    s.lin(p + names.ffnOut, C, F);
    s.ln(p + names.outNorm, C);
  }
}
