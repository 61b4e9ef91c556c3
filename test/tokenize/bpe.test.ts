import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import {
  loadTokenizer, saveTokenizer, serializeTokenizer, trainByteLevelBpe, type LoadedTokenizer, type TokenizerJson,
} from '../../src/tokenize/index.js';
import { BYTE_TO_CHAR } from '../../src/tokenize/bytes.js';
import type { BpeModelJson } from '../../src/tokenize/schema.js';
import { MOBY, Rng, SOTU, randomText, sameIds, tmpDir } from './helpers.js';

let dir = '';
let json: TokenizerJson;
let file = '';
let tok: LoadedTokenizer; // fast codec
let lib: Tokenizer; // the reference
before(() => {
  dir = tmpDir('bpe');
  const t0 = performance.now();
  json = trainByteLevelBpe(SOTU(), { vocabSize: 4096, specialTokens: ['<s>', '</s>', '<pad>'] });
  console.log(`trained byte-level BPE, vocab 4096, on SOTU (10.8 MB) in ${(performance.now() - t0).toFixed(0)} ms`);
  file = path.join(dir, 'tokenizer.json');
  saveTokenizer(file, json);
  tok = loadTokenizer(file);
  lib = new Tokenizer(JSON.parse(fs.readFileSync(file, 'utf8')), { clean_up_tokenization_spaces: false });
});
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

test('vocab size is exact; specials have ids 0..2; all 256 bytes present; HF schema', () => {
  const model = json.model as BpeModelJson;
  assert.equal(Object.keys(model.vocab).length, 4096);
  assert.equal(tok.vocabSize, 4096);
  assert.equal(new Set(Object.values(model.vocab)).size, 4096);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special, t.normalized]),
    [[0, '<s>', true, false], [1, '</s>', true, false], [2, '<pad>', true, false]]);
  assert.deepEqual(tok.specials, { bos: 0, eos: 1, pad: 2 });
  for (const c of BYTE_TO_CHAR) assert.ok(Object.hasOwn(model.vocab, c), `byte token ${c}`);
  assert.equal(model.vocab['Ġ'], 3 + BYTE_TO_CHAR.filter((c) => c < 'Ġ').length);
  // One merge per learned token, plus any merge that spells an existing token a second way.
  assert.ok(model.merges.length >= 4096 - 259);
  for (const m of model.merges as string[]) {
    const [a, b, extra] = m.split(' ');
    assert.ok(extra === undefined && Object.hasOwn(model.vocab, a) && Object.hasOwn(model.vocab, b) && Object.hasOwn(model.vocab, a + b), m);
  }
  assert.deepEqual(Object.keys(json), ['version', 'truncation', 'padding', 'added_tokens', 'normalizer',
    'pre_tokenizer', 'post_processor', 'decoder', 'model']);
  assert.deepEqual(json.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.equal(json.decoder!.type, 'ByteLevel');
  assert.equal(model.merges[0], 'Ġ t'); // the most frequent pair in English
});

test('the saved file lists the vocab in id order and loads in @huggingface/tokenizers', () => {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.indexOf('"<s>": 0') < text.indexOf('"!": 3') && text.indexOf('"!": 3') < text.indexOf('"1": '));
  assert.equal(lib.token_to_id('Ġthe'), tok.tokenToId('Ġthe'));
  const words = lib.tokenize(' the people of the United States');
  assert.deepEqual(words, ['Ġthe', 'Ġpeople', 'Ġof', 'Ġthe', 'ĠUnited', 'ĠStates']);
  assert.deepEqual(words.map((w) => tok.tokenToId(w)), tok.encode(' the people of the United States'));
});

test('round trip and library equality on the whole SOTU corpus (fast codec)', () => {
  const all = SOTU().join('\n\n');
  let t0 = performance.now();
  const ids = tok.encode(all);
  const encMs = performance.now() - t0;
  t0 = performance.now();
  assert.equal(tok.decode(ids), all);
  console.log(`fast encode of SOTU: ${encMs.toFixed(0)} ms (${ids.length} tokens), decode ${(performance.now() - t0).toFixed(0)} ms`);
  assert.ok(ids.length < all.length / 4, 'a 4096 vocab compresses English > 4 bytes/token');
  // The library is ~10x slower: compare with it on every 8th address (all with KDQAT_FULL_TOKENIZE=1).
  const every = process.env.KDQAT_FULL_TOKENIZE === '1' ? 1 : 8;
  SOTU().forEach((doc, i) => {
    if (i % every === 0) sameIds(tok.encode(doc), lib.encode(doc).ids, `SOTU document ${i}`);
  });
});

test('fast codec equals the library on Moby-Dick (encode and decode)', () => {
  const text = MOBY();
  const ids = tok.encode(text);
  sameIds(ids, lib.encode(text).ids, 'Moby-Dick');
  assert.equal(tok.decode(ids), text);
});

test('round trip of random Unicode: emoji, CJK, combining marks, \\r\\n, tabs, spaces, specials', () => {
  const rng = new Rng(2024);
  const slow = loadTokenizer(file, { fast: false });
  assert.equal(slow.fast, false);
  for (let k = 0; k < 1500; k++) {
    const s = randomText(rng);
    const ids = tok.encode(s);
    sameIds(ids, slow.encode(s), `random text ${JSON.stringify(s)}`);
    assert.equal(tok.decode(ids), s, `fast round trip of ${JSON.stringify(s)}`);
    assert.equal(slow.decode(ids), s, `library round trip of ${JSON.stringify(s)}`);
  }
  for (const s of ['', ' ', '\r\n\r\n', '\t \t', ' '.repeat(1000), 'a'.repeat(5000), '😀'.repeat(300), '\ufeffBOM']) {
    assert.equal(tok.decode(tok.encode(s)), s);
    sameIds(tok.encode(s), slow.encode(s), JSON.stringify(s.slice(0, 20)));
  }
});

test('long pre-tokens (heap merge path) match the library id for id', () => {
  const rng = new Rng(5);
  const run = (chars: string, n: number): string => Array.from({ length: n }, () => chars[rng.int(chars.length)]).join('');
  const sample = (): string => [run('ab', 1 + rng.int(400)), run('01', 1 + rng.int(400)), run('=-', 1 + rng.int(300))]
    .join(rng.uniform() < 0.5 ? ' ' : '');
  const j = trainByteLevelBpe(Array.from({ length: 40 }, sample), { vocabSize: 420, minFrequency: 1 });
  const f = path.join(dir, 'long.json');
  saveTokenizer(f, j);
  const fast = loadTokenizer(f), slow = loadTokenizer(f, { fast: false });
  for (let k = 0; k < 100; k++) {
    const s = sample();
    sameIds(fast.encode(s), slow.encode(s), `long sample ${k}`);
  }
  for (const s of ['the'.repeat(700), 'a'.repeat(3001), '0'.repeat(999), ' '.repeat(2000) + 'x', 'Ab'.repeat(64)]) {
    sameIds(tok.encode(s), lib.encode(s).ids, s.slice(0, 12));
    assert.equal(tok.decode(tok.encode(s)), s);
  }
});

test('a lone surrogate cannot be UTF-8 encoded: it decodes as U+FFFD (as in every byte-level BPE)', () => {
  assert.equal(tok.decode(tok.encode('a\ud800b')), 'a\ufffdb');
  sameIds(tok.encode('a\ud800b'), lib.encode('a\ud800b').ids, 'lone surrogate');
});

test('special tokens: cut out of the text, kept or skipped on decode', () => {
  const ids = tok.encode('<s>Hello</s><pad>');
  assert.equal(ids[0], 0);
  assert.deepEqual(ids.slice(-2), [1, 2]);
  assert.equal(tok.decode(ids), '<s>Hello</s><pad>');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'Hello');
  assert.deepEqual(tok.encode('Hello', { addSpecialTokens: true }), tok.encode('Hello', { addSpecialTokens: false }));
  assert.throws(() => tok.decode([4096]), /token id 4096 is not in the vocab/);
  assert.throws(() => tok.decode([1.5]), /token id 1.5/);
});

test('TemplateProcessing post-processor adds bos/eos like LLaMA-3 and matches the library', () => {
  const texts = SOTU().slice(0, 20);
  const j = trainByteLevelBpe(texts, { vocabSize: 600, postProcessor: { bos: '<s>', eos: '</s>' } });
  assert.equal(j.post_processor!.type, 'TemplateProcessing');
  const f = path.join(dir, 'template.json');
  saveTokenizer(f, j);
  const t = loadTokenizer(f);
  const ref = loadTokenizer(f, { fast: false });
  const ids = t.encode('Fellow citizens');
  assert.equal(ids[0], 0);
  assert.equal(ids.at(-1), 1);
  sameIds(ids, ref.encode('Fellow citizens'), 'template');
  sameIds(t.encode('Fellow citizens', { addSpecialTokens: false }), ids.slice(1, -1), 'no specials');
  assert.equal(t.decode(ids, { skipSpecialTokens: true }), 'Fellow citizens');
});

test('training is deterministic: same input gives byte-identical JSON', () => {
  const texts = SOTU().slice(0, 40);
  const a = serializeTokenizer(trainByteLevelBpe(texts, { vocabSize: 1200 }));
  function* gen(): Generator<string> { yield* texts; }
  const b = serializeTokenizer(trainByteLevelBpe(gen(), { vocabSize: 1200 }));
  assert.equal(a, b);
  const c = serializeTokenizer(trainByteLevelBpe(texts, { vocabSize: 1201 }));
  assert.notEqual(a, c);
});

test('tokens named like Object.prototype members are plain vocab entries', () => {
  const words = ['constructor', 'toString', 'hasOwnProperty', '__proto__'];
  const texts = Array.from({ length: 50 }, (_, i) => words[i % 4]);
  // GPT-2's split makes "__proto__" three pre-tokens: "__", "proto", "__".
  const j = trainByteLevelBpe(texts, { vocabSize: 288, specialTokens: ['<|endoftext|>'], minFrequency: 1 });
  const f = path.join(dir, 'proto.json');
  saveTokenizer(f, j);
  const t = loadTokenizer(f);
  for (const w of ['constructor', 'toString', 'hasOwnProperty']) {
    assert.equal(typeof t.tokenToId(w), 'number', w);
    assert.deepEqual(t.encode(w), [t.tokenToId(w)]);
  }
  assert.deepEqual(t.encode('__proto__').map((id) => t.idToToken(id)), ['__', 'proto', '__']);
  assert.deepEqual(t.specials, { bos: 0, eos: 0 }); // GPT-2 convention
});

test('bad options fail with a clear message', () => {
  assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 100 }), /vocabSize must be an integer >= 259/);
  assert.throws(() => trainByteLevelBpe(['abc abc'], { vocabSize: 300 }), /corpus yields only 26\d tokens.*fewer than vocabSize 300/);
  assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 300, specialTokens: ['<s>', '<s>'] }), /listed twice/);
  assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 300, specialTokens: ['a'] }), /also a byte token/);
  assert.throws(() => trainByteLevelBpe(['abc'], { vocabSize: 300, postProcessor: { bos: '<bos>' } }), /not in specialTokens/);
});
