// Fine-tuning an encoder of any family as a sequence classifier (its record's
// …ForSequenceClassification head, asked through the architecture record), with paper B's recipe:
// AdamW, batch 32, 3 epochs, max length 128, 10% linear warmup then linear decay; dev accuracy
// after every epoch and the best dev checkpoint kept. The learning rate, by default, follows the
// encoder's width (autoLearningRate): paper B's 2e-5 is a BERT-base number, and the small
// encoders kdqat pre-trains stay at the label prior with it (docs/finetune.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crossEntropy } from '../tensor/ops/index.js';
import { intTensor, type Tensor } from '../tensor/tensor.js';
import { Rng, hash32 } from '../tensor/rng.js';
import { initParams, countParams, type Params } from '../nn/params.js';
import type { Architecture, Heads } from '../models/architecture.js';
import type { EncoderMeta } from '../models/encoder.js';
import { asModel, loadModelDir, saveModelDir, type LoadedModel, type SaveConfig } from '../io/model-dir.js';
import { readTokenizerConfig } from '../io/tokenizer_config.js';
import { archOf, type Model } from '../models/registry.js';
import { formatHfJson } from '../io/hf-config.js';
import { loadTokenizer } from '../tokenize/index.js';
import { fieldNames, loadClassification } from '../data/classification.js';
import { builtinClassification } from '../data/tasks.js';
import type { ClassificationExample } from '../data/types.js';
import {
  classificationAccuracy, classifierLogits, classifierSpecials, encodeExample, inputLayout, padBatch, type EncodedExample, type PaddedBatch,
} from '../eval/classification.js';
import { openSession, type SessionRun } from './session.js';
import { UsageError } from './usage.js';
import { cleanUpOnFailure, publishFiles, writeJsonAtomic } from './outdir.js';
import { rankRows, type Distributed } from './distributed.js';
import { withDropoutRows } from '../tensor/ops/index.js';

export interface FinetuneConfig {
  model: string;
  task: string;
  train: string;
  dev: string;
  /** Test file (same format), scored once with the kept model at the end ('' = none). */
  test: string;
  /** The files' own names for the text ("A" or "A,B" for a pair) and the label ('' = recognized ones). */
  textField: string;
  labelField: string;
  epochs: number;
  batch: number;
  /** Peak learning rate; 0 = autoLearningRate(hidden size). */
  lr: number;
  maxLen: number;
  warmupRatio: number;
  weightDecay: number;
  clip: number;
  seed: number;
  /** Stop after this many steps (0: epochs × batches per epoch). */
  maxSteps: number;
  /** Dev evaluation every n steps (0: after every epoch). */
  evalEvery: number;
  saveEvery: number;
  logEvery: number;
}

export const FINETUNE_DEFAULTS: FinetuneConfig = {
  model: '', task: '', train: '', dev: '', test: '', textField: '', labelField: '', epochs: 3, batch: 32, lr: 0, maxLen: 128, warmupRatio: 0.1,
  weightDecay: 0.01, clip: 1.0, seed: 0, maxSteps: 0, evalEvery: 0, saveEvery: 0, logEvery: 10,
};

/**
 * The default peak learning rate of an encoder of width C (hidden size): 0.0384 / C, i.e. 5e-5
 * for BERT-base (C = 768, the top of Devlin et al. 2019's fine-tuning grid {5, 4, 3, 2}e-5),
 * 1.5e-4 for kdqat's 256-wide teacher, 1.2e-3 for a 32-wide test encoder. Adam's step moves every
 * weight by about lr, and the right step shrinks as 1/width (µP, Yang et al. 2021, Tensor
 * Programs V); the constant is BERT-base's. Measured (docs/finetune.md): a 32-wide encoder at
 * paper B's 2e-5, or at 5e-4 for 96 updates, never leaves the label prior on a task a keyword
 * decides, and a PyTorch replica of the same model and recipe does the same, so it is the
 * recipe, not the engine; at 1.2e-3 it learns the task in ~60 updates.
 */
export function autoLearningRate(hiddenSize: number): number {
  return 0.0384 / hiddenSize;
}

export interface FinetuneRun extends SessionRun {
  config: FinetuneConfig;
  commandLine?: string[];
  /** Also score the best model on the task's test split (once, at the end). */
  evalTest?: boolean;
}

interface TaskData { labels: string[]; train: ClassificationExample[]; dev: ClassificationExample[]; test: ClassificationExample[] | null }

function loadTaskData(c: FinetuneConfig): TaskData {
  if (c.task) {
    if (c.train || c.dev || c.test) throw new UsageError('give either --task or --train/--dev/--test, not both');
    if (c.textField || c.labelField) throw new UsageError('--text-field/--label-field name the fields of --train/--dev/--test files; a built-in --task has its own');
    const t = builtinClassification(c.task);
    return { labels: t.labels, train: t.train, dev: t.dev, test: t.test };
  }
  if (!c.train || !c.dev) throw new UsageError('--task NAME, or both --train FILE and --dev FILE (JSONL or TSV), are required');
  const fields = fieldNames(c.textField, c.labelField);
  const train = loadClassification(c.train, { fields });
  const dev = loadClassification(c.dev, { labels: train.labels, fields });
  const test = c.test ? loadClassification(c.test, { labels: train.labels, fields }).examples : null;
  return { labels: train.labels, train: train.examples, dev: dev.examples, test };
}

const CLASSIFIER: Heads = { lm: false, mlm: false, classifier: true };

/** The checkpoint's encoder with a fresh classifier head: the parameters the record's classifier
 *  model has beyond its headless one (BERT: pooler + classifier; RoBERTa: classifier.dense +
 *  out_proj; DistilBERT: pre_classifier + classifier), initialized from `seed`. */
export function classifierModel(loaded: LoadedModel, rec: Architecture, numLabels: number, seed: number, from: string): Model {
  // Every encoder config carries numLabels (the classifier's rows).
  const config = { ...loaded.config, numLabels };
  const spec = rec.paramSpec(config, CLASSIFIER);
  const base = rec.paramSpec(config, { lm: false, mlm: false, classifier: false });
  const init = initParams(new Map([...spec].filter(([n]) => !base.has(n))), seed);
  const params: Params = new Map();
  for (const name of spec.keys()) {
    if (!base.has(name)) { params.set(name, init.get(name)!); continue; }
    const p = loaded.params.get(name);
    if (!p) throw new Error(`--model ${from}: has no "${name}"; it must be a ${rec.label} checkpoint with the same shapes`);
    params.set(name, p);
  }
  return { arch: loaded.arch, config, params, ...rec.modelFields(CLASSIFIER) } as Model;
}

/** The most common training label and how often it is right on dev: the accuracy of a classifier
 *  that learned nothing but the label prior. */
export function majorityBaseline(data: { train: ClassificationExample[]; dev: ClassificationExample[]; labels: string[] }): { label: number; dev: number } {
  const counts = new Array<number>(data.labels.length).fill(0);
  for (const e of data.train) counts[e.label]++;
  const label = counts.indexOf(Math.max(...counts));
  return { label, dev: data.dev.length ? data.dev.filter((e) => e.label === label).length / data.dev.length : NaN };
}

/** Rows of logits (B, K) whose argmax (ties: the first) is the label. */
function countCorrect(logits: Float32Array, labels: Int32Array, K: number): number {
  let n = 0;
  labels.forEach((y, b) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[b * K + k] > logits[b * K + best]) best = k;
    if (best === y) n++;
  });
  return n;
}

export interface FinetuneSummary {
  labels: string[];
  parameters: number;
  steps: number;
  /** The peak learning rate used (config.lr 0: autoLearningRate's). */
  learning_rate: number;
  best_dev_accuracy: number;
  best_step: number;
  /** Dev accuracy of always answering the most common training label. */
  majority_dev_accuracy: number;
  test_accuracy: number | null;
  wall_time_s: number;
  config: FinetuneConfig;
  command: string[];
}

export function runFinetune(run: FinetuneRun): FinetuneSummary {
  return cleanUpOnFailure(run.out, run.resume, () => finetune(run));
}

function finetune(run: FinetuneRun): FinetuneSummary {
  const session = openSession(run, run.config, { hint: ' (use --save-every); run without --resume to start over' });
  const { out, ckpt, config: c } = session;
  const say = (m: string): void => run.reporter?.message(m);
  const { dist, lead } = session; // lead: the rank that evaluates and writes
  if (c.batch < dist.size) throw new UsageError(`--batch ${c.batch} is smaller than the ${dist.size} MPI ranks: every rank takes at least one row of each batch; use --batch ≥ ${dist.size}`);
  session.checkRanks('finetune');

  const loaded = loadModelDir(c.model);
  const rec = archOf(loaded.hf);
  if (!rec.canCarry.classifier) throw new Error(`--model ${c.model}: is a ${rec.label} model, which has no sequence-classification head; finetune needs an encoder (BERT, RoBERTa, DistilBERT, …)`);
  if (!loaded.tokenizerPath) throw new Error(`--model ${c.model}: has no tokenizer.json; the classifier needs the model's own tokenizer`);
  const tok = loadTokenizer(loaded.tokenizerPath);
  const { pad } = classifierSpecials(tok);
  const data = loadTaskData(c);
  const model = classifierModel(loaded, rec, data.labels.length, c.seed, c.model);
  const { params } = model;
  const cfg = model.config as { numLabels: number; maxPositionEmbeddings: number };
  // Model and data are checked before --force clears an old run out of the way.
  session.prepareOutDir([{ flag: '--model', path: c.model }, { flag: '--task', path: c.task }, { flag: '--train', path: c.train }, { flag: '--dev', path: c.dev }]);
  const maxLen = Math.min(c.maxLen, cfg.maxPositionEmbeddings);
  if (maxLen < c.maxLen) say(`--seq-len ${c.maxLen} exceeds the model's max_position_embeddings; using ${maxLen}`);

  const train: EncodedExample[] = data.train.map((e) => encodeExample(tok, e, maxLen, inputLayout(model)));
  if (train.length === 0) throw new Error('the training set is empty');
  const perEpoch = Math.ceil(train.length / c.batch);
  const totalSteps = c.maxSteps > 0 ? c.maxSteps : c.epochs * perEpoch;
  const warmup = Math.ceil(c.warmupRatio * totalSteps);
  say(`${data.train.length} training / ${data.dev.length} dev examples, ${data.labels.length} labels; ${totalSteps} steps (${perEpoch} per epoch)`);
  // What a classifier that learned nothing scores: always the training set's most common label.
  const prior = majorityBaseline(data);
  say(`always answering "${data.labels[prior.label]}" (the most common training label) scores ${prior.dev.toFixed(4)} on dev: the classifier must beat that`);

  const lr = c.lr > 0 ? c.lr : autoLearningRate((model.config as { hiddenSize: number }).hiddenSize);
  if (!(c.lr > 0)) say(`learning rate ${lr.toPrecision(3)} (0.0384 / hidden size; --lr sets another)`);
  let best = { accuracy: -1, step: 0 };
  // Training accuracy since the last log line (argmax of the training logits, dropout on): tells
  // a model that cannot fit the data (train accuracy at the prior) from one that overfits.
  let fit = { correct: 0, seen: 0 };
  if (ckpt) {
    best = session.saved<typeof best>('best')!;
    fit = session.saved<typeof fit>('fit') ?? fit; // checkpoints from before train_accuracy have none
  }

  const saveBest = (): void => publishFiles(out, (tmp) => {
    // The checkpoint's meta (special ids, kept keys) with the classifier's class and labels; a
    // padding id kept in the meta (BERT, DistilBERT: it moves no numbers) is the tokenizer's.
    const old = loaded.hf.meta as Partial<EncoderMeta>;
    const meta: Partial<EncoderMeta> = {
      ...old, ...rec.metaForHeads(CLASSIFIER), labels: data.labels, problemType: 'single_label_classification',
      ...('padTokenId' in old ? { padTokenId: pad } : {}),
    };
    saveModelDir(tmp, {
      config: { arch: model.arch, config: model.config, meta } as SaveConfig,
      params, tokenizerJson: fs.readFileSync(tok.path, 'utf8'), tokenizerConfig: readTokenizerConfig(tok.path), companionsFrom: path.dirname(tok.path),
    });
    // save_pretrained leaves num_labels implied by id2label; it is written out too, for readers
    // that look for it (transformers accepts it when it agrees with id2label).
    const file = path.join(tmp, 'config.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const fd = fs.openSync(file, 'w');
    try { fs.writeFileSync(fd, formatHfJson({ ...json, num_labels: cfg.numLabels })); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  });

  // Data parallel: this step's training-accuracy counts, summed over the ranks after backward.
  const stepFit = new Float64Array(2);
  const result = session.train<RankRows>({
    params, totalSteps, clipNorm: c.clip, seed: c.seed,
    lr, optimizer: { weightDecay: c.weightDecay, noDecay: (n) => (params.get(n)?.ndim ?? 2) < 2 },
    schedule: { warmupSteps: warmup, decay: 'linear' },
    // Shuffled example indices per epoch, seeded by (seed, epoch); the last batch may be short.
    epochBatches: function* (epoch) {
      const order = new Rng(hash32(c.seed, epoch)).shuffle(train.map((_, i) => i));
      for (let s = 0; s < order.length; s += c.batch) yield rankRowsOf(order.slice(s, s + c.batch), dist);
    },
    tokens: (b) => b.idx.slice(b.lo, b.hi).reduce((n, i) => n + train[i].ids.length, 0),
    distributed: { dist, share: (b) => (b.hi - b.lo) / b.idx.length },
    loss: (r, ctx) => {
      // A rank's rows keep the whole batch's padding and draw its dropout masks (distributed.ts).
      const whole = padBatch(r.idx.map((i) => train[i]), pad);
      const b = r.lo === 0 && r.hi === r.idx.length ? whole : batchRows(whole, r.lo, r.hi);
      const B = r.hi - r.lo;
      const logits = withDropoutRows(r.lo, B, () => classifierLogits(model, b, { dropoutSeed: hash32(ctx.seed, 2) >>> 1 })); // (B, K)
      const correct = countCorrect(logits.f32, b.labels, cfg.numLabels);
      if (dist.size === 1) {
        fit.correct += correct;
        fit.seen += B;
      } else {
        stepFit[0] += correct;
        stepFit[1] += B;
      }
      return crossEntropy(logits, intTensor(b.labels, [B]));
    },
    hooks: {
      afterBackward: () => {
        if (dist.size === 1) return;
        dist.allReduceSum(stepFit);
        fit.correct += stepFit[0];
        fit.seen += stepFit[1];
        stepFit.fill(0);
      },
    },
    logRecord: (rec) => {
      const r = { ...rec, train_accuracy: fit.seen ? fit.correct / fit.seen : null };
      fit = { correct: 0, seen: 0 };
      return r;
    },
    evaluate: lead ? () => ({ dev_accuracy: classificationAccuracy(model, tok, data.dev, { maxLen, batchSize: 64 }).accuracy }) : undefined,
    evalEvery: c.evalEvery > 0 ? c.evalEvery : perEpoch,
    onEval: (step, m) => {
      if (m.dev_accuracy > best.accuracy) {
        best = { accuracy: m.dev_accuracy, step };
        saveBest();
        say(`new best dev accuracy ${m.dev_accuracy.toFixed(4)} at step ${step}: saved to ${out}`);
      }
    },
    logEvery: c.logEvery, saveEvery: c.saveEvery, extraState: () => ({ best, fit }),
  });

  // The test split is scored only on request, once, with the model that was kept (best dev).
  let test: number | null = null;
  if (lead && (run.evalTest || c.test)) {
    if (!data.test) throw new Error('--eval-test needs a test split: a built-in --task, or --test FILE');
    const kept = loadModelDir(out);
    test = classificationAccuracy(asModel(kept), tok, data.test, { maxLen, batchSize: 64 }).accuracy;
  }
  const summary: FinetuneSummary = {
    labels: data.labels, parameters: countParams(params), steps: result.step, learning_rate: lr,
    best_dev_accuracy: best.accuracy, best_step: best.step, majority_dev_accuracy: prior.dev, test_accuracy: test,
    wall_time_s: session.wallTime(), config: c, command: run.commandLine ?? [],
  };
  if (lead) writeJsonAtomic(path.join(out, 'summary.json'), summary);
  if (lead && !(best.accuracy > prior.dev)) {
    say(`warning: the best dev accuracy ${best.accuracy.toFixed(4)} does not beat always answering "${data.labels[prior.label]}" (${prior.dev.toFixed(4)}): ` +
      'the classifier learned nothing usable. See train_accuracy in train_log.jsonl: at the prior too, training did not fit — raise --lr or --epochs (docs/finetune.md)');
  }
  return summary;
}

/** A batch of example indices and the rows [lo, hi) of it this rank computes (all of it: one
 *  process). */
interface RankRows { idx: number[]; lo: number; hi: number }

function rankRowsOf(idx: number[], dist: Distributed): RankRows {
  return { idx, ...rankRows(idx.length, dist.rank, dist.size) };
}

/** Rows [lo, hi) of a padded batch, with the whole batch's padded length T: a rank's examples
 *  go through the encoder exactly as in a one-process batch. */
function batchRows(b: PaddedBatch, lo: number, hi: number): PaddedBatch {
  const T = b.ids.shape[1], rows = hi - lo;
  const part = (t: Tensor): Tensor => intTensor(t.i32.slice(lo * T, hi * T), [rows, T]);
  return { ids: part(b.ids), typeIds: part(b.typeIds), mask: part(b.mask), labels: b.labels.slice(lo, hi) };
}
