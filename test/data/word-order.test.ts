import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS_NAMES, loadCorpus } from '../../src/data/corpora.js';
import { defaultCorpusSplit, splitCorpus } from '../../src/data/splits.js';
import { builtinClassification, CLASSIFICATION_TASKS } from '../../src/data/tasks.js';
import { swapTwoWords, wordOrderTask } from '../../src/data/word-order.js';
import { Rng } from '../../src/tensor/rng.js';

test('swapTwoWords: two distinct inner words exchanged, ends and the word multiset kept', () => {
  const rng = new Rng(3);
  const s = 'The quick brown fox jumps over the lazy dog.';
  const w = s.split(' ');
  for (let k = 0; k < 200; k++) {
    const t = swapTwoWords(s, rng)!;
    const v = t.split(' ');
    assert.equal(v.length, w.length);
    assert.equal(v[0], 'The');
    assert.equal(v.at(-1), 'dog.');
    const moved = v.map((x, i) => (x === w[i] ? -1 : i)).filter((i) => i >= 0);
    assert.equal(moved.length, 2, t);
    assert.equal(v[moved[0]], w[moved[1]]);
    assert.equal(v[moved[1]], w[moved[0]]);
  }
  assert.equal(swapTwoWords('A b b c.', rng), null); // the inner words are all equal
  assert.equal(swapTwoWords('Too short.', rng), null);
});

test('word-order: balanced labels, bag of words identical across labels, parts from their own documents', () => {
  assert.ok(CLASSIFICATION_TASKS.includes('word-order'));
  const t = builtinClassification('word-order');
  assert.deepEqual(t.labels, ['swapped', 'original']);
  assert.deepEqual([t.train.length, t.dev.length, t.test.length], [20000, 2000, 2000]);
  // Each example is an independent fair coin: within 4 standard deviations of ½.
  for (const part of [t.train, t.dev, t.test]) {
    const f = part.filter((e) => e.label === 1).length / part.length;
    assert.ok(Math.abs(f - 0.5) < 4 * Math.sqrt(0.25 / part.length), `fraction original ${f}`);
  }
  // Originals are sentences of the part's own documents; a swapped example is a sentence of them
  // with the same words (so a bag-of-words model cannot tell the labels apart) in another order.
  const text = { train: '', valid: '', test: '' };
  for (const name of CORPUS_NAMES) {
    const split = splitCorpus(loadCorpus(name), defaultCorpusSplit(name));
    for (const part of ['train', 'valid', 'test'] as const) {
      for (const d of split[part]) text[part] += d.text.replace(/\s+/g, ' ') + '\n';
    }
  }
  for (const [examples, own, other] of [[t.dev, 'valid', 'train'], [t.test, 'test', 'train']] as const) {
    for (const e of examples.slice(0, 150)) {
      if (e.label === 1) {
        assert.ok(text[own].includes(e.text), `"${e.text}" not in the ${own} documents`);
        assert.ok(!text[other].includes(e.text), `"${e.text}" found in ${other} documents`);
      } else {
        const w = e.text.split(' ');
        assert.ok(!text[own].includes(e.text), `swapped "${e.text}" occurs as written`);
        assert.ok(w.length >= 8 && w.length <= 40);
      }
    }
  }
  // A swapped dev example's words are a dev sentence's words: undo the swap by trying every pair.
  for (const e of t.dev.filter((x) => x.label === 0).slice(0, 30)) {
    const w = e.text.split(' ');
    let found = false;
    for (let i = 1; i < w.length - 1 && !found; i++) {
      for (let j = i + 1; j < w.length - 1 && !found; j++) {
        const v = w.slice();
        [v[i], v[j]] = [v[j], v[i]];
        found = text.valid.includes(v.join(' '));
      }
    }
    assert.ok(found, `no validation sentence is one swap away from "${e.text}"`);
  }
  assert.deepEqual(wordOrderTask().dev.slice(0, 50), t.dev.slice(0, 50), 'seeded: the same task every time');
  assert.notDeepEqual(wordOrderTask({ seed: 1 }).dev.slice(0, 50), t.dev.slice(0, 50));
});
