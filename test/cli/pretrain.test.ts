// `kdqat pretrain` end to end on a small text file with a tiny model.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelDir } from '../../src/io/model-dir.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { lmLogits } from '../../src/models/model.js';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import type { LlamaConfig } from '../../src/models/llama.js';
import { TINY, kdqat, smallTextFile, tmpDir } from './helpers.js';

const root = tmpDir('cli-pretrain');
const text = smallTextFile(root);
after(() => fs.rmSync(root, { recursive: true, force: true }));

it('pretrain writes a model directory that loadModelDir loads, a log and a summary', async () => {
  const out = path.join(root, 'llama');
  const r = await kdqat('pretrain', '--corpus', text, '--out', out, ...TINY, '--vocab', '300', '--steps', '6',
    '--batch', '4', '--warmup', '2', '--eval-every', '3', '--save-every', '3', '--log-every', '1');
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'train_log.jsonl', 'summary.json']) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} is written`);
  }
  const m = loadModelDir(out);
  assert.equal(m.arch, 'llama');
  assert.equal((m.config as LlamaConfig).hiddenSize, 32);
  assert.ok(m.tokenizerPath);
  const logits = noGrad(() => lmLogits({ arch: 'llama', config: m.config as LlamaConfig, params: m.params }, intTensor([5, 6, 7], [1, 3])));
  assert.deepEqual(logits.shape, [1, 3, m.config.vocabSize]);

  const log = readTrainLog(path.join(out, 'train_log.jsonl'));
  assert.deepEqual(log.map((l) => l.step), [1, 2, 3, 4, 5, 6]);
  for (const l of log) for (const k of ['loss', 'lr', 'tokens_per_s']) assert.ok(Number.isFinite(l[k]), `${k} at step ${l.step}`);
  assert.ok(Number.isFinite(log[2].valid_ppl) && Number.isFinite(log[5].valid_ppl), 'validation perplexity at steps 3 and 6');
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.ok(summary.parameters > 0 && summary.wall_time_s > 0);
  assert.ok(Number.isFinite(summary.final.valid_ppl));
  assert.deepEqual(summary.command.slice(0, 2), ['kdqat', 'pretrain']);
  assert.equal(summary.splits[0].split.method, 'hash');
  assert.ok(summary.splits[0].documents.valid > 0);

  // An existing --out is never replaced without --force.
  const again = await kdqat('pretrain', '--corpus', text, '--out', out, ...TINY, '--steps', '2');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists and is not empty; use --force/);
  assert.ok(fs.existsSync(path.join(out, 'model.safetensors')), 'nothing removed');

  // --resume keeps the saved settings: a contradicting flag is an error that names it.
  const bad = await kdqat('pretrain', '--out', out, '--resume', '--lr', '0.5');
  assert.equal(bad.code, 2, 'a usage error');
  assert.match(bad.stderr, /--lr 0\.5 differs from the checkpoint's 0\.001/);
});

it('pretrain errors name the flag and the fix', async () => {
  const r1 = await kdqat('pretrain', '--corpus', 'no-such-corpus', '--out', path.join(root, 'x'), ...TINY);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /--corpus \S*no-such-corpus: not a built-in corpus \(sotu, brown, moby-dick\)/);
  const r2 = await kdqat('pretrain', '--corpus', text, '--out', path.join(root, 'y'), '--hidden', '30', '--heads', '4');
  assert.equal(r2.code, 2, 'a usage error');
  assert.match(r2.stderr, /--hidden 30 must be divisible by --heads 4/);
  const r3 = await kdqat('pretrain', '--out', path.join(root, 'z'), '--resume');
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /has no checkpoint\/ to resume from/);
  const cfg = path.join(root, 'bad.json');
  fs.writeFileSync(cfg, JSON.stringify({ stepz: 3 }));
  const r4 = await kdqat('pretrain', '--config', cfg, '--out', path.join(root, 'w'));
  assert.equal(r4.code, 2, 'a usage error');
  assert.match(r4.stderr, /--config .*bad\.json: unknown key "stepz"/);
});

it('--config supplies settings, flags override it', async () => {
  const out = path.join(root, 'cfg');
  const cfg = path.join(root, 'run.json');
  fs.writeFileSync(cfg, JSON.stringify({ corpus: text, hidden: 32, layers: 1, heads: 4, 'kv-heads': 4, intermediate: 64, seq: 16, vocab: 300, steps: 5, batch: 2, warmup: 1, 'save-every': 0, 'eval-every': 0 }));
  const r = await kdqat('pretrain', '--config', cfg, '--out', out, '--steps', '3');
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.steps, 3);
  assert.equal(summary.config.layers, 1);
  assert.equal(summary.config.seq, 16);
  assert.ok(!fs.existsSync(path.join(out, 'checkpoint')), '--save-every 0 writes no checkpoint');

  // --force replaces the run (and only kdqat's files in the directory).
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  const again = await kdqat('pretrain', '--config', cfg, '--out', out, '--steps', '2', '--force');
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).steps, 2);
  assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
});
