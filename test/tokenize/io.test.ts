import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  loadTokenizer, readTokenizerJson, saveTokenizer, serializeTokenizer, trainByteLevelBpe, type TokenizerJson,
} from '../../src/tokenize/index.js';
import { BYTE_TO_CHAR } from '../../src/tokenize/bytes.js';
import { tmpDir } from './helpers.js';

let dir = '';
let small: TokenizerJson;
before(() => {
  dir = tmpDir('tokio');
  small = trainByteLevelBpe(['the cat sat on the mat, the cat sat', 'then the 1990s'], { vocabSize: 270, minFrequency: 1 });
});
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });
const at = (name: string): string => path.join(dir, name);
const write = (name: string, content: unknown): string => {
  fs.writeFileSync(at(name), typeof content === 'string' ? content : JSON.stringify(content));
  return at(name);
};

test('missing file, directory, invalid JSON: errors name the file and the fix', () => {
  const missing = at('nope/tokenizer.json');
  assert.throws(() => loadTokenizer(missing), (e: Error) =>
    e.message.startsWith(missing) && /no such tokenizer file; check the path/.test(e.message));
  assert.throws(() => loadTokenizer(dir), (e: Error) => e.message === `${dir}: is a directory; pass the tokenizer.json file inside it`);
  const truncated = write('truncated.json', serializeTokenizer(small).slice(0, 500));
  assert.throws(() => loadTokenizer(truncated), (e: Error) =>
    e.message.startsWith(`${truncated}: invalid JSON (`) && /truncated or not a tokenizer.json/.test(e.message));
  assert.throws(() => loadTokenizer(write('empty.json', '')), /empty.json: invalid JSON/);
});

test('unsupported tokenizer.json: says what is unsupported', () => {
  const cases: [string, (j: Record<string, any>) => unknown, RegExp][] = [
    ['wordlevel', (j) => ({ ...j, model: { type: 'WordLevel', vocab: {}, unk_token: '<unk>' } }),
      /wordlevel.json: unsupported tokenizer.json: model type "WordLevel" \(supported: BPE, WordPiece, Unigram\)/],
    ['nomodel', (j) => ({ ...j, model: undefined }), /unsupported tokenizer.json: no "model" object/],
    ['array', () => [1, 2], /unsupported tokenizer.json: the top level is not a JSON object/],
    ['pretok', (j) => ({ ...j, pre_tokenizer: { type: 'UnicodeScripts' } }),
      /unsupported tokenizer.json: pre_tokenizer type "UnicodeScripts" \(supported: BertPreTokenizer/],
    ['nested', (j) => ({ ...j, normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'ByteLevel' }] } }),
      /unsupported tokenizer.json: normalizer\[1\] type "ByteLevel"/],
    ['split', (j) => ({ ...j, pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false } }),
      /unsupported tokenizer.json: pre_tokenizer Split behavior MergedWithPrevious \(supported: Isolated, Removed\)/],
    ['dropout', (j) => ({ ...j, model: { ...j.model, dropout: 0.1 } }),
      /unsupported tokenizer.json: BPE dropout 0.1 \(set "dropout": null for inference\)/],
    ['merges', (j) => ({ ...j, model: { ...j.model, merges: undefined } }), /the BPE model has no "merges" array/],
    ['badid', (j) => ({ ...j, model: { ...j.model, vocab: { a: -1 } } }), /vocab entry "a" has id -1/],
    ['decoder', (j) => ({ ...j, decoder: { type: 'Nope' } }), /decoder type "Nope"/],
    ['added', (j) => ({ ...j, added_tokens: [{ content: 5 }] }), /added_tokens entry .* needs a string "content"/],
  ];
  const base = JSON.parse(serializeTokenizer(small));
  for (const [name, edit, re] of cases) {
    const f = write(`${name}.json`, edit(base));
    assert.throws(() => loadTokenizer(f), (e: Error) => e.message.startsWith(f) && re.test(e.message), name);
  }
});

test('missing optional top-level keys are fine; a GPT-2-style hand-written file loads', () => {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, i) => { vocab[c] = i; });
  vocab['Ġt'] = 256; vocab['he'] = 257; vocab['Ġthe'] = 258; vocab['<|endoftext|>'] = 259;
  const f = write('gpt2ish.json', {
    added_tokens: [{ id: 259, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he']] }, // new-style merges
  });
  for (const fast of [true, false]) {
    const t = loadTokenizer(f, { fast });
    assert.equal(t.fast, fast);
    assert.equal(t.vocabSize, 260);
    assert.deepEqual(t.specials, { bos: 259, eos: 259 });
    assert.deepEqual(t.encode(' the<|endoftext|>'), [258, 259]);
    assert.equal(t.decode([258, 259]), ' the<|endoftext|>');
    assert.equal(t.decode([258, 259], { skipSpecialTokens: true }), ' the');
    assert.equal(t.decode([]), '');
  }
});

test('saveTokenizer: refuses to overwrite without force, atomic, leaves no temp files', () => {
  const f = at('save/tokenizer.json');
  fs.mkdirSync(path.dirname(f));
  saveTokenizer(f, small);
  const first = fs.readFileSync(f, 'utf8');
  assert.equal(first, serializeTokenizer(small));
  const other = trainByteLevelBpe(['a b c a b c'], { vocabSize: 261, minFrequency: 1 });
  assert.throws(() => saveTokenizer(f, other), (e: Error) =>
    e.message === `${f}: already exists; refusing to overwrite it (use --force)`);
  assert.equal(fs.readFileSync(f, 'utf8'), first);
  saveTokenizer(f, other, { force: true });
  assert.equal(fs.readFileSync(f, 'utf8'), serializeTokenizer(other));
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['tokenizer.json']);
  assert.deepEqual(readTokenizerJson(f).model, JSON.parse(serializeTokenizer(other)).model);
  assert.throws(() => saveTokenizer(at('bad.json'), { model: { type: 'WordLevel' } } as never),
    /bad.json: unsupported tokenizer.json: model type "WordLevel"/);
  assert.ok(!fs.existsSync(at('bad.json')));
  assert.throws(() => saveTokenizer(at('no/such/dir/t.json'), small), /t.json: directory .* does not exist; create it first/);
});

test('serialized vocab is in id order with 2-space indents; parsing gives the same object', () => {
  const text = serializeTokenizer(small);
  const vocab = text.slice(text.indexOf('"vocab": {'), text.indexOf('"merges": ['));
  const ids = [...vocab.matchAll(/^ {6}".*": (\d+),?$/gm)].map((m) => Number(m[1]));
  assert.equal(ids.length, 270);
  assert.deepEqual(ids, Array.from({ length: 270 }, (_, i) => i));
  assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(small)));
  assert.ok(text.startsWith('{\n  "version": "1.0",\n  "truncation": null,'));
});
