// Writes a built-in classification task's splits as JSONL files ({"text", "label"[, "text_pair"]},
// labels by name), the format `kdqat finetune --train/--dev/--test` and scripts/bow-baseline.ts
// read: to compare with another tool on the same examples, or to train on fewer labels.
// --train-subset N keeps N training examples spread evenly over the split (every
// (size/N)-th, so each file and genre keeps its share), the same N every time.
//
// Usage: npx tsx scripts/export-task.ts --task brown-genre --out DIR [--train-subset N] [--force]
//   writes DIR/train.jsonl (or train-N.jsonl), DIR/dev.jsonl, DIR/test.jsonl
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { atomicWrite } from '../src/io/atomic.js';
import { builtinClassification, CLASSIFICATION_TASKS } from '../src/data/tasks.js';
import type { ClassificationExample } from '../src/data/types.js';

const { values: a } = parseArgs({
  options: { task: { type: 'string' }, out: { type: 'string' }, 'train-subset': { type: 'string' }, force: { type: 'boolean', default: false } },
});
if (!a.task || !a.out) throw new Error(`--task ${CLASSIFICATION_TASKS.join('|')} and --out DIR are required`);
const task = builtinClassification(a.task);
const n = a['train-subset'] === undefined ? task.train.length : Number(a['train-subset']);
if (!(Number.isInteger(n) && n >= 1 && n <= task.train.length)) {
  throw new Error(`--train-subset must be an integer in 1..${task.train.length} (the training split's size), got ${a['train-subset']}`);
}
const step = task.train.length / n;
const train = Array.from({ length: n }, (_, i) => task.train[Math.floor(i * step)]);

const jsonl = (es: ClassificationExample[]): string => es.map((e) =>
  JSON.stringify({ text: e.text, label: task.labels[e.label], ...(e.textPair === undefined ? {} : { text_pair: e.textPair }) })).join('\n') + '\n';
fs.mkdirSync(a.out, { recursive: true });
const files: [string, ClassificationExample[]][] = [
  [n === task.train.length ? 'train.jsonl' : `train-${n}.jsonl`, train], ['dev.jsonl', task.dev], ['test.jsonl', task.test]];
for (const [name] of files) {  // refuse before writing any of them
  const f = path.join(a.out, name);
  if (fs.existsSync(f) && !a.force) throw new Error(`${f}: already exists; refusing to overwrite it (use --force)`);
}
for (const [name, es] of files) {
  const f = path.join(a.out, name);
  atomicWrite(f, a.force!, (write) => write(jsonl(es)));
  console.log(`${f}: ${es.length} examples`);
}
