// Data-parallel KD-QAT over MPI (src/train/distributed.ts, native/mpi.cc; issue 17), with real
// `mpirun` jobs on this machine (--oversubscribe, one thread per rank). These tests need Open MPI
// and an addon built with it: without them they FAIL, saying how to install it.
//
// The bound: N ranks with --batch B run, bit for bit, what one process runs with --batch B/N
// --accumulate N — the same global batch of B rows per update, each rank's contiguous slice
// being one micro-batch, its loss scaled by its share (1/N) where one process scales by
// 1/accumulate, and the gradients summed in rank order where one process adds micro-batch
// gradients in order (src/train/distributed.ts). So the comparison with N = 1 is exact: 0 ulp
// on every parameter, loss and gradient norm. (Against one process with --batch B the sums over
// the B rows are split differently: float32 reordering, no longer bitwise.)
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readTrainLog } from '../../src/train/train-log.js';
import { rankRows } from '../../src/train/distributed.js';
import { sliceRows } from '../../src/train/qat-data.js';
import { intTensor } from '../../src/tensor/tensor.js';
import { bertTeacher, llamaTeacher, tmpDir } from './qat-fixture.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { expectWithin } from '../bounds.js';
import { KAPPA_MATMUL, forwardDepth, reorderBound } from '../tolerance.js';
import { BIN, kdqat } from '../cli/helpers.js';
import { INSTALL, ROOT, mpirun, needMpi } from './mpi.js';

before(needMpi);

it('rankRows splits a batch into contiguous slices in rank order; sliceRows keeps T and counts tokens', () => {
  for (const [rows, size] of [[4, 2], [5, 2], [7, 3], [2, 2], [8, 1]]) {
    const slices = Array.from({ length: size }, (_, r) => rankRows(rows, r, size));
    assert.equal(slices[0].lo, 0);
    assert.equal(slices[size - 1].hi, rows);
    for (let r = 1; r < size; r++) assert.equal(slices[r].lo, slices[r - 1].hi);
    const n = slices.map((s) => s.hi - s.lo);
    assert.ok(Math.max(...n) - Math.min(...n) <= 1, `${rows} rows over ${size}: ${n}`);
  }
  // An encoder batch: 3 rows of T = 4, padded; the slice keeps T and counts unpadded tokens.
  const ids = intTensor([1, 2, 3, 0, 4, 5, 0, 0, 6, 7, 8, 9], [3, 4]);
  const mask = intTensor([1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1], [3, 4]);
  const s = sliceRows({ ids, mask, typeIds: null, labels: intTensor([0, 1, 1], [3]), tokens: 9 }, 1, 3);
  assert.deepEqual([...s.ids.i32], [4, 5, 0, 0, 6, 7, 8, 9]);
  assert.deepEqual(s.ids.shape, [2, 4]);
  assert.deepEqual([...s.labels.i32], [1, 1]);
  assert.equal(s.tokens, 6);
  assert.equal(s.share, 2 / 3);
});

it('scripts/mpi-flags.cjs (binding.gyp): MPI found here, with the include directory of mpi.h; KDQAT_MPI=0 builds without it', () => {
  const flags = (what: string, env: Record<string, string> = {}): string =>
    spawnSync(process.execPath, ['scripts/mpi-flags.cjs', what], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } }).stdout;
  assert.equal(flags('has'), '1', `mpicc / pkg-config ompi not found: ${INSTALL}`);
  const dirs = flags('compile').split(/\s+/).filter((f) => f.startsWith('-I')).map((f) => f.slice(2));
  assert.ok(dirs.some((d) => fs.existsSync(path.join(d, 'mpi.h'))), flags('compile'));
  assert.match(flags('link'), /-lmpi\b/);
  for (const what of ['has', 'compile', 'link']) assert.equal(flags(what, { KDQAT_MPI: '0' }), what === 'has' ? '0' : '');
});

it('the collectives on 3 ranks: sums in rank order, gradients missing on some ranks, the parameter check', () => {
  const r = mpirun(3, ['--import', 'tsx', 'test/train/mpi-worker.ts']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (let k = 0; k < 3; k++) assert.match(r.stdout, new RegExp(`rank ${k} ok`));
});

it('kdqat qat --distributed mpi on 2 ranks equals one process with the same global batch, bit for bit; rank 0 writes', async () => {
  const root = tmpDir('dist-qat');
  const teacher = llamaTeacher(root);
  const common = ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--quant', 'w4-channel', '--loss', 'pred=1,rep=0.5', '--steps', '4',
    '--lr', '1e-3', '--warmup', '1', '--seq-len', '32', '--eval-every', '2', '--eval-windows', '2', '--log-every', '1', '--save-every', '2'];
  const two = path.join(root, 'two'), one = path.join(root, 'one');
  const r = mpirun(2, [BIN, ...common, '--batch', '4', '--distributed', 'mpi', '--out', two]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /rank 0 of 2 \(mpi\)/);
  assert.equal(r.stderr.match(/done: 4 steps/g)?.length, 1, 'only rank 0 reports');
  const s = await kdqat(...common, '--batch', '2', '--accumulate', '2', '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);

  for (const f of ['model.safetensors', 'model.quantized.safetensors']) {
    assert.ok(fs.readFileSync(path.join(two, 'student', f)).equals(fs.readFileSync(path.join(one, 'student', f))), `student/${f} differs`);
  }
  // The log: every loss term, gradient norm, signal statistic and evaluation equal (tokens/s aside).
  const strip = (l: Record<string, unknown>): Record<string, unknown> => ({ ...l, tokens_per_s: 0 });
  const logTwo = readTrainLog(path.join(two, 'qat_log.jsonl')), logOne = readTrainLog(path.join(one, 'qat_log.jsonl'));
  assert.equal(logTwo.length, 4);
  assert.deepEqual(logTwo.map(strip), logOne.map(strip));
  const sumTwo = JSON.parse(fs.readFileSync(path.join(two, 'summary.json'), 'utf8'));
  const sumOne = JSON.parse(fs.readFileSync(path.join(one, 'summary.json'), 'utf8'));
  assert.equal(sumTwo.tokens_seen, sumOne.tokens_seen, 'tokens are summed over the ranks');
  // (summary.final is not compared: the final evaluation batches by --batch, 4 against 2 rows.)
  // Rank 0 alone wrote: no second student or temp directory.
  assert.deepEqual(fs.readdirSync(two).sort(), ['.kdqat-output', 'checkpoint', 'qat_log.jsonl', 'student', 'summary.json']);

  // The checkpoint remembers the rank count: one process cannot resume it.
  const resumed = await kdqat('qat', '--out', two, '--resume', '--threads', '1');
  assert.equal(resumed.code, 2, 'a usage error');
  assert.match(resumed.stderr, /--resume: the checkpoint in .* was written by a run on 2 ranks, this run has 1; resume with the same count \(mpirun -np 2/);
});

it('an error on one rank ends every rank with a message naming it; an unknown engine is refused', async () => {
  const root = tmpDir('dist-err');
  const teacher = llamaTeacher(root);
  const r = mpirun(2, [BIN, 'qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '2', '--batch', '1', '--seq-len', '32',
    '--distributed', 'mpi', '--out', path.join(root, 'run')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /kdqat: rank [01] of 2: --batch 1 is smaller than the 2 MPI ranks: every rank takes at least one row of each batch; use --batch ≥ 2/);
  assert.match(r.stderr, /ending every rank of the MPI job/);

  const e = await kdqat('qat', '--teacher', teacher.dir, '--data', teacher.text, '--distributed', 'nccl', '--out', path.join(root, 'x'));
  assert.equal(e.code, 2, 'a usage error');
  assert.match(e.stderr, /--distributed nccl: not an engine kdqat has; use --distributed mpi/);
});

// An encoder (BERT classifier) teacher: padded rows of different lengths, so the ranks hold
// different token counts; each loss term is weighted by the rank's share of its normalizer
// (rows for pred/ce, tokens for rep, query/key pairs for attn_score, examples for attn_map:
// qat-data.ts termShares, checked exactly in test/train/qat-shares.test.ts). 2 ranks with
// --batch B then compute one process's --batch B objective, the float32 sums over the rows
// split in two: not bitwise. The bound at step 1 (same parameters) is the reordering bound of a
// forward and a backward pass, reorderBound(2·forwardDepth(L), B·T, κ), on every logged loss
// term and the gradient norm; afterwards a weight whose gradient is at rounding level can move
// by ±lr per AdamW step, so the students are within 2·Σ lr_s.
it('KD-QAT of an encoder classifier (pred+ce+rep+attn_map+attn_score) on 2 ranks: one process\'s --batch B within the reordering bound; rank 0 writes', async () => {
  const root = tmpDir('dist-qat-bert');
  const bert = bertTeacher(root);
  const B = 5, L = 2, steps = 4; // 5 rows: ranks of 2 and 3 rows
  const common = ['qat', '--teacher', bert.dir, '--task', bert.train, '--dev', bert.dev, '--quant', 'w4-channel',
    '--loss', 'pred=1,ce=0.5,rep=1,attn_map=1,attn_score=0.5', '--steps', String(steps), '--lr', '1e-3', '--warmup', '1',
    '--eval-every', '2', '--log-every', '1', '--save-every', '2', '--batch', String(B)];
  const two = path.join(root, 'two'), one = path.join(root, 'one');
  const r = mpirun(2, [BIN, ...common, '--distributed', 'mpi', '--out', two]);
  assert.equal(r.code, 0, r.stderr);
  const s = await kdqat(...common, '--threads', '1', '--out', one);
  assert.equal(s.code, 0, s.stderr);
  type Line = { loss: Record<string, number>; grad_norm: number; lr: number };
  const a = readTrainLog(path.join(two, 'qat_log.jsonl')) as unknown as Line[], b = readTrainLog(path.join(one, 'qat_log.jsonl')) as unknown as Line[];
  assert.equal(a.length, steps);
  // T: the longest padded row of a batch at most maxLen (seq-len default 128 ≥ this task's rows).
  const T = 128;
  const rel = reorderBound(2 * forwardDepth(L), B * T, KAPPA_MATMUL);
  const within = (x: number, y: number, what: string): void => assert.ok(Math.abs(x - y) <= rel * Math.abs(y), `step 1 ${what}: ${x} vs ${y} (bound ${rel} relative)`);
  assert.deepEqual(Object.keys(a[0].loss).sort(), ['attn_map', 'attn_score', 'ce', 'pred', 'rep', 'total']);
  for (const k of Object.keys(b[0].loss)) within(a[0].loss[k], b[0].loss[k], `loss.${k}`);
  within(a[0].grad_norm, b[0].grad_norm, 'grad_norm');
  const lrSum = b.reduce((n, l) => n + l.lr, 0);
  const file = (dir: string) => readSafetensors(path.join(dir, 'student', 'model.safetensors')).tensors;
  const [sa, sb] = [file(two), file(one)];
  assert.deepEqual([...sa.keys()].sort(), [...sb.keys()].sort());
  for (const [name, t] of sa) expectWithin(t.data as Float32Array, sb.get(name)!.data as Float32Array, 2 * lrSum, name);
  assert.deepEqual(fs.readdirSync(two).sort(), ['.kdqat-output', 'checkpoint', 'qat_log.jsonl', 'student', 'summary.json']);
});
