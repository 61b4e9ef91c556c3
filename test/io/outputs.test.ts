// Output safety (src/io/outputs.ts, src/io/files.ts): an output is never an input, inside one or
// around one; --force replaces only what kdqat marked as its own; temp files of a dead writer
// are removed, a live writer's are kept; fs errors name the path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  OUTPUT_MARKER, checkNotInput, checkOutput, removeStaleTemps, tempOwner, writeMarker,
} from '../../src/io/outputs.js';
import { explainFsError, openFileChecked, readFileChecked } from '../../src/io/files.js';
import { cleanUpOnFailure, prepareOutDir, resumeCheckpoint } from '../../src/train/outdir.js';
import { tmpDir } from '../util.js';

const tmp = tmpDir;
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('checkNotInput: an output that is, is inside, or contains an input is refused (also through a symlink)', () => {
  const root = tmp('outputs-input');
  const model = path.join(root, 'model');
  fs.mkdirSync(model);
  fs.writeFileSync(path.join(model, 'config.json'), '{}');
  const data = path.join(root, 'data.txt');
  fs.writeFileSync(data, 'text');
  const inputs = [{ flag: '--teacher', path: model }, { flag: '--data', path: data }, { flag: '--quant', path: 'w4-channel' }];
  assert.throws(() => checkNotInput('--out', model, inputs), new RegExp(`--out ${esc(model)}: is the input --teacher ${esc(model)}; .*even with --force`));
  assert.throws(() => checkNotInput('--out', path.join(model, 'sub'), inputs), /: is inside the input --teacher/);
  assert.throws(() => checkNotInput('--out', `${model}/./sub/..`, inputs), /: is the input --teacher/);
  assert.throws(() => checkNotInput('--out', root, inputs), /: contains the input --teacher/);
  assert.throws(() => checkNotInput('--out', data, inputs), /: is the input --data/);
  const link = path.join(root, 'link');
  fs.symlinkSync(model, link);
  assert.throws(() => checkNotInput('--out', path.join(link, 'x'), inputs), /is inside the input --teacher/);
  // A sibling, a name that only shares a prefix, and a name that is not a path are fine.
  checkNotInput('--out', path.join(root, 'model-out'), inputs);
  checkNotInput('--out', path.join(root, 'out'), [{ flag: '--data', path: 'sotu' }, { flag: '--x', path: undefined }]);
  fs.rmSync(root, { recursive: true });
});

test('checkOutput: --force replaces only a marked directory or a file; wrong kinds name the path', () => {
  const root = tmp('outputs-check');
  const foreign = path.join(root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  assert.equal(checkOutput(path.join(root, 'new'), { kind: 'dir' }), 'new');
  fs.mkdirSync(path.join(root, 'empty'));
  assert.equal(checkOutput(path.join(root, 'empty'), { kind: 'dir' }), 'new');
  assert.throws(() => checkOutput(foreign, { kind: 'dir' }), /already exists; refusing to overwrite it \(pass --force/);
  assert.throws(() => checkOutput(foreign, { kind: 'dir', force: true }), new RegExp(`--out ${esc(foreign)}: exists and was not written by kdqat \\(it has no ${esc(OUTPUT_MARKER)} marker\\)`));
  writeMarker(foreign);
  assert.equal(checkOutput(foreign, { kind: 'dir', force: true }), 'replace');
  // Legacy files stand for the marker (directories of an older kdqat).
  const old = path.join(root, 'old-student');
  fs.mkdirSync(old);
  fs.writeFileSync(path.join(old, 'quantization.json'), '{}');
  assert.equal(checkOutput(old, { kind: 'dir', force: true, legacy: ['quantization.json'] }), 'replace');
  // A file where a directory goes, a directory where a file goes, a file on the way.
  const file = path.join(root, 'file.gguf');
  fs.writeFileSync(file, 'x');
  assert.throws(() => checkOutput(file, { kind: 'dir', force: true }), new RegExp(`--out ${esc(file)}: is a file, not a directory`));
  assert.throws(() => checkOutput(foreign, { kind: 'file', force: true, flag: '--plot' }), new RegExp(`--plot ${esc(foreign)}: is a directory, but a file is written there`));
  assert.throws(() => checkOutput(path.join(file, 'x', 'y'), { kind: 'dir' }), new RegExp(`${esc(file)} is a file, not a directory`));
  assert.throws(() => checkOutput(file, { kind: 'file' }), /already exists; refusing to overwrite it/);
  assert.equal(checkOutput(file, { kind: 'file', force: true }), 'replace');
  fs.rmSync(root, { recursive: true });
});

test('temp names carry their writer\'s pid; removeStaleTemps removes only those of dead writers', () => {
  assert.equal(tempOwner('.checkpoint.tmp-123'), 123);
  assert.equal(tempOwner('.student.tmp-77.old'), 77);
  assert.equal(tempOwner('.final.tmp-5'), 5);
  assert.equal(tempOwner('.summary.json.tmp-42'), 42);
  assert.equal(tempOwner('notes.tmp-2024'), null, 'a visible name is never a temp');
  assert.equal(tempOwner('.student.tmp-9.tmp-9-k3x1'), 9);
  assert.equal(tempOwner('.model.onnx.tmp-12-aB3xYz'), 12);
  assert.equal(tempOwner('.model.safetensors.31.abc123.tmp'), 31);
  for (const name of ['student', 'checkpoint.old', 'qat_log.jsonl', 'notes.tmp', OUTPUT_MARKER]) assert.equal(tempOwner(name), null, name);
  const dir = tmp('outputs-stale');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  for (const n of [`.checkpoint.tmp-${deadPid}`, `.student.tmp-${deadPid}.old`]) fs.mkdirSync(path.join(dir, n));
  fs.writeFileSync(path.join(dir, `.x.${deadPid}.ab.tmp`), 'partial');
  fs.mkdirSync(path.join(dir, `.student.tmp-${process.pid}`)); // a live writer's: kept
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'k');
  assert.deepEqual(removeStaleTemps(dir).sort(), [`.checkpoint.tmp-${deadPid}`, `.student.tmp-${deadPid}.old`, `.x.${deadPid}.ab.tmp`].sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), [`.student.tmp-${process.pid}`, 'keep.txt']);
  // Only those of one output, by prefix.
  for (const n of [`.a.tmp-${deadPid}-x1`, `.b.tmp-${deadPid}-x2`]) fs.mkdirSync(path.join(dir, n));
  assert.deepEqual(removeStaleTemps(dir, '.a.tmp-'), [`.a.tmp-${deadPid}-x1`]);
  assert.ok(fs.existsSync(path.join(dir, `.b.tmp-${deadPid}-x2`)));
  fs.rmSync(dir, { recursive: true });
});

test('run directories: marked on creation; an abandoned one is reused without --force; a failure before any checkpoint leaves nothing', () => {
  const root = tmp('outputs-run');
  const out = path.join(root, 'run');
  prepareOutDir(out, {});
  assert.deepEqual(fs.readdirSync(out), [OUTPUT_MARKER]);
  // A run that died before its first checkpoint (a log, a temp dir): a new run needs no --force.
  fs.writeFileSync(path.join(out, 'qat_log.jsonl'), '{"step":1}\n');
  fs.mkdirSync(path.join(out, '.checkpoint.tmp-999999999'));
  prepareOutDir(out, {});
  assert.deepEqual(fs.readdirSync(out), [OUTPUT_MARKER]);
  // One with a checkpoint is worth keeping: --force (or --resume) needed.
  fs.mkdirSync(path.join(out, 'checkpoint'));
  assert.throws(() => prepareOutDir(out, {}), /already exists and is not empty; use --force/);
  prepareOutDir(out, { force: true });
  assert.deepEqual(fs.readdirSync(out), [OUTPUT_MARKER]);
  // Someone else's directory: not with --force either; and never the teacher's.
  const foreign = path.join(root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'config.json'), '{}');
  assert.throws(() => prepareOutDir(foreign, { force: true }), /exists and was not written by kdqat/);
  assert.throws(() => prepareOutDir(foreign, { force: true, inputs: [{ flag: '--teacher', path: foreign }] }), /is the input --teacher/);
  assert.deepEqual(fs.readdirSync(foreign), ['config.json']);
  // A run that fails after creating its directory and before a checkpoint: no directory left…
  const failed = path.join(root, 'failed');
  assert.throws(() => cleanUpOnFailure(failed, false, () => {
    prepareOutDir(failed, {});
    fs.writeFileSync(path.join(failed, 'qat_log.jsonl'), '');
    throw new Error('boom');
  }), /boom/);
  assert.ok(!fs.existsSync(failed));
  // …one that had saved a checkpoint keeps everything, and a resumed one is never touched.
  assert.throws(() => cleanUpOnFailure(out, false, () => { fs.mkdirSync(path.join(out, 'checkpoint')); throw new Error('late'); }), /late/);
  assert.ok(fs.existsSync(path.join(out, 'checkpoint')));
  fs.rmSync(root, { recursive: true });
});

test('resumeCheckpoint: checkpoint.old alone is put back; a partial checkpoint/ gives way to a complete checkpoint.old/', () => {
  const out = tmp('outputs-resume');
  const write = (dir: string, files: string[]): void => {
    fs.mkdirSync(path.join(out, dir), { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(out, dir, f), `${dir}/${f}`);
  };
  const all = ['model.safetensors', 'optimizer.safetensors', 'state.json'];
  write('checkpoint.old', all);
  assert.equal(resumeCheckpoint(out), path.join(out, 'checkpoint'));
  assert.deepEqual(fs.readdirSync(out), ['checkpoint']);
  assert.equal(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'), 'checkpoint.old/state.json');
  // Complete checkpoint + leftover old: the old one goes.
  write('checkpoint.old', all);
  resumeCheckpoint(out);
  assert.deepEqual(fs.readdirSync(out), ['checkpoint']);
  // Partial checkpoint (state.json lost) beside a complete old one: the old one is used.
  fs.rmSync(path.join(out, 'checkpoint', 'state.json'));
  write('checkpoint.old', all);
  resumeCheckpoint(out);
  assert.deepEqual(fs.readdirSync(path.join(out, 'checkpoint')).sort(), all);
  assert.deepEqual(fs.readdirSync(out), ['checkpoint']);
  fs.rmSync(path.join(out, 'checkpoint', 'optimizer.safetensors'));
  assert.equal(resumeCheckpoint(out), null);
  assert.throws(() => resumeCheckpoint(path.join(out, 'nope')), /does not exist, so there is nothing to resume/);
  fs.rmSync(out, { recursive: true });
});

test('fs errors name the path: a directory where a file is read, a file on the way, a full disk', () => {
  const root = tmp('outputs-fs');
  assert.throws(() => readFileChecked(root, 'utf8'), new RegExp(`^Error: ${esc(root)}: is a directory, but kdqat expects a file there`));
  assert.throws(() => openFileChecked(root), new RegExp(`${esc(root)}: is a directory, but kdqat expects a file there`));
  const f = path.join(root, 'f');
  fs.writeFileSync(f, 'x');
  assert.throws(() => readFileChecked(path.join(f, 'config.json')), new RegExp(`${esc(f)}/config.json: a part of this path is a file`));
  assert.throws(() => readFileChecked(path.join(root, 'missing')), /missing: no such file or directory/);
  for (const code of ['ENOSPC', 'EDQUOT', 'EFBIG']) {
    const e = explainFsError(Object.assign(new Error(`${code}: raw`), { code }), '/x/model.safetensors', 'write');
    assert.match(e.message, new RegExp(`^/x/model\\.safetensors: no space left while writing it \\(${code}: .*\\); free some space and run again$`));
    assert.equal(explainFsError(e, '/other', 'write'), e, 'explained once');
  }
  const other = new Error('not an fs error');
  assert.equal(explainFsError(other, 'f', 'read'), other);
  fs.rmSync(root, { recursive: true });
});
