import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitDocuments, splitChronological, splitCorpus, splitOf, splitStratified } from '../../src/data/splits.js';
import { loadCorpus } from '../../src/data/corpora.js';
import type { Document } from '../../src/data/types.js';

const docs = (n: number, prefix = 'doc'): Document[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, text: `text ${i}`, meta: { year: 1900 + i } }));
const ids = (ds: { id: string }[]) => ds.map((d) => d.id);

test('hash split: deterministic, disjoint, covering, near the requested fractions', () => {
  const all = docs(4000);
  const a = splitDocuments(all, { valid: 0.05, test: 0.05, seed: 7 });
  const b = splitDocuments(all, { valid: 0.05, test: 0.05, seed: 7 });
  assert.deepEqual(ids(a.test), ids(b.test));
  assert.deepEqual(ids(a.valid), ids(b.valid));
  const seen = new Set([...ids(a.train), ...ids(a.valid), ...ids(a.test)]);
  assert.equal(seen.size, all.length);
  assert.equal(a.train.length + a.valid.length + a.test.length, all.length);
  for (const part of [a.valid, a.test]) assert.ok(Math.abs(part.length - 200) < 45, `${part.length} ≈ 200`);
  const other = splitDocuments(all, { valid: 0.05, test: 0.05, seed: 8 });
  assert.notDeepEqual(ids(other.test), ids(a.test), 'another seed gives another split');
});

test('hash split: adding documents or reordering does not move existing ones', () => {
  const base = docs(500);
  const s1 = splitDocuments(base, { seed: 1 });
  const grown = [...docs(50, 'new'), ...base].reverse();
  const s2 = splitDocuments(grown, { seed: 1 });
  for (const part of ['train', 'valid', 'test'] as const) {
    const before = new Set(ids(s1[part]));
    assert.deepEqual(ids(s2[part]).filter((id) => !id.startsWith('new')).sort(), [...before].sort());
  }
  assert.equal(splitOf('doc-3', { seed: 1 }), s1.test.some((d) => d.id === 'doc-3') ? 'test' : s1.valid.some((d) => d.id === 'doc-3') ? 'valid' : 'train');
});

test('bad fractions are rejected', () => {
  assert.throws(() => splitDocuments(docs(3), { valid: 0.6, test: 0.5 }), /sum to less than 1/);
});

test('chronological split holds out the latest documents', () => {
  const s = splitChronological(docs(100).reverse(), (d) => d.meta.year as number, { valid: 0.1, test: 0.2 });
  assert.deepEqual([s.train.length, s.valid.length, s.test.length], [70, 10, 20]);
  assert.equal(s.test[0].meta.year, 1980);
  assert.equal(s.valid[0].meta.year, 1970);
  assert.ok(s.train.every((d) => (d.meta.year as number) < 1970));
});

test('SOTU chronological split: the 12 latest addresses are held out', () => {
  const c = loadCorpus('sotu');
  const s = splitCorpus(c, { method: 'chronological' });
  assert.equal(s.test.length, 12);
  assert.equal(s.valid.length, 12);
  const maxTrain = Math.max(...s.train.map((d) => d.meta.year as number));
  const minValid = Math.min(...s.valid.map((d) => d.meta.year as number));
  const minTest = Math.min(...s.test.map((d) => d.meta.year as number));
  assert.ok(maxTrain <= minValid && minValid <= minTest, `${maxTrain} ≤ ${minValid} ≤ ${minTest}`);
  assert.equal(s.test.at(-1)!.meta.year, 2021);
  assert.throws(() => splitCorpus(loadCorpus('moby-dick'), { method: 'chronological' }), /no numeric "year"/);
});

test('stratified split: each stratum split in the requested proportions, deterministic, order-free', () => {
  const all = docs(300).map((d, i) => ({ ...d, meta: { genre: ['a', 'b', 'c'][i % 3] + (i < 30 ? 'x' : '') } }));
  const s = splitStratified(all, (d) => d.meta.genre as string, { valid: 0.1, test: 0.2, seed: 3 });
  const count = (part: Document[], g: string) => part.filter((d) => d.meta.genre === g).length;
  for (const [g, n] of [['a', 90], ['b', 90], ['c', 90], ['ax', 10], ['bx', 10], ['cx', 10]] as const) {
    assert.equal(count(s.test, g), Math.round(0.2 * n), `test ${g}`);
    assert.equal(count(s.valid, g), Math.round(0.1 * n), `valid ${g}`);
  }
  assert.equal(new Set([...ids(s.train), ...ids(s.valid), ...ids(s.test)]).size, all.length);
  const r = splitStratified([...all].reverse(), (d) => d.meta.genre as string, { valid: 0.1, test: 0.2, seed: 3 });
  assert.deepEqual(ids(r.test).sort(), ids(s.test).sort());
  assert.notDeepEqual(ids(splitStratified(all, (d) => d.meta.genre as string, { valid: 0.1, test: 0.2, seed: 4 }).test), ids(s.test));
  // Brown: the 15 genre categories split 10%/10% each (500 files → 52 test, 52 valid).
  const b = splitCorpus(loadCorpus('brown'), { method: 'stratified', stratum: 'genre', valid: 0.1, test: 0.1 });
  assert.deepEqual([b.train.length, b.valid.length, b.test.length], [396, 52, 52]);
  assert.equal(b.test.filter((d) => d.meta.genre === 'j').length, 8, '8 of the 80 learned files');
  assert.throws(() => splitCorpus(loadCorpus('moby-dick'), { method: 'stratified' }), /no string "genre"/);
});
