import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContinuationTask, continuationTask } from '../../src/data/continuation.js';
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
  const docOf = new Map<string, string>();
  for (const [id, ss] of held) for (const s of ss) docOf.set(s, id);
  const labels = [0, 0, 0, 0];
  for (const it of items) {
    const docId = it.id!.split('/').slice(1, 3).join('/');
    assert.ok(held.has(docId) && !trainIds.has(docId), `${docId} is held out`);
    const ss = held.get(docId)!;
    const answer = it.choices[it.label];
    const i = ss.indexOf(answer);
    assert.ok(i >= 2, 'answer is a sentence of the document');
    assert.equal(it.context, ss.slice(i - 2, i).join(' '), 'context is the two sentences before it');
    assert.doesNotMatch(it.context, /\(Applause\.\)/, 'transcript annotations are not sentences');
    for (const [k, c] of it.choices.entries()) {
      if (k === it.label) continue;
      assert.ok(docOf.has(c) && docOf.get(c) !== docId, 'distractor from another held-out document');
      assert.ok(Math.abs(c.length - answer.length) <= 0.2 * answer.length + 1, `length ${c.length} vs ${answer.length}`);
    }
    labels[it.label]++;
  }
  assert.ok(labels.every((c) => c > 30), `answer positions spread: ${labels}`);
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
