// trainLoop's hooks for KD-QAT: step hooks in order, a reshaped log in its own file, and a
// caller's loss check that names what went wrong (with the last good checkpoint).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mul, Tensor } from '../../src/tensor/index.js';
import { AdamW } from '../../src/train/optim.js';
import { isLoggedStep, trainLoop, TrainingError } from '../../src/train/loop.js';
import { causalLmLoss, shuffledBatches, type TokenBatch } from '../../src/train/objectives.js';
import { freshParams, llamaCfg, syntheticWindows, tmpDir } from './helpers.js';

it('isLoggedStep: every n-th update and the last', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].filter((s) => isLoggedStep(s, 7, 3)), [2, 5, 6]);
});

it('step hooks run in order around backward and the update; logRecord reshapes the log lines', () => {
  const params = freshParams('llama');
  const windows = syntheticWindows(16, 30, true);
  const events: string[] = [];
  const out = tmpDir('hooks');
  const name = 'model.layers.0.mlp.up_proj.weight';
  let before: Float32Array | null = null, moved = false;
  trainLoop<TokenBatch>({
    params, optimizer: new AdamW(params, { lr: 1e-3 }), lr: () => 1e-3, totalSteps: 3, accumulate: 2, seed: 0,
    epochBatches: (e) => shuffledBatches(windows, 2, 0, e),
    loss: (b, ctx) => { events.push(`loss ${ctx.step}.${ctx.micro}`); return causalLmLoss(params, llamaCfg, b); },
    hooks: {
      beforeStep: (s) => events.push(`before ${s}`),
      afterBackward: (s) => { events.push(`backward ${s}`); assert.ok(params.get(name)!.grad, 'gradients are there'); },
      beforeUpdate: (s) => { events.push(`pre ${s}`); before = params.get(name)!.f32.slice(); },
      afterUpdate: (s) => { events.push(`post ${s}`); moved ||= !params.get(name)!.f32.every((v, i) => v === before![i]); },
    },
    outDir: out, logFile: 'custom.jsonl', logEvery: 2,
    logRecord: (rec, step) => ({ step, loss: { total: rec.loss }, extra: 'x' }),
  });
  assert.deepEqual(events.slice(0, 6), ['before 0', 'loss 0.0', 'loss 0.1', 'backward 0', 'pre 0', 'post 0']);
  assert.equal(events.length, 18);
  assert.ok(moved);
  assert.ok(!fs.existsSync(path.join(out, 'train_log.jsonl')));
  const lines = fs.readFileSync(path.join(out, 'custom.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.step), [2, 3]);
  assert.equal(lines[0].extra, 'x');
  assert.equal(typeof lines[0].loss.total, 'number');
});

it('checkLoss: the stop message carries its description, the step and the last good checkpoint', () => {
  const params = freshParams('llama');
  const windows = syntheticWindows(16, 30, true);
  const out = tmpDir('checkloss');
  const nan = new Tensor(Float32Array.of(NaN), [1]);
  assert.throws(() => trainLoop<TokenBatch>({
    params, optimizer: new AdamW(params, { lr: 1e-3 }), lr: () => 1e-3, totalSteps: 5, seed: 0,
    epochBatches: (e) => shuffledBatches(windows, 2, 0, e),
    loss: (b, ctx) => (ctx.step === 2 ? mul(causalLmLoss(params, llamaCfg, b), nan) : causalLmLoss(params, llamaCfg, b)),
    checkLoss: (loss) => (Number.isFinite(loss.item()) ? null : "the loss term 'pred' is NaN"),
    outDir: out, saveEvery: 1,
  }), (e: Error) => {
    assert.ok(e instanceof TrainingError);
    assert.match(e.message, /training stopped at step 3: the loss term 'pred' is NaN/);
    assert.match(e.message, new RegExp(`last good checkpoint is ${path.join(out, 'checkpoint').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(step 2\\)`));
    return true;
  });
});
