import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as hf from '@huggingface/tokenizers';
import { Tokenizer } from '@huggingface/tokenizers';
import {
  loadTokenizer, saveTokenizer, serializeTokenizer, trainWordPiece, type LoadedTokenizer, type TokenizerJson,
} from '../../src/tokenize/index.js';
import { bertNormalize } from '../../src/tokenize/bert-text.js';
import type { WordPieceModelJson } from '../../src/tokenize/schema.js';
import { MOBY, Rng, SOTU, randomText, sameIds, tmpDir } from './helpers.js';

let dir = '';
let json: TokenizerJson;
let file = '';
let tok: LoadedTokenizer;
let lib: Tokenizer;
const PAD = 0, UNK = 1, CLS = 2, SEP = 3, MASK = 4;
before(() => {
  dir = tmpDir('wp');
  const t0 = performance.now();
  json = trainWordPiece(SOTU(), { vocabSize: 4096 });
  console.log(`trained WordPiece, vocab 4096, on SOTU in ${(performance.now() - t0).toFixed(0)} ms`);
  file = path.join(dir, 'tokenizer.json');
  saveTokenizer(file, json);
  tok = loadTokenizer(file);
  lib = new Tokenizer(JSON.parse(fs.readFileSync(file, 'utf8')), { clean_up_tokenization_spaces: false });
});
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const tokens = (ids: number[]): string[] => ids.map((id) => tok.idToToken(id)!);

test('vocab size is exact, specials first with fixed ids, BERT schema', () => {
  const model = json.model as WordPieceModelJson;
  assert.equal(Object.keys(model.vocab).length, 4096);
  assert.equal(tok.vocabSize, 4096);
  assert.deepEqual(Object.entries(model.vocab).filter(([, id]) => id < 5).sort((a, b) => a[1] - b[1]),
    [['[PAD]', 0], ['[UNK]', 1], ['[CLS]', 2], ['[SEP]', 3], ['[MASK]', 4]]);
  assert.deepEqual(tok.specials, { pad: PAD, unk: UNK, cls: CLS, sep: SEP, mask: MASK });
  assert.deepEqual(json.normalizer, { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true });
  assert.deepEqual(json.pre_tokenizer, { type: 'BertPreTokenizer' });
  assert.deepEqual(json.decoder, { type: 'WordPiece', prefix: '##', cleanup: true });
  assert.equal(model.continuing_subword_prefix, '##');
  assert.equal(model.max_input_chars_per_word, 100);
  assert.equal(model.unk_token, '[UNK]');
  assert.deepEqual(JSON.parse(JSON.stringify(json.post_processor)), {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [CLS], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [SEP], tokens: ['[SEP]'] },
    },
  });
  for (const t of Object.keys(model.vocab)) assert.ok(t === t.toLowerCase() || t.startsWith('['), `lowercase vocab: ${t}`);
});

test('[CLS] $A [SEP] template, pair template with type ids, addSpecialTokens: false', () => {
  const ids = tok.encode('The Congress');
  assert.equal(ids[0], CLS);
  assert.equal(ids.at(-1), SEP);
  assert.deepEqual(tok.encode('The Congress', { addSpecialTokens: false }), ids.slice(1, -1));
  const pair = lib.encode('the congress', { text_pair: 'the people', return_token_type_ids: true });
  assert.deepEqual(pair.tokens, ['[CLS]', 'the', 'congress', '[SEP]', 'the', 'people', '[SEP]']);
  assert.deepEqual(pair.token_type_ids, [0, 0, 0, 0, 1, 1, 1]);
});

test('## continuation pieces: longest match first, decoded back into words', () => {
  const ids = tok.encode('Unquestionably, antidisestablishmentarianism!', { addSpecialTokens: false });
  const toks = tokens(ids);
  assert.ok(toks.length > 4);
  const words: string[][] = [];
  for (const t of toks) {
    if (t.startsWith('##')) words.at(-1)!.push(t.slice(2));
    else words.push([t]);
  }
  assert.deepEqual(words.map((w) => w.join('')), ['unquestionably', ',', 'antidisestablishmentarianism', '!']);
  assert.ok(toks.some((t) => t.startsWith('##')));
  assert.equal(tok.decode(ids), 'unquestionably, antidisestablishmentarianism!'); // cleanup: ' ,' -> ','
});

test('normalization: lowercase, accents stripped, punctuation split, CJK spaced', () => {
  sameIds(tok.encode('HÉLLO, Wörld'), tok.encode('hello , world'), 'accents');
  assert.deepEqual(tokens(tok.encode('a.b', { addSpecialTokens: false })), ['a', '.', 'b']);
  assert.deepEqual(tokens(tok.encode('中文', { addSpecialTokens: false })), ['[UNK]', '[UNK]']);
});

test('[UNK] for unknown characters and words over 100 characters', () => {
  assert.deepEqual(tok.encode('🙂'), [CLS, UNK, SEP]);
  assert.deepEqual(tokens(tok.encode('the n🙂n word', { addSpecialTokens: false })), ['the', '[UNK]', 'word']);
  assert.deepEqual(tok.encode('a'.repeat(101), { addSpecialTokens: false }), [UNK]);
  assert.notDeepEqual(tok.encode('a'.repeat(100), { addSpecialTokens: false }), [UNK]);
  assert.equal(tok.decode(tok.encode('the 🙂 word')), '[CLS] the [UNK] word [SEP]');
  assert.equal(tok.decode(tok.encode('the 🙂 word'), { skipSpecialTokens: true }), 'the word'); // [UNK] is special, as in HF
});

test('fast codec equals the library on SOTU (every 8th address) and Moby-Dick; SOTU encodes in seconds', () => {
  const all = SOTU().join('\n\n');
  const t0 = performance.now();
  const ids = tok.encode(all);
  console.log(`fast WordPiece encode of SOTU: ${(performance.now() - t0).toFixed(0)} ms (${ids.length} tokens)`);
  assert.ok(ids.filter((id) => id === UNK).length < ids.length / 1000);
  const every = process.env.KDQAT_FULL_TOKENIZE === '1' ? 1 : 8;
  SOTU().forEach((doc, i) => {
    if (i % every === 0) sameIds(tok.encode(doc), lib.encode(doc).ids, `SOTU document ${i}`);
  });
  const moby = MOBY();
  const mobyIds = tok.encode(moby);
  sameIds(mobyIds, lib.encode(moby).ids, 'Moby-Dick');
  assert.equal(tok.decode(mobyIds.slice(0, 5000), { skipSpecialTokens: true }),
    lib.decode(mobyIds.slice(0, 5000), { skip_special_tokens: true }));
});

test('fast codec equals the library on random Unicode (normalizer, splitting, decode)', () => {
  const rng = new Rng(7);
  // Exported at run time; its .d.ts re-export does not resolve under NodeNext.
  const { BertNormalizer } = hf as unknown as { BertNormalizer: new (config: object) => { normalize(s: string): string } };
  const norm = new BertNormalizer({ ...json.normalizer });
  for (let k = 0; k < 1500; k++) {
    const s = randomText(rng);
    assert.equal(bertNormalize(s, json.normalizer as never), norm.normalize(s), `normalize ${JSON.stringify(s)}`);
    const ids = tok.encode(s);
    sameIds(ids, lib.encode(s).ids, `encode ${JSON.stringify(s)}`);
    assert.equal(tok.decode(ids), lib.decode(ids), `decode ${JSON.stringify(s)}`);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), lib.decode(ids, { skip_special_tokens: true }));
  }
});

test('training is deterministic; options are checked', () => {
  const texts = SOTU().slice(0, 30);
  const a = serializeTokenizer(trainWordPiece(texts, { vocabSize: 1500 }));
  const b = serializeTokenizer(trainWordPiece(texts.values(), { vocabSize: 1500 }));
  assert.equal(a, b);
  assert.throws(() => trainWordPiece(texts, { vocabSize: 1500, specialTokens: ['[PAD]', '[CLS]', '[SEP]'] }),
    /must include \[UNK\]/);
  assert.throws(() => trainWordPiece(texts, { vocabSize: 20 }), /vocabSize must be an integer >= \d+ \(5 special tokens \+ \d+ characters and ##characters\)/);
  const cased = trainWordPiece(texts, { vocabSize: 1500, lowercase: false, limitAlphabet: 60 });
  assert.equal(cased.normalizer!.lowercase, false);
  assert.ok(Object.hasOwn((cased.model as WordPieceModelJson).vocab, 'The'));
});
