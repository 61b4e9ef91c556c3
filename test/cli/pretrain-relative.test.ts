// `kdqat pretrain --position-embedding relative_key`: a BERT whose attention sees positions as
// distances (src/models/relative-position.ts) is written as Hugging Face writes one
// (position_embedding_type in config.json, one distance_embedding table per layer), fine-tunes,
// distils with paper B's attention-map loss and exports to ONNX; families built with their own positions refuse
// the flag, naming it. The equations are tested against PyTorch in test/models/encoders.test.ts.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelDir } from '../../src/io/model-dir.js';
import { openModel, openTokenizer } from '../../src/cli/open-model.js';
import { archOf } from '../../src/models/model.js';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { relError } from '../util.js';
import { data, i64, onnxBound, session } from '../io/onnx-helpers.js';
import { TINY, kdqat, smallTextFile, tmpDir } from './helpers.js';

const root = tmpDir('cli-relpos');
const text = smallTextFile(root);
after(() => fs.rmSync(root, { recursive: true, force: true }));

it('pretrain --position-embedding relative_key writes an HF BERT with distance tables that fine-tunes and distils', async () => {
  const out = path.join(root, 'mlm');
  const r = await kdqat('pretrain', '--arch', 'bert', '--position-embedding', 'relative_key', '--corpus', text, '--out', out,
    ...TINY, '--vocab', '300', '--steps', '3', '--batch', '4', '--warmup', '1', '--eval-every', '0', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.position_embedding_type, 'relative_key');
  const m = loadModelDir(out);
  const c = m.hf.config as { numHiddenLayers: number; hiddenSize: number; numAttentionHeads: number; maxPositionEmbeddings: number };
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const t = m.params.get(`bert.encoder.layer.${l}.attention.self.distance_embedding.weight`);
    assert.ok(t, `layer ${l} has its distance table`);
    assert.deepEqual([...t.shape], [2 * c.maxPositionEmbeddings - 1, c.hiddenSize / c.numAttentionHeads]);
  }
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.config.positionEmbedding, 'relative_key');

  const cls = path.join(root, 'cls');
  const f = await kdqat('finetune', '--model', out, '--task', 'brown-genre', '--out', cls, '--max-steps', '2',
    '--batch', '4', '--max-len', '32', '--eval-every', '0', '--log-every', '1', '--threads', '1');
  assert.equal(f.code, 0, f.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(cls, 'config.json'), 'utf8')).position_embedding_type, 'relative_key');

  const q = await kdqat('qat', '--teacher', cls, '--task', 'brown-genre', '--quant', 'twn-a8', '--loss', 'pred=1,rep=1,attn_map=1',
    '--steps', '2', '--batch', '4', '--seq-len', '32', '--eval-every', '0', '--out', path.join(root, 'qat'), '--threads', '1');
  assert.equal(q.code, 0, q.stderr);
  const student = JSON.parse(fs.readFileSync(path.join(root, 'qat', 'student', 'config.json'), 'utf8'));
  assert.equal(student.position_embedding_type, 'relative_key', 'the student keeps the teacher\'s positions');

  // The ONNX export carries the distance scores: onnxruntime gives the classifier's logits
  // (the graph's equations against kdqat's, with teeth, are in test/io/onnx.test.ts).
  const onnx = path.join(root, 'model.onnx');
  const e = await kdqat('export', '--model', cls, '--format', 'onnx', '--out', onnx);
  assert.equal(e.code, 0, e.stderr);
  const opened = openModel(cls), ids = openTokenizer(opened, undefined).encode('The jury said the election was fair.');
  const want = noGrad(() => archOf(opened.model).forward(opened.model, { ids: intTensor(ids, [1, ids.length]) }).logits.f32);
  const got = await (await session(fs.readFileSync(onnx))).run({
    input_ids: i64(ids, [1, ids.length]), attention_mask: i64(ids.map(() => 1), [1, ids.length]), token_type_ids: i64(ids.map(() => 0), [1, ids.length]),
  });
  const k = opened.model.config as { numHiddenLayers: number; intermediateSize: number };
  assert.ok(relError(data(got.logits), want) <= onnxBound(k.numHiddenLayers, k.intermediateSize), `logits ${data(got.logits)} vs ${want}`);
});

it('pretrain --position-embedding errors name the flag and the families that take it', async () => {
  const r = await kdqat('pretrain', '--arch', 'llama', '--position-embedding', 'relative_key', '--corpus', text, '--out', path.join(root, 'p1'), ...TINY);
  assert.equal(r.code, 2, 'a usage error');
  assert.match(r.stderr, /--position-embedding relative_key: --arch llama is built with its own positions only; use --position-embedding absolute, or --arch bert/);
  const bad = await kdqat('pretrain', '--arch', 'bert', '--position-embedding', 'rotary', '--corpus', text, '--out', path.join(root, 'p2'), ...TINY);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--position-embedding.*rotary.*(relative_key_query|choices)/s);
  assert.ok(!fs.existsSync(path.join(root, 'p1')) && !fs.existsSync(path.join(root, 'p2')), 'nothing written');
});
