// The training loop: learning, gradient accumulation, checkpoint/resume reproducibility, NaN stop.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { chainBound, scaleOf } from '../tolerance.js';
import { U32 } from '../bounds.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scale, storagePolicyFor, type RecomputeMode } from '../../src/tensor/index.js';
import { SGD } from '../../src/train/optim.js';
import { storagePolicy, type StoragePolicy } from '../../src/tensor/storage.js';
import { trainLoop, TrainingError } from '../../src/train/loop.js';
import { causalLmLoss, shuffledBatches, type TokenBatch } from '../../src/train/objectives.js';
import { findCheckpoint, readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { freshParams, llamaCfg, run, syntheticWindows, tmpDir } from './helpers.js';

const mean = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length;

it('the loss goes down on learnable data', () => {
  const windows = syntheticWindows(16, 60, true);
  const { result } = run({ arch: 'llama', steps: 40, windows, lr: 1e-2 });
  const l = result.losses;
  assert.equal(l.length, 40);
  assert.ok(mean(l.slice(-5)) < mean(l.slice(0, 5)) - 0.5, `loss ${mean(l.slice(0, 5))} → ${mean(l.slice(-5))}`);
});

it('gradient accumulation of 2 × B equals one batch of 2B (to a rounding bound)', () => {
  const windows = syntheticWindows(16, 40, true);
  const big = [...shuffledBatches(windows, 4, 3, 0)].slice(0, 3);
  // The same rows, split into halves: micro-batches (0, 1) make update 0, and so on.
  const half = (b: TokenBatch, k: number): TokenBatch => {
    const n = b.rows / 2, T = b.seqLen;
    return { rows: n, seqLen: T, inputs: b.inputs.slice(k * n * T, (k + 1) * n * T), targets: b.targets!.slice(k * n * T, (k + 1) * n * T) };
  };
  const small = big.flatMap((b) => [half(b, 0), half(b, 1)]);
  const go = (data: TokenBatch[], accumulate: number) => {
    const params = freshParams('llama');
    // SGD: the update is linear in the gradient, so parameter differences measure gradient differences.
    const result = trainLoop<TokenBatch>({
      params, optimizer: new SGD(params), lr: () => 0.5, totalSteps: 3, accumulate, seed: 0,
      epochBatches: () => data, loss: (b) => causalLmLoss(params, llamaCfg, b),
    });
    return { params, losses: result.losses };
  };
  const a = go(small, 2), b = go(big, 1);
  // Both runs are the same math summed in different orders (two half-batch means averaged vs
  // one mean; the native kernels block the two shapes differently), so each is within
  // chainBound of the exact value and they differ by at most twice that. Depth: 2 layers ×
  // 16 stages forward (test/models/blocks.test.ts), × 3 with the backward, + 4 for the loss
  // and the accumulation; n = the longest reduction, the 4·16 = 64 tokens of a batch (= the
  // intermediate size); κ = 1 relative to the compared scale (the loss; the update).
  const rel = 2 * chainBound(3 * 2 * 16 + 4, 64, 1);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(a.losses[i] - b.losses[i]) <= rel * Math.abs(b.losses[i]), `loss ${i}: ${a.losses[i]} vs ${b.losses[i]}`);
  }
  // SGD moves each parameter by lr·Σ gradients, so a gradient difference shows as a difference
  // of the parameters relative to how far they moved; the later steps see the earlier steps'
  // differences (first order: a stated factor 2 for 3 small steps).
  const p0 = freshParams('llama');
  for (const [name, p] of a.params) {
    const q = b.params.get(name)!.f32, init = p0.get(name)!.f32;
    let moved = 0, worst = 0;
    p.f32.forEach((x, i) => {
      moved = Math.max(moved, Math.abs(q[i] - init[i]));
      worst = Math.max(worst, Math.abs(x - q[i]));
    });
    assert.ok(worst <= 2 * rel * moved + U32 * scaleOf(q), `${name}: max parameter difference ${worst} (moved ${moved})`);
  }
});

for (const arch of ['llama', 'bert'] as const) {
  it(`stop at a checkpoint and resume = uninterrupted run, bitwise (${arch}: epochs, accumulation${arch === 'bert' ? ', dropout, masks' : ''})`, () => {
    // 6 batches per epoch, 2 micro-batches per update: 12 updates cross 3 epochs, one update
    // straddling each epoch boundary.
    const windows = syntheticWindows(arch === 'llama' ? 16 : 14, arch === 'llama' ? 10 : 9, arch === 'llama');
    assert.equal(Math.floor(windows.count / 4), 6);
    const dirA = tmpDir('loopA'), dirB = tmpDir('loopB');
    const spec = { arch, steps: 12, accumulate: 2, windows, saveEvery: 4 };
    const a = run({ ...spec, outDir: dirA });
    assert.throws(() => run({ ...spec, outDir: dirB, crashAt: 6 }), /simulated crash/);
    const ckpt = readCheckpoint(findCheckpoint(dirB)!);
    assert.equal(ckpt.state.step, 4);
    assert.equal(readTrainLog(path.join(dirB, 'train_log.jsonl')).length, 6, 'steps 5 and 6 were logged before the crash');
    const b = run({ ...spec, outDir: dirB, resume: ckpt });
    assert.equal(b.result.startStep, 4);
    assert.deepEqual(b.result.losses, a.result.losses.slice(4), 'the resumed run repeats the uninterrupted loss curve');
    const strip = (f: string) => readTrainLog(f).map(({ tokens_per_s: _t, ...r }) => r);
    assert.deepEqual(strip(path.join(dirB, 'train_log.jsonl')), strip(path.join(dirA, 'train_log.jsonl')));
    for (const [name, p] of a.params) assert.deepEqual(b.params.get(name)!.f32, p.f32, `parameter ${name}`);
    const sa = a.optimizer.state(), sb = b.optimizer.state();
    assert.equal(sb.step, sa.step);
    for (const [k, buf] of sa.buffers) assert.deepEqual(sb.buffers.get(k), buf, `optimizer ${k}`);
    fs.rmSync(dirA, { recursive: true });
    fs.rmSync(dirB, { recursive: true });
  });
}

it('a NaN loss stops with the step, the value and the last good checkpoint; nothing is overwritten', () => {
  const dir = tmpDir('nan');
  const params = freshParams('llama');
  const windows = syntheticWindows(16, 30, true);
  const p = params.get('model.norm.weight')!;
  let err: unknown;
  try {
    trainLoop<TokenBatch>({
      params, optimizer: new SGD(params), lr: () => 0.1, totalSteps: 20, seed: 0, outDir: dir, saveEvery: 5,
      epochBatches: (e) => shuffledBatches(windows, 4, 0, e),
      loss: (b, ctx) => {
        const l = causalLmLoss(params, llamaCfg, b);
        // Step 8 (1-based) "diverges": the loss becomes NaN (still attached to the graph).
        return ctx.step === 7 ? scale(l, NaN) : l;
      },
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TrainingError, `expected a TrainingError, got ${err}`);
  const msg = (err as Error).message;
  assert.match(msg, /training stopped at step 8: the loss is NaN/);
  assert.match(msg, new RegExp(`last good checkpoint is ${path.join(dir, 'checkpoint').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(step 5\\)`));
  assert.match(msg, /--resume/);
  const ckpt = readCheckpoint(findCheckpoint(dir)!);
  assert.equal(ckpt.state.step, 5, 'the step-5 checkpoint is untouched');
  assert.equal(readTrainLog(path.join(dir, 'train_log.jsonl')).length, 7, 'steps 1-7 logged, nothing for step 8');
  assert.ok(p.f32.every(Number.isFinite));
  fs.rmSync(dir, { recursive: true });
});

it('elapsed time counts from clockStart (the command\'s setup too) and sums over resumed segments; extra tensors round-trip', () => {
  const dir = tmpDir('clock');
  const windows = syntheticWindows(16, 20, true);
  const segment = (totalSteps: number, clockStart: number, resume?: ReturnType<typeof readCheckpoint>) => {
    const params = freshParams('llama');
    return trainLoop<TokenBatch>({
      params, optimizer: new SGD(params), lr: () => 0.1, totalSteps, seed: 0, outDir: dir, saveEvery: 2, clockStart, resume,
      epochBatches: (e) => shuffledBatches(windows, 4, 0, e), loss: (b) => causalLmLoss(params, llamaCfg, b),
      config: { totalSteps }, extraTensors: () => new Map([['codes', new Float32Array([1, 2, 3])]]),
    });
  };
  // The first segment "started" 5 s before its loop (teacher loading, baselines): counted.
  segment(2, performance.now() - 5000);
  const ckpt = readCheckpoint(findCheckpoint(dir)!);
  assert.ok(ckpt.state.elapsedSeconds >= 5, `checkpointed elapsed ${ckpt.state.elapsedSeconds} s includes the setup`);
  assert.deepEqual([...ckpt.tensors.get('codes')!], [1, 2, 3]);
  // The resumed segment, started 3 s before its loop: 5 + 3 s at least, in all.
  const r = segment(4, performance.now() - 3000, ckpt);
  assert.ok(r.elapsedSeconds >= 8, `elapsed ${r.elapsedSeconds} s sums both segments`);
  assert.ok(readCheckpoint(findCheckpoint(dir)!).state.elapsedSeconds >= 8);
  fs.rmSync(dir, { recursive: true });
});

it("the run's storage policy: the pool by default, the heap with storage 'heap' (what qat takes with --recompute); the gradients given back after each update", () => {
  const windows = syntheticWindows(8, 30, true);
  const seen = (storage?: StoragePolicy) => {
    const params = freshParams('llama');
    const sgd = new SGD(params);
    const calls: unknown[] = [];
    const optimizer = Object.assign(Object.create(sgd) as SGD, {
      zeroGrad: (r?: boolean) => { calls.push(`zeroGrad(${r}) under ${storagePolicy()}`); sgd.zeroGrad(r); },
    });
    trainLoop<TokenBatch>({
      params, optimizer, lr: () => 0.1, totalSteps: 2, seed: 0, storage,
      epochBatches: () => shuffledBatches(windows, 4, 2, 0),
      loss: (b) => { calls.push(`loss under ${storagePolicy()}`); return causalLmLoss(params, llamaCfg, b); },
    });
    assert.equal(storagePolicy(), 'pool', 'the policy before the run is back');
    return calls;
  };
  assert.deepEqual(seen(), ['loss under pool', 'zeroGrad(true) under pool', 'loss under pool', 'zeroGrad(true) under pool']);
  assert.deepEqual(seen('heap'), ['loss under heap', 'zeroGrad(true) under heap', 'loss under heap', 'zeroGrad(true) under heap']);
  assert.deepEqual(['off', 'selective', 'all'].map((m) => storagePolicyFor(m as RecomputeMode)), ['pool', 'heap', 'heap'], 'what qat passes for each --recompute');
});
