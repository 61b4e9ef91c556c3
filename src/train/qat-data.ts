// Training data of a KD-QAT run, from the teacher's own tokenizer:
// - decoder (LLaMA teacher): packed windows of a corpus (sotu, brown, moby-dick, or a text file
//   or directory), split into train/valid exactly as `kdqat pretrain` splits it
//   (src/train/pretrain-data.ts), so validation text is held out from the teacher's pre-training
//   and from distillation alike;
// - encoder (BERT classifier teacher): a classification task (built-in brown-genre, or a JSONL/
//   TSV training file with a --dev file), encoded as `kdqat finetune` encodes it, in padded
//   batches with attention masks.
import * as fs from 'node:fs';
import { Tensor, intTensor } from '../tensor/tensor.js';
import { Rng, hash32 } from '../tensor/rng.js';
import { packCausal, type Windows } from '../data/packing.js';
import { loadClassification, type FieldNames } from '../data/classification.js';
import { builtinClassification, CLASSIFICATION_TASKS } from '../data/tasks.js';
import type { ClassificationExample, Document } from '../data/types.js';
import type { ChatRenderer } from '../data/chat.js';
import { BERT_INPUT, encodeExample, padBatch, classifierSpecials, type EncodedExample } from '../eval/classification.js';
import type { ClassifierInput } from '../models/architecture.js';
import type { LoadedTokenizer } from '../tokenize/index.js';
import { corpusList, loadPretrainText, type CorpusSplitInfo } from './pretrain-data.js';
import { shuffledBatches } from './objectives.js';
import { LOSS_NAMES, type LossName } from '../distill/losses.js';

/** One micro-batch, as the teacher and the student see it. */
export interface QatBatch {
  ids: Tensor; // (B, T) int32
  /** (B, T) int32, 1 = token, 0 = padding (encoder batches; null for packed windows). */
  mask: Tensor | null;
  typeIds: Tensor | null; // (B, T) int32 (encoder)
  /** Decoder: next-token targets (B, T); encoder: class ids (B). */
  labels: Tensor;
  tokens: number;
}

export interface DecoderData {
  kind: 'decoder';
  train: Windows;
  valid: Windows | null;
  /** Why there is no validation set, when there is none. */
  validNote: string;
  splits: CorpusSplitInfo[];
}

export interface EncoderData {
  kind: 'encoder';
  labels: string[];
  train: EncodedExample[];
  dev: ClassificationExample[];
  pad: number;
  maxLen: number;
}

export type QatData = DecoderData | EncoderData;

/** Packed LM windows of `seqLen` inputs (+1 target) from the corpus `spec`: [bos] text [eos] per
 *  document, or, for a conversation rendered by the chat template (`chat`), the template's text as it wrote it (its own BOS, if any) and [eos]. */
export function decoderData(spec: string, tok: LoadedTokenizer, seqLen: number, chat?: ChatRenderer, field?: string): DecoderData {
  const text = loadPretrainText(corpusList(spec), { chat, field }); // "sotu,my.jsonl": several corpora, as pretrain's --corpus
  const sp = tok.specials;
  const pack = (docs: Document[]): Windows => packCausal(docs, tok, { seqLen, bosId: sp.bos, eosId: sp.eos });
  let train: Windows;
  try {
    train = pack(text.train);
  } catch (e) {
    throw new Error(`--data ${spec}: ${(e as Error).message}`);
  }
  let valid: Windows | null = null, validNote = '';
  if (text.valid.length === 0) validNote = 'the corpus has no validation documents';
  else {
    try {
      valid = pack(text.valid);
    } catch (e) {
      validNote = (e as Error).message;
    }
  }
  return { kind: 'decoder', train, valid, validNote, splits: text.splits };
}

/**
 * A classification task for a classifier teacher with labels `teacherLabels`, encoded in the
 * teacher's input layout: a built-in task
 * name, or a training file plus a dev file (their string labels are mapped by the teacher's).
 */
export function encoderData(
  task: string, dev: string, tok: LoadedTokenizer, teacherLabels: string[], maxLen: number, layout: ClassifierInput = BERT_INPUT, fields?: FieldNames,
): EncoderData {
  let labels: string[], train: ClassificationExample[], devEx: ClassificationExample[];
  if (CLASSIFICATION_TASKS.includes(task)) {
    if (fields) throw new Error('--text-field/--label-field name the fields of --task/--dev files; a built-in --task has its own');
    const t = builtinClassification(task);
    ({ labels, train, dev: devEx } = t);
  } else {
    if (!fs.existsSync(task)) {
      throw new Error(`--task ${task}: not a built-in task (${CLASSIFICATION_TASKS.join(', ')}) and no such file; give a task name or a JSONL/TSV file`);
    }
    if (!dev) throw new Error(`--task ${task}: a training file needs --dev FILE (JSONL/TSV) for the evaluation`);
    const numeric = teacherLabels.every((l, i) => l === String(i)) || teacherLabels.some((l) => /^LABEL_\d+$/.test(l));
    const opts = numeric ? { fields } : { labels: teacherLabels, fields };
    const tr = loadClassification(task, opts);
    labels = numeric ? teacherLabels : tr.labels;
    train = tr.examples;
    devEx = loadClassification(dev, opts).examples;
  }
  if (labels.length !== teacherLabels.length) {
    throw new Error(`--task ${task}: has ${labels.length} labels (${labels.join(', ')}) but the teacher's classifier has ${teacherLabels.length} (${teacherLabels.join(', ')}); use the task the teacher was fine-tuned on`);
  }
  for (const e of [...train, ...devEx]) {
    if (e.label >= teacherLabels.length) throw new Error(`--task ${task}: label id ${e.label} is out of range for the teacher's ${teacherLabels.length} labels`);
  }
  if (train.length === 0) throw new Error(`--task ${task}: the training set is empty`);
  const { pad } = classifierSpecials(tok);
  return { kind: 'encoder', labels, train: train.map((e) => encodeExample(tok, e, maxLen, layout)), dev: devEx, pad, maxLen };
}

/** The micro-batches of epoch `epoch`: an order depending only on (seed, epoch). */
export function* epochBatches(data: QatData, batch: number, seed: number, epoch: number): Generator<QatBatch> {
  if (data.kind === 'decoder') {
    for (const b of shuffledBatches(data.train, batch, seed, epoch)) {
      yield {
        ids: intTensor(b.inputs, [b.rows, b.seqLen]), mask: null, typeIds: null,
        labels: intTensor(b.targets!, [b.rows, b.seqLen]), tokens: b.rows * b.seqLen,
      };
    }
    return;
  }
  // Shuffled example indices, as `kdqat finetune` orders them; the last batch may be short.
  const order = new Rng(hash32(seed, epoch)).shuffle(data.train.map((_, i) => i));
  for (let s = 0; s < order.length; s += batch) {
    const items = order.slice(s, s + batch).map((i) => data.train[i]);
    const b = padBatch(items, data.pad);
    yield {
      ids: b.ids, mask: b.mask, typeIds: b.typeIds, labels: intTensor(b.labels, [items.length]),
      tokens: items.reduce((n, e) => n + e.ids.length, 0),
    };
  }
}

/** A QatBatch with `share`: the fraction of the global batch's rows it holds (data parallel). */
export type ShareBatch = QatBatch & { share: number };

/** A rank's rows of a global batch; an encoder's with termScale, each loss term's share of the
 *  batch (termShares) over the rows' share, which the loop multiplies back in. */
export type RankBatch = ShareBatch & { termScale?: Partial<Record<LossName, number>> };

/** Rows [lo, hi) of a batch (a rank's share of it, src/train/distributed.ts rankRows); the
 *  padded length T stays the global batch's. */
export function sliceRows(b: QatBatch, lo: number, hi: number): ShareBatch {
  const B = b.ids.shape[0], T = b.ids.shape[1], rows = hi - lo;
  const part = (t: Tensor): Tensor => intTensor(t.i32.slice(lo * T, hi * T), [rows, T]);
  const mask = b.mask ? part(b.mask) : null;
  const labels = b.labels.ndim === 1 ? intTensor(b.labels.i32.slice(lo, hi), [rows]) : part(b.labels);
  // Decoder windows are all T tokens; encoder rows count their unpadded tokens.
  const tokens = mask ? mask.i32.reduce((n, m) => n + (m ? 1 : 0), 0) : rows * T;
  return { ids: part(b.ids), mask, typeIds: b.typeIds ? part(b.typeIds) : null, labels, tokens, share: rows / B };
}

/**
 * Data parallel: the share of each loss term's normalizer (src/distill/terms.ts) that rows
 * [lo, hi) hold in the global batch `b`, so a rank's mean of a term, weighted by it, sums over
 * the ranks to the whole batch's mean. pred and ce on classifier logits are means over rows;
 * rep, attn_out, context and sa_out over real tokens (×C); attn_score over H·Σ n_b² query/key
 * pairs; attn_map over the examples holding a token (n_b: example b's real tokens).
 */
export function termShares(b: QatBatch, lo: number, hi: number): Record<LossName, number> {
  const B = b.ids.shape[0], T = b.ids.shape[1];
  const n = Array.from({ length: B }, (_, r) => b.mask ? b.mask.i32.subarray(r * T, (r + 1) * T).reduce((k, m) => k + m, 0) : T);
  const share = (f: (nb: number) => number): number => {
    let part = 0, all = 0;
    n.forEach((nb, r) => { const v = f(nb); all += v; if (r >= lo && r < hi) part += v; });
    return all ? part / all : 0;
  };
  const rows = share(() => 1), tokens = share((nb) => nb), pairs = share((nb) => nb * nb), examples = share((nb) => (nb > 0 ? 1 : 0));
  const tokenLogits = b.labels.ndim === 2; // a decoder's (B, T) next tokens: pred and ce are token means
  const by: Record<LossName, number> = {
    pred: tokenLogits ? tokens : rows, ce: tokenLogits ? tokens : rows, rep: tokens, attn_out: tokens, context: tokens, sa_out: tokens,
    attn_score: pairs, attn_map: examples,
  };
  return Object.fromEntries(LOSS_NAMES.map((k) => [k, by[k]])) as Record<LossName, number>;
}
