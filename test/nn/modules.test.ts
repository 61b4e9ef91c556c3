import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesPattern, selectByPatterns } from '../../src/nn/modules.js';
import { moduleOf } from '../../src/models/registry.js';
import { ARCHITECTURES } from '../../src/models/registry.js';
import type { Architecture } from '../../src/models/architecture.js';
const FREEZE_PRESETS = { ov: { llama: ARCHITECTURES.llama.modules.freezePresets.ov, bert: ARCHITECTURES.bert.modules.freezePresets.ov } };
import { llamaParamSpec } from '../../src/models/llama.js';
import { bertParamSpec } from '../../src/models/bert.js';

const llamaNames = [...llamaParamSpec({
  vocabSize: 32, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, numKeyValueHeads: 1,
  rmsNormEps: 1e-5, ropeTheta: 1e4, maxPositionEmbeddings: 8, tieWordEmbeddings: false, initializerRange: 0.02,
}).keys()];
const bertNames = [...bertParamSpec({
  vocabSize: 32, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 8,
  typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0, attentionProbsDropoutProb: 0,
  initializerRange: 0.02, numLabels: 2,
}, { mlm: true, classifier: true }).keys()];

test('moduleOf names layer and kind for both architectures', () => {
  assert.deepEqual(moduleOf('model.layers.3.self_attn.v_proj.weight'), { layer: 3, kind: 'v' });
  assert.deepEqual(moduleOf('model.layers.0.mlp.down_proj.weight'), { layer: 0, kind: 'down' });
  assert.deepEqual(moduleOf('model.embed_tokens.weight'), { layer: null, kind: 'embed' });
  assert.deepEqual(moduleOf('bert.encoder.layer.1.attention.output.dense.bias'), { layer: 1, kind: 'attn-out' });
  assert.deepEqual(moduleOf('bert.encoder.layer.1.output.dense.weight'), { layer: 1, kind: 'ffn-out' });
  assert.deepEqual(moduleOf('bert.encoder.layer.1.attention.output.LayerNorm.weight'), { layer: 1, kind: 'norm' });
  assert.deepEqual(moduleOf('bert.encoder.layer.0.intermediate.dense.weight'), { layer: 0, kind: 'ffn-in' });
  assert.equal(moduleOf('classifier.weight').kind, 'classifier');
});

test('moduleOf: every family\'s record gives each of its parameters a kind (its rules, through the registry)', () => {
  const SIZES = { vocab: 50, hidden: 16, layers: 2, heads: 4, kvHeads: 4, intermediate: 24, seq: 16, dropout: 0.1 };
  const HEADS = {
    mlm: { lm: false, mlm: true, classifier: false }, classifier: { lm: false, mlm: false, classifier: true },
    lm: { lm: true, mlm: false, classifier: false },
  };
  for (const [name, rec] of Object.entries(ARCHITECTURES) as [string, Architecture][]) {
    for (const h of (['mlm', 'classifier', 'lm'] as const).filter((k) => rec.canCarry[k])) {
      const config = { ...rec.pretrain.config(SIZES), numLabels: 2 };
      const names = [...rec.paramSpec(config, HEADS[h]).keys()];
      const kinds = names.map((n) => moduleOf(n).kind);
      assert.deepEqual(names.filter((_, i) => kinds[i] === 'other'), [], `${name} (${h}): parameters without a kind`);
      // Each Linear kind appears once (weight) per layer.
      for (const k of rec.modules.kinds) {
        const w = names.filter((n, i) => kinds[i] === k && n.endsWith('.weight'));
        assert.deepEqual(w.map((n) => moduleOf(n).layer), [0, 1], `${name}: ${k} → ${w.join(', ')}`);
      }
    }
  }
  assert.deepEqual(moduleOf('distilbert.transformer.layer.1.attention.v_lin.weight'), { layer: 1, kind: 'value' });
  assert.deepEqual(moduleOf('distilbert.transformer.layer.0.ffn.lin2.bias'), { layer: 0, kind: 'ffn-out' });
  assert.deepEqual(moduleOf('distilbert.transformer.layer.0.sa_layer_norm.weight'), { layer: 0, kind: 'norm' });
  assert.deepEqual(moduleOf('roformer.encoder.layer.1.attention.self.value.weight'), { layer: 1, kind: 'value' });
  assert.deepEqual(moduleOf('roformer.encoder.embed_positions.weight'), { layer: null, kind: 'embed' });
  assert.deepEqual(moduleOf('roberta.encoder.layer.1.attention.output.dense.weight'), { layer: 1, kind: 'attn-out' });
  assert.equal(moduleOf('lm_head.layer_norm.weight').kind, 'head');
  assert.equal(moduleOf('pre_classifier.weight').kind, 'classifier');
  assert.equal(moduleOf('classifier.out_proj.weight').kind, 'classifier');
});

test('patterns: segment runs, globs, regexes', () => {
  assert.ok(matchesPattern('model.layers.0.self_attn.v_proj.weight', 'v_proj'));
  assert.ok(!matchesPattern('model.layers.0.self_attn.v_proj.weight', 'proj'));
  assert.ok(matchesPattern('model.layers.0.mlp.up_proj.weight', 'layers.0.mlp'));
  assert.ok(!matchesPattern('model.layers.10.mlp.up_proj.weight', 'layers.1'));
  assert.ok(matchesPattern('model.layers.10.mlp.up_proj.weight', 'model.layers.1*.mlp.*'));
  assert.ok(!matchesPattern('model.layers.10.mlp.up_proj.weight', 'mlp.*'));
  assert.ok(matchesPattern('model.layers.2.self_attn.k_proj.weight', 're:layers\\.[0-2]\\..*k_proj'));
});

test('ov preset selects exactly v and o of every layer', () => {
  const llama = selectByPatterns(llamaNames, FREEZE_PRESETS.ov.llama, '--freeze');
  assert.deepEqual([...llama].map((n) => moduleOf(n).kind).sort(), ['o', 'o', 'v', 'v']);
  const bert = selectByPatterns(bertNames, FREEZE_PRESETS.ov.bert, '--freeze');
  assert.deepEqual([...bert].map((n) => moduleOf(n).kind).sort(), ['attn-out', 'attn-out', 'attn-out', 'attn-out', 'value', 'value', 'value', 'value']);
});

test('a pattern matching nothing, or a bad regex, is an error naming the option', () => {
  assert.throws(() => selectByPatterns(llamaNames, ['v_prj'], '--freeze'), /--freeze: pattern 'v_prj' matches no parameter/);
  assert.throws(() => selectByPatterns(llamaNames, ['re:(('], '--quant-modules'), /--quant-modules: 're:\(\(' is not a valid regular expression/);
});
