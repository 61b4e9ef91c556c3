// Arrow IPC files (src/data/arrow.ts through tables.ts): what `datasets`' save_to_disk writes,
// serialized by another implementation (arrow-rs: scripts/make_parquet_fixtures.ts), read to the
// same rows as the Parquet files of the same tables; bad files named.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { preloadTables, tableRows } from '../../src/data/tables.js';
import { loadTextCorpus, readTableTexts } from '../../src/data/text.js';
import type { ChatMessage, ChatRenderer } from '../../src/data/chat.js';
import { loadClassification } from '../../src/data/classification.js';
import { loadMultipleChoiceFile } from '../../src/data/multiple-choice.js';
import { FIXTURES, tmpFile, tmpPath, cleanup } from './helpers.js';

after(cleanup);

const DIR = path.join(FIXTURES, 'arrow');
const PARQUET = path.join(FIXTURES, 'parquet');
const TEXTS = ['The river flows to the sea.', 'Été à la mer — 3 ships.', 'Line with\nnewline and emoji 🐳', 'x'.repeat(5000)];

test('a save_to_disk directory (two shards, dataset_info.json, state.json) is a text corpus of its rows', async () => {
  const disk = path.join(DIR, 'save-to-disk');
  await preloadTables([disk]);
  assert.deepEqual(loadTextCorpus(disk).documents.map((d) => d.text), TEXTS);
  // The second shard alone: rows 3–5 (the empty row skipped).
  const shard = path.join(disk, 'data-00001-of-00002.arrow');
  assert.deepEqual(readTableTexts(shard).map((d) => d.text), TEXTS.slice(2));
  assert.deepEqual(Object.keys(tableRows(shard)[0]), ['text'], 'only the columns a corpus reads');
});

test('a conversation column, a labelled file (int64 labels, dictionary-encoded text) and a struct of lists read as from Parquet', async () => {
  const chat: ChatRenderer = { source: 'test', render: (ms: ChatMessage[]) => ms.map((m) => `[${m.role}] ${m.content}\n`).join('') };
  const files = ['chat.arrow', 'sst2.arrow', 'arc.arrow'].map((f) => path.join(DIR, f));
  const twins = ['chat-snappy.parquet', 'sst2.parquet', 'arc.parquet'].map((f) => path.join(PARQUET, f));
  await preloadTables([files[0], twins[0]]);
  await preloadTables([...files.slice(1), ...twins.slice(1)], 'all');
  assert.deepEqual(readTableTexts(files[0], chat), readTableTexts(twins[0], chat));
  assert.equal(readTableTexts(files[0], chat)[0].text, '[user] Where does the river go?\n[assistant] To the sea.\n');
  assert.deepEqual(loadClassification(files[1]), loadClassification(twins[1]));
  assert.deepEqual(loadClassification(files[1]).examples[0], { text: 'a fine film ', label: 1 });
  assert.deepEqual(loadMultipleChoiceFile(files[2]), loadMultipleChoiceFile(twins[2]));
  assert.deepEqual(tableRows(files[2], 'all')[0].choices, { text: ['balance', 'ruler', 'thermometer'], label: ['A', 'B', 'C'] });
});

test('a DatasetDict directory (dataset_dict.json, a directory per split) is refused naming its splits; one split\'s directory is read', async () => {
  const dict = tmpPath('dict');
  for (const split of ['train', 'test']) fs.cpSync(path.join(DIR, 'save-to-disk'), path.join(dict, split), { recursive: true });
  fs.writeFileSync(path.join(dict, 'dataset_dict.json'), '{"splits": ["train", "test"]}');
  await preloadTables([dict]);
  assert.throws(() => loadTextCorpus(dict), (e: Error) => e.message ===
    `${dict}: is a datasets DatasetDict (splits: train, test); read whole, its splits would be mixed — point at one split's directory, e.g. ${path.join(dict, 'train')} (kdqat makes its own validation split)`);
  assert.deepEqual(loadTextCorpus(path.join(dict, 'train')).documents.map((d) => d.text), TEXTS);
});

test('bad Arrow input: the file and the fix', async () => {
  const notext = path.join(DIR, 'notext.arrow');
  await assert.rejects(preloadTables([notext]), (e: Error) =>
    e.message === `${notext}: has no text column (columns: id, body) — a text corpus needs one of text, content, messages, conversations, prompt, completion; rename the column that holds the text to "text"`);
  const bytes = fs.readFileSync(path.join(DIR, 'chat.arrow'));
  // Cut inside a message, or between two (the end-of-stream marker gone: it would parse, short).
  for (const [name, b] of [['cut.arrow', bytes.subarray(0, bytes.length - 300)], ['cut-eos.arrow', bytes.subarray(0, bytes.length - 8)],
    ['junk.arrow', Buffer.from('{"text": "not arrow"}\n')], ['empty.arrow', Buffer.alloc(0)]] as const) {
    const f = tmpFile(name, b);
    await assert.rejects(preloadTables([f]), (e: Error) => e.message.startsWith(`${f}: `) && e.message.includes('check that the download is complete'), name);
  }
});
