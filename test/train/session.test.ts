// The training session (src/train/session.ts) that pretrain, finetune and qat share: its AdamW
// and schedule equal the ones the runners used to build by hand, bit for bit; a run stopped after
// a checkpoint and resumed through openSession ends bitwise where an uninterrupted one does, with
// the checkpoint's settings and extra state; a resume without a checkpoint is a clear error.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AdamW } from '../../src/train/optim.js';
import { learningRate } from '../../src/train/schedule.js';
import { trainLoop } from '../../src/train/loop.js';
import { causalLmLoss, shuffledBatches, type TokenBatch } from '../../src/train/objectives.js';
import { openSession, type TrainSpec } from '../../src/train/session.js';
import { prepareOutDir } from '../../src/train/outdir.js';
import type { Params } from '../../src/nn/params.js';
import { freshParams, llamaCfg, syntheticWindows, tmpDir } from './helpers.js';

const windows = syntheticWindows(16, 40, true);
const noDecay = (params: Params) => (n: string): boolean => (params.get(n)?.ndim ?? 2) < 2;
const STEPS = 6;

/** The session's spec of a small causal-LM run (cosine schedule, weight decay, accumulation). */
function spec(params: Params, over: Partial<TrainSpec<TokenBatch>> = {}): TrainSpec<TokenBatch> {
  return {
    params, lr: 3e-3, totalSteps: STEPS, accumulate: 2, clipNorm: 1, seed: 4,
    optimizer: { weightDecay: 0.01, noDecay: noDecay(params) },
    schedule: { warmupSteps: 2, decay: 'cosine', minRatio: 0.1 },
    epochBatches: (e) => shuffledBatches(windows, 4, 4, e),
    loss: (b) => causalLmLoss(params, llamaCfg, b),
    logEvery: 1, saveEvery: 2,
    ...over,
  };
}

const same = (a: Params, b: Params): void => {
  for (const [n, p] of a) assert.deepEqual(b.get(n)!.f32, p.f32, n);
};

it('session.train is the hand-built AdamW + cosine schedule + trainLoop, bit for bit', () => {
  const root = tmpDir('session-same');
  const mine = freshParams('llama');
  const s = openSession({ out: path.join(root, 'a') }, { tag: 'a' }, { hint: '' });
  s.prepareOutDir([]);
  const r1 = s.train(spec(mine));

  // The reference: what pretrain built before the session existed.
  const ref = freshParams('llama');
  const schedule = { lr: 3e-3, totalSteps: STEPS, warmupSteps: 2, decay: 'cosine' as const, minRatio: 0.1 };
  const r2 = trainLoop<TokenBatch>({
    params: ref, optimizer: new AdamW(ref, { lr: 3e-3, weightDecay: 0.01, noDecay: noDecay(ref) }), lr: (k) => learningRate(schedule, k),
    totalSteps: STEPS, accumulate: 2, clipNorm: 1, seed: 4, epochBatches: (e) => shuffledBatches(windows, 4, 4, e),
    loss: (b) => causalLmLoss(ref, llamaCfg, b),
  });
  assert.deepEqual(r1.losses, r2.losses);
  same(mine, ref);
  // The log's learning rates are the schedule's.
  const lrs = fs.readFileSync(path.join(root, 'a', 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).lr);
  assert.deepEqual(lrs, Array.from({ length: STEPS }, (_, k) => learningRate(schedule, k)));
  fs.rmSync(root, { recursive: true });
});

it('a run stopped after a checkpoint resumes through openSession to the uninterrupted result, with its saved settings and state', () => {
  const root = tmpDir('session-resume');
  const full = freshParams('llama');
  const a = openSession({ out: path.join(root, 'full') }, { run: 'x' }, { hint: '' });
  a.prepareOutDir([]);
  const ra = a.train(spec(full, { extraState: () => ({ note: 'kept' }) }));

  // The same run, stopped by a failure in step 4 (after the step-2 checkpoint).
  const out = path.join(root, 'cut');
  const cut = freshParams('llama');
  const b = openSession({ out }, { run: 'x' }, { hint: '' });
  b.prepareOutDir([]);
  assert.throws(() => b.train(spec(cut, {
    extraState: () => ({ note: 'kept' }),
    loss: (batch, ctx) => {
      if (ctx.step === 3) throw new Error('power cut');
      return causalLmLoss(cut, llamaCfg, batch);
    },
  })), /power cut/);

  // Resumed: the checkpoint's settings win over the given ones; its extra state is readable.
  const resumed = freshParams('llama', 99); // other weights: the checkpoint's replace them
  const c = openSession({ out, resume: true }, { run: 'other' }, { hint: '' });
  assert.deepEqual(c.config, { run: 'x' });
  assert.equal(c.ckpt?.state.step, 2);
  assert.equal(c.saved<string>('note'), 'kept');
  c.checkRanks('pretrain'); // one process wrote it, one resumes it
  const rc = c.train(spec(resumed, { extraState: () => ({ note: 'kept' }) }));
  assert.deepEqual(rc.losses, ra.losses.slice(2));
  same(resumed, full);
  assert.equal(fs.readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').split('\n').length,
    fs.readFileSync(path.join(root, 'full', 'train_log.jsonl'), 'utf8').split('\n').length, 'the log continues where the checkpoint was');
  fs.rmSync(root, { recursive: true });
});

it('--resume without a checkpoint names --out and the hint', () => {
  const root = tmpDir('session-none');
  const out = path.join(root, 'empty');
  prepareOutDir(out, {});
  assert.throws(() => openSession({ out, resume: true }, {}, { hint: '; start over' }),
    new RegExp(`--out ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: has no checkpoint/ to resume from; start over`));
  assert.throws(() => openSession({ out: path.join(root, 'nothing'), resume: true }, {}, { hint: '' }), /does not exist, so there is nothing to resume/);
  fs.rmSync(root, { recursive: true });
});
