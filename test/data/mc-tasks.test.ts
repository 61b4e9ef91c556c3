import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContinuationTask, continuationTask, cutSentence, lengthCell } from '../../src/data/continuation.js';
import { buildWordNetTask, parseDataLine } from '../../src/data/wordnet.js';
import { builtinMultipleChoice } from '../../src/data/tasks.js';
import { checkMultipleChoice } from '../../src/data/multiple-choice.js';
import { loadCorpus } from '../../src/data/corpora.js';
import { splitCorpus } from '../../src/data/splits.js';
import { splitSentences } from '../../src/data/sentences.js';
import type { MultipleChoiceRecord } from '../../src/data/types.js';

function checkItems(items: MultipleChoiceRecord[], n: number): void {
  for (const it of items) {
    checkMultipleChoice(it as unknown as Record<string, unknown>, 'item'); // same rules as the JSONL loader
    assert.equal(it.choices.length, n);
    assert.equal(new Set(it.choices).size, n, 'choices unique');
    assert.ok(Number.isInteger(it.label) && it.label >= 0 && it.label < n, 'label in range');
  }
  assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'ids unique');
}

test('continuation (SOTU, chronological): contexts and answers only from held-out addresses', () => {
  const corpus = loadCorpus('sotu');
  const split = splitCorpus(corpus, { method: 'chronological' });
  const items = continuationTask(corpus, { method: 'chronological' }, { count: 200, seed: 3 });
  assert.equal(items.length, 200);
  checkItems(items, 4);
  const held = new Map(split.test.map((d) => [d.id, splitSentences(d.text).filter((s) => !/^\(.*\)$/.test(s))]));
  const trainIds = new Set(split.train.map((d) => d.id));
  const docOf = new Map<string, string>(); // rest of a sentence → its document
  for (const [id, ss] of held) for (const s of ss) docOf.set(cutSentence(s).rest, id);
  const labels = [0, 0, 0, 0];
  for (const it of items) {
    const parts = it.id!.split('/'); // continuation/<document id>/<sentence index>
    const docId = parts.slice(1, -1).join('/'), index = parts.at(-1)!;
    assert.ok(held.has(docId) && !trainIds.has(docId), `${docId} is held out`);
    const ss = held.get(docId)!;
    const i = Number(index), sentence = ss[i];
    const { head, rest } = cutSentence(sentence);
    const n = sentence.split(/\s+/).length;
    assert.ok(n >= 8 && n <= 40, 'a sentence of 8–40 words');
    assert.equal(it.choices[it.label], rest, 'the answer is the second half of the sentence');
    assert.equal(head.split(' ').length, Math.floor(n / 2));
    assert.equal(it.context, [...ss.slice(i - 2, i), head].join(' '), 'context: two sentences + the first half');
    assert.doesNotMatch(it.context, /\(Applause\.\)/, 'transcript annotations are not sentences');
    for (const [k, c] of it.choices.entries()) {
      if (k === it.label) continue;
      assert.ok(docOf.has(c) && docOf.get(c) !== docId, 'distractor: the rest of a sentence of another held-out document');
      assert.equal(c.split(' ').length, rest.split(' ').length, 'same word count');
      assert.equal(lengthCell(c), lengthCell(rest), 'same length cell');
      assert.ok(Math.abs(c.length - rest.length) <= 0.1 * Math.max(c.length, rest.length) + 1, `length ${c.length} vs ${rest.length}`);
    }
    labels[it.label]++;
  }
  assert.ok(labels.every((c) => c > 30), `answer positions spread: ${labels}`);
});

// The bias check: a scorer that ignores the context must be at chance. Unigram (word-level,
// add-one, fit on the training addresses) by summed and per-character log-likelihood — what
// `acc` and `acc_norm` compute for an LM — and length alone, longest or shortest choice.
test('continuation has no length or frequency bias: context-free scorers are at chance', () => {
  const corpus = loadCorpus('sotu');
  const items = continuationTask(corpus, { method: 'chronological' }, { count: 1000, seed: 0 });
  assert.equal(items.length, 1000);
  const words = (s: string) => s.toLowerCase().match(/[a-z0-9']+|[^\sa-z0-9']/g) ?? [];
  const counts = new Map<string, number>();
  let total = 0;
  for (const d of splitCorpus(corpus, { method: 'chronological' }).train) {
    for (const w of words(d.text)) { counts.set(w, (counts.get(w) ?? 0) + 1); total++; }
  }
  const logp = (s: string) => words(s).reduce((a, w) => a + Math.log(((counts.get(w) ?? 0) + 1) / (total + counts.size + 1)), 0);
  const scorers: Record<string, (c: string) => number> = {
    'unigram sum': logp,
    'unigram per char': (c) => logp(c) / c.length,
    longest: (c) => c.length,
    shortest: (c) => -c.length,
    'most words': (c) => c.split(' ').length + c.length / 1000,
  };
  // Binomial margin: 3 standard deviations of the accuracy of a chance scorer (±0.041 at n=1000).
  const margin = 3 * Math.sqrt(0.25 * 0.75 / items.length);
  for (const [name, f] of Object.entries(scorers)) {
    let right = 0;
    for (const it of items) {
      const s = it.choices.map(f);
      if (s.indexOf(Math.max(...s)) === it.label) right++;
    }
    const acc = right / items.length;
    assert.ok(Math.abs(acc - 0.25) < margin, `${name}: accuracy ${acc.toFixed(3)} is not within ${margin.toFixed(3)} of chance 0.25`);
  }
});

test('continuation is deterministic by seed and differs across seeds', () => {
  const docs = splitCorpus(loadCorpus('moby-dick'), { test: 0.1, seed: 2 }).test;
  const a = buildContinuationTask(docs, { count: 50, seed: 1, contextSentences: 1 });
  const b = buildContinuationTask(docs, { count: 50, seed: 1, contextSentences: 1 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(buildContinuationTask(docs, { count: 50, seed: 2, contextSentences: 1 }), a);
  checkItems(a, 4);
  assert.throws(() => buildContinuationTask(docs.slice(0, 1).map((d) => ({ ...d, text: 'Too short.' }))), /no items could be built/);
});

test('WordNet data lines parse: words, markers stripped, definition without examples', () => {
  const s = parseDataLine('00019769 00 s 02 handy 0 ready_to_hand(p) 0 002 & 00019169 a 0000 + 04726275 n 0101 | easy to reach; "found a handy spot"; "a handy reference"  ');
  assert.deepEqual(s.words, ['handy', 'ready_to_hand']);
  assert.equal(s.definition, 'easy to reach');
  assert.equal(s.offset, 19769);
  const n = parseDataLine('09434308 17 n 01 river 0 009 @ 09448361 n 0000 | a large natural stream of water (larger than a creek); "the river was navigable for 50 miles"  ');
  assert.equal(n.definition, 'a large natural stream of water (larger than a creek)');
});

test('wordnet-def: sensible items, deterministic by seed', () => {
  const items = buildWordNetTask({ count: 300, seed: 4 });
  assert.equal(items.length, 300);
  checkItems(items, 4);
  const pos = new Set<string>();
  for (const it of items) {
    const [, p, word] = it.id!.split('/');
    pos.add(p);
    assert.equal(it.choices[it.label], word);
    for (const c of it.choices) assert.match(c, /^[a-z]{3,}$/, 'common single lowercase words');
    assert.ok(it.context.split(' ').length >= 3, 'a real definition');
    assert.ok(!it.context.toLowerCase().split(/[^a-z]+/).includes(word), `"${word}" not in its own definition`);
    assert.doesNotMatch(it.context, /"/, 'examples removed');
  }
  assert.deepEqual([...pos].sort(), ['adj', 'noun', 'verb']);
  assert.deepEqual(buildWordNetTask({ count: 300, seed: 4 }), items);
  const river = buildWordNetTask({ count: 100_000, pos: ['noun'], seed: 0 }).find((i) => i.id === 'wordnet-def/noun/river');
  assert.ok(river, 'river is a common noun');
  assert.equal(river.context, 'a large natural stream of water (larger than a creek)');
  assert.ok(!river.choices.includes('stream') && !river.choices.includes('water'), 'no distractor from the definition');
});

test('builtin task names dispatch, unknown names list the options', () => {
  assert.equal(builtinMultipleChoice('continuation', { count: 5 }).length, 5);
  assert.throws(() => builtinMultipleChoice('hellaswag'), /unknown multiple-choice task — use one of continuation, wordnet-def/);
});
