// Reading a model directory safely (src/io/model-files.ts) and the load-time value checks
// (non-finite weights, code ranges): what the fuzz corpus exercises through the commands, here
// on the functions themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkShardName, modelFile, readModelText, unsafeWeightFiles } from '../../src/io/model-files.js';
import { checkFinite } from '../../src/io/safetensors.js';
import { codeRange, quantizeCodes } from '../../src/quant/rules.js';
import { FORMATS } from '../../src/quant/formats.js';
import '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { tmpDir } from '../util.js';

const tmp = (): string => tmpDir('mf');

test('modelFile: a file inside is returned, a link out of the directory or a directory is refused', () => {
  const root = tmp();
  try {
    const dir = path.join(root, 'model');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    fs.writeFileSync(path.join(root, 'secret.json'), '{}');
    assert.equal(modelFile(dir, 'config.json'), path.join(dir, 'config.json'));
    assert.equal(modelFile(dir, 'absent.json'), null);
    // A link to a file inside the directory is fine; out of it, absolute or relative, is not.
    fs.symlinkSync('config.json', path.join(dir, 'alias.json'));
    assert.equal(modelFile(dir, 'alias.json'), path.join(dir, 'alias.json'));
    fs.symlinkSync(path.join(root, 'secret.json'), path.join(dir, 'abs.json'));
    fs.symlinkSync('../secret.json', path.join(dir, 'rel.json'));
    for (const n of ['abs.json', 'rel.json']) assert.throws(() => modelFile(dir, n), /abs\.json|rel\.json/, n);
    assert.throws(() => modelFile(dir, 'rel.json'), /outside the model directory.*copy the file/);
    fs.symlinkSync('nowhere.json', path.join(dir, 'broken.json'));
    assert.throws(() => modelFile(dir, 'broken.json'), /broken symbolic link/);
    fs.mkdirSync(path.join(dir, 'tokenizer.json'));
    assert.throws(() => modelFile(dir, 'tokenizer.json'), /tokenizer\.json: is a directory/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('modelFile: the Hugging Face cache layout (snapshots/<rev>/f -> ../../blobs/x) loads; other repos\' blobs do not', () => {
  const root = tmp();
  try {
    const repo = path.join(root, 'models--a--b'), other = path.join(root, 'models--c--d');
    for (const r of [repo, other]) fs.mkdirSync(path.join(r, 'blobs'), { recursive: true });
    const snap = path.join(repo, 'snapshots', 'abc');
    fs.mkdirSync(snap, { recursive: true });
    fs.writeFileSync(path.join(repo, 'blobs', 'h1'), '{}');
    fs.writeFileSync(path.join(other, 'blobs', 'h2'), '{}');
    fs.symlinkSync('../../blobs/h1', path.join(snap, 'config.json'));
    fs.symlinkSync(path.join(other, 'blobs', 'h2'), path.join(snap, 'tokenizer.json'));
    assert.equal(modelFile(snap, 'config.json'), path.join(snap, 'config.json'));
    assert.throws(() => modelFile(snap, 'tokenizer.json'), /outside the model directory/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('checkShardName: plain .safetensors file names only', () => {
  assert.equal(checkShardName('i.json', 't', 'model-00001-of-00002.safetensors'), 'model-00001-of-00002.safetensors');
  for (const bad of ['../x.safetensors', '/abs/x.safetensors', 'a/b.safetensors', 'a\\b.safetensors', '..', '.', '', 7, null]) {
    assert.throws(() => checkShardName('i.json', 't', bad), /i\.json: weight_map\["t"\]/, String(bad));
  }
  assert.throws(() => checkShardName('i.json', 't', 'pytorch_model-00001.bin'), /never opens/);
  assert.throws(() => checkShardName('i.json', 't', 'model.gguf'), /does not end in \.safetensors/);
});

test('unsafeWeightFiles and readModelText', () => {
  const dir = tmp();
  try {
    for (const f of ['pytorch_model.bin', 'model.pt', 'config.json', 'model.safetensors', 'tf_model.h5']) fs.writeFileSync(path.join(dir, f), 'x');
    assert.deepEqual(unsafeWeightFiles(dir), ['model.pt', 'pytorch_model.bin', 'tf_model.h5']);
    fs.writeFileSync(path.join(dir, 'bad.json'), Buffer.from([0x7b, 0x22, 0x61, 0xff, 0x22, 0x7d]));
    assert.throws(() => readModelText(path.join(dir, 'bad.json')), /bad\.json: is not valid UTF-8 \(byte 0xff at offset 3\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checkFinite: names the file, the tensor, the index and the row/column of the first NaN/Inf', () => {
  const a = new Float32Array(12).fill(0.5);
  checkFinite(a, 'f.safetensors', 'w', [3, 4]);
  for (const v of [NaN, Infinity, -Infinity]) {
    const b = a.slice();
    b[7] = v;
    b[9] = NaN;
    assert.throws(() => checkFinite(b, 'f.safetensors', 'w', [3, 4]), new RegExp(`f\\.safetensors: tensor "w" has ${String(v).replace('+', '')} at index 7 \\(row 1, column 3\\)`));
  }
});

test('codeRange: the codes quantizeCodes writes lie in it and reach its ends; llama.cpp grids as the format table', () => {
  const rng = new Rng(3);
  const w = Float32Array.from({ length: 8 * 64 }, () => rng.normal());
  for (const bits of [2, 3, 4, 8]) {
    for (const kind of ['sym', 'asym'] as const) {
      const q = { rule: { kind, bits }, granule: { kind: 'channel' as const } };
      const [lo, hi] = codeRange(q.rule);
      const { codes, zeros } = quantizeCodes(w, 8, 64, q);
      const min = Math.min(...codes), max = Math.max(...codes);
      assert.ok(min >= lo && max <= hi, `${kind} ${bits}: codes [${min}, ${max}] in [${lo}, ${hi}]`);
      // asym spans the whole range; sym reaches its positive end (the max|w| element).
      if (kind === 'asym') assert.deepEqual([min, max], [lo, hi]);
      else assert.equal(max === hi || min === -hi, true);
      for (const z of zeros ?? []) assert.ok(z >= lo && z <= hi);
    }
  }
  assert.deepEqual(codeRange({ kind: 'twn' }), [-1, 1]);
  for (const f of Object.values(FORMATS)) assert.deepEqual(codeRange({ kind: f.rule } as never), [...f.grid.codes], f.name);
});
