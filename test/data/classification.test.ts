import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fieldNames, loadClassification } from '../../src/data/classification.js';
import { brownGenreTask, chunkPassages } from '../../src/data/brown-genre.js';
import { loadCorpus } from '../../src/data/corpora.js';
import { splitCorpus } from '../../src/data/splits.js';
import { pretrainSplit } from '../../src/train/pretrain-data.js';
import { FIXTURES, tmpFile, cleanup } from './helpers.js';

after(cleanup);

/** assert.throws on a message starting with `${file}:${line}: ` and containing `text`. */
function throwsAt(fn: () => unknown, file: string, line: number | undefined, text: string | RegExp): void {
  assert.throws(fn, (e: Error) => {
    const where = line === undefined ? `${file}: ` : `${file}:${line}: `;
    assert.ok(e.message.startsWith(where), `"${e.message}" should start with "${where}"`);
    if (typeof text === 'string') assert.ok(e.message.includes(text), `"${e.message}" should include "${text}"`);
    else assert.match(e.message, text);
    return true;
  });
}

test('JSONL: string labels are sorted into ids; text_pair kept; blank lines skipped', () => {
  const d = loadClassification(path.join(FIXTURES, 'cls.jsonl'));
  assert.deepEqual(d.labels, ['neg', 'neutral', 'pos']);
  assert.deepEqual(d.examples, [
    { text: 'a fine film', label: 2 },
    { text: 'dull and long', label: 0 },
    { text: 'is it good?', textPair: 'yes it is', label: 2 },
    { text: 'no opinion', label: 1 },
  ]);
  const pinned = loadClassification(path.join(FIXTURES, 'cls.jsonl'), { labels: ['pos', 'neg', 'neutral'] });
  assert.deepEqual(pinned.examples.map((e) => e.label), [0, 1, 0, 2]);
});

test('JSONL: integer labels are used as ids', () => {
  const f = tmpFile('int.jsonl', '{"text":"a","label":2}\n{"text":"b","label":0}\n');
  const d = loadClassification(f);
  assert.deepEqual(d.labels, ['0', '1', '2']);
  assert.deepEqual(d.examples.map((e) => e.label), [2, 0]);
});

test('TSV: header with named columns, or 2 columns without header', () => {
  const d = loadClassification(path.join(FIXTURES, 'cls.tsv'));
  assert.deepEqual(d.examples, [{ text: 'great stuff', label: 1 }, { text: 'bad stuff', label: 0 }, { text: 'meh', label: 2 }]);
  const n = loadClassification(path.join(FIXTURES, 'cls-noheader.tsv'));
  assert.deepEqual(n.labels, ['neg', 'pos']);
  assert.deepEqual(n.examples, [{ text: 'good one', label: 1 }, { text: 'bad one', label: 0 }]);
  const pair = loadClassification(tmpFile('p.tsv', 'text\ttext_pair\tlabel\nq\ta\tyes\n'));
  assert.deepEqual(pair.examples, [{ text: 'q', textPair: 'a', label: 0 }]);
});

test('GLUE / Hugging Face field names: sentence, sentence1/2, premise/hypothesis, question1/2, question/sentence (JSONL and TSV)', () => {
  const J = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  // SST-2 as the datasets library writes it (an idx column too).
  const sst = loadClassification(tmpFile('sst2.jsonl', J([{ sentence: 'a fine film', label: 1, idx: 0 }, { sentence: 'dull', label: 0, idx: 1 }])));
  assert.deepEqual(sst.examples, [{ text: 'a fine film', label: 1 }, { text: 'dull', label: 0 }]);
  const pairs: [string, string][] = [['sentence1', 'sentence2'], ['premise', 'hypothesis'], ['question1', 'question2'], ['question', 'sentence']];
  for (const [a, b] of pairs) {
    const d = loadClassification(tmpFile(`${a}.jsonl`, J([{ [b]: 'second', [a]: 'first', label: 'yes' }, { [a]: 'x', [b]: 'y', label: 'no' }])));
    assert.deepEqual(d.examples, [{ text: 'first', textPair: 'second', label: 1 }, { text: 'x', textPair: 'y', label: 0 }], a);
    const t = loadClassification(tmpFile(`${a}.tsv`, `idx\t${b}\t${a}\tlabel\n0\tsecond\tfirst\t1\n`));
    assert.deepEqual(t.examples, [{ text: 'first', textPair: 'second', label: 1 }], `${a} tsv`);
  }
  // GLUE's SST-2 train.tsv header, with a BOM.
  const tsv = loadClassification(tmpFile('sst2.tsv', '\ufeffsentence\tlabel\nhide new secretions \t0\ngreat\t1\n'));
  assert.deepEqual(tsv.examples, [{ text: 'hide new secretions ', label: 0 }, { text: 'great', label: 1 }]);
  // "text" wins over the other names; the first line decides, and later lines must follow it.
  assert.deepEqual(loadClassification(tmpFile('both.jsonl', J([{ text: 'a', sentence: 'b', label: 'p' }]))).examples, [{ text: 'a', label: 0 }]);
  const mixed = tmpFile('mixed.jsonl', J([{ premise: 'a', hypothesis: 'b', label: 'p' }, { premise: 'c', label: 'p' }]));
  assert.throws(() => loadClassification(mixed), (e: Error) => e.message.startsWith(`${mixed}:2: missing field "hypothesis"`));
  const none = tmpFile('none.jsonl', J([{ review: 'a', label: 'p' }]));
  assert.throws(() => loadClassification(none), (e: Error) => e.message.startsWith(`${none}:1: missing field "text"`) && e.message.includes('sentence1/sentence2'));
  // amazon_polarity / dbpedia_14: title and content (a pair), as the datasets library writes them;
  // "content" alone; the label named "labels".
  const amazon = loadClassification(tmpFile('amazon.jsonl', J([{ label: 1, title: 'Great CD', content: 'My lovely Pat has one of the great voices.' }, { label: 0, title: 'Meh', content: 'Not good.' }])));
  assert.deepEqual(amazon.examples, [{ text: 'Great CD', textPair: 'My lovely Pat has one of the great voices.', label: 1 }, { text: 'Meh', textPair: 'Not good.', label: 0 }]);
  assert.deepEqual(loadClassification(tmpFile('content.jsonl', J([{ content: 'def f(): pass', labels: 'code' }]))).examples, [{ text: 'def f(): pass', label: 0 }]);
  assert.deepEqual(loadClassification(tmpFile('labels.tsv', 'text\tlabels\nriver\t1\nsea\t0\n')).examples, [{ text: 'river', label: 1 }, { text: 'sea', label: 0 }]);
  // TREC: two label columns and no "label": the error names them and says which to rename.
  const trec = tmpFile('trec.jsonl', J([{ text: 'How far is it?', coarse_label: 5, fine_label: 40 }]));
  assert.throws(() => loadClassification(trec), (e: Error) => e.message === `${trec}:1: missing field "label" — this file has "coarse_label", "fine_label": name the one to train on with --label-field (or rename it to "label")`);
  const trecTsv = tmpFile('trec.tsv', 'text\tcoarse_label\tfine_label\nHow far?\t5\t40\n');
  assert.throws(() => loadClassification(trecTsv), (e: Error) => e.message.includes('name the one to train on with --label-field'));
});

test('a file\'s own field names (--text-field / --label-field): JSONL, Parquet-like objects, TSV and CSV headers; errors name the flag', () => {
  const J = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const fields = fieldNames('review', 'sentiment');
  const reviews = tmpFile('reviews.jsonl', J([{ review: 'great', sentiment: 'pos', stars: 5 }, { review: 'awful', sentiment: 'neg', stars: 1 }]));
  assert.deepEqual(loadClassification(reviews, { fields }), { examples: [{ text: 'great', label: 1 }, { text: 'awful', label: 0 }], labels: ['neg', 'pos'] });
  // A pair, and a label column among others (TREC: which one is the user's choice).
  const qa = tmpFile('qa.jsonl', J([{ question: 'is it wet', passage: 'Rivers are water.', answer: 1 }]));
  assert.deepEqual(loadClassification(qa, { fields: fieldNames('question,passage', 'answer') }).examples, [{ text: 'is it wet', textPair: 'Rivers are water.', label: 1 }]);
  const trec = tmpFile('trec.jsonl', J([{ text: 'How far?', coarse_label: 5, fine_label: 40 }]));
  assert.deepEqual(loadClassification(trec, { fields: fieldNames(undefined, 'coarse_label') }).examples, [{ text: 'How far?', label: 5 }]);
  assert.deepEqual(loadClassification(tmpFile('r.tsv', 'Review\tSentiment\tstars\ngreat\tpos\t5\n'), { fields }).examples, [{ text: 'great', label: 0 }]);
  assert.deepEqual(loadClassification(tmpFile('r.csv', 'stars,review,sentiment\n5,"great, truly",pos\n'), { fields }).examples, [{ text: 'great, truly', label: 0 }]);
  const missing = tmpFile('missing.jsonl', J([{ review: 'great', sentiment: 'pos' }, { text: 'x', sentiment: 'neg' }]));
  assert.throws(() => loadClassification(missing, { fields }), (e: Error) => e.message === `${missing}:2: missing field "review" (--text-field) — this line has "text", "sentiment"`);
  const noCol = tmpFile('nocol.tsv', 'text\tlabel\nx\t1\n');
  assert.throws(() => loadClassification(noCol, { fields }), (e: Error) => e.message === `${noCol}:1: has no column "review" (--text-field) — its header row names "text", "label"`);
  const noLabel = tmpFile('nolabel.tsv', 'review\tstars\nx\t1\n');
  assert.throws(() => loadClassification(noLabel, { fields: fieldNames('review', undefined) }), /names no label column kdqat knows — name it with --label-field/);
  assert.throws(() => fieldNames('a,b,c', undefined), /--text-field "a,b,c": give the text's field, or two for a pair/);
  assert.equal(fieldNames(undefined, undefined), undefined);
});

test('CSV (RFC 4180): quoted commas, line breaks and quotes; header names as in TSV; errors name the line', () => {
  const csv = 'text,label,idx\r\n"a fine film, truly",pos,0\r\n"two\nlines ""quoted""",neg,1\r\n\r\nplain,pos,2\r\n';
  const d = loadClassification(tmpFile('reviews.csv', csv));
  assert.deepEqual(d.labels, ['neg', 'pos']);
  assert.deepEqual(d.examples, [
    { text: 'a fine film, truly', label: 1 }, { text: 'two\nlines "quoted"', label: 0 }, { text: 'plain', label: 1 },
  ]);
  const glue = loadClassification(tmpFile('mrpc.csv', 'label,sentence1,sentence2\n1,"A, b",C\n'));
  assert.deepEqual(glue.examples, [{ text: 'A, b', textPair: 'C', label: 1 }]);
  assert.deepEqual(loadClassification(tmpFile('nohead.csv', 'good one,pos\n"bad, one",neg\n')).examples, [{ text: 'good one', label: 1 }, { text: 'bad, one', label: 0 }]);
  const open = tmpFile('open.csv', 'text,label\nfine,pos\n"never closed,neg\nmore,pos\n');
  assert.throws(() => loadClassification(open), (e: Error) => e.message.startsWith(`${open}:3: a quoted field is not closed`));
  const wide = tmpFile('wide.csv', 'text,label\n"a",pos\nb,c,neg\n');
  assert.throws(() => loadClassification(wide), (e: Error) => e.message.startsWith(`${wide}:3: has 3 comma-separated fields, expected 2`) && e.message.includes('quote a field'));
});

test('JSONL errors name the file and line', () => {
  const cases: [string, number | undefined, string][] = [
    ['{"text":"a","label":"x"}\n{"text": "b", "label": \n', 2, 'not valid JSON'],
    ['{"text":"a","label":"x"}\n\n["text", "label"]\n', 3, 'expected a JSON object'],
    ['{"text":"a","label":"x"}\n{"label":"y"}\n', 2, 'missing field "text"'],
    ['{"text":"a"}\n', 1, 'missing field "label"'],
    ['{"text":5,"label":"x"}\n', 1, '"text" must be a string'],
    ['{"text":"a","label":1.5}\n', 1, '"label" must be a non-negative integer or a string'],
    ['{"text":"a","label":true}\n', 1, '"label" must be a non-negative integer or a string'],
    ['{"text":"a","label":1}\n{"text":"b","label":"1"}\n', 2, 'is a string but earlier labels are numbers'],
    ['{"text":"a","text_pair":3,"label":1}\n', 1, '"text_pair" must be a string'],
    ['{"text":"  ","label":1}\n', 1, '"text" is empty'],
    ['\n\n', undefined, 'is empty'],
  ];
  for (const [content, line, text] of cases) {
    const f = tmpFile('bad.jsonl', content);
    throwsAt(() => loadClassification(f), f, line, text);
  }
  const f = tmpFile('unknown.jsonl', '{"text":"a","label":"pos"}\n{"text":"b","label":"meh"}\n');
  throwsAt(() => loadClassification(f, { labels: ['pos', 'neg'] }), f, 2, 'unknown label "meh" — expected one of pos, neg');
});

test('TSV errors name the file and line', () => {
  const cases: [string, number | undefined, string][] = [
    ['text\tlabel\na\tx\nb\tx\textra\n', 3, 'has 3 tab-separated fields, expected 2'],
    ['a\tb\tc\n', 1, 'no header and 3 columns'],
    ['text\tlabel\na\t\n', 2, 'label is empty'],
    ['text\tlabel\n\tpos\n', 2, 'text is empty'],
    ['text\tlabel\n', undefined, 'has a header but no examples'],
    ['', undefined, 'is empty'],
  ];
  for (const [content, line, text] of cases) {
    const f = tmpFile('bad.tsv', content);
    throwsAt(() => loadClassification(f), f, line, text);
  }
  throwsAt(() => loadClassification('/nonexistent/x.tsv'), '/nonexistent/x.tsv', undefined, 'file not found');
});

test('passages: 2–4 sentences, 40–120 words', () => {
  const s = (n: number, w = 'word') => `${'A'}${` ${w}`.repeat(n - 2)} end.`;
  const text = [s(30), s(30), s(5), s(130), s(20), s(20), 'A heading', s(25), s(25)].join(' ').replace(' A heading ', '\n\nA heading\n\n');
  const p = chunkPassages(text);
  assert.deepEqual(p.map((x) => x.split(' ').length), [60, 40, 50]);
});

test('brown-genre: 4 groups, passages within bounds, no test file in train', () => {
  const t = brownGenreTask();
  assert.deepEqual(t.labels, ['press', 'general', 'learned', 'fiction']);
  assert.ok(t.train.length > 10_000 && t.dev.length > 500 && t.test.length > 500, `${t.train.length}/${t.dev.length}/${t.test.length}`);
  for (const part of [t.train, t.dev, t.test]) {
    assert.deepEqual(new Set(part.map((e) => e.label)), new Set([0, 1, 2, 3]));
  }
  for (const e of t.test.slice(0, 300)) {
    const n = e.text.split(/\s+/).length;
    assert.ok(n >= 40 && n <= 120, `${n} words`);
  }
  // Dev and test have the label mixture of train (stratified split; within 3 points per label).
  const mix = (part: { label: number }[]) => [0, 1, 2, 3].map((k) => part.filter((e) => e.label === k).length / part.length);
  for (const part of [t.dev, t.test]) {
    mix(part).forEach((f, k) => assert.ok(Math.abs(f - mix(t.train)[k]) < 0.03, `label ${k}: ${f.toFixed(3)} vs train ${mix(t.train)[k].toFixed(3)}`));
  }
  // Passages come from whole files: test passages occur only in test-split files — the same
  // split MLM pre-training on 'brown' uses.
  const split = splitCorpus(loadCorpus('brown'), pretrainSplit('brown'));
  assert.equal(split.test.length, 52);
  const trainText = split.train.map((d) => d.text.replace(/\s+/g, ' ')).join('\n');
  for (const e of t.test.slice(0, 200)) assert.ok(!trainText.includes(e.text), 'test passage found in a train file');
  const testText = split.test.map((d) => d.text.replace(/\s+/g, ' ')).join('\n');
  for (const e of t.test.slice(0, 200)) assert.ok(testText.includes(e.text));
  const again = brownGenreTask();
  assert.deepEqual(again.test.slice(0, 50), t.test.slice(0, 50));
});
