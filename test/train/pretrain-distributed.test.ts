// `kdqat pretrain --distributed mpi` (src/train/pretrain.ts, src/train/distributed.ts): a 2-rank
// mpirun job against one process with the same global batch. The bound is exact, as for qat
// (test/train/distributed.test.ts): N ranks with --batch B compute bit for bit what one process
// computes with --batch B/N --accum N. Needs Open MPI; fails (never skips) without it.
import { it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, kdqat, smallTextFile, tmpDir } from '../cli/helpers.js';
import { mpirun, needMpi } from './mpi.js';

before(needMpi);

it('pretrain on 2 ranks equals one process with --batch B/2 --accum 2 bit for bit; rank 0 writes; masked-LM is refused by name', async () => {
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

  const bert = mpirun(2, [BIN, ...common, '--arch', 'bert', '--batch', '4', '--distributed', 'mpi', '--out', path.join(root, 'bert')]);
  assert.notEqual(bert.code, 0);
  assert.match(bert.stderr, /--distributed: --arch bert \(masked-LM pre-training\) is not supported on several ranks yet/);
});
