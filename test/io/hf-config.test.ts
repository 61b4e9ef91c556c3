// config.json parsing, validation and writing (LlamaForCausalLM, BertFor*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHfJson, hfConfigJson, parseHfConfig, type HfModelConfig } from '../../src/io/hf-config.js';

/** As transformers 4.4x save_pretrained writes a LlamaForCausalLM config (keys it adds included). */
export const HF_LLAMA = {
  _name_or_path: 'tiny', architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0,
  bos_token_id: 1, eos_token_id: 2, head_dim: 16, hidden_act: 'silu', hidden_size: 64, initializer_range: 0.02,
  intermediate_size: 172, max_position_embeddings: 2048, mlp_bias: false, model_type: 'llama',
  num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16',
  transformers_version: '4.44.2', use_cache: true, vocab_size: 320,
};

/** bert-base-uncased's config.json shape, with a classifier's labels. */
export const HF_BERT = {
  architectures: ['BertForSequenceClassification'], attention_probs_dropout_prob: 0.1, classifier_dropout: null,
  gradient_checkpointing: false, hidden_act: 'gelu', hidden_dropout_prob: 0.1, hidden_size: 48,
  id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' }, initializer_range: 0.02, intermediate_size: 96,
  label2id: { negative: 0, neutral: 1, positive: 2 }, layer_norm_eps: 1e-12, max_position_embeddings: 64,
  model_type: 'bert', num_attention_heads: 4, num_hidden_layers: 2, pad_token_id: 0,
  position_embedding_type: 'absolute', problem_type: 'single_label_classification', torch_dtype: 'float32',
  transformers_version: '4.44.2', type_vocab_size: 2, use_cache: true, vocab_size: 120,
};

test('llama: HF config.json → LlamaConfig and back', () => {
  const c = parseHfConfig(HF_LLAMA, 'x/config.json');
  assert.equal(c.arch, 'llama');
  assert.deepEqual(c.config, {
    vocabSize: 320, hiddenSize: 64, intermediateSize: 172, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 2048, tieWordEmbeddings: false, initializerRange: 0.02,
  });
  assert.deepEqual(c.meta, {
    bosTokenId: 1, eosTokenId: 2, padTokenId: null, torchDtype: 'bfloat16',
    extra: { _name_or_path: 'tiny', transformers_version: '4.44.2' }, // kept verbatim
  });
  const out = hfConfigJson(c);
  // Every key save_pretrained writes, with the same values (provenance keys kept verbatim).
  const expected = HF_LLAMA;
  assert.deepEqual(out, expected);
  assert.deepEqual(parseHfConfig(JSON.parse(formatHfJson(out))), c);
});

test('llama defaults: num_key_value_heads = heads, rope_theta 10000, rope_type "default" = none, eos list', () => {
  const { num_key_value_heads: _a, rope_theta: _b, head_dim: _c, ...j } = HF_LLAMA;
  const c = parseHfConfig({ ...j, rope_scaling: { rope_type: 'default' }, eos_token_id: [2, 5] });
  assert.equal(c.arch, 'llama');
  if (c.arch !== 'llama') return;
  assert.equal(c.config.numKeyValueHeads, 4);
  assert.equal(c.config.ropeTheta, 10000);
  assert.deepEqual(c.meta.eosTokenId, [2, 5]);
});

test('formatHfJson: sorted keys, 2-space indent, final newline (json.dumps(sort_keys=True, indent=2))', () => {
  assert.equal(formatHfJson({ b: 1, a: { d: [1, 2], c: null } }), '{\n  "a": {\n    "c": null,\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n');
});

test('bert: classifier, MLM, BertModel; labels and num_labels implied by id2label', () => {
  const c = parseHfConfig(HF_BERT);
  assert.equal(c.arch, 'bert');
  if (c.arch !== 'bert') return;
  assert.deepEqual(c.config, {
    vocabSize: 120, hiddenSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 96,
    maxPositionEmbeddings: 64, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1,
    attentionProbsDropoutProb: 0.1, initializerRange: 0.02, numLabels: 3,
  });
  const rel = parseHfConfig({ ...HF_BERT, position_embedding_type: 'relative_key_query' });
  assert.equal(rel.arch === 'bert' && rel.config.positionEmbeddingType, 'relative_key_query');
  assert.deepEqual(c.meta, {
    head: 'classifier', labels: ['negative', 'neutral', 'positive'], problemType: 'single_label_classification',
    padTokenId: 0, classifierDropout: null, torchDtype: 'float32',
    extra: { gradient_checkpointing: false, transformers_version: '4.44.2' }, // kept verbatim (encoder.ts INERT_KEYS)
  });
  assert.deepEqual(hfConfigJson(c), { ...HF_BERT, id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' } });
  const { id2label: _i, label2id: _l, problem_type: _p, ...plain } = HF_BERT;
  const mlm = parseHfConfig({ ...plain, architectures: ['BertForMaskedLM'] }) as Extract<HfModelConfig, { arch: 'bert' }>;
  assert.equal(mlm.meta.head, 'mlm');
  assert.equal(mlm.config.numLabels, 0);
  assert.equal(hfConfigJson(mlm).id2label, undefined);
  const cls2 = parseHfConfig(plain) as Extract<HfModelConfig, { arch: 'bert' }>;
  assert.equal(cls2.config.numLabels, 2); // PretrainedConfig's default two labels
  assert.deepEqual(hfConfigJson(cls2).label2id, { LABEL_0: 0, LABEL_1: 1 });
  const base = parseHfConfig({ ...plain, architectures: undefined }) as Extract<HfModelConfig, { arch: 'bert' }>;
  assert.deepEqual([base.meta.head, base.meta.inferHead], ['base', true]);
  const minimal = parseHfConfig({ model_type: 'bert', vocab_size: 30, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 });
  assert.equal(minimal.arch === 'bert' && minimal.config.layerNormEps, 1e-12);
});

test('errors name the file, the key and the fix', () => {
  const f = 'm/config.json';
  const bad = (j: object, re: RegExp): void => assert.throws(() => parseHfConfig(j, f), (e: Error) => e.message.startsWith(f) && re.test(e.message));
  const { hidden_size: _h, ...noHidden } = HF_LLAMA;
  bad(noHidden, /missing required key "hidden_size"/);
  const { model_type: _m, ...noType } = HF_LLAMA;
  bad(noType, /missing required key "model_type" \(supported: "llama", "bert", /);
  bad({ ...HF_LLAMA, model_type: 'gpt_neox' }, /unknown model_type "gpt_neox"; kdqat supports "llama", "bert", /);
  bad({ ...HF_LLAMA, hidden_size: '64' }, /"hidden_size" must be an integer, got "64"/);
  bad({ ...HF_LLAMA, hidden_size: 66, head_dim: undefined }, /hidden_size 66 is not divisible by num_attention_heads 4/);
  bad({ ...HF_LLAMA, num_key_value_heads: 3 }, /num_attention_heads 4 is not divisible by num_key_value_heads 3/);
  bad({ ...HF_LLAMA, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported for llama; kdqat supports "silu"/);
  bad({ ...HF_LLAMA, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling\.low_freq_factor is required for rope_type "llama3"/);
  bad({ ...HF_LLAMA, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /rope_scaling\.rope_type "dynamic" is not supported for model_type "llama"; kdqat supports "default", "linear", "llama3", "yarn"/);
  bad({ ...HF_LLAMA, attention_bias: true }, /"attention_bias": true is not supported/);
  bad({ ...HF_LLAMA, head_dim: 31 }, /"head_dim": 31 must be even for RoPE/);
  bad({ ...HF_LLAMA, architectures: ['LlamaForSequenceClassification'] }, /not supported for model_type "llama"; supported: LlamaForCausalLM/);
  bad({ ...HF_LLAMA, tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/);
  bad({ ...HF_LLAMA, num_hidden_layers: 0 }, /"num_hidden_layers" must be ≥ 1/);
  bad({ ...HF_BERT, hidden_act: 'relu' }, /hidden_act "relu" is not supported for bert; kdqat supports "gelu", "gelu_new"/);
  bad({ ...HF_BERT, position_embedding_type: 'rotary' }, /position_embedding_type "rotary" is not supported; kdqat supports "absolute", "relative_key", "relative_key_query"/);
  bad({ ...HF_BERT, label2id: { negative: 1, neutral: 0, positive: 2 } }, /"label2id" disagrees with "id2label"/);
  bad({ ...HF_BERT, num_labels: 5 }, /"num_labels" 5 ≠ the 3 entries of "id2label"/);
  bad({ ...HF_BERT, problem_type: 'ranking' }, /"problem_type" "ranking" is not one of/);
  bad({ ...HF_BERT, hidden_size: 50 }, /hidden_size 50 is not divisible by num_attention_heads 4/);
  assert.throws(() => parseHfConfig([1], f), /m\/config\.json: not a JSON object/);
});
