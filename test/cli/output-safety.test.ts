// Every command that writes refuses an output that is, contains or lies inside one of its inputs
// — with or without --force — and leaves the inputs byte for byte as they were; --force replaces
// only what kdqat wrote. A directory where a file is read is an error naming that path.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { bertTeacher, llamaTeacher } from '../train/qat-fixture.js';
import { kdqat, tmpDir } from './helpers.js';

/** Every file under `dir` (recursively) → sha256 of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const f = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out[path.relative(dir, f)] = createHash('sha256').update(fs.readFileSync(f)).digest('hex');
  }
  return out;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

it('no command writes over, into or around its inputs, even with --force; the inputs stay byte for byte', async () => {
  const root = tmpDir('cli-outsafe');
  const teacher = llamaTeacher(root);
  const bert = bertTeacher(root);
  const student = path.join(root, 'student-rtn');
  assert.equal((await kdqat('quantize', '--model', teacher.dir, '--quant', 'w4-channel', '--out', student)).code, 0);
  const records = path.join(root, 'bench.html');
  fs.writeFileSync(records, '{"bench": "gemm"}\n');
  const before = snapshot(root);
  const qat = ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '1', '--batch', '2', '--seq-len', '16', '--threads', '1'];
  const cases: [string[], RegExp][] = [
    // The two cases: qat into the teacher's own directory, export of a student onto itself.
    [[...qat, '--out', teacher.dir, '--force'], new RegExp(`--out ${esc(teacher.dir)}: is the input --teacher`)],
    [['export', '--format', 'safetensors', '--model', student, '--out', student, '--force'], /: is the input --model/],
    [[...qat, '--out', path.join(teacher.dir, 'run')], /: is inside the input --teacher/],
    [[...qat, '--out', root, '--force'], /: contains the input --teacher/],
    [[...qat, '--out', path.join(root, 'run'), '--cache-teacher', teacher.dir], /--cache-teacher .*: is the input --teacher/],
    [['export', '--format', 'gguf', '--model', teacher.dir, '--out', path.join(teacher.dir, 'model.safetensors'), '--force'], /: is inside the input --model/],
    [['export', '--format', 'onnx', '--model', teacher.dir, '--out', path.join(teacher.dir, 'onnx'), '--force'], /: is inside the input --model/],
    [['quantize', '--model', student, '--quant', 'w4-channel', '--out', student, '--force'], /: is the input --model/],
    [['quantize', '--model', teacher.dir, '--quant', 'w4-channel', '--out', root, '--force'], /: contains the input --model/],
    [['pretrain', '--corpus', teacher.text, '--out', root, '--force', '--steps', '1'], /: contains the input --corpus/],
    [['finetune', '--model', bert.dir, '--train', bert.train, '--dev', bert.dev, '--out', bert.dir, '--force'], /: is the input --model/],
    [['reproduce', 'ov-freeze', '--quick', '--teacher', teacher.dir, '--out', teacher.dir, '--force'], /: is the input --teacher/],
    [['bench', '--plot', records, '--records', records, '--force'], /: is the input --records/],
  ];
  for (const [args, message] of cases) {
    const r = await kdqat(...args);
    assert.equal(r.code, 1, `kdqat ${args.join(' ')} should fail: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /even with --force/, args.join(' '));
  }
  assert.deepEqual(snapshot(root), before, 'nothing was written, replaced or removed');
  fs.rmSync(root, { recursive: true });
});

it('--force replaces only kdqat\'s own output: a foreign directory is refused for every kind of output', async () => {
  const root = tmpDir('cli-outsafe-foreign');
  const teacher = llamaTeacher(root);
  const foreign = path.join(root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'thesis.tex'), 'years of work');
  for (const args of [
    ['qat', '--teacher', teacher.dir, '--data', teacher.text, '--steps', '1', '--batch', '2', '--seq-len', '16'],
    ['pretrain', '--corpus', teacher.text, '--steps', '1'],
    ['quantize', '--model', teacher.dir, '--quant', 'w4-channel'],
    ['export', '--format', 'safetensors', '--model', teacher.dir],
    ['export', '--format', 'onnx', '--model', teacher.dir],
    ['reproduce', 'ov-freeze', '--quick', '--teacher', teacher.dir],
  ]) {
    const r = await kdqat(...args, '--out', foreign, '--force');
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /exists and was not written by kdqat \(it has no \.kdqat-output marker\)/, args.join(' '));
  }
  // A directory where a GGUF file is written.
  const g = await kdqat('export', '--format', 'gguf', '--model', teacher.dir, '--out', foreign, '--force');
  assert.equal(g.code, 1);
  assert.match(g.stderr, /foreign: is a directory, but a file is written there/);
  assert.deepEqual(fs.readdirSync(foreign), ['thesis.tex']);
  // kdqat's own output is replaced with --force.
  const own = path.join(root, 'own');
  assert.equal((await kdqat('export', '--format', 'safetensors', '--model', teacher.dir, '--out', own)).code, 0);
  assert.ok(fs.existsSync(path.join(own, '.kdqat-output')));
  const again = await kdqat('export', '--format', 'safetensors', '--model', teacher.dir, '--out', own, '--force', '--dtype', 'f32');
  assert.equal(again.code, 0, again.stderr);
  fs.rmSync(root, { recursive: true });
});

it('a directory where a file is expected is an error naming that path, not a bare EISDIR', async () => {
  const root = tmpDir('cli-eisdir');
  const teacher = llamaTeacher(root);
  const broken = path.join(root, 'broken');
  fs.cpSync(teacher.dir, broken, { recursive: true });
  fs.rmSync(path.join(broken, 'model.safetensors'));
  fs.mkdirSync(path.join(broken, 'model.safetensors'));
  const quantDir = path.join(root, 'q.json');
  fs.mkdirSync(quantDir);
  const tokDir = path.join(root, 'tok');
  fs.mkdirSync(path.join(tokDir, 'tokenizer.json'), { recursive: true });
  const cases: [string[], string][] = [
    [['quantize', '--model', broken, '--quant', 'w4-channel', '--out', path.join(root, 'o1')], path.join(broken, 'model.safetensors')],
    [['eval', '--model', broken, '--text', teacher.text], path.join(broken, 'model.safetensors')],
    [['quantize', '--model', teacher.dir, '--quant', quantDir, '--out', path.join(root, 'o2')], quantDir],
    [['qat', '--config', quantDir, '--out', path.join(root, 'o3')], quantDir],
    [['export', '--format', 'gguf', '--model', teacher.dir, '--tokenizer', path.join(tokDir, 'tokenizer.json'), '--out', path.join(root, 'o.gguf')], path.join(tokDir, 'tokenizer.json')],
  ];
  for (const [args, file] of cases) {
    const r = await kdqat(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${esc(file)}: is a directory`), args.join(' '));
    assert.doesNotMatch(r.stderr, /EISDIR: illegal operation/);
  }
  for (const o of ['o1', 'o2', 'o3', 'o.gguf']) assert.ok(!fs.existsSync(path.join(root, o)), `${o} not created`);
  fs.rmSync(root, { recursive: true });
});
