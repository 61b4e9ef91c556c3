// Does a pre-trained masked LM read word order? Zero-shot, no fine-tuning: for N sentences of the
// word-order task's dev split (validation documents, never in MLM training), compare the
// pseudo-log-likelihood (src/eval/pseudo-likelihood.ts) of the sentence as written with that of
// the same sentence with two inner words exchanged (word-order's corruption, a seeded draw per
// sentence), and report how often the original scores higher, with a 95% Wilson interval. A
// model that predicts from the bag of context words or from no context at all is at 0.5; a
// model that knows English word order is well above. Also prints the model's top predictions
// for a few masked probes, which show at a glance whether it uses the context.
//
// Usage: npx tsx scripts/word-order-pll.ts --model DIR [--n 300] [--max-len 64] [--json]
import { parseArgs } from 'node:util';
import { intTensor, noGrad } from '../src/tensor/index.js';
import { asModel, loadModelDir } from '../src/io/model-dir.js';
import { archOf, lmLogits, maxPositions } from '../src/models/model.js';
import { loadTokenizer } from '../src/tokenize/index.js';
import { swapTwoWords, wordOrderTask } from '../src/data/word-order.js';
import { pseudoLogLikelihood } from '../src/eval/pseudo-likelihood.js';
import { Rng } from '../src/tensor/rng.js';
import { wilson95 } from '../src/report/table.js';

const { values: a } = parseArgs({
  options: { model: { type: 'string' }, n: { type: 'string', default: '300' }, 'max-len': { type: 'string', default: '64' }, json: { type: 'boolean', default: false } },
});
if (!a.model) throw new Error('--model DIR is required: a masked-LM encoder (kdqat pretrain --arch bert, or a checkpoint with its MLM head)');
const n = Number(a.n), maxLen = Number(a['max-len']);
if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--n must be a positive integer, got ${a.n}`);
const loaded = loadModelDir(a.model);
const model = asModel(loaded);
if (archOf(model).kind !== 'encoder') throw new Error(`--model ${a.model}: is not an encoder; this measures masked LMs`);
if (!loaded.tokenizerPath) throw new Error(`--model ${a.model}: no tokenizer.json beside the weights`);
const tok = loadTokenizer(loaded.tokenizerPath);
const { mask, cls, sep, pad, bos, eos } = tok.specials;
if (mask === undefined) throw new Error(`${loaded.tokenizerPath}: has no mask token`);
const special = new Set([mask, cls, sep, pad, bos, eos].filter((x): x is number => x !== undefined));
const keep = Math.min(maxLen, maxPositions(model));
const encode = (s: string) => tok.encode(s, { addSpecialTokens: true }).slice(0, keep);

const rng = new Rng(7);
const originals = wordOrderTask().dev.filter((e) => e.label === 1).slice(0, n);
let wins = 0;
const t0 = performance.now();
originals.forEach((e, i) => {
  const swapped = swapTwoWords(e.text, rng)!;
  if (pseudoLogLikelihood(model, encode(e.text), mask, special) > pseudoLogLikelihood(model, encode(swapped), mask, special)) wins++;
  if (!a.json && (i + 1) % 50 === 0) process.stderr.write(`${i + 1}/${originals.length} pairs\n`);
});
const p = wins / originals.length;
const [lo, hi] = wilson95(p, originals.length);

const maskText = tok.json.added_tokens.find((t) => t.id === mask)?.content ?? '[MASK]';
const PROBES = ['The President of the United [MASK] of America.', 'I have the honor to [MASK] to the Congress.', 'Call me [MASK].', 'The white [MASK] swam away.'];
const probes = PROBES.map((text) => {
  const ids = tok.encode(text.replace('[MASK]', maskText), { addSpecialTokens: true });
  const at = ids.indexOf(mask);
  const lg = noGrad(() => lmLogits(model, intTensor(ids, [1, ids.length]), { rows: Int32Array.from([at]) }).f32);
  const top = [...lg.keys()].sort((x, y) => lg[y] - lg[x]).slice(0, 5).map((t) => tok.decode([t]).trim());
  return { text, top };
});
const out = { model: a.model, pairs: originals.length, original_preferred: p, wilson95: [lo, hi], probes, seconds: (performance.now() - t0) / 1000 };
if (a.json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`${a.model}: the sentence as written has the higher pseudo-log-likelihood in ${wins}/${originals.length} pairs: ${p.toFixed(3)} [${lo.toFixed(3)}, ${hi.toFixed(3)}] (0.5 = blind to word order)`);
  for (const q of probes) console.log(`  ${q.text} → ${q.top.join(' | ')}`);
}
