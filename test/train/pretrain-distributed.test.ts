// `kdqat pretrain --distributed mpi` (src/train/pretrain.ts, src/train/distributed.ts): a 2-rank
// mpirun job against one process with the same global batch. The bound is exact, as for qat
// (test/train/distributed.test.ts): N ranks with --batch B compute bit for bit what one process
// computes with --batch B/N --accum N (decoders). Needs Open MPI; fails (never skips) without it.
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, kdqat, smallTextFile, tmpDir } from '../cli/helpers.js';
import { mpirun, needMpi } from './mpi.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { expectWithin } from '../bounds.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound } from '../tolerance.js';

before(needMpi);

it('pretrain on 2 ranks equals one process with --batch B/2 --accum 2 bit for bit; rank 0 writes', async () => {
  const root = tmpDir('dist-pretrain');
  const text = smallTextFile(root);
  const common = ['pretrain', '--corpus', text, '--hidden', '32', '--layers', '2', '--heads', '4', '--kv-heads', '2', '--intermediate', '64',
    '--seq', '32', '--vocab', '300', '--steps', '4', '--eval-every', '2', '--eval-windows', '2', '--log-every', '1', '--save-every', '2'];
  const two = path.join(root, 'two'), one = path.join(root, 'one');
  const r = mpirun(2, [BIN, ...common, '--batch', '4', '--distributed', 'mpi', '--out', two]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/done: 4 steps/g)?.length, 1, 'only rank 0 reports');
  const s = await kdqat(...common, '--batch', '2', '--accum', '2', '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(fs.readFileSync(path.join(two, 'model.safetensors')).equals(fs.readFileSync(path.join(one, 'model.safetensors'))), 'model.safetensors differs');
  assert.equal(fs.readFileSync(path.join(two, 'tokenizer.json'), 'utf8'), fs.readFileSync(path.join(one, 'tokenizer.json'), 'utf8'));
  const log = (dir: string): unknown[] => fs.readFileSync(path.join(dir, 'train_log.jsonl'), 'utf8').trim().split('\n')
    .map((l) => ({ ...JSON.parse(l), tokens_per_s: 0 }));
  assert.deepEqual(log(two), log(one));
  assert.equal(log(two).length, 4);

  const resumed = await kdqat('pretrain', '--out', two, '--resume', '--threads', '1');
  assert.equal(resumed.code, 2, 'a usage error');
  assert.match(resumed.stderr, /--resume: the checkpoint in .* was written by a run on 2 ranks, this run has 1; resume with the same count \(mpirun -np 2 kdqat pretrain/);
});

// Masked LM: the masks and the dropout masks are the global batch's (drawn for the whole batch,
// then sliced: src/train/pretrain.ts mlmSlice, src/tensor/ops/nn.ts withDropoutRows) and each
// rank's loss is weighted by its masked tokens over the batch's. So 2 ranks with --batch B
// compute one process's --batch B objective; what differs is only where the float32 sums over
// the B rows (the loss mean, every weight gradient) are split. Not bitwise, then: the bound at
// step 1 (the same parameters) is the reordering bound of a forward plus a backward pass,
// reorderBound(2·forwardDepth(L), B·T, κ), on the loss and the gradient norm. After that AdamW
// steps differ: a weight whose gradient is at rounding level can move by ±lr, so each weight is
// within 2·Σ lr_s of the other run's. (Wrong masks, dropout rows or shares change the step-1
// gradient norm by 9–24 %, far outside the bound.)
it('masked-LM pretrain (--arch bert) on 2 ranks: the global batch\'s masks, dropout and masked-token shares; one process\'s --batch B within the reordering bound', async () => {
  const root = tmpDir('dist-pretrain-bert');
  const text = smallTextFile(root);
  const B = 4, T = 32, L = 2, steps = 4;
  const common = ['pretrain', '--arch', 'bert', '--corpus', text, '--hidden', '32', '--layers', String(L), '--heads', '4', '--intermediate', '64',
    '--seq', String(T), '--vocab', '300', '--steps', String(steps), '--lr', '1e-3', '--warmup', '1', '--dropout', '0.1',
    '--eval-every', '2', '--eval-windows', '2', '--log-every', '1', '--save-every', '2', '--batch', String(B)];
  const two = path.join(root, 'two'), one = path.join(root, 'one');
  const r = mpirun(2, [BIN, ...common, '--distributed', 'mpi', '--out', two]);
  assert.equal(r.code, 0, r.stderr);
  const s = await kdqat(...common, '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);
  const log = (dir: string) => readTrainLog(path.join(dir, 'train_log.jsonl')) as { loss: number; grad_norm: number; lr: number }[];
  const [a, b] = [log(two), log(one)];
  assert.equal(a.length, steps);
  const rel = reorderBound(2 * forwardDepth(L), B * T, KAPPA_MATMUL);
  for (const k of ['loss', 'grad_norm'] as const) {
    assert.ok(Math.abs(a[0][k] - b[0][k]) <= rel * Math.abs(b[0][k]), `step 1 ${k}: ${a[0][k]} vs ${b[0][k]} (bound ${rel} relative)`);
  }
  const lrSum = b.reduce((n, l) => n + l.lr, 0);
  const mA = readSafetensors(path.join(two, 'model.safetensors')).tensors, mB = readSafetensors(path.join(one, 'model.safetensors')).tensors;
  assert.deepEqual([...mA.keys()].sort(), [...mB.keys()].sort());
  for (const [name, t] of mA) expectWithin(t.data as Float32Array, mB.get(name)!.data as Float32Array, 2 * lrSum, name);
});
