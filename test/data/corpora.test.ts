import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCorpus } from '../../src/data/corpora.js';
import { detokenize, brownToText, BROWN_GENRES } from '../../src/data/brown.js';

const chars = (docs: { text: string }[]) => docs.reduce((s, d) => s + d.text.length, 0);

test('sotu: 233 addresses 1790–2021, ~10 MB, year/president metadata', () => {
  const c = loadCorpus('sotu');
  assert.ok(c.documents.length >= 230, `${c.documents.length} addresses`);
  const size = chars(c.documents);
  assert.ok(size > 9e6 && size < 12e6, `${size} chars`);
  const first = c.documents[0];
  assert.equal(first.meta.year, 1790);
  assert.equal(first.meta.president, 'George Washington');
  assert.match(first.text, /^Fellow-Citizens of the Senate/);
  const years = c.documents.map((d) => d.meta.year as number);
  assert.equal(Math.max(...years), 2021);
  assert.equal(new Set(c.documents.map((d) => d.id)).size, c.documents.length, 'ids unique (1953 has two addresses)');
});

test('brown: 500 files, 15 genres, tags stripped, paragraphs kept', () => {
  const c = loadCorpus('brown');
  assert.equal(c.documents.length, 500);
  const genres = new Set(c.documents.map((d) => d.meta.genre));
  assert.equal(genres.size, 15);
  assert.deepEqual([...genres].sort(), Object.keys(BROWN_GENRES).sort());
  const ca01 = c.documents.find((d) => d.id === 'brown/ca01')!;
  assert.equal(ca01.meta.genreName, 'Press: reportage');
  assert.equal(ca01.meta.category, 'news');
  assert.match(ca01.text, /^The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place\.\n\n/);
  for (const d of c.documents) {
    assert.doesNotMatch(d.text, /[A-Za-z]\/(nn|at|in|vbd|np|jj|cc)\b/, `${d.id} has a tag left`);
    // '' survives only in measurements like 4' 10'' (inches).
    assert.doesNotMatch(d.text, /``|[^0-9]''| [,.;:!?](\s|$)/, `${d.id} has an undetokenized quote or punctuation`);
  }
  assert.ok(ca01.text.split('\n\n').length > 20, 'paragraph breaks kept');
  const words = c.documents.reduce((s, d) => s + d.text.split(/\s+/).length, 0);
  assert.ok(words > 950_000 && words < 1_100_000, `${words} words`);
});

test('brown detokenization examples', () => {
  assert.equal(detokenize(['He', 'said', ',', '``', 'no', "''", '.']), 'He said, "no".');
  assert.equal(detokenize(['(', 'see', 'above', ')', ';', 'then', 'stop', '!']), '(see above); then stop!');
  assert.equal(detokenize(['do', "n't", 'go', 'to', 'John', "'s", 'house', '?']), "don't go to John's house?");
  assert.equal(detokenize(['a', "'", 'pro', "'", 'stance', ':', 'yes']), "a 'pro' stance: yes");
  assert.equal(detokenize(['Ivan', 'Allen', 'Jr.', '.']), 'Ivan Allen Jr.');
  assert.equal(detokenize(['it', 'cost', '$', '5', '--', 'or', '50', '%', 'more']), 'it cost $5 -- or 50% more');
  assert.equal(brownToText('\n\n\tThe/at dog/nn ran/vbd ./.\nIt/pps sat/vbd ./.\n\n\nNews/nn-hl \nA/at cat/nn ./.\n'),
    'The dog ran. It sat.\n\nNews\n\nA cat.');
});

test('moby-dick: 135 chapters plus the epilogue', () => {
  const c = loadCorpus('moby-dick');
  assert.equal(c.documents.length, 136);
  assert.equal(c.documents.filter((d) => (d.meta.chapter as number) <= 135).length, 135);
  assert.match(c.documents[0].text, /^Call me Ishmael\./);
  assert.equal(c.documents[0].meta.title, 'Loomings.');
  assert.match(c.documents[135].text, /^The drama's done\./);
  const size = chars(c.documents);
  assert.ok(size > 1.1e6 && size < 1.3e6, `${size} chars`);
});

test('unknown corpus names the fix', () => {
  assert.throws(() => loadCorpus('nope' as 'sotu'), /nope: unknown corpus — use one of sotu, brown, moby-dick/);
});
