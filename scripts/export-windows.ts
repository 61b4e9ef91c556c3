// The masked-LM training and validation windows of a corpus, as `kdqat pretrain --arch bert`
// packs them ([CLS] … [SEP], documents split and packed by src/train/pretrain.ts), written as
// safetensors for an outside experiment (scripts/mlm_positions.py). Masks are left to the reader.
//
//   npx tsx scripts/export-windows.ts --tokenizer RUN/tokenizer.json --corpus sotu,brown,moby-dick \
//     --seq 128 --out /tmp/windows.safetensors
import * as fs from 'node:fs';
import { loadTokenizer } from '../src/tokenize/index.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadPretrainText } from '../src/train/pretrain-data.js';
import { mlmSpecials, pack, PRETRAIN_DEFAULTS, type PretrainConfig } from '../src/train/pretrain.js';
import { sequentialBatches, wrapClsSep } from '../src/train/objectives.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt?: string): string => {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  if (dflt === undefined) { console.error(`missing ${name}`); process.exit(2); }
  return dflt;
};
const tok = loadTokenizer(opt('--tokenizer'));
const corpus = opt('--corpus', 'sotu,brown,moby-dick').split(',');
const c = { ...PRETRAIN_DEFAULTS, arch: 'bert', corpus, seq: Number(opt('--seq', '128')) } as PretrainConfig;
const out = opt('--out');
if (fs.existsSync(out)) { console.error(`${out}: exists`); process.exit(2); }
const sp = mlmSpecials(tok);
const text = loadPretrainText(corpus);
const tensors = new Map<string, { shape: number[]; data: Int32Array }>();
for (const [name, docs] of [['train', text.train], ['valid', text.valid]] as const) {
  const w = pack(c, tok, docs);
  if (typeof w === 'string') throw new Error(w);
  const rows: Int32Array[] = [];
  for (const b of sequentialBatches(w, 256)) rows.push(wrapClsSep(b, sp).inputs);
  const all = new Int32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) { all.set(r, at); at += r.length; }
  tensors.set(name, { shape: [all.length / c.seq, c.seq], data: all });
  console.error(`${name}: ${all.length / c.seq} windows of ${c.seq}`);
}
writeSafetensors(out, tensors as never, { metadata: { specials: JSON.stringify({ ...sp, vocab: tok.vocabSize }) } });
