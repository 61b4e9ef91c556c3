// Hugging Face config.json ⇄ kdqat's LlamaConfig / BertConfig.
// Keys and defaults follow transformers' LlamaConfig (models/llama/configuration_llama.py) and
// BertConfig (models/bert/configuration_bert.py); num_labels is implied by id2label, as in
// PretrainedConfig. Writing mirrors PretrainedConfig.save_pretrained: a JSON object with sorted
// keys, 2-space indent and a final newline; "transformers_version" is omitted (we did not run
// transformers), "architectures" is always set.
import * as fs from 'node:fs';
import type { LlamaConfig } from '../models/llama.js';
import type { BertConfig } from '../models/bert.js';

export type BertHead = 'mlm' | 'classifier' | 'base';

export interface LlamaMeta {
  bosTokenId: number | null;
  /** HF allows a list (several end tokens); the first is the one GGUF gets. */
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  torchDtype: string;
}

export interface BertMeta {
  head: BertHead;
  /** Class names by index (classifier); null = HF's default LABEL_0.. names. */
  labels: string[] | null;
  problemType: 'regression' | 'single_label_classification' | 'multi_label_classification' | null;
  padTokenId: number | null;
  classifierDropout: number | null;
  torchDtype: string;
  /** config.json names no architecture: the loader picks the head from the tensors. */
  inferHead?: boolean;
}

export type HfModelConfig =
  | { arch: 'llama'; config: LlamaConfig; meta: LlamaMeta }
  | { arch: 'bert'; config: BertConfig; meta: BertMeta };

export const SUPPORTED_MODEL_TYPES = ['llama', 'bert'] as const;
const LLAMA_ARCHS = ['LlamaForCausalLM'];
const BERT_ARCHS: Record<string, BertHead> = {
  BertForMaskedLM: 'mlm', BertForPreTraining: 'mlm', BertForSequenceClassification: 'classifier', BertModel: 'base',
};
const PROBLEM_TYPES = ['regression', 'single_label_classification', 'multi_label_classification'] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed accessors over one config.json that name the file and the key in every error. */
class Reader {
  constructor(readonly file: string, readonly j: Obj) {}
  fail(msg: string): never { throw new Error(`${this.file}: ${msg}`); }
  has(k: string): boolean { return this.j[k] !== undefined && this.j[k] !== null; }
  int(k: string, dflt?: number, min = 1): number {
    const v = this.j[k];
    if (v === undefined || (v === null && dflt !== undefined)) {
      if (dflt === undefined) this.fail(`missing required key "${k}" (an integer); add it to config.json`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`"${k}" must be an integer, got ${JSON.stringify(v)}`);
    if ((v as number) < min) this.fail(`"${k}" must be ≥ ${min}, got ${v}`);
    return v as number;
  }
  num(k: string, dflt: number, lo = 0): number {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`"${k}" must be a number, got ${JSON.stringify(v)}`);
    if ((v as number) < lo) this.fail(`"${k}" must be ≥ ${lo}, got ${v}`);
    return v as number;
  }
  bool(k: string, dflt: boolean): boolean {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(`"${k}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }
  str(k: string, dflt: string): string {
    const v = this.j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string') this.fail(`"${k}" must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }
  /** A token id: null/absent → null (an integer ≥ 0 otherwise). */
  tokenId(k: string): number | null {
    return this.j[k] === undefined || this.j[k] === null ? null : this.int(k, undefined, 0);
  }
  architectures(known: string[]): string | null {
    const a = this.j.architectures;
    if (a === undefined || a === null) return null;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) this.fail(`"architectures" must be a list of class names`);
    const hit = (a as string[]).find((x) => known.includes(x));
    if (!hit) this.fail(`architectures ${JSON.stringify(a)} are not supported for model_type "${this.j.model_type}"; supported: ${known.join(', ')}`);
    return hit;
  }
}

/** Validates a parsed config.json; `file` names it in errors. */
export function parseHfConfig(json: unknown, file = 'config.json'): HfModelConfig {
  if (!isObj(json)) throw new Error(`${file}: not a JSON object`);
  const r = new Reader(file, json);
  const mt = json.model_type;
  if (mt === undefined) r.fail(`missing required key "model_type" (supported: ${SUPPORTED_MODEL_TYPES.map((s) => `"${s}"`).join(', ')})`);
  if (mt === 'llama') return parseLlama(r);
  if (mt === 'bert') return parseBert(r);
  return r.fail(`unknown model_type ${JSON.stringify(mt)}; kdqat supports ${SUPPORTED_MODEL_TYPES.map((s) => `"${s}"`).join(', ')}`);
}

export function readHfConfig(file: string): HfModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${file}: not found; a model directory needs a config.json`);
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseHfConfig(json, file);
}

function heads(r: Reader, hidden: number, h: number): void {
  if (hidden % h !== 0) r.fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${h}; fix one of them`);
}

function parseLlama(r: Reader): HfModelConfig {
  r.architectures(LLAMA_ARCHS);
  const C = r.int('hidden_size'), H = r.int('num_attention_heads');
  heads(r, C, H);
  const Hkv = r.int('num_key_value_heads', H);
  if (H % Hkv !== 0) r.fail(`num_attention_heads ${H} is not divisible by num_key_value_heads ${Hkv}; fix one of them`);
  if ((C / H) % 2 !== 0) r.fail(`head dimension hidden_size/num_attention_heads = ${C / H} must be even for RoPE`);
  if (r.has('head_dim') && r.int('head_dim') !== C / H) r.fail(`head_dim ${r.j.head_dim} ≠ hidden_size/num_attention_heads = ${C / H}; kdqat supports only head_dim = hidden_size/num_attention_heads`);
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu') r.fail(`hidden_act "${act}" is not supported for llama; kdqat supports "silu"`);
  const rs = r.j.rope_scaling;
  // {"rope_type": "default"} is how newer transformers spell "no scaling".
  if (rs !== undefined && rs !== null && !(isObj(rs) && (rs.rope_type ?? rs.type) === 'default')) {
    r.fail(`rope_scaling ${JSON.stringify(rs)} is not supported; kdqat supports only rope_scaling null (plain RoPE)`);
  }
  for (const k of ['attention_bias', 'mlp_bias']) if (r.bool(k, false)) r.fail(`"${k}": true is not supported; kdqat's LLaMA has no biases`);
  const eos = r.j.eos_token_id;
  let eosTokenId: number | number[] | null;
  if (Array.isArray(eos)) {
    if (!eos.every((x) => Number.isSafeInteger(x) && x >= 0)) r.fail(`"eos_token_id" must be a token id or a list of ids`);
    eosTokenId = eos as number[];
  } else eosTokenId = r.tokenId('eos_token_id');
  const config: LlamaConfig = {
    vocabSize: r.int('vocab_size'),
    hiddenSize: C,
    intermediateSize: r.int('intermediate_size'),
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads: H,
    numKeyValueHeads: Hkv,
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: r.num('rope_theta', 10000, Number.MIN_VALUE),
    maxPositionEmbeddings: r.int('max_position_embeddings', 2048),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    initializerRange: r.num('initializer_range', 0.02),
  };
  const meta: LlamaMeta = {
    bosTokenId: r.tokenId('bos_token_id'), eosTokenId, padTokenId: r.tokenId('pad_token_id'),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')),
  };
  return { arch: 'llama', config, meta };
}

function parseBert(r: Reader): HfModelConfig {
  const archName = r.architectures(Object.keys(BERT_ARCHS));
  const C = r.int('hidden_size'), H = r.int('num_attention_heads');
  heads(r, C, H);
  const act = r.str('hidden_act', 'gelu');
  if (act !== 'gelu' && act !== 'gelu_new') r.fail(`hidden_act "${act}" is not supported for bert; kdqat supports "gelu", "gelu_new"`);
  const pe = r.str('position_embedding_type', 'absolute');
  if (pe !== 'absolute') r.fail(`position_embedding_type "${pe}" is not supported; kdqat supports "absolute"`);
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
  if (r.has('num_labels') && r.int('num_labels') !== numLabels) r.fail(`"num_labels" ${r.j.num_labels} ≠ the ${numLabels} entries of "id2label"`);
  const pt = r.j.problem_type ?? null;
  if (pt !== null && !PROBLEM_TYPES.includes(pt as never)) r.fail(`"problem_type" ${JSON.stringify(pt)} is not one of ${PROBLEM_TYPES.join(', ')}`);
  const head: BertHead = archName ? BERT_ARCHS[archName] : 'base';
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
  };
  const cd = r.j.classifier_dropout;
  const meta: BertMeta = {
    head, labels: head === 'classifier' ? labels : null, problemType: pt as BertMeta['problemType'],
    padTokenId: r.j.pad_token_id === undefined ? 0 : r.tokenId('pad_token_id'),
    classifierDropout: cd === undefined || cd === null ? null : r.num('classifier_dropout', 0),
    torchDtype: r.str('torch_dtype', r.str('dtype', 'float32')),
    ...(archName ? {} : { inferHead: true }),
  };
  return { arch: 'bert', config, meta };
}

/** Default metadata for a config built in kdqat (no config.json to take it from). */
export function defaultMeta(arch: 'llama'): LlamaMeta;
export function defaultMeta(arch: 'bert', head?: BertHead): BertMeta;
export function defaultMeta(arch: 'llama' | 'bert', head: BertHead = 'base'): LlamaMeta | BertMeta {
  return arch === 'llama'
    ? { bosTokenId: null, eosTokenId: null, padTokenId: null, torchDtype: 'float32' }
    : { head, labels: null, problemType: null, padTokenId: 0, classifierDropout: null, torchDtype: 'float32' };
}

/** The config.json object HF's save_pretrained would write (keys sorted when formatted). */
export function hfConfigJson(c: HfModelConfig): Obj {
  if (c.arch === 'llama') {
    const k = c.config, m = c.meta;
    return {
      architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0,
      bos_token_id: m.bosTokenId, eos_token_id: m.eosTokenId, head_dim: k.hiddenSize / k.numAttentionHeads,
      hidden_act: 'silu', hidden_size: k.hiddenSize, initializer_range: k.initializerRange,
      intermediate_size: k.intermediateSize, max_position_embeddings: k.maxPositionEmbeddings, mlp_bias: false,
      model_type: 'llama', num_attention_heads: k.numAttentionHeads, num_hidden_layers: k.numHiddenLayers,
      num_key_value_heads: k.numKeyValueHeads, pretraining_tp: 1, rms_norm_eps: k.rmsNormEps, rope_scaling: null,
      rope_theta: k.ropeTheta, tie_word_embeddings: k.tieWordEmbeddings, torch_dtype: m.torchDtype, use_cache: true,
      vocab_size: k.vocabSize,
      ...(m.padTokenId === null ? {} : { pad_token_id: m.padTokenId }),
    };
  }
  const k = c.config, m = c.meta;
  const arch = { mlm: 'BertForMaskedLM', classifier: 'BertForSequenceClassification', base: 'BertModel' }[m.head];
  const out: Obj = {
    architectures: [arch], attention_probs_dropout_prob: k.attentionProbsDropoutProb, classifier_dropout: m.classifierDropout,
    hidden_act: k.hiddenAct, hidden_dropout_prob: k.hiddenDropoutProb, hidden_size: k.hiddenSize,
    initializer_range: k.initializerRange, intermediate_size: k.intermediateSize, layer_norm_eps: k.layerNormEps,
    max_position_embeddings: k.maxPositionEmbeddings, model_type: 'bert', num_attention_heads: k.numAttentionHeads,
    num_hidden_layers: k.numHiddenLayers, pad_token_id: m.padTokenId, position_embedding_type: 'absolute',
    torch_dtype: m.torchDtype, type_vocab_size: k.typeVocabSize, use_cache: true, vocab_size: k.vocabSize,
  };
  if (m.head === 'classifier') {
    const names = m.labels ?? Array.from({ length: k.numLabels }, (_, i) => `LABEL_${i}`);
    if (names.length !== k.numLabels) throw new Error(`bert config: ${names.length} labels given but numLabels is ${k.numLabels}`);
    out.id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
    out.label2id = Object.fromEntries(names.map((n, i) => [n, i]));
    if (m.problemType) out.problem_type = m.problemType;
  }
  return out;
}

/** JSON text as transformers writes it: json.dumps(d, indent=2, sort_keys=True) + "\n". */
export function formatHfJson(d: Obj): string {
  const sort = (v: unknown): unknown => (isObj(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]))
    : Array.isArray(v) ? v.map(sort) : v);
  // Python writes floats with a decimal point (0.0, 10000.0); JSON readers do not care.
  return JSON.stringify(sort(d), null, 2) + '\n';
}
