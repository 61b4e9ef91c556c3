// The Parquet files of test/fixtures/data/parquet/ (test/data/parquet.test.ts), written by an
// implementation independent of the reader kdqat uses (hyparquet): Apache Arrow's Rust writer,
// compiled to WebAssembly (parquet-wasm), from tables built with apache-arrow. Neither is a
// kdqat dependency; to rewrite the files:
//   npm install --no-save parquet-wasm@0.8.0 apache-arrow@21.2.0 && npx tsx scripts/make_parquet_fixtures.ts
// text-{snappy,zstd,gzip}: an int64 id column (BigInt) and a text column (Unicode, a newline, an
// empty row, a 5000-character row), row groups of 2 rows; chat-snappy: a messages column
// (list<struct<role, content>>, the Hugging Face chat layout); notext: no column kdqat reads;
// sst2, arc: labelled files (classification, multiple choice).
// The same tables as Arrow IPC streams (test/fixtures/data/arrow/, test/data/arrow.test.ts), the
// files `datasets`' save_to_disk and its cache hold, serialized by the same Rust implementation
// (arrow-rs: parquet-wasm's Table.intoIPCStream, from the Parquet bytes it wrote):
// save-to-disk/ (a Dataset directory: two data-0000N-of-00002.arrow shards, dataset_info.json,
// state.json, as save_to_disk lays them out), chat.arrow, sst2.arrow, arc.arrow, notext.arrow.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const load = (name: string): Promise<any> => import(name); // eslint-disable-line @typescript-eslint/no-explicit-any
const arrow = await load('apache-arrow');
const pw = await load('parquet-wasm/node');
const OUT = fileURLToPath(new URL('../test/fixtures/data/parquet/', import.meta.url));

const texts = ['The river flows to the sea.', 'Été à la mer — 3 ships.', '', 'Line with\nnewline and emoji 🐳', 'x'.repeat(5000)];
const textTable = arrow.tableFromArrays({ id: BigInt64Array.from([1n, 2n, 3n, 4n, 5n]), text: texts });
const chats = [
  [{ role: 'user', content: 'Where does the river go?' }, { role: 'assistant', content: 'To the sea.' }],
  [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }],
];
const message = new arrow.Struct([new arrow.Field('role', new arrow.Utf8()), new arrow.Field('content', new arrow.Utf8())]);
const chatTable = new arrow.Table({ messages: arrow.vectorFromArray(chats, new arrow.List(new arrow.Field('item', message))) });
const noText = arrow.tableFromArrays({ id: BigInt64Array.from([1n]), body: ['no text column here'] });
// Labelled files as the Hub has them: SST-2 (sentence, int64 ClassLabel, idx) and ARC (choices a
// struct of two lists, answerKey).
const sst2 = arrow.tableFromArrays({ sentence: ['a fine film ', 'dull and slow', 'the best of the year'], label: BigInt64Array.from([1n, 0n, 1n]), idx: Int32Array.from([0, 1, 2]) });
const arcRows = [
  { id: 'Q1', question: 'Which tool is used to measure mass?', choices: { text: ['balance', 'ruler', 'thermometer'], label: ['A', 'B', 'C'] }, answerKey: 'A' },
  { id: 'Q2', question: 'What flows to the sea?', choices: { text: ['rocks', 'rivers'], label: ['1', '2'] }, answerKey: '2' },
];
const choice = new arrow.Struct([new arrow.Field('text', new arrow.List(new arrow.Field('item', new arrow.Utf8()))), new arrow.Field('label', new arrow.List(new arrow.Field('item', new arrow.Utf8())))]);
const arc = new arrow.Table({
  id: arrow.vectorFromArray(arcRows.map((r) => r.id), new arrow.Utf8()),
  question: arrow.vectorFromArray(arcRows.map((r) => r.question), new arrow.Utf8()),
  choices: arrow.vectorFromArray(arcRows.map((r) => r.choices), choice),
  answerKey: arrow.vectorFromArray(arcRows.map((r) => r.answerKey), new arrow.Utf8()),
});

fs.mkdirSync(OUT, { recursive: true });
for (const [name, table, codec] of [
  ['text-snappy', textTable, pw.Compression.SNAPPY], ['text-zstd', textTable, pw.Compression.ZSTD],
  ['text-gzip', textTable, pw.Compression.GZIP], ['chat-snappy', chatTable, pw.Compression.SNAPPY], ['notext', noText, pw.Compression.SNAPPY],
  ['sst2', sst2, pw.Compression.SNAPPY], ['arc', arc, pw.Compression.ZSTD],
] as const) {
  const props = new pw.WriterPropertiesBuilder().setCompression(codec).setMaxRowGroupSize(2).build();
  const bytes: Uint8Array = pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props);
  fs.writeFileSync(path.join(OUT, `${name}.parquet`), bytes);
  console.log(`wrote ${name}.parquet (${bytes.length} bytes)`);
}

// Arrow IPC streams, serialized by arrow-rs from the Parquet files above.
const ARROW = fileURLToPath(new URL('../test/fixtures/data/arrow/', import.meta.url));
const toArrow = (name: string): Uint8Array => pw.readParquet(fs.readFileSync(path.join(OUT, `${name}.parquet`))).intoIPCStream();
const DISK = path.join(ARROW, 'save-to-disk');
fs.mkdirSync(DISK, { recursive: true });
const halves = [textTable.slice(0, 2), textTable.slice(2)];
halves.forEach((t: unknown, i: number) => {
  const pq = pw.writeParquet(pw.Table.fromIPCStream(arrow.tableToIPC(t, 'stream')), new pw.WriterPropertiesBuilder().build());
  const bytes: Uint8Array = pw.readParquet(pq).intoIPCStream();
  fs.writeFileSync(path.join(DISK, `data-0000${i}-of-00002.arrow`), bytes);
  console.log(`wrote save-to-disk/data-0000${i}-of-00002.arrow (${bytes.length} bytes)`);
});
fs.writeFileSync(path.join(DISK, 'dataset_info.json'), JSON.stringify({ citation: '', description: '', features: { id: { dtype: 'int64', _type: 'Value' }, text: { dtype: 'string', _type: 'Value' } }, homepage: '', license: '' }, null, 2) + '\n');
fs.writeFileSync(path.join(DISK, 'state.json'), JSON.stringify({ _data_files: [{ filename: 'data-00000-of-00002.arrow' }, { filename: 'data-00001-of-00002.arrow' }], _fingerprint: '0123456789abcdef', _format_columns: null, _format_kwargs: {}, _format_type: null, _output_all_columns: false, _split: 'train' }, null, 2) + '\n');
for (const name of ['chat-snappy', 'sst2', 'arc', 'notext']) {
  const bytes = toArrow(name);
  const out = `${name.replace('-snappy', '')}.arrow`;
  fs.writeFileSync(path.join(ARROW, out), bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
