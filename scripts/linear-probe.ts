// What a pre-trained encoder knows about a task before fine-tuning: a linear probe (logistic
// regression) on its frozen features, per layer, for the two summaries a classifier could read:
// the [CLS] position (what …ForSequenceClassification's pooler reads) and the mean over the
// real tokens. Layer 0 is the embedding output, so "mean, layer 0" is a bag of word embeddings:
// a probe that beats it at a higher layer shows the encoder adds something. Compare with
// scripts/bow-baseline.ts on the same files.
//
// Usage: npx tsx scripts/linear-probe.ts --model DIR --train FILE --dev FILE [--test FILE]
//        [--max-len 128] [--limit N (first N training examples)] [--json]
import { parseArgs } from 'node:util';
import { noGrad } from '../src/tensor/index.js';
import { loadClassification } from '../src/data/classification.js';
import type { ClassificationExample } from '../src/data/types.js';
import { loadModelDir } from '../src/io/model-dir.js';
import { archOf } from '../src/models/registry.js';
import { loadTokenizer } from '../src/tokenize/index.js';
import { classifierSpecials, encodeExample, inputLayout, padBatch } from '../src/eval/classification.js';
import { classifierModel } from '../src/train/finetune.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string' }, train: { type: 'string' }, dev: { type: 'string' }, test: { type: 'string' },
    'max-len': { type: 'string', default: '128' }, limit: { type: 'string', default: '0' }, json: { type: 'boolean', default: false },
  },
});
if (!a.model || !a.train || !a.dev) throw new Error('--model DIR, --train FILE and --dev FILE are required');
const t0 = performance.now();
const loaded = loadModelDir(a.model);
const rec = archOf(loaded.hf);
if (!rec.canCarry.classifier) throw new Error(`--model ${a.model}: is not an encoder`);
const tok = loadTokenizer(loaded.tokenizerPath!);
const train = loadClassification(a.train);
const K = train.labels.length;
const limit = Number(a.limit);
const sets: Record<string, ClassificationExample[]> = {
  train: limit > 0 ? train.examples.slice(0, limit) : train.examples,
  dev: loadClassification(a.dev, { labels: train.labels }).examples,
  ...(a.test ? { test: loadClassification(a.test, { labels: train.labels }).examples } : {}),
};
// The head is not read: only the hidden states.
const model = classifierModel(loaded, rec, K, 0, a.model);
const cfg = model.config as { maxPositionEmbeddings: number };
const maxLen = Math.min(Number(a['max-len']), cfg.maxPositionEmbeddings);
const { pad } = classifierSpecials(tok);

/** Per layer (0 = embeddings … L), per example: [CLS] vector and masked mean, C floats each. */
function features(es: ClassificationExample[]): { cls: Float64Array[][]; mean: Float64Array[][] } {
  const enc = es.map((e) => encodeExample(tok, e, maxLen, inputLayout(model)));
  const cls: Float64Array[][] = [], mean: Float64Array[][] = [];
  noGrad(() => {
    for (let s = 0; s < enc.length; s += 32) {
      const items = enc.slice(s, s + 32);
      const b = padBatch(items, pad);
      const taps = rec.forward(model, { ids: b.ids, mask: b.mask, tokenTypeIds: b.typeIds }, { capture: { hidden: true } });
      taps.hidden!.forEach((h, l) => {
        const [B, T, C] = h.shape, x = h.f32;
        cls[l] ??= []; mean[l] ??= [];
        for (let i = 0; i < B; i++) {
          const n = items[i].ids.length, c = new Float64Array(C), m = new Float64Array(C);
          for (let j = 0; j < C; j++) c[j] = x[i * T * C + j];
          for (let t = 0; t < n; t++) for (let j = 0; j < C; j++) m[j] += x[(i * T + t) * C + j] / n;
          cls[l].push(c); mean[l].push(m);
        }
      });
    }
  });
  return { cls, mean };
}

/** Softmax regression on standardized features (train statistics), full-batch Adam, λ on dev. */
function probe(tr: Float64Array[], ytr: number[], dv: Float64Array[], ydv: number[], te?: Float64Array[], yte?: number[]): { dev: number; test: number | null; lambda: number } {
  const C = tr[0].length, mu = new Float64Array(C), sd = new Float64Array(C);
  for (const x of tr) for (let j = 0; j < C; j++) mu[j] += x[j] / tr.length;
  for (const x of tr) for (let j = 0; j < C; j++) sd[j] += (x[j] - mu[j]) ** 2 / tr.length;
  for (let j = 0; j < C; j++) sd[j] = Math.sqrt(sd[j]) || 1;
  const z = (xs: Float64Array[]): Float64Array[] => xs.map((x) => x.map((v, j) => (v - mu[j]) / sd[j]));
  const Ztr = z(tr), Zdv = z(dv), Zte = te ? z(te) : null;
  const score = (W: Float64Array, x: Float64Array): Float64Array => {
    const o = new Float64Array(K);
    for (let k = 0; k < K; k++) { let s = W[K * C + k]; for (let j = 0; j < C; j++) s += W[k * C + j] * x[j]; o[k] = s; }
    return o;
  };
  const acc = (W: Float64Array, xs: Float64Array[], ys: number[]): number =>
    xs.filter((x, i) => { const o = score(W, x); return o.indexOf(Math.max(...o)) === ys[i]; }).length / xs.length;
  let best = { dev: -1, test: null as number | null, lambda: 0 };
  for (const lambda of [1e-1, 1e-2, 1e-3, 1e-4]) {
    const P = K * C + K, W = new Float64Array(P), m = new Float64Array(P), v = new Float64Array(P);
    for (let t = 1; t <= 300; t++) {
      const g = new Float64Array(P);
      Ztr.forEach((x, i) => {
        const o = score(W, x), mx = Math.max(...o);
        let s = 0;
        for (let k = 0; k < K; k++) { o[k] = Math.exp(o[k] - mx); s += o[k]; }
        for (let k = 0; k < K; k++) {
          const d = (o[k] / s - (k === ytr[i] ? 1 : 0)) / Ztr.length;
          g[K * C + k] += d;
          for (let j = 0; j < C; j++) g[k * C + j] += d * x[j];
        }
      });
      for (let j = 0; j < K * C; j++) g[j] += lambda * W[j];
      for (let j = 0; j < P; j++) {
        m[j] = 0.9 * m[j] + 0.1 * g[j];
        v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
        W[j] -= (0.05 * m[j] / (1 - 0.9 ** t)) / (Math.sqrt(v[j] / (1 - 0.999 ** t)) + 1e-8);
      }
    }
    const d = acc(W, Zdv, ydv);
    if (d > best.dev) best = { dev: d, test: Zte ? acc(W, Zte, yte!) : null, lambda };
  }
  return best;
}

const feats = Object.fromEntries(Object.entries(sets).map(([k, es]) => [k, features(es)]));
const y = Object.fromEntries(Object.entries(sets).map(([k, es]) => [k, es.map((e) => e.label)]));
const rows: { layer: number; pool: string; dev: number; test: number | null; lambda: number }[] = [];
for (const pool of ['cls', 'mean'] as const) {
  feats.train[pool].forEach((_, l) => {
    const r = probe(feats.train[pool][l], y.train, feats.dev[pool][l], y.dev, feats.test?.[pool][l], y.test);
    rows.push({ layer: l, pool, ...r });
  });
}
const out = { model: a.model, train: sets.train.length, dev: sets.dev.length, test: sets.test?.length ?? 0, maxLen, rows, seconds: Math.round((performance.now() - t0) / 100) / 10 };
if (a.json) console.log(JSON.stringify(out, null, 2));
else {
  console.log(`linear probe of ${a.model}: ${out.train} train / ${out.dev} dev${out.test ? ` / ${out.test} test` : ''} examples, max length ${maxLen}`);
  for (const r of rows) console.log(`${r.pool.padEnd(4)} layer ${r.layer}: dev ${r.dev.toFixed(4)}${r.test === null ? '' : `, test ${r.test.toFixed(4)}`} (λ ${r.lambda})`);
  console.log(`${out.seconds} s`);
}
