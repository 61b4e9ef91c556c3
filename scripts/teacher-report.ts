// Reports what the built-in teachers learned, against simple baselines, for the README:
//   LM: perplexity on held-out SOTU addresses vs a unigram model fit on the training split
//       (add-one smoothing, same tokenizer, same EOS-joined token stream); multiple-choice
//       accuracy (acc, acc_norm) with a 95% Wilson interval vs chance, and the same unigram
//       model's accuracy on the same items (a context-free scorer: it should sit at chance);
//   encoder: brown-genre dev and test accuracy (95% Wilson interval) vs the majority class of
//       the training split.
// Usage: npx tsx scripts/teacher-report.ts [teachers/llama-sotu] [teachers/bert-brown-genre]
// (KDQAT_THREADS=1 keeps it to one core; it takes a few minutes.)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { brownGenreTask, builtinMultipleChoice, loadCorpus, splitCorpus } from '../src/data/index.js';
import { loadTokenizer } from '../src/tokenize/index.js';
import { loadModelDir } from '../src/io/model-dir.js';
import { wilson95 } from '../src/report/table.js';

const [lm = 'teachers/llama-sotu', enc = 'teachers/bert-brown-genre'] = process.argv.slice(2);
const MC_ITEMS = 1000;

function evalJson(args: string[]): { results: Record<string, number | string>[] } {
  const r = spawnSync(process.execPath, ['bin/kdqat.js', 'eval', ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`kdqat eval ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

const withCi = (p: number, n: number): string => { const [lo, hi] = wilson95(p, n); return `${p.toFixed(3)} [${lo.toFixed(3)}, ${hi.toFixed(3)}]`; };

// Unigram model over the LM's tokens, fit on the SOTU training addresses (add-one).
const m = loadModelDir(lm);
const tok = loadTokenizer(m.tokenizerPath!);
const eos = (m.hf as { meta?: { eosTokenId?: number } }).meta?.eosTokenId ?? tok.specials.eos ?? 0;
const split = splitCorpus(loadCorpus('sotu'), { method: 'chronological' });
const enc1 = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });
const stream = (docs: { text: string }[]): number[] => docs.flatMap((d) => [...enc1(d.text), eos]);
const V = m.config.vocabSize;
const counts = new Float64Array(V).fill(1);
const train = stream(split.train);
for (const t of train) counts[t]++;
const total = train.length + V;
const logp = (ids: number[]): number => ids.reduce((s, t) => s + Math.log(counts[t] / total), 0);
const ppl = (ids: number[]): number => Math.exp(-logp(ids) / ids.length);
const uni = { valid: ppl(stream(split.valid)), test: ppl(stream(split.test)) };

/** The unigram model as a multiple-choice scorer, scoring " " + choice as `kdqat eval` does. */
function unigramMc(name: string, count: number): { acc: number; accNorm: number; n: number } {
  const items = builtinMultipleChoice(name, { count }).slice(0, count);
  let acc = 0, accNorm = 0;
  for (const it of items) {
    const s = it.choices.map((c) => logp(enc1(' ' + c)));
    const sn = s.map((x, i) => x / (' ' + it.choices[i]).length);
    if (s.indexOf(Math.max(...s)) === it.label) acc++;
    if (sn.indexOf(Math.max(...sn)) === it.label) accNorm++;
  }
  return { acc: acc / items.length, accNorm: accNorm / items.length, n: items.length };
}

const rows: string[] = ['| model | metric | teacher | baseline |', '|---|---|---|---|'];
for (const s of ['valid', 'test'] as const) {
  const r = evalJson(['--model', lm, '--corpus', 'sotu', '--split', s]).results[0];
  rows.push(`| ${lm} | SOTU ${s} perplexity (held-out addresses) | ${Number(r.ppl).toFixed(1)} | unigram ${uni[s].toFixed(1)} |`);
}
const mc = evalJson(['--model', lm, '--mc', 'continuation', '--mc', 'wordnet-def', '--limit', String(MC_ITEMS)]).results;
for (const r of mc) {
  const n = Number(r.items), u = unigramMc(String(r.source), n);
  rows.push(`| ${lm} | ${r.source} acc (n=${n}) | ${withCi(Number(r.acc), n)} | chance 0.250; unigram ${u.acc.toFixed(3)} |`);
  rows.push(`| ${lm} | ${r.source} acc_norm (n=${n}) | ${withCi(Number(r.acc_norm), n)} | chance 0.250; unigram ${u.accNorm.toFixed(3)} |`);
}
const task = brownGenreTask();
const byLabel = new Map<number, number>();
for (const e of task.train) byLabel.set(e.label, (byLabel.get(e.label) ?? 0) + 1);
const major = [...byLabel].sort((a, b) => b[1] - a[1])[0][0];
// Score passages at the length the classifier was fine-tuned with (summary.json), as finetune did.
const summaryFile = path.join(enc, 'summary.json');
const maxLen = fs.existsSync(summaryFile) ? Number(JSON.parse(fs.readFileSync(summaryFile, 'utf8')).config?.maxLen ?? 128) : 128;
for (const [s, part] of [['valid', task.dev], ['test', task.test]] as const) {
  const cls = evalJson(['--model', enc, '--cls', 'brown-genre', '--split', s, '--seq', String(maxLen)]).results[0];
  const n = Number(cls.examples), majority = part.filter((e) => e.label === major).length / part.length;
  rows.push(`| ${enc} | brown-genre ${s === 'valid' ? 'dev' : 'test'} accuracy (n=${n}, ${maxLen} tokens) | ${withCi(Number(cls.acc), n)} | majority class (${task.labels[major]}) ${majority.toFixed(3)} |`);
}
console.log(rows.join('\n'));
