// Pre-training from scratch: tokenizer (on the train split only), a LLaMA causal LM on packed
// windows or a BERT masked LM, the shared training loop, then a Hugging Face model directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hash32 } from '../tensor/rng.js';
import { initParams, countParams, type Params } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import { SUPPORTED_MODEL_TYPES, architecture, isArchName, type ArchName } from '../models/registry.js';
import type { Architecture, Heads } from '../models/architecture.js';
import { packSequences, type Windows } from '../data/packing.js';
import type { Document } from '../data/types.js';
import { saveTokenizer, loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { saveModelDir, type SaveConfig } from '../io/model-dir.js';
import type { LlamaConfig } from '../models/llama.js';
import { readTokenizerConfig } from '../io/tokenizer_config.js';
import { perplexity } from '../eval/perplexity.js';
import { openSession, type SessionRun } from './session.js';
import { UsageError } from './usage.js';
import { loadPretrainText, type CorpusSplitInfo } from './pretrain-data.js';
import { causalLmLoss, maskBatch, mlmEval, mlmLoss, shuffledBatches, wrapClsSep, type MlmSpecials, type TokenBatch } from './objectives.js';
import { cleanUpOnFailure, publishFiles, writeJsonAtomic } from './outdir.js';
import { rankRows, type Distributed } from './distributed.js';
import { withDropoutRows } from '../tensor/ops/index.js';
import { IGNORE_INDEX } from '../data/mlm.js';

export interface PretrainConfig {
  /** A registered architecture (src/models/registry.ts). */
  arch: ArchName;
  corpus: string[];
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seq: number;
  vocab: number;
  steps: number;
  batch: number;
  accum: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  dropout: number;
  seed: number;
  evalEvery: number;
  evalWindows: number;
  saveEvery: number;
  logEvery: number;
}

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  arch: 'llama', corpus: ['sotu'], hidden: 256, layers: 4, heads: 4, kvHeads: 4, intermediate: 768, seq: 128,
  vocab: 4096, steps: 2000, batch: 16, accum: 1, lr: 1e-3, warmup: 100, weightDecay: 0.01, clip: 1.0,
  dropout: 0.1, seed: 0, evalEvery: 200, evalWindows: 64, saveEvery: 200, logEvery: 10,
};

/** `dist` (`--distributed mpi`, src/train/distributed.ts; decoders): rank 0 alone trains the
 *  tokenizer, evaluates and writes. */
export interface PretrainRun extends SessionRun {
  config: PretrainConfig;
  /** Recorded in summary.json. */
  commandLine?: string[];
}

export interface PretrainSummary {
  arch: string;
  parameters: number;
  steps: number;
  tokens_seen: number;
  wall_time_s: number;
  train_tokens_per_s: number;
  final: Record<string, number>;
  splits: CorpusSplitInfo[];
  config: PretrainConfig;
  command: string[];
}

/** Checks the numbers a config must satisfy, naming the flag to fix. */
export function checkPretrainConfig(c: PretrainConfig): void {
  const posInt = ['hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'seq', 'vocab', 'steps', 'batch', 'accum'] as const;
  // The flags' canonical spellings (src/cli/flags.ts) where the settings key is an older one.
  const flag = (k: string): string => k === 'seq' ? '--seq-len' : k === 'accum' ? '--accumulate' : `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;
  for (const k of posInt) if (!Number.isInteger(c[k]) || c[k] < 1) throw new UsageError(`${flag(k)} must be a positive integer, got ${c[k]}`);
  for (const k of ['warmup', 'evalEvery', 'evalWindows', 'saveEvery', 'logEvery', 'seed'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new UsageError(`${flag(k)} must be a non-negative integer, got ${c[k]}`);
  }
  if (!(c.lr > 0)) throw new UsageError(`--lr must be positive, got ${c.lr}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${c.dropout}`);
  if (!isArchName(c.arch)) throw new UsageError(`--arch must be ${SUPPORTED_MODEL_TYPES.join(' or ')}, got ${c.arch}`);
  if (c.hidden % c.heads) throw new UsageError(`--hidden ${c.hidden} must be divisible by --heads ${c.heads}`);
  try {
    architecture(c.arch).pretrain.check(sizes(c, c.vocab));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const sizes = (c: PretrainConfig, vocab: number) => ({ ...c, vocab });

/** The heads pretraining trains: a decoder's causal LM head, an encoder's masked-LM head. */
const pretrainHeads = (rec: Architecture): Heads => ({ lm: rec.kind === 'decoder', mlm: rec.kind === 'encoder', classifier: false });

function trainTokenizer(c: PretrainConfig, docs: Document[], file: string): void {
  const texts = docs.map((d) => d.text);
  saveTokenizer(file, architecture(c.arch).pretrain.tokenizer.train(texts, c.vocab));
}

function encode(tok: LoadedTokenizer, docs: Document[]): number[][] {
  return docs.map((d) => tok.encode(d.text, { addSpecialTokens: false }));
}

/** Packs documents; null (with the reason) when there is not enough text for one window. */
export function pack(c: PretrainConfig, tok: LoadedTokenizer, docs: Document[]): Windows | string {
  const sp = tok.specials;
  try {
    return architecture(c.arch).kind === 'decoder'
      ? packSequences(encode(tok, docs), { seqLen: c.seq, bosId: sp.bos, eosId: sp.eos, shift: true })
      : packSequences(encode(tok, docs), { seqLen: c.seq - 2, eosId: sp.sep, shift: false });
  } catch (e) {
    return (e as Error).message;
  }
}

/** The freshly initialized model of a run (parameters from c.seed). */
export function buildModel(c: PretrainConfig, vocabSize: number): Model {
  const rec = architecture(c.arch);
  const heads = pretrainHeads(rec);
  const config = rec.pretrain.config(sizes(c, vocabSize));
  return { arch: c.arch, config, params: initParams(rec.paramSpec(config, heads), c.seed), ...rec.modelFields(heads) } as Model;
}

export function mlmSpecials(tok: LoadedTokenizer): MlmSpecials {
  const { cls, sep, mask, pad, unk } = tok.specials;
  if (cls === undefined || sep === undefined || mask === undefined) {
    throw new Error(`${tok.path}: a BERT tokenizer needs [CLS], [SEP] and [MASK] tokens`);
  }
  return { cls, sep, mask, special: [cls, sep, mask, ...(pad === undefined ? [] : [pad]), ...(unk === undefined ? [] : [unk])] };
}

/** Biases and norm weights get no weight decay (the usual practice for Transformers). */
export const noDecay = (params: Params) => (name: string): boolean => (params.get(name)?.ndim ?? 2) < 2;

/** Rows per evaluation batch (mlmEval's masks depend on the batching). */
export const evalBatchSize = (c: PretrainConfig): number => Math.max(c.batch, 8);

export function runPretrain(run: PretrainRun): PretrainSummary {
  return cleanUpOnFailure(run.out, run.resume, () => pretrain(run));
}

function pretrain(run: PretrainRun): PretrainSummary {
  const session = openSession(run, run.config, { hint: '; run without --resume (and with --force) to start over' });
  const { out, ckpt, dist, lead, config: c } = session;
  checkPretrainConfig(c);
  if (dist.size > 1) {
    if (c.batch < dist.size) throw new UsageError(`--batch ${c.batch} is smaller than the ${dist.size} MPI ranks: every rank takes at least one row of each batch; use --batch ≥ ${dist.size}`);
  }
  session.checkRanks('pretrain');
  const say = (m: string): void => run.reporter?.message(m);
  // Settings and text are checked before --force clears an old run out of the way.
  const text = loadPretrainText(c.corpus);
  session.prepareOutDir(c.corpus.map((f) => ({ flag: '--corpus', path: f })));
  const tokFile = path.join(out, 'tokenizer.json');
  if (lead && (!ckpt || !fs.existsSync(tokFile))) {
    say(`training a ${architecture(c.arch).pretrain.tokenizer.name} tokenizer (vocab ${c.vocab}) on ${text.train.length} training documents`);
    trainTokenizer(c, text.train, tokFile);
  }
  dist.barrier(); // the other ranks read rank 0's tokenizer (a shared --out on several hosts)
  const tok = loadTokenizer(tokFile);
  const train = pack(c, tok, text.train);
  if (typeof train === 'string') throw new Error(`--corpus ${c.corpus.join(',')}: ${train}`);
  const valid = text.valid.length ? pack(c, tok, text.valid) : 'no validation documents';
  if (typeof valid === 'string') say(`validation skipped: ${valid}`);
  const model = buildModel(c, tok.vocabSize);
  const params = model.params;
  say(`${c.arch}: ${countParams(params).toLocaleString('en-US')} parameters; ${train.count} training windows of ${c.seq} tokens`);

  const rec = archOf(model);
  const causal = rec.kind === 'decoder';
  const sp = causal ? null : mlmSpecials(tok);
  const evalBatch = evalBatchSize(c);

  const evaluate = (maxWindows: number): Record<string, number> => {
    if (typeof valid === 'string') return {};
    if (causal) {
      const n = Math.min(valid.count, maxWindows);
      const r = perplexity(model, { data: valid.data, count: n, width: valid.width }, { batchSize: evalBatch });
      return { valid_nll: r.nll, valid_ppl: r.ppl };
    }
    return { valid_mlm_loss: mlmEval(model, valid, sp!, { batchSize: evalBatch, maxWindows }).loss };
  };

  const result = session.train<RankSlice>({
    params, totalSteps: c.steps, accumulate: c.accum, clipNorm: c.clip, seed: c.seed,
    lr: c.lr, optimizer: { weightDecay: c.weightDecay, noDecay: noDecay(params) },
    schedule: { warmupSteps: c.warmup, decay: 'cosine', minRatio: 0.1 },
    epochBatches: (epoch) => dist.size === 1 ? shuffledBatches(train, c.batch, c.seed, epoch) : rankSlices(shuffledBatches(train, c.batch, c.seed, epoch), dist),
    // A decoder rank's share is its rows; a masked-LM rank's, its masked tokens (mlmSlice).
    distributed: { dist, share: (b, ctx) => (causal || !b.whole ? b.share ?? 1 : mlmSlice(b, sp!, model.config.vocabSize, ctx.seed).share) },
    tokens: (b) => b.rows * (causal ? b.seqLen : c.seq),
    loss: (b, ctx) => {
      if (causal) return causalLmLoss(params, model.config as LlamaConfig, b);
      // Dropout seeds are 31-bit so the per-layer offsets bert.ts adds stay exact integers.
      const dropSeed = hash32(ctx.seed, 1) >>> 1;
      if (b.whole) {
        const m = mlmSlice(b, sp!, model.config.vocabSize, ctx.seed);
        return withDropoutRows(b.whole.lo, b.rows, () => mlmLoss(model, m.wrapped, m.inputs, m.labels, dropSeed).loss);
      }
      const wrapped = wrapClsSep(b, sp!);
      const m = maskBatch(wrapped, sp!, model.config.vocabSize, ctx.seed);
      return mlmLoss(model, wrapped, m.inputs, m.labels, dropSeed).loss;
    },
    evaluate: typeof valid === 'string' || !lead ? undefined : () => evaluate(c.evalWindows),
    evalEvery: c.evalEvery, logEvery: c.logEvery, saveEvery: c.saveEvery,
  });

  if (typeof valid !== 'string' && lead) say(`final evaluation on all ${valid.count} validation windows`);
  const final = lead ? evaluate(Infinity) : {};
  const sp2 = tok.specials;
  if (lead) publishFiles(out, (tmp) => saveModelDir(tmp, {
    config: { arch: model.arch, config: model.config, meta: rec.pretrain.meta(sp2) } as SaveConfig,
    params, tokenizerJson: fs.readFileSync(tokFile, 'utf8'), tokenizerConfig: readTokenizerConfig(tokFile),
  }));
  const summary: PretrainSummary = {
    arch: c.arch, parameters: countParams(params), steps: result.step, tokens_seen: result.tokensSeen,
    // This process from start to end, plus earlier (resumed) segments up to their last checkpoint.
    wall_time_s: session.wallTime(),
    train_tokens_per_s: Math.round(result.tokensSeen / Math.max(result.trainSeconds, 1e-9)),
    final, splits: text.splits, config: c, command: run.commandLine ?? [],
  };
  if (lead) writeJsonAtomic(path.join(out, 'summary.json'), summary);
  return summary;
}

/** A batch as the loop sees it: one process's whole batch, or (data parallel) a rank's rows of
 *  the global batch `whole.batch`, rows [whole.lo, whole.lo + rows), with their share of it. */
type RankSlice = TokenBatch & { share?: number; whole?: { batch: TokenBatch; lo: number; mlm?: MlmSlice } };

/** This rank's rows of every global batch (src/train/distributed.ts rankRows), with its share. */
function* rankSlices(batches: Iterable<TokenBatch>, dist: Distributed): Generator<RankSlice> {
  for (const b of batches) {
    const { lo, hi } = rankRows(b.rows, dist.rank, dist.size), T = b.seqLen;
    yield {
      rows: hi - lo, seqLen: T, inputs: b.inputs.slice(lo * T, hi * T), targets: b.targets?.slice(lo * T, hi * T), share: (hi - lo) / b.rows,
      whole: { batch: b, lo },
    };
  }
}

interface MlmSlice { wrapped: TokenBatch; inputs: Int32Array; labels: Int32Array; share: number }

/**
 * Masked-LM on a rank: the masks are drawn for the whole global batch, exactly as one process
 * with that batch draws them (row r of the batch from hash32(seed, r)), then this rank's rows are
 * taken. The loss is a mean over the masked tokens, so the rank's share is its masked tokens over
 * the batch's: Σ_ranks share·mean_rank = Σ (CE of every masked token) / (the batch's masked
 * tokens), one process's loss and gradient up to the float32 order of the sums. Computed once per
 * slice (the loop asks for the share, then the loss).
 */
function mlmSlice(b: RankSlice, sp: MlmSpecials, vocabSize: number, seed: number): MlmSlice {
  const w = b.whole!;
  if (w.mlm) return w.mlm;
  const all = wrapClsSep(w.batch, sp);
  const m = maskBatch(all, sp, vocabSize, seed);
  const T = all.seqLen, from = w.lo * T, to = (w.lo + b.rows) * T;
  const masked = (l: Int32Array): number => l.reduce((n, v) => n + (v === IGNORE_INDEX ? 0 : 1), 0);
  const labels = m.labels.slice(from, to), total = masked(m.labels);
  w.mlm = {
    wrapped: { rows: b.rows, seqLen: T, inputs: all.inputs.slice(from, to) }, inputs: m.inputs.slice(from, to), labels,
    share: total ? masked(labels) / total : 0,
  };
  return w.mlm;
}
