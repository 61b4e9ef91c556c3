// Parquet text corpora (src/data/parquet.ts): files written by another implementation (Arrow's
// Rust writer: scripts/make_parquet_fixtures.ts) read to the texts they hold, whatever the
// compression; conversations rendered as in JSON Lines; bad files named.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { preloadTables, tableRows } from '../../src/data/tables.js';
import { loadTextCorpus, readTableTexts, readJsonlTexts } from '../../src/data/text.js';
import type { ChatMessage, ChatRenderer } from '../../src/data/chat.js';
import { loadClassification } from '../../src/data/classification.js';
import { loadMultipleChoiceFile } from '../../src/data/multiple-choice.js';
import { FIXTURES, tmpFile, tmpPath, cleanup } from './helpers.js';

after(cleanup);

const DIR = path.join(FIXTURES, 'parquet');
const TEXTS = ['The river flows to the sea.', 'Été à la mer — 3 ships.', 'Line with\nnewline and emoji 🐳', 'x'.repeat(5000)];

test('snappy, zstd and gzip files (row groups of 2, an int64 column beside): the text column, empty rows skipped', async () => {
  for (const codec of ['snappy', 'zstd', 'gzip']) {
    const f = path.join(DIR, `text-${codec}.parquet`);
    await preloadTables([f]);
    assert.deepEqual(readTableTexts(f).map((d) => d.text), TEXTS, codec);
    assert.deepEqual(Object.keys(tableRows(f)[0]), ['text'], 'only the columns a corpus reads');
  }
});

test('a conversation column renders as JSON Lines conversations do; a directory mixes Parquet and JSON Lines', async () => {
  const chat: ChatRenderer = { source: 'test', render: (ms: ChatMessage[]) => ms.map((m) => `[${m.role}] ${m.content}\n`).join('') };
  const f = path.join(DIR, 'chat-snappy.parquet');
  await preloadTables([f]);
  const jsonl = tmpFile('chat.jsonl', [
    { messages: [{ role: 'user', content: 'Where does the river go?' }, { role: 'assistant', content: 'To the sea.' }] },
    { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }] },
  ].map((o) => JSON.stringify(o)).join('\n') + '\n');
  assert.deepEqual(readTableTexts(f, chat), readJsonlTexts(jsonl, chat));
  assert.throws(() => readTableTexts(f), /chat-snappy\.parquet:1: this line is a conversation, and the model has no chat template/);
  const dir = tmpPath('mixed');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.copyFileSync(path.join(DIR, 'text-zstd.parquet'), path.join(dir, 'sub', 'train-00000-of-00001.parquet'));
  fs.writeFileSync(path.join(dir, 'more.jsonl'), '{"text": "A line of JSON."}\n');
  await preloadTables([dir]);
  assert.deepEqual(loadTextCorpus(dir).documents.map((d) => d.text), ['A line of JSON.', ...TEXTS]);
});

test('labelled Parquet files: SST-2 (int64 labels) for classification, ARC (a struct of lists) for multiple choice', async () => {
  const sst2 = path.join(DIR, 'sst2.parquet'), arc = path.join(DIR, 'arc.parquet');
  await preloadTables([sst2, arc], 'all');
  assert.deepEqual(loadClassification(sst2), {
    examples: [{ text: 'a fine film ', label: 1 }, { text: 'dull and slow', label: 0 }, { text: 'the best of the year', label: 1 }], labels: ['0', '1'],
  });
  const mc = loadMultipleChoiceFile(arc);
  assert.equal(mc.layout, 'arc');
  assert.deepEqual(mc.records, [
    { context: 'Question: Which tool is used to measure mass?\nAnswer:', choices: ['balance', 'ruler', 'thermometer'], label: 0, id: 'Q1' },
    { context: 'Question: What flows to the sea?\nAnswer:', choices: ['rocks', 'rivers'], label: 1, id: 'Q2' },
  ]);
  // A text corpus reads only its columns; a labelled file is read whole, separately.
  assert.throws(() => loadClassification(path.join(DIR, 'text-snappy.parquet')), /must be read with preloadTables/);
});

test('bad Parquet input: the file and the fix', async () => {
  const notext = path.join(DIR, 'notext.parquet');
  await assert.rejects(preloadTables([notext]), (e: Error) =>
    e.message === `${notext}: has no text column (columns: id, body) — a text corpus needs one of text, content, messages, conversations, prompt, completion; rename the column that holds the text to "text"`);
  const bytes = fs.readFileSync(path.join(DIR, 'text-snappy.parquet'));
  const cut = tmpFile('cut.parquet', bytes.subarray(0, bytes.length - 40));
  await assert.rejects(preloadTables([cut]), (e: Error) => e.message.startsWith(`${cut}: not a readable Parquet file (`) && e.message.includes('check that the download is complete'));
  const body = tmpFile('body.parquet', Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(300, 7), bytes.subarray(bytes.length - 600)]));
  await assert.rejects(preloadTables([body]), (e: Error) => e.message.startsWith(body));
  assert.throws(() => readTableTexts(tmpFile('never.parquet', bytes)), /must be read with preloadTables before the corpus is loaded/);
});
