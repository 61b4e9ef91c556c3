// Hugging Face model directories: save/load round trips, directories as transformers writes
// them (extra config keys, buffers, BF16, shards, BertModel without "bert."), error paths, atomicity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelDir, saveModelDir } from '../../src/io/model-dir.js';
import { readSafetensors, writeSafetensors, type WriteTensor } from '../../src/io/safetensors.js';
import { fromBf16, toBf16 } from '../../src/io/half.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { byteLevelTokenizer } from './gguf-fixtures.js';
import { tmpDir } from '../util.js';

let root = '';
before(() => { root = tmpDir('md'); });
after(() => { fs.rmSync(root, { recursive: true, force: true }); });
let n = 0;
const fresh = (): string => path.join(root, `m${n++}`);

const LCFG: LlamaConfig = {
  vocabSize: 260, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
  rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 128, tieWordEmbeddings: false, initializerRange: 0.02,
};
const BCFG: BertConfig = {
  vocabSize: 40, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 24,
  typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu', hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
  initializerRange: 0.02, numLabels: 0,
};
const readJson = (f: string): Record<string, unknown> => JSON.parse(fs.readFileSync(f, 'utf8'));
const record = (p: Params): Record<string, WriteTensor> =>
  Object.fromEntries([...p].map(([k, t]) => [k, { shape: [...t.shape], data: t.f32 }]));
function sameParams(a: Params, b: Params): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    assert.deepEqual(b.get(k)!.shape, t.shape, k);
    assert.deepEqual(b.get(k)!.f32, t.f32, k);
    assert.equal(b.get(k)!.requiresGrad, true, `${k} requiresGrad`);
  }
}
const hiddenLeftovers = (): string[] => fs.readdirSync(root).filter((f) => f.startsWith('.'));

test('llama round trip: files, HF tensor names, {"format": "pt"}, tokenizer files, exact F32 values', () => {
  const params = initParams(llamaParamSpec(LCFG), 1);
  const dir = fresh();
  saveModelDir(dir, { config: { arch: 'llama', config: LCFG, meta: { bosTokenId: 256, eosTokenId: 257 } }, params, tokenizerJson: byteLevelTokenizer(), dtype: 'F32' });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['.kdqat-output', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.deepEqual(st.metadata, { format: 'pt' });
  assert.ok(st.tensors.has('model.layers.0.self_attn.q_proj.weight') && st.tensors.has('lm_head.weight'));
  assert.equal(readJson(path.join(dir, 'config.json')).eos_token_id, 257);
  assert.deepEqual(readJson(path.join(dir, 'generation_config.json')), { _from_model_config: true, bos_token_id: 256, eos_token_id: 257 });
  const tc = readJson(path.join(dir, 'tokenizer_config.json'));
  assert.deepEqual([tc.bos_token, tc.eos_token, tc.pad_token, tc.model_max_length], ['<s>', '</s>', null, 128]);
  assert.deepEqual((tc.added_tokens_decoder as Record<string, unknown>)['257'], { content: '</s>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
  const m = loadModelDir(dir);
  assert.equal(m.arch, 'llama');
  assert.deepEqual(m.config, LCFG);
  assert.equal(m.tokenizerPath, path.join(dir, 'tokenizer.json'));
  sameParams(params, m.params);
  // Tied: no lm_head.weight stored, and none expected back.
  const tied = { ...LCFG, tieWordEmbeddings: true };
  const tp = initParams(llamaParamSpec(tied), 2);
  const d2 = fresh();
  saveModelDir(d2, { config: { arch: 'llama', config: tied }, params: tp });
  assert.ok(!readSafetensors(path.join(d2, 'model.safetensors')).tensors.has('lm_head.weight'));
  assert.ok(!fs.existsSync(path.join(d2, 'tokenizer.json')));
  sameParams(tp, loadModelDir(d2).params);
});

test('F16 / BF16 saves set torch_dtype and load back as the rounded float32 values', () => {
  const params = initParams(bertParamSpec(BCFG, { mlm: true }), 3);
  const dir = fresh();
  saveModelDir(dir, { config: { arch: 'bert', config: BCFG, meta: { head: 'mlm' } }, params, dtype: 'BF16' });
  assert.equal(readJson(path.join(dir, 'config.json')).torch_dtype, 'bfloat16');
  assert.deepEqual(readJson(path.join(dir, 'config.json')).architectures, ['BertForMaskedLM']);
  const m = loadModelDir(dir);
  const w = 'bert.encoder.layer.0.attention.self.query.weight';
  assert.deepEqual(m.params.get(w)!.f32, Float32Array.from(params.get(w)!.f32, (x) => fromBf16(toBf16(x))));
  const d2 = fresh();
  saveModelDir(d2, { config: { arch: 'llama', config: LCFG }, params: initParams(llamaParamSpec(LCFG), 1), dtype: 'F16' });
  assert.equal(readSafetensors(path.join(d2, 'model.safetensors')).tensors.size, 2 + 9 * 2 + 1);
  assert.equal(loadModelDir(d2).hf.meta.torchDtype, 'float16');
});

test('an HF-written LLaMA directory: extra config keys, BF16, rotary inv_freq buffers, sharded index', () => {
  const params = initParams(llamaParamSpec(LCFG), 4);
  const dir = fresh();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    _name_or_path: 'x', architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 260, hidden_size: 32,
    intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5,
    max_position_embeddings: 128, hidden_act: 'silu', rope_scaling: null, pretraining_tp: 1, use_cache: true,
    transformers_version: '4.31.0', torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
  }, null, 2));
  const all = record(params);
  all['model.layers.0.self_attn.rotary_emb.inv_freq'] = { shape: [4], data: new Float32Array(4) };
  const names = Object.keys(all);
  const half = names.slice(0, 10), rest = names.slice(10);
  const pick = (ks: string[]): Record<string, WriteTensor> => Object.fromEntries(ks.map((k) => [k, all[k]]));
  writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), pick(half), { dtype: 'BF16', metadata: { format: 'pt' } });
  writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), pick(rest), { dtype: 'BF16', metadata: { format: 'pt' } });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({
    metadata: { total_size: 0 },
    weight_map: Object.fromEntries(names.map((k) => [k, half.includes(k) ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors'])),
  }));
  const m = loadModelDir(dir);
  assert.equal(m.params.size, params.size);
  const w = 'model.layers.1.mlp.down_proj.weight';
  assert.deepEqual(m.params.get(w)!.f32, Float32Array.from(params.get(w)!.f32, (x) => fromBf16(toBf16(x))));
  assert.equal(m.hf.arch === 'llama' && m.hf.meta.bosTokenId, 1);
  // index errors
  fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
  assert.throws(() => loadModelDir(dir), /model\.safetensors\.index\.json: weight_map lists shard model-00002-of-00002\.safetensors .* is missing; download it or fix weight_map/);
});

test('BERT: BertModel without "bert." prefix, gamma/beta names, position_ids buffer, tied MLM decoder accepted and dropped', () => {
  const base = initParams(bertParamSpec(BCFG), 5);
  const dir = fresh();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    architectures: ['BertModel'], model_type: 'bert', vocab_size: 40, hidden_size: 16, num_hidden_layers: 1,
    num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 24, gradient_checkpointing: false,
  }));
  const st: Record<string, WriteTensor> = {};
  for (const [k, t] of base) { // and TF-era LayerNorm gamma/beta names
    st[k.replace(/^bert\./, '').replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')] = { shape: [...t.shape], data: t.f32 };
  }
  st['embeddings.position_ids'] = { shape: [1, 24], data: new Int32Array(24), dtype: 'I64' };
  st['pooler.dense.weight'] = { shape: [16, 16], data: new Float32Array(256) };
  st['pooler.dense.bias'] = { shape: [16], data: new Float32Array(16) };
  writeSafetensors(path.join(dir, 'model.safetensors'), st);
  sameParams(base, loadModelDir(dir).params);

  const mlm = initParams(bertParamSpec(BCFG, { mlm: true }), 6);
  const d2 = fresh();
  saveModelDir(d2, { config: { arch: 'bert', config: BCFG, meta: { head: 'mlm' } }, params: mlm });
  const emb = mlm.get('bert.embeddings.word_embeddings.weight')!;
  const tied = { ...record(mlm), 'cls.predictions.decoder.weight': { shape: [...emb.shape], data: emb.f32 },
    'cls.predictions.decoder.bias': { shape: [40], data: mlm.get('cls.predictions.bias')!.f32 } };
  writeSafetensors(path.join(d2, 'model.safetensors'), tied, { force: true });
  sameParams(mlm, loadModelDir(d2).params);
  const untied = { ...tied, 'cls.predictions.decoder.weight': { shape: [...emb.shape], data: emb.f32.map((x) => x + 1) } };
  writeSafetensors(path.join(d2, 'model.safetensors'), untied, { force: true });
  assert.throws(() => loadModelDir(d2), /"cls\.predictions\.decoder\.weight" differs from "bert\.embeddings\.word_embeddings\.weight".*untied heads are not supported/);
  // No "architectures": the head comes from the tensors (here a 3-label classifier).
  const cls = initParams(bertParamSpec({ ...BCFG, numLabels: 3 }, { classifier: true }), 7);
  const d3 = fresh();
  saveModelDir(d3, { config: { arch: 'bert', config: { ...BCFG, numLabels: 3 }, meta: { head: 'classifier' } }, params: cls });
  const cfg = readJson(path.join(d3, 'config.json'));
  delete cfg.architectures; delete cfg.id2label; delete cfg.label2id;
  fs.writeFileSync(path.join(d3, 'config.json'), JSON.stringify(cfg));
  const m3 = loadModelDir(d3);
  assert.deepEqual([m3.hf.arch === 'bert' && m3.hf.meta.head, (m3.config as BertConfig).numLabels], ['classifier', 3]);
});

test('load errors name the file: missing tensor, wrong shape (both shapes), dtype, extras, tokenizer too big', () => {
  const params = initParams(llamaParamSpec(LCFG), 8);
  const mk = (mut: (t: Record<string, WriteTensor>) => void, cfg: object = {}): string => {
    const d = fresh();
    saveModelDir(d, { config: { arch: 'llama', config: LCFG }, params });
    const t = record(params);
    mut(t);
    writeSafetensors(path.join(d, 'model.safetensors'), t, { force: true });
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...readJson(path.join(d, 'config.json')), ...cfg }));
    return d;
  };
  let d = mk((t) => { delete t['model.layers.1.mlp.up_proj.weight']; });
  assert.throws(() => loadModelDir(d), new RegExp(`${d}/model\\.safetensors: missing 1 tensor\\(s\\) ${d}/config\\.json needs: model\\.layers\\.1\\.mlp\\.up_proj\\.weight`));
  d = mk((t) => { delete t['lm_head.weight']; });
  assert.throws(() => loadModelDir(d), /missing 1 tensor.*lm_head\.weight; if the output head is tied .*"tie_word_embeddings": true/);
  d = mk((t) => { t['model.layers.0.self_attn.k_proj.weight'] = { shape: [32, 32], data: new Float32Array(1024) }; });
  assert.throws(() => loadModelDir(d), /model\.safetensors: tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[32, 32\] but .*config\.json implies \[16, 32\]/);
  d = mk((t) => { t['model.norm.weight'] = { shape: [32], data: new Int32Array(32) }; });
  assert.throws(() => loadModelDir(d), /tensor "model\.norm\.weight" has dtype I32; weights must be F32, F16 or BF16/);
  d = mk((t) => { t['model.layers.0.self_attn.q_proj.bias'] = { shape: [32], data: new Float32Array(32) }; });
  assert.throws(() => loadModelDir(d), /1 tensor\(s\) are not part of a llama model with this config\.json \(model\.layers\.0\.self_attn\.q_proj\.bias\)/);
  d = mk(() => {}, { num_key_value_heads: 3 });
  assert.throws(() => loadModelDir(d), /config\.json: num_attention_heads 4 is not divisible by num_key_value_heads 3/);
  d = mk(() => {});
  const st = path.join(d, 'model.safetensors');
  const b = fs.readFileSync(st);
  fs.writeFileSync(st, Buffer.from(b.toString('latin1').replace('"F32"', '"F4X"'), 'latin1'));
  assert.throws(() => loadModelDir(d), /model\.safetensors: tensor .* unknown dtype "F4X"/);
  d = mk(() => {});
  fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(byteLevelTokenizer(['<s>', '</s>', '<a>', '<b>', '<c>'])));
  assert.throws(() => loadModelDir(d), new RegExp(`${d}/tokenizer\\.json: the tokenizer has 261 tokens but ${d}/config\\.json has vocab_size 260`));
  assert.throws(() => saveModelDir(fresh(), { config: { arch: 'llama', config: LCFG }, params, tokenizerJson: byteLevelTokenizer(['<s>', '</s>', '<a>', '<b>', '<c>']) }),
    /tokenizer\.json: the tokenizer has 261 tokens but config\.json has vocab_size 260/);
  const empty = fresh();
  fs.mkdirSync(empty);
  fs.writeFileSync(path.join(empty, 'config.json'), JSON.stringify(readJson(path.join(d, 'config.json'))));
  assert.throws(() => loadModelDir(empty), /no model\.safetensors or model\.safetensors\.index\.json/);
  assert.throws(() => loadModelDir(fresh()), /not a directory/);
});

test('save: never over an existing directory without force; atomic on failure, with and without force', () => {
  const params = initParams(llamaParamSpec(LCFG), 9);
  const cfg = { arch: 'llama' as const, config: LCFG };
  const dir = fresh();
  saveModelDir(dir, { config: cfg, params });
  assert.throws(() => saveModelDir(dir, { config: cfg, params }), new RegExp(`${dir}: already exists; refusing to overwrite it \\(use --force\\)`));
  const other = initParams(llamaParamSpec(LCFG), 10);
  saveModelDir(dir, { config: cfg, params: other, force: true });
  sameParams(other, loadModelDir(dir).params);
  // A failure while writing (a tensor whose buffer no longer matches its shape) leaves no
  // partial directory and no temp directory, and with force keeps the old one intact.
  const broken = new Map(params);
  const t = initParams(llamaParamSpec(LCFG), 11).get('model.norm.weight')!;
  t.data = new Float32Array(3);
  broken.set('model.norm.weight', t);
  const target = fresh();
  assert.throws(() => saveModelDir(target, { config: cfg, params: broken }), /model\.norm\.weight.*3 elements, shape needs 32/);
  assert.ok(!fs.existsSync(target));
  assert.throws(() => saveModelDir(dir, { config: cfg, params: broken, force: true }), /3 elements/);
  sameParams(other, loadModelDir(dir).params);
  assert.deepEqual(hiddenLeftovers(), []);
  // Params the HF model does not have are refused rather than silently dropped.
  const extra = new Map(params);
  extra.set('quant.scale', t);
  assert.throws(() => saveModelDir(fresh(), { config: cfg, params: extra }), /1 parameter\(s\) are not part of the Hugging Face llama model \(quant\.scale\)/);
});
