// Model directories with the slow tokenizer's files and no tokenizer.json (src/io/tokenizer-from-vocab.ts):
// BERT's vocab.txt, RoBERTa's vocab.json + merges.txt;
// the tokenizer built from it encodes exactly as the tokenizer.json the same vocabulary came from,
// tokenizer_config.json's options and special tokens reach it, the commands run on such a
// directory, and what they write carries a tokenizer.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadModelDir, paramSpecOf, saveModelDir } from '../../src/io/model-dir.js';
import { parseHfConfig } from '../../src/models/registry.js';
import { loadTokenizer, trainByteLevelBpe, trainWordPiece } from '../../src/tokenize/index.js';
import { robertaBpeFromFiles, wordPieceFromVocab } from '../../src/io/tokenizer-from-vocab.js';
import type { TokenizerJson } from '../../src/tokenize/schema.js';
import { initParams } from '../../src/nn/params.js';
import { bertParamSpec, type BertConfig } from '../../src/models/bert.js';
import { tmpDir } from '../util.js';

const TEXT = [
  'The river flows to the sea, and the sea sings back to the river.',
  'Ships sail across the ocean; the harbour is quiet at dawn.',
  'Café owners in Zürich open early. 東京 is far away!',
];
const PROBES = ['The RIVER sings: "hello, sea!"', 'Zürich café — ships at 5am', '東京の川', 'unknownwordzzz qq', '[CLS] the [MASK] flows', ''];

const CFG: BertConfig = {
  vocabSize: 200, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32,
  maxPositionEmbeddings: 32, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: 'gelu',
  hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, initializerRange: 0.02, numLabels: 2,
};

/** vocab.txt of a tokenizer.json's WordPiece vocabulary: tokens in id order. */
function vocabTxt(json: TokenizerJson): string {
  const tokens: string[] = [];
  for (const [t, id] of Object.entries((json.model as { vocab: Record<string, number> }).vocab)) tokens[id] = t;
  return tokens.join('\n') + '\n';
}

test('vocab.txt + tokenizer_config.json → the tokenizer.json BertConverter makes: same ids as the original, options honoured', () => {
  const root = tmpDir('vocab-tok');
  const json = trainWordPiece([...TEXT, ...TEXT], { vocabSize: 120, minFrequency: 1 });
  const orig = path.join(root, 'orig.json');
  fs.writeFileSync(orig, JSON.stringify(json));
  const want = loadTokenizer(orig);
  const built = path.join(root, 'built.json');
  fs.writeFileSync(built, JSON.stringify(wordPieceFromVocab(vocabTxt(json), { do_lower_case: true }, 'vocab.txt')));
  const got = loadTokenizer(built);
  for (const p of PROBES) {
    assert.deepEqual(got.encode(p), want.encode(p), p);
    assert.deepEqual(got.encode(p, { addSpecialTokens: false }), want.encode(p, { addSpecialTokens: false }), p);
  }
  assert.deepEqual(got.specials, want.specials);
  assert.equal(got.vocabSize, want.vocabSize);
  // Cased (do_lower_case false) and strip_accents: the same as the original with those options.
  const cased = { ...json, normalizer: { ...(json.normalizer as object), lowercase: false, strip_accents: true } };
  fs.writeFileSync(orig, JSON.stringify(cased));
  const wantCased = loadTokenizer(orig);
  fs.writeFileSync(built, JSON.stringify(wordPieceFromVocab(vocabTxt(json), { do_lower_case: false, strip_accents: true }, 'vocab.txt')));
  const gotCased = loadTokenizer(built);
  for (const p of PROBES) assert.deepEqual(gotCased.encode(p), wantCased.encode(p), p);
  assert.notDeepEqual(gotCased.encode(PROBES[0]), got.encode(PROBES[0]), 'lowercasing changes the ids of an upper-case probe');
  // Special tokens by name from tokenizer_config.json ({content} form too); missing ones refused.
  const renamed = vocabTxt(json).replace('[UNK]\n', '<oov>\n');
  const j = wordPieceFromVocab(renamed, { unk_token: { content: '<oov>' } }, 'vocab.txt');
  assert.equal((j.model as { unk_token: string }).unk_token, '<oov>');
  assert.throws(() => wordPieceFromVocab(renamed, null, '/m/vocab.txt'), /\/m\/vocab\.txt: has no line "\[UNK\]" \(the unk_token, by default\)/);
  assert.throws(() => wordPieceFromVocab('', null, '/m/vocab.txt'), /\/m\/vocab\.txt: is empty/);
});

test('a BERT directory with vocab.txt only: loads, evaluates, and what export writes has tokenizer.json', () => {
  const root = tmpDir('vocab-dir');
  const json = trainWordPiece([...TEXT, ...TEXT], { vocabSize: 120, minFrequency: 1 });
  const full = path.join(root, 'full');
  saveModelDir(full, {
    config: { arch: 'bert', config: CFG, meta: { head: 'classifier', labels: ['neg', 'pos'] } },
    params: initParams(bertParamSpec(CFG, { classifier: true }), 3), tokenizerJson: json,
  });
  const bare = path.join(root, 'bare');
  fs.cpSync(full, bare, { recursive: true });
  fs.rmSync(path.join(bare, 'tokenizer.json'));
  fs.writeFileSync(path.join(bare, 'vocab.txt'), vocabTxt(json));
  fs.writeFileSync(path.join(bare, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true, tokenizer_class: 'BertTokenizer' }));
  const loaded = loadModelDir(bare);
  assert.ok(loaded.tokenizerPath, 'a tokenizer path');
  assert.notEqual(path.dirname(loaded.tokenizerPath!), bare, 'built elsewhere: the model directory is not written');
  const before = fs.readdirSync(bare).sort();
  loadModelDir(bare);
  assert.deepEqual(fs.readdirSync(bare).sort(), before, 'the model directory is left as it was');
  assert.ok(!before.includes('tokenizer.json'));
  const data = path.join(root, 'cls.jsonl');
  fs.writeFileSync(data, ['{"text": "the river flows", "label": "pos"}', '{"text": "ships at dawn", "label": "neg"}'].join('\n'));
  const run = (dir: string) => spawnSync(process.execPath, ['bin/kdqat.js', 'eval', '--model', dir, '--cls', data, '--json'], { encoding: 'utf8' });
  const a = run(full), b = run(bare);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(JSON.parse(b.stdout).results[0].accuracy, JSON.parse(a.stdout).results[0].accuracy);
  const out = path.join(root, 'out');
  const e = spawnSync(process.execPath, ['bin/kdqat.js', 'export', '--model', bare, '--format', 'safetensors', '--out', out], { encoding: 'utf8' });
  assert.equal(e.status, 0, e.stderr);
  const written = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(written.model.vocab, JSON.parse(fs.readFileSync(loaded.tokenizerPath!, 'utf8')).model.vocab);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).do_lower_case, true);
  // Errors name the user's file, never the temporary tokenizer.json.
  fs.appendFileSync(path.join(bare, 'vocab.txt'), Array.from({ length: 500 }, (_, i) => `extra${i}`).join('\n') + '\n');
  assert.throws(() => loadModelDir(bare), (err: Error) =>
    err.message.startsWith(`${path.join(bare, 'vocab.txt')}: the tokenizer has 620 tokens but`) && err.message.includes('vocab_size 200'));
});

test('RoBERTa vocab.json + merges.txt → the tokenizer.json RobertaConverter makes: same ids as the original BPE, <mask> takes the space before it', () => {
  const root = tmpDir('vocab-bpe');
  const json = trainByteLevelBpe([...TEXT, ...TEXT], {
    vocabSize: 300, minFrequency: 1, specialTokens: ['<s>', '<pad>', '</s>', '<unk>', '<mask>'], postProcessor: { bos: '<s>', eos: '</s>' },
  });
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const orig = path.join(root, 'orig.json');
  fs.writeFileSync(orig, JSON.stringify(json));
  const want = loadTokenizer(orig);
  const vocabJson = JSON.stringify(model.vocab), merges = `#version: 0.2\n${model.merges.join('\n')}\n`;
  const files = { vocab: '/m/vocab.json', merges: '/m/merges.txt' };
  const built = path.join(root, 'built.json');
  fs.writeFileSync(built, JSON.stringify(robertaBpeFromFiles(vocabJson, merges, null, files)));
  const got = loadTokenizer(built);
  for (const p of PROBES.filter((x) => !x.includes('[MASK]'))) {
    assert.deepEqual(got.encode(p), want.encode(p), p);
    assert.deepEqual(got.encode(p, { addSpecialTokens: false }), want.encode(p, { addSpecialTokens: false }), p);
  }
  const mask = model.vocab['<mask>'];
  assert.deepEqual(got.encode('the <mask>', { addSpecialTokens: false }), [...got.encode('the', { addSpecialTokens: false }), mask]);
  // A directory with them loads: the RoBERTa fixture's config.json with this vocabulary's size.
  const dir = path.join(root, 'roberta');
  const cfgJson = JSON.parse(fs.readFileSync(new URL('../fixtures/encoders/roberta/cls/config.json', import.meta.url), 'utf8'));
  const hf = parseHfConfig({ ...cfgJson, vocab_size: 300 }, 'config.json');
  const spec = new Map([...paramSpecOf(hf)].map(([n, v]) => [n, { shape: v.shape, init: { kind: 'normal' as const, std: 0.02 } }]));
  saveModelDir(dir, { config: hf, params: initParams(spec, 5) });
  fs.writeFileSync(path.join(dir, 'vocab.json'), vocabJson);
  fs.writeFileSync(path.join(dir, 'merges.txt'), merges);
  const loaded = loadModelDir(dir);
  assert.deepEqual(loadTokenizer(loaded.tokenizerPath!).encode(PROBES[0]), got.encode(PROBES[0]));
  fs.rmSync(path.join(dir, 'merges.txt'));
  assert.equal(loadModelDir(dir).tokenizerPath, undefined, 'vocab.json alone is not a tokenizer');
  // Errors name the file (and line) and the fix.
  assert.throws(() => robertaBpeFromFiles('[1]', merges, null, files), /\/m\/vocab\.json: must be a JSON object of token → id/);
  assert.throws(() => robertaBpeFromFiles(vocabJson, '#version: 0.2\nzz qq\n', null, files), /\/m\/merges\.txt:2: "zz qq" is not a merge of two tokens of vocab\.json/);
});
