// `kdqat finetune --distributed mpi` (src/train/finetune.ts, src/train/distributed.ts): real
// 2-rank mpirun jobs on this machine. Needs Open MPI; fails (never skips) without it.
//
// Each rank takes its rows of every batch, padded as the whole batch is, with the dropout masks
// those rows get in the whole batch (withDropoutRows), and its mean cross-entropy weighted by
// rows/B. So 2 ranks with --batch B compute one process's --batch B objective; only the float32
// sums over the B rows are split differently. Not bitwise, then: at step 1 (same parameters)
// the loss and the gradient norm are within the reordering bound of a forward and a backward
// pass, reorderBound(2·forwardDepth(L), B·T, κ); afterwards a weight whose gradient is at
// rounding level can move by ±lr per AdamW step, so the classifiers are within 2·Σ lr_s. The
// same rank count resumed after kill -9 is bitwise the uninterrupted run (same arithmetic).
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bertTeacher, tmpDir } from './qat-fixture.js';
import { BIN, kdqat } from '../cli/helpers.js';
import { killRank1, mpirun, needMpi } from './mpi.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { expectWithin } from '../bounds.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound } from '../tolerance.js';

before(needMpi);

// The fixture's 2-layer BERT (its classifier head is replaced by a fresh one), 40 examples of
// different lengths; B = 5 rows: ranks of 2 and 3.
const B = 5, L = 2;
const args = (m: { dir: string; train: string; dev: string }, steps: number): string[] => ['finetune', '--model', m.dir, '--train', m.train, '--dev', m.dev,
  '--batch', String(B), '--max-steps', String(steps), '--eval-every', '3', '--log-every', '1', '--save-every', '3', '--lr', '1e-3'];

it('finetune on 2 ranks: one process\'s --batch B within the reordering bound; rank 0 evaluates and writes; one process cannot resume it', async () => {
  const root = tmpDir('dist-ft');
  const m = bertTeacher(root);
  const common = args(m, 6);
  const two = path.join(root, 'two'), one = path.join(root, 'one');
  const r = mpirun(2, [BIN, ...common, '--distributed', 'mpi', '--out', two]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /rank 0 of 2 \(mpi\)/);
  assert.equal(r.stderr.match(/done: best dev accuracy/g)?.length, 1, 'only rank 0 reports');
  const s = await kdqat(...common, '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);

  type Line = { loss: number; grad_norm: number; lr: number; train_accuracy: number; dev_accuracy?: number };
  const a = readTrainLog(path.join(two, 'train_log.jsonl')) as unknown as Line[], b = readTrainLog(path.join(one, 'train_log.jsonl')) as unknown as Line[];
  assert.equal(a.length, 6);
  // T: the longest example of a batch, at most --max-len 128.
  const rel = reorderBound(2 * forwardDepth(L), B * 128, KAPPA_MATMUL);
  for (const k of ['loss', 'grad_norm'] as const) {
    assert.ok(Math.abs(a[0][k] - b[0][k]) <= rel * Math.abs(b[0][k]), `step 1 ${k}: ${a[0][k]} vs ${b[0][k]} (bound ${rel} relative)`);
  }
  // Training accuracy counts every rank's rows (summed over the ranks): a multiple of 1/B.
  for (const l of a) assert.equal(Math.round(l.train_accuracy * B), l.train_accuracy * B);
  assert.deepEqual(a.map((l) => l.dev_accuracy !== undefined), b.map((l) => l.dev_accuracy !== undefined), 'rank 0 evaluates at the same steps');
  const lrSum = b.reduce((n, l) => n + l.lr, 0);
  const [ma, mb] = [two, one].map((d) => readSafetensors(path.join(d, 'model.safetensors')).tensors);
  assert.deepEqual([...ma.keys()].sort(), [...mb.keys()].sort());
  for (const [name, t] of ma) expectWithin(t.data as Float32Array, mb.get(name)!.data as Float32Array, 2 * lrSum, name);
  assert.deepEqual(fs.readdirSync(two).filter((f) => !f.startsWith('.')).sort(), fs.readdirSync(one).filter((f) => !f.startsWith('.')).sort());
  const sum = JSON.parse(fs.readFileSync(path.join(two, 'summary.json'), 'utf8'));
  assert.equal(sum.steps, 6);

  const resumed = await kdqat('finetune', '--out', two, '--resume', '--threads', '1');
  assert.equal(resumed.code, 2); // a usage error (docs/cli.md)
  assert.match(resumed.stderr, /--resume: the checkpoint in .* was written by a run on 2 ranks, this run has 1; resume with the same count \(mpirun -np 2 kdqat finetune/);

  const small = mpirun(2, [BIN, ...args(m, 2), '--batch', '1', '--distributed', 'mpi', '--out', path.join(root, 'small')]);
  assert.notEqual(small.code, 0);
  assert.match(small.stderr, /kdqat: rank [01] of 2: --batch 1 is smaller than the 2 MPI ranks/);
});

it('finetune: kill -9 of rank 1 stops rank 0 within seconds naming the last good checkpoint; --resume on 2 ranks ends bitwise as the uninterrupted run', async () => {
  const root = tmpDir('dist-ft-kill');
  const m = bertTeacher(root);
  const steps = 30;
  const common = args(m, steps);
  const out = path.join(root, 'run');
  await killRank1([BIN, ...common], out, steps);

  const r = mpirun(2, [BIN, 'finetune', '--out', out, '--resume', '--distributed', 'mpi']);
  assert.equal(r.code, 0, r.stderr);
  const whole = path.join(root, 'whole');
  const w = mpirun(2, [BIN, ...common, '--distributed', 'mpi', '--out', whole]);
  assert.equal(w.code, 0, w.stderr);
  assert.ok(fs.readFileSync(path.join(out, 'model.safetensors')).equals(fs.readFileSync(path.join(whole, 'model.safetensors'))),
    'the resumed 2-rank classifier differs from the uninterrupted 2-rank run');
  const strip = (d: string) => readTrainLog(path.join(d, 'train_log.jsonl')).map((l) => ({ ...l, tokens_per_s: 0 }));
  assert.deepEqual(strip(out), strip(whole));
});
