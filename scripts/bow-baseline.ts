// The bag-of-words baseline a fine-tuned classifier has to beat: multinomial logistic regression
// on word counts, fit on a task's train file, its L2 strength chosen on the dev file, then scored
// once on the test file. Same task files as `kdqat finetune` (JSONL or TSV, src/data/classification.ts),
// same label ids (the train file's). No ML dependency: the model is ~60 lines below.
//
// Features: lowercased words (letters/digits runs, text and text_pair with separate prefixes),
// kept if they occur in ≥ --min-count training examples; value log(1 + count), each example's
// vector scaled to unit L2 norm. Fit: softmax regression, full-batch gradient descent with Adam
// (lr 0.1, --epochs passes), weight decay λ·‖W‖²/2 with λ from a grid, picked by dev accuracy
// (ties: the larger λ). Deterministic: zero init, no sampling.
//
// Usage: npx tsx scripts/bow-baseline.ts --train FILE --dev FILE [--test FILE] [--min-count 2]
//        [--epochs 200] [--json]
//        npx tsx scripts/bow-baseline.ts --task brown-genre …   (a built-in task: its train/dev/test)
import { parseArgs } from 'node:util';
import { loadClassification } from '../src/data/classification.js';
import { builtinClassification, CLASSIFICATION_TASKS } from '../src/data/tasks.js';
import type { ClassificationExample } from '../src/data/types.js';

const { values: a } = parseArgs({
  options: {
    task: { type: 'string' }, train: { type: 'string' }, dev: { type: 'string' }, test: { type: 'string' },
    'min-count': { type: 'string', default: '2' }, epochs: { type: 'string', default: '200' }, json: { type: 'boolean', default: false },
  },
});
if (a.task && (a.train || a.dev || a.test)) throw new Error('--task is a built-in task with its own splits: give either --task or --train/--dev/--test');
if (!a.task && (!a.train || !a.dev)) throw new Error(`--train FILE and --dev FILE are required (the task files given to kdqat finetune), or --task ${CLASSIFICATION_TASKS.join('|')}`);
const minCount = Number(a['min-count']), epochs = Number(a.epochs);
if (!(Number.isInteger(minCount) && minCount >= 1)) throw new Error(`--min-count must be a positive integer, got ${a['min-count']}`);
if (!(Number.isInteger(epochs) && epochs >= 1)) throw new Error(`--epochs must be a positive integer, got ${a.epochs}`);

const builtin = a.task ? builtinClassification(a.task) : null;
const train = builtin ? { labels: builtin.labels, examples: builtin.train } : loadClassification(a.train!);
const labels = train.labels, K = labels.length;
const dev = builtin ? builtin.dev : loadClassification(a.dev!, { labels }).examples;
const test = builtin ? builtin.test : a.test ? loadClassification(a.test, { labels }).examples : null;

const words = (e: ClassificationExample): string[] => {
  const w = (s: string, p: string): string[] => (s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).map((t) => p + t);
  return [...w(e.text, ''), ...(e.textPair === undefined ? [] : w(e.textPair, 'b:'))];
};
const df = new Map<string, number>();
for (const e of train.examples) for (const t of new Set(words(e))) df.set(t, (df.get(t) ?? 0) + 1);
const vocab = new Map([...df].filter(([, n]) => n >= minCount).map(([t], i) => [t, i]));
const D = vocab.size;

/** Sparse unit-norm log(1 + count) vectors: feature ids and values per example. */
interface Sparse { idx: Int32Array; val: Float64Array; label: number }
const featurize = (es: ClassificationExample[]): Sparse[] => es.map((e) => {
  const c = new Map<number, number>();
  for (const t of words(e)) { const j = vocab.get(t); if (j !== undefined) c.set(j, (c.get(j) ?? 0) + 1); }
  const idx = Int32Array.from(c.keys()), val = Float64Array.from(c.values(), (n) => Math.log1p(n));
  const norm = Math.hypot(...val) || 1;
  for (let i = 0; i < val.length; i++) val[i] /= norm;
  return { idx, val, label: e.label };
});
const X = featurize(train.examples), Xdev = featurize(dev), Xtest = test ? featurize(test) : null;

/** Logits of one example under weights W (K × D, row-major) and bias b (K). */
function logits(W: Float64Array, b: Float64Array, x: Sparse): Float64Array {
  const z = Float64Array.from(b);
  for (let k = 0; k < K; k++) for (let i = 0; i < x.idx.length; i++) z[k] += W[k * D + x.idx[i]] * x.val[i];
  return z;
}
const argmax = (z: Float64Array): number => z.reduce((best, v, k) => (v > z[best] ? k : best), 0);
const accuracy = (W: Float64Array, b: Float64Array, xs: Sparse[]): number => xs.filter((x) => argmax(logits(W, b, x)) === x.label).length / xs.length;

/** Softmax regression by full-batch Adam on mean cross-entropy + λ‖W‖²/2. */
function fit(lambda: number): { W: Float64Array; b: Float64Array; loss: number } {
  const P = K * D + K, theta = new Float64Array(P), m = new Float64Array(P), v = new Float64Array(P);
  const W = theta.subarray(0, K * D), b = theta.subarray(K * D);
  const lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  let loss = 0;
  for (let t = 1; t <= epochs; t++) {
    const g = new Float64Array(P), gW = g.subarray(0, K * D), gb = g.subarray(K * D);
    loss = 0;
    for (const x of X) {
      const z = logits(W, b, x), mx = Math.max(...z);
      let s = 0;
      for (let k = 0; k < K; k++) { z[k] = Math.exp(z[k] - mx); s += z[k]; }
      loss -= Math.log(z[x.label] / s) / X.length;
      for (let k = 0; k < K; k++) {
        const d = (z[k] / s - (k === x.label ? 1 : 0)) / X.length;
        gb[k] += d;
        for (let i = 0; i < x.idx.length; i++) gW[k * D + x.idx[i]] += d * x.val[i];
      }
    }
    for (let j = 0; j < K * D; j++) { gW[j] += lambda * W[j]; loss += 0.5 * lambda * W[j] * W[j]; }
    for (let j = 0; j < P; j++) {
      m[j] = b1 * m[j] + (1 - b1) * g[j];
      v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
      theta[j] -= (lr * m[j] / (1 - b1 ** t)) / (Math.sqrt(v[j] / (1 - b2 ** t)) + eps);
    }
  }
  return { W: Float64Array.from(W), b: Float64Array.from(b), loss };
}

const t0 = performance.now();
const counts = new Array<number>(K).fill(0);
for (const e of train.examples) counts[e.label]++;
const majority = counts.indexOf(Math.max(...counts));
const prior = (xs: Sparse[]): number => xs.filter((x) => x.label === majority).length / xs.length;
const grid = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5];
let best: { lambda: number; dev: number; W: Float64Array; b: Float64Array } | null = null;
const tried: { lambda: number; train_loss: number; train: number; dev: number }[] = [];
for (const lambda of grid) {
  const f = fit(lambda);
  const d = accuracy(f.W, f.b, Xdev);
  tried.push({ lambda, train_loss: f.loss, train: accuracy(f.W, f.b, X), dev: d });
  if (!best || d > best.dev) best = { lambda, dev: d, W: f.W, b: f.b };
}
const result = {
  labels, features: D, train: X.length, dev_n: Xdev.length, test_n: Xtest?.length ?? 0,
  majority_label: labels[majority], majority_dev: prior(Xdev), majority_test: Xtest ? prior(Xtest) : null,
  lambda: best!.lambda, dev_accuracy: best!.dev, test_accuracy: Xtest ? accuracy(best!.W, best!.b, Xtest) : null,
  grid: tried, seconds: Math.round((performance.now() - t0) / 100) / 10,
};
if (a.json) console.log(JSON.stringify(result, null, 2));
else {
  for (const r of tried) console.log(`λ ${r.lambda}: train loss ${r.train_loss.toFixed(4)}, train ${r.train.toFixed(4)}, dev ${r.dev.toFixed(4)}`);
  console.log(`${D} features from ${X.length} training examples; λ ${result.lambda} chosen on dev`);
  console.log(`majority class "${result.majority_label}": dev ${result.majority_dev.toFixed(4)}${Xtest ? `, test ${result.majority_test!.toFixed(4)}` : ''}`);
  console.log(`bag-of-words logistic regression: dev ${result.dev_accuracy.toFixed(4)}${Xtest ? `, test ${result.test_accuracy!.toFixed(4)}` : ''} (${result.seconds} s)`);
}
