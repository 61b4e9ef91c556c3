// `kdqat pretrain --objective electra` end to end: a BertModel directory (the discriminator, no
// generator or detector tensors) that fine-tunes; the settings' errors name the flag; and a run
// killed after a checkpoint resumes to the same log and bitwise the same weights.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { loadModelDir } from '../../src/io/model-dir.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { readCheckpointState } from '../../src/train/checkpoint.js';
import { BIN, TINY, kdqat, smallTextFile, tmpDir } from './helpers.js';

const root = tmpDir('cli-electra');
const text = smallTextFile(root);
after(() => fs.rmSync(root, { recursive: true, force: true }));

const args = (out: string, steps = 6): string[] => ['pretrain', '--arch', 'bert', '--objective', 'electra', '--corpus', text, '--out', out,
  ...TINY, '--vocab', '300', '--steps', String(steps), '--batch', '4', '--warmup', '1', '--eval-every', '3', '--eval-windows', '4',
  '--save-every', '2', '--log-every', '1', '--threads', '1'];

it('pretrain --objective electra saves the discriminator as a BertModel that fine-tunes', async () => {
  const out = path.join(root, 'electra');
  const r = await kdqat(...args(out));
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['BertModel']);
  const m = loadModelDir(out);
  assert.equal(m.arch, 'bert');
  assert.equal(m.hf.arch === 'bert' && m.hf.meta.head, 'base');
  const names = [...m.params.keys()];
  assert.ok(!names.some((n) => n.startsWith('generator.') || n.startsWith('discriminator_predictions.') || n.startsWith('cls.')), 'only the encoder is saved');
  assert.ok(names.includes('bert.encoder.layer.1.output.LayerNorm.weight'));

  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.config.objective, 'electra');
  assert.equal(summary.parameters, names.reduce((s, n) => s + m.params.get(n)!.size, 0), 'parameters counts the saved model');
  assert.ok(summary.generator_parameters > 0 && summary.generator_parameters < summary.parameters);
  const log = readTrainLog(path.join(out, 'train_log.jsonl'));
  for (const k of ['valid_gen_mlm_loss', 'valid_disc_loss', 'valid_disc_acc', 'valid_replaced']) {
    assert.ok(Number.isFinite(log[2][k]), `${k} at step 3`);
  }
  assert.ok(log[2].valid_disc_acc >= 0 && log[2].valid_disc_acc <= 1);
  assert.ok(log[2].valid_replaced > 0 && log[2].valid_replaced < 0.5, 'about 15 % of the positions are replaced');

  const cls = path.join(root, 'electra-cls');
  const f = await kdqat('finetune', '--model', out, '--task', 'brown-genre', '--out', cls, '--max-steps', '2',
    '--batch', '4', '--max-len', '32', '--eval-every', '0', '--log-every', '1');
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(cls, 'config.json'), 'utf8')).architectures, ['BertForSequenceClassification']);
});

it('pretrain --objective electra errors name the flag and the fix', async () => {
  const r1 = await kdqat('pretrain', '--arch', 'llama', '--objective', 'electra', '--corpus', text, '--out', path.join(root, 'e1'), ...TINY);
  assert.equal(r1.code, 2, 'a usage error');
  assert.match(r1.stderr, /--objective electra trains an encoder; --arch llama is a decoder: use --objective lm, or an encoder/);
  const r2 = await kdqat('pretrain', '--arch', 'bert', '--objective', 'electra', '--generator-size', '1.5', '--corpus', text, '--out', path.join(root, 'e2'), ...TINY);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--generator-size must be in \(0, 1\], got 1\.5/);
  const r3 = await kdqat('pretrain', '--arch', 'bert', '--objective', 'electra', '--disc-weight', '0', '--corpus', text, '--out', path.join(root, 'e3'), ...TINY);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /--disc-weight must be positive, got 0/);
  const r4 = await kdqat('pretrain', '--arch', 'bert', '--objective', 'mlm', '--corpus', text, '--out', path.join(root, 'e4'), ...TINY);
  assert.equal(r4.code, 2);
  assert.match(r4.stderr, /--objective.*'mlm'.*(lm|electra)/s);
});

it('killed after a checkpoint, then --resume: the same log and bitwise the same saved model as an uninterrupted run', async () => {
  const ref = path.join(root, 'ref'), out = path.join(root, 'killed');
  const run = (a: string[], killAt = ''): Promise<{ code: number | null; signal: string | null; stderr: string }> => {
    const child = spawn(process.execPath, [BIN, ...a], { env: { ...process.env, KDQAT_TEST_KILL_AT: killAt }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  };
  const [a, killed] = await Promise.all([run(args(ref, 8)), run(args(out, 8), 'checkpoint:published@2')]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.equal(readCheckpointState(path.join(out, 'checkpoint')).step, 4, 'killed just after the step-4 checkpoint');
  const resumed = await run(['pretrain', '--out', out, '--resume', '--threads', '1']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const strip = (f: string) => readTrainLog(f).map(({ tokens_per_s: _t, ...rest }) => rest);
  assert.deepEqual(strip(path.join(out, 'train_log.jsonl')), strip(path.join(ref, 'train_log.jsonl')));
  assert.ok(fs.readFileSync(path.join(out, 'model.safetensors')).equals(fs.readFileSync(path.join(ref, 'model.safetensors'))), 'model.safetensors bitwise equal');
});
