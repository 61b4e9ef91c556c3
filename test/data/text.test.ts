import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadTextCorpus, readUtf8File } from '../../src/data/text.js';
import { FIXTURES, tmpFile, tmpPath, cleanup } from './helpers.js';

after(cleanup);

test('a text file: one document per blank-line-separated block, ids from content', () => {
  const c = loadTextCorpus(path.join(FIXTURES, 'blocks.txt'));
  assert.equal(c.name, 'blocks.txt');
  assert.deepEqual(c.documents.map((d) => d.text), [
    'First document, line one.\nStill the first document.', 'Second document.', 'Third document.',
  ]);
  for (const d of c.documents) assert.match(d.id, /^blocks\.txt:[0-9a-f]{12}$/);
  // Same block, same id, wherever it sits in the file.
  const moved = loadTextCorpus(tmpFile('blocks.txt', 'New block first.\n\nThird document.\n'));
  assert.equal(moved.documents[1].id.split(':')[1], c.documents[2].id.split(':')[1]);
});

test('CRLF line ends and a BOM are handled', () => {
  const c = loadTextCorpus(tmpFile('crlf.txt', '\ufeffOne.\r\n\r\nTwo.\r\n'));
  assert.deepEqual(c.documents.map((d) => d.text), ['One.', 'Two.']);
});

test('a directory: one document per .txt file, recursive, other files ignored', () => {
  const c = loadTextCorpus(path.join(FIXTURES, 'textdir'));
  assert.deepEqual(c.documents.map((d) => d.id), ['a.txt', 'sub/b.txt']);
  assert.equal(c.documents[0].text, 'File a.\n\nStill file a.');
});

test('errors name the file and the fix', () => {
  const missing = tmpPath('missing.txt');
  assert.throws(() => loadTextCorpus(missing), (e: Error) => e.message.startsWith(`${missing}: file or directory not found`));
  assert.throws(() => readUtf8File(missing), (e: Error) => e.message.startsWith(`${missing}: file not found`));
  const latin = path.join(FIXTURES, 'latin1.txt');
  assert.throws(() => loadTextCorpus(latin), (e: Error) =>
    e.message.startsWith(`${latin}:3: not valid UTF-8 (byte 0xe9`) && e.message.includes('iconv'));
  const empty = tmpFile('empty.txt', '\n  \n\n');
  assert.throws(() => loadTextCorpus(empty), (e: Error) => e.message.startsWith(`${empty}: contains no text`));
  const emptyDir = tmpPath('dir');
  fs.mkdirSync(emptyDir);
  fs.writeFileSync(path.join(emptyDir, 'x.md'), 'not txt');
  assert.throws(() => loadTextCorpus(emptyDir), /contains no \.txt, \.jsonl, \.parquet or \.arrow files/);
});

test('a truncated multi-byte sequence at the end is caught too', () => {
  const f = tmpFile('trunc.txt', Buffer.from([0x61, 0x0a, 0x62, 0xe2, 0x82]));
  assert.throws(() => readUtf8File(f), (e: Error) => e.message.startsWith(`${f}:2: not valid UTF-8 (byte 0xe2 at offset 3)`));
});

test('UTF-16 with a byte-order mark (LE or BE) reads as the same text; without one, or broken, it is refused', () => {
  const text = 'Ünïcode text, “quotes” — and 😀.\r\n\r\nSecond block.\r\n';
  const be = Buffer.from(text, 'utf16le');
  for (let i = 0; i < be.length; i += 2) [be[i], be[i + 1]] = [be[i + 1], be[i]];
  const want = 'Ünïcode text, “quotes” — and 😀.\n\nSecond block.\n';
  assert.equal(readUtf8File(tmpFile('le.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]))), want);
  assert.equal(readUtf8File(tmpFile('be.txt', Buffer.concat([Buffer.from([0xfe, 0xff]), be]))), want);
  const noBom = tmpFile('nobom.txt', Buffer.from(text, 'utf16le'));
  assert.throws(() => readUtf8File(noBom), (e: Error) =>
    e.message.startsWith(`${noBom}: looks like UTF-16LE without a byte-order mark`) && e.message.includes('iconv -f utf-16le -t utf-8'));
  const noBomBe = tmpFile('nobom-be.txt', be);
  assert.throws(() => readUtf8File(noBomBe), (e: Error) => e.message.startsWith(`${noBomBe}: looks like UTF-16BE without a byte-order mark`));
  const stray = tmpFile('stray.txt', 'abc\0def\n');
  assert.throws(() => readUtf8File(stray), (e: Error) => e.message.startsWith(`${stray}:1: contains a NUL character (character 3)`));
  const lone = tmpFile('lone.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('ab', 'utf16le'), Buffer.from([0x00, 0xd8]), Buffer.from('cd', 'utf16le')]));
  assert.throws(() => readUtf8File(lone), (e: Error) =>
    e.message.startsWith(`${lone}: starts with a UTF-16LE byte-order mark but is not valid UTF-16LE`) && e.message.includes('iconv -f utf-16le -t utf-8'));
});

test('JSON Lines text corpora: one document per line\'s "text" (.jsonl, .ndjson, .json); in a directory .jsonl lines too, .json skipped', () => {
  const lines = [{ text: 'First document.\r\nSecond line.' }, { text: '   ' }, { text: 'Third.', meta: 1 }];
  const body = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  for (const ext of ['jsonl', 'ndjson', 'json']) {
    const c = loadTextCorpus(tmpFile(`docs.${ext}`, body));
    assert.deepEqual(c.documents.map((d) => d.text), ['First document.\nSecond line.', 'Third.'], ext);
    for (const d of c.documents) assert.match(d.id, new RegExp(`^\\d+-docs\\.${ext}:[0-9a-f]{12}$`));
  }
  const dir = tmpPath('mixed');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.txt'), 'File a.\n');
  fs.writeFileSync(path.join(dir, 'sub', 'b.jsonl'), body);
  fs.writeFileSync(path.join(dir, 'dataset_info.json'), '{"features": {}}\n');
  const c = loadTextCorpus(dir);
  assert.deepEqual(c.documents.map((d) => d.text), ['File a.', 'First document.\nSecond line.', 'Third.']);
  assert.equal(c.documents[0].id, 'a.txt');
  assert.match(c.documents[1].id, /^sub\/b\.jsonl:[0-9a-f]{12}$/);
  const noText = tmpFile('notext.jsonl', '{"text": "ok"}\n{"content": "x"}\n');
  assert.throws(() => loadTextCorpus(noText), (e: Error) => e.message.startsWith(`${noText}:2: missing field "text"`));
  const notString = tmpFile('num.jsonl', '{"text": 5}\n');
  assert.throws(() => loadTextCorpus(notString), (e: Error) => e.message.startsWith(`${notString}:1: "text" must be a string, got 5`));
  // One JSON array of objects (datasets' to_json(lines=False)) reads as its elements.
  const array = tmpFile('array.json', '[\n  {"text": "a"},\n  {"text": "b"}\n]\n');
  assert.deepEqual(loadTextCorpus(array).documents.map((d) => d.text), ['a', 'b']);
  const badLine = tmpFile('bad.jsonl', '{"text": "a"}\n{"text": "b"\n');
  assert.throws(() => loadTextCorpus(badLine), (e: Error) => e.message.startsWith(`${badLine}:2: not valid JSON`) && e.message.includes('each line must be one JSON object'));
  const blank = tmpFile('blank.jsonl', '{"text": " "}\n');
  assert.throws(() => loadTextCorpus(blank), (e: Error) => e.message.startsWith(`${blank}: contains no text`));
});

test('zstd-compressed text and JSON Lines (written by the zstd CLI 1.5: fixtures/data/zstd) read through; a damaged one is named', () => {
  const z = path.join(FIXTURES, 'zstd');
  assert.equal(readUtf8File(path.join(z, 'blocks.txt.zst')), readUtf8File(path.join(FIXTURES, 'blocks.txt')));
  // 3000 lines, 226,621 bytes: several zstd blocks.
  const docs = loadTextCorpus(path.join(z, 'shard.jsonl.zst')).documents.map((d) => d.text);
  assert.equal(docs.length, 3000);
  assert.deepEqual([docs[0], docs[2999]], ['Document 0: the river flows to the sea, and line 0 is here.', `Document 2999: the river flows to the sea, and line ${2999 * 7 % 101} is here.`]);
  const bytes = fs.readFileSync(path.join(z, 'shard.jsonl.zst'));
  const damaged = tmpFile('cut.jsonl.zst', bytes.subarray(0, bytes.length - 100));
  assert.throws(() => readUtf8File(damaged), (e: Error) => e.message.startsWith(`${damaged}: is zstd-compressed but does not decompress`) && e.message.includes('download or copy it again'));
});

test('gzip-compressed text and JSON Lines read through (.txt.gz, .json.gz, in directories too); a damaged one is named', () => {
  const text = 'One block.\n\nAnother block.\n';
  const jsonl = '{"text": "First."}\n{"text": "Second."}\n';
  assert.deepEqual(loadTextCorpus(tmpFile('c.txt.gz', gzipSync(text))).documents.map((d) => d.text), ['One block.', 'Another block.']);
  assert.deepEqual(loadTextCorpus(tmpFile('c4-shard.json.gz', gzipSync(jsonl))).documents.map((d) => d.text), ['First.', 'Second.']);
  assert.equal(readUtf8File(tmpFile('plain-name.txt', gzipSync(text))), text, 'by content, whatever the name');
  const dir = tmpPath('gzdir');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a.txt.gz'), gzipSync('File a.\n'));
  fs.writeFileSync(path.join(dir, 'b.jsonl.gz'), gzipSync(jsonl));
  assert.deepEqual(loadTextCorpus(dir).documents.map((d) => d.text), ['File a.', 'First.', 'Second.']);
  const cut = gzipSync(text.repeat(50));
  const damaged = tmpFile('cut.txt.gz', cut.subarray(0, cut.length - 9));
  assert.throws(() => readUtf8File(damaged), (e: Error) => e.message.startsWith(`${damaged}: is gzip-compressed but does not decompress`) && e.message.includes('download or copy it again'));
});
