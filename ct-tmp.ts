import { builtinMultipleChoice, loadCorpus, splitCorpus } from './src/data/index.js';
const t = builtinMultipleChoice('continuation', {});
const train = splitCorpus(loadCorpus('sotu'), { method: 'chronological' }).train;
const counts = new Map<string, number>(); let total = 0;
const words = (s: string) => s.toLowerCase().match(/[a-z0-9']+|[^\sa-z0-9']/g) ?? [];
for (const d of train) for (const w of words(d.text)) { counts.set(w, (counts.get(w) ?? 0) + 1); total++; }
const V = counts.size + 1;
const lp = (s: string) => words(s).reduce((a, w) => a + Math.log(((counts.get(w) ?? 0) + 1) / (total + V)), 0);
const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
let u = 0, un = 0, lo = 0, sh = 0;
for (const it of t) {
  const s = it.choices.map(lp);
  if (argmax(s) === it.label) u++;
  if (argmax(s.map((x, i) => x / it.choices[i].length)) === it.label) un++;
  if (argmax(it.choices.map((c) => c.length)) === it.label) lo++;
  if (argmax(it.choices.map((c) => -c.length)) === it.label) sh++;
}
console.log(t.length, u / t.length, un / t.length, lo / t.length, sh / t.length);
