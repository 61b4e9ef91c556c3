// Reports what the built-in teachers learned, against simple baselines, for the README:
//   LM: perplexity on held-out SOTU addresses vs a unigram model fit on the training split
//       (add-one smoothing, same tokenizer, same EOS-joined token stream), and multiple-choice
//       accuracy vs chance;
//   encoder: brown-genre test accuracy vs the majority class of the training split.
// Usage: npx tsx scripts/teacher-report.ts [teachers/llama-sotu] [teachers/bert-brown-genre]
import { spawnSync } from 'node:child_process';
import { brownGenreTask, loadCorpus, splitCorpus } from '../src/data/index.js';
import { loadTokenizer } from '../src/tokenize/index.js';
import { loadModelDir } from '../src/io/model-dir.js';

const [lm = 'teachers/llama-sotu', enc = 'teachers/bert-brown-genre'] = process.argv.slice(2);

function evalJson(args: string[]): { results: Record<string, number | string>[] } {
  const r = spawnSync(process.execPath, ['bin/kdqat.js', 'eval', ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`kdqat eval ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

function unigramPpl(dir: string): { valid: number; test: number } {
  const m = loadModelDir(dir);
  const tok = loadTokenizer(m.tokenizerPath!);
  const eos = (m.hf as { meta?: { eosTokenId?: number } }).meta?.eosTokenId ?? tok.specials.eos ?? 0;
  const split = splitCorpus(loadCorpus('sotu'), { method: 'chronological' });
  const stream = (docs: { text: string }[]): number[] => docs.flatMap((d) => [...tok.encode(d.text, { addSpecialTokens: false }), eos]);
  const V = m.config.vocabSize;
  const counts = new Float64Array(V).fill(1);
  const train = stream(split.train);
  for (const t of train) counts[t]++;
  const total = train.length + V;
  const ppl = (ids: number[]): number => Math.exp(-ids.reduce((s, t) => s + Math.log(counts[t] / total), 0) / ids.length);
  return { valid: ppl(stream(split.valid)), test: ppl(stream(split.test)) };
}

const rows: string[] = ['| model | metric | teacher | baseline |', '|---|---|---|---|'];
const uni = unigramPpl(lm);
for (const split of ['valid', 'test'] as const) {
  const r = evalJson(['--model', lm, '--corpus', 'sotu', '--split', split]).results[0];
  rows.push(`| ${lm} | SOTU ${split} perplexity (held-out addresses) | ${Number(r.ppl).toFixed(1)} | unigram ${(split === 'valid' ? uni.valid : uni.test).toFixed(1)} |`);
}
const mc = evalJson(['--model', lm, '--mc', 'continuation', '--mc', 'wordnet-def', '--limit', '500']).results;
for (const r of mc) {
  rows.push(`| ${lm} | ${r.source} acc / acc_norm (n=${r.n ?? r.items}) | ${Number(r.acc).toFixed(3)} / ${Number(r.acc_norm).toFixed(3)} | chance 0.250 |`);
}
const task = brownGenreTask();
const counts = new Map<number, number>();
for (const e of task.train) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
const major = [...counts].sort((a, b) => b[1] - a[1])[0][0];
const majorityAcc = task.test.filter((e) => e.label === major).length / task.test.length;
const cls = evalJson(['--model', enc, '--cls', 'brown-genre', '--split', 'test']).results[0];
rows.push(`| ${enc} | brown-genre test accuracy (n=${cls.n ?? cls.examples}) | ${Number(cls.accuracy ?? cls.acc).toFixed(3)} | majority class ${majorityAcc.toFixed(3)} |`);
console.log(rows.join('\n'));
