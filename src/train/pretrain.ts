// Pre-training from scratch: tokenizer (on the train split only), a LLaMA causal LM on packed
// windows or a BERT masked LM, the shared training loop, then a Hugging Face model directory.
// With `init` (--init DIR) it continues a pre-trained model instead (domain-adaptive
// pre-training): the model, its sizes and its tokenizer come from DIR, the rest of the run is the
// same.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hash32 } from '../tensor/rng.js';
import { initParams, countParams, type Params } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import { SUPPORTED_MODEL_TYPES, architecture, isArchName, type ArchName } from '../models/registry.js';
import type { Heads } from '../models/architecture.js';
import { packCausal, packSequences, type Windows } from '../data/packing.js';
import { chatRendererOf } from '../io/chat-template.js';
import type { Document } from '../data/types.js';
import { saveTokenizer, loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { saveModelDir, type SaveConfig } from '../io/model-dir.js';
import { checkInit, initModel, pretrainHeads } from './pretrain-init.js';
import type { LlamaConfig } from '../models/llama.js';
import { readTokenizerConfig } from '../io/tokenizer_config.js';
import { perplexity } from '../eval/perplexity.js';
import { openSession, type SessionRun } from './session.js';
import { UsageError, flagName } from './usage.js';
import { loadPretrainText, type CorpusSplitInfo } from './pretrain-data.js';
import { causalLmLoss, maskBatch, mlmEval, mlmLoss, shuffledBatches, wrapClsSep, type MlmSpecials, type TokenBatch } from './objectives.js';
import { cleanUpOnFailure, publishFiles, writeJsonAtomic } from './outdir.js';
import { rankRows, type Distributed } from './distributed.js';
import { withDropoutRows } from '../tensor/ops/index.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { electraEval, electraLoss, electraModels } from './electra.js';
import { POSITION_EMBEDDING_TYPES, type PositionEmbeddingType } from '../models/relative-position.js';

export interface PretrainConfig {
  /** A registered architecture (src/models/registry.ts). */
  arch: ArchName;
  corpus: string[];
  /** The field holding the text of JSON Lines / Parquet / Arrow corpora ('': "text" or "content"). */
  textField: string;
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
  /** 'lm': the family's own (causal for decoders, masked for encoders); 'electra': replaced-token
   *  detection with a masked-LM generator (encoders; src/train/electra.ts). Absent in runs saved
   *  before it existed: 'lm'. */
  objective: PretrainObjective;
  /** ELECTRA: the generator's hidden size, intermediate size and heads as a fraction of the
   *  discriminator's. */
  generatorSize: number;
  /** ELECTRA: λ, the weight of the detector's loss against the generator's. */
  discWeight: number;
  /** How attention sees positions (encoders with `pretrain.relativePositions`: BERT's
   *  position_embedding_type). Absent in runs saved before it existed: 'absolute'. */
  positionEmbedding: PositionEmbeddingType;
  /** A pre-trained model directory to continue ('' = train from scratch): its weights, sizes
   *  (INIT_KEYS, src/train/pretrain-init.ts, must agree with it) and tokenizer. Absent in runs
   *  saved before it existed: ''. */
  init: string;
}

export const PRETRAIN_OBJECTIVES = ['lm', 'electra'] as const;
export type PretrainObjective = (typeof PRETRAIN_OBJECTIVES)[number];

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  arch: 'llama', corpus: ['sotu'], textField: '', hidden: 256, layers: 4, heads: 4, kvHeads: 4, intermediate: 768, seq: 128,
  vocab: 4096, steps: 2000, batch: 16, accum: 1, lr: 1e-3, warmup: 100, weightDecay: 0.01, clip: 1.0,
  dropout: 0.1, seed: 0, evalEvery: 200, evalWindows: 64, saveEvery: 200, logEvery: 10,
  objective: 'lm', generatorSize: 0.25, discWeight: 50, positionEmbedding: 'absolute', init: '',
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
  /** The saved model's (ELECTRA: the discriminator's). */
  parameters: number;
  /** ELECTRA: the generator's, trained beside it and not saved. */
  generator_parameters?: number;
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
  const flag = (k: string): string => k === 'seq' ? '--seq-len' : k === 'accum' ? '--accumulate' : flagName(k);
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
    throw new UsageError(`${c.init ? `--init ${c.init}: kdqat pretrain continues only the families it can pre-train: ` : ''}${(e as Error).message}`);
  }
  const pe = c.positionEmbedding ?? 'absolute';
  if (!POSITION_EMBEDDING_TYPES.includes(pe)) throw new UsageError(`--position-embedding must be ${POSITION_EMBEDDING_TYPES.join(', ')}, got ${JSON.stringify(pe)}`);
  if (pe !== 'absolute' && !architecture(c.arch).pretrain.relativePositions) {
    const takers = SUPPORTED_MODEL_TYPES.filter((n) => architecture(n).pretrain.relativePositions).join(', ');
    throw new UsageError(`--position-embedding ${pe}: --arch ${c.arch} is built with its own positions only; use --position-embedding absolute, or --arch ${takers}`);
  }
  const objective = c.objective ?? 'lm';
  if (!PRETRAIN_OBJECTIVES.includes(objective)) throw new UsageError(`--objective must be ${PRETRAIN_OBJECTIVES.join(' or ')}, got ${JSON.stringify(objective)}`);
  if (objective === 'electra') {
    const rec = architecture(c.arch);
    if (rec.kind !== 'encoder' || !rec.encode) {
      const encoders = SUPPORTED_MODEL_TYPES.filter((n) => architecture(n).encode).join(', ');
      throw new UsageError(`--objective electra trains an encoder; --arch ${c.arch} is ${rec.kind === 'encoder' ? 'an encoder without an encoder output' : 'a decoder'}: use --objective lm, or an encoder (${encoders})`);
    }
    if (!(c.generatorSize > 0 && c.generatorSize <= 1)) throw new UsageError(`--generator-size must be in (0, 1], got ${c.generatorSize}`);
    if (!(c.discWeight > 0)) throw new UsageError(`--disc-weight must be positive, got ${c.discWeight}`);
    const g = generatorSizes(c);
    if (g.hidden % g.heads) throw new UsageError(`--generator-size ${c.generatorSize}: the generator's hidden size ${g.hidden} is not divisible by its ${g.heads} heads; pick a fraction that keeps --hidden / --heads whole`);
  }
}

/** ELECTRA's generator: the discriminator's sizes with hidden, intermediate and heads scaled by
 *  --generator-size (at least one head of the discriminator's head size where it divides). */
export function generatorSizes(c: PretrainConfig): PretrainConfig {
  const f = c.generatorSize, headDim = c.hidden / c.heads;
  const hidden = Math.max(1, Math.round(c.hidden * f));
  const heads = Math.max(1, Number.isInteger(hidden / headDim) ? hidden / headDim : Math.round(c.heads * f));
  return { ...c, hidden, heads, kvHeads: heads, intermediate: Math.max(1, Math.round(c.intermediate * f)) };
}

const sizes = (c: PretrainConfig, vocab: number) => ({ ...c, vocab });

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
      ? packCausal(docs, tok, { seqLen: c.seq, bosId: sp.bos, eosId: sp.eos })
      : packSequences(encode(tok, docs), { seqLen: c.seq - 2, eosId: sp.sep, shift: false });
  } catch (e) {
    return (e as Error).message;
  }
}

/** The freshly initialized model of a run (parameters from `seed`, default c.seed), with the
 *  heads pretraining trains unless told others. */
export function buildModel(c: PretrainConfig, vocabSize: number, o: { heads?: Heads; seed?: number } = {}): Model {
  const rec = architecture(c.arch);
  const heads = o.heads ?? pretrainHeads(rec);
  const config = rec.pretrain.config(sizes(c, vocabSize));
  return { arch: c.arch, config, params: initParams(rec.paramSpec(config, heads), o.seed ?? c.seed), ...rec.modelFields(heads) } as Model;
}

const NO_HEADS: Heads = { lm: false, mlm: false, classifier: false };

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
  c.objective ??= 'lm';
  c.positionEmbedding ??= 'absolute';
  c.init ??= '';
  checkPretrainConfig(c);
  if (c.init) checkInit(c);
  const electra = c.objective === 'electra';
  if (electra && dist.size > 1) throw new UsageError('--objective electra does not run with --distributed; run it in one process');
  if (dist.size > 1) {
    if (c.batch < dist.size) throw new UsageError(`--batch ${c.batch} is smaller than the ${dist.size} MPI ranks: every rank takes at least one row of each batch; use --batch ≥ ${dist.size}`);
  }
  session.checkRanks('pretrain');
  const say = (m: string): void => run.reporter?.message(m);
  // Settings and text are checked before --force clears an old run out of the way.
  // --init from a chat model: a corpus of conversations is rendered with its chat template.
  const text = loadPretrainText(c.corpus, { chat: c.init ? chatRendererOf(c.init) : undefined, field: c.textField || undefined });
  const init = c.init ? initModel(c) : undefined;
  session.prepareOutDir([...c.corpus.map((f) => ({ flag: '--corpus', path: f })), ...(c.init ? [{ flag: '--init', path: c.init }] : [])]);
  const tokFile = path.join(out, 'tokenizer.json');
  if (lead && (!ckpt || !fs.existsSync(tokFile))) {
    if (init) {
      say(`continuing ${c.init} with its tokenizer`);
      fs.copyFileSync(init.tokenizer, tokFile);
    } else {
      say(`training a ${architecture(c.arch).pretrain.tokenizer.name} tokenizer (vocab ${c.vocab}) on ${text.train.length} training documents`);
      trainTokenizer(c, text.train, tokFile);
    }
  }
  dist.barrier(); // the other ranks read rank 0's tokenizer (a shared --out on several hosts)
  const tok = loadTokenizer(tokFile);
  const train = pack(c, tok, text.train);
  if (typeof train === 'string') throw new Error(`--corpus ${c.corpus.join(',')}: ${train}`);
  const valid = text.valid.length ? pack(c, tok, text.valid) : 'no validation documents';
  if (typeof valid === 'string') say(`validation skipped: ${valid}`);
  // ELECTRA keeps the discriminator (no head); its generator and detector head train beside it.
  const model = init ? init.model : buildModel(c, tok.vocabSize, electra ? { heads: NO_HEADS } : {});
  const el = electra ? electraModels(model, buildModel(generatorSizes(c), tok.vocabSize, { seed: hash32(c.seed, 0x67656e) }), c.hidden, c.seed) : undefined;
  const params = el ? el.params : model.params;
  say(el
    ? `${c.arch} ELECTRA: ${countParams(model.params).toLocaleString('en-US')} discriminator parameters (kept), ${countParams(el.gen.params).toLocaleString('en-US')} generator (hidden ${generatorSizes(c).hidden}); ${train.count} training windows of ${c.seq} tokens`
    : `${c.arch}: ${countParams(params).toLocaleString('en-US')} parameters; ${train.count} training windows of ${c.seq} tokens`);

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
    if (el) {
      const r = electraEval(el, valid, sp!, { batchSize: evalBatch, maxWindows });
      return { valid_gen_mlm_loss: r.mlm, valid_disc_loss: r.disc, valid_disc_acc: r.accuracy, valid_disc_recall: r.replacedRecall, valid_replaced: r.replacedShare };
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
      if (el) return electraLoss(el, wrapped, m.inputs, m.labels, { seed: hash32(ctx.seed, 2), discWeight: c.discWeight, dropoutSeed: dropSeed }).loss;
      return mlmLoss(model, wrapped, m.inputs, m.labels, dropSeed).loss;
    },
    evaluate: typeof valid === 'string' || !lead ? undefined : () => evaluate(c.evalWindows),
    evalEvery: c.evalEvery, logEvery: c.logEvery, saveEvery: c.saveEvery,
  });

  if (typeof valid !== 'string' && lead) say(`final evaluation on all ${valid.count} validation windows`);
  const final = lead ? evaluate(Infinity) : {};
  const sp2 = tok.specials;
  if (lead) publishFiles(out, (tmp) => saveModelDir(tmp, {
    config: { arch: model.arch, config: model.config, meta: init ? init.hf.meta : { ...rec.pretrain.meta(sp2), ...(el ? rec.metaForHeads(NO_HEADS) : {}) } } as SaveConfig,
    // --init: the source model's tokenizer_config.json and companion files (chat template,
    // generation_config.json) go with its tokenizer (the run directory holds only tokenizer.json).
    params: model.params, tokenizerJson: fs.readFileSync(tokFile, 'utf8'), tokenizerConfig: readTokenizerConfig(init ? init.tokenizer : tokFile),
    companionsFrom: init ? path.dirname(init.tokenizer) : undefined,
  }));
  const summary: PretrainSummary = {
    arch: c.arch, parameters: countParams(model.params), ...(el ? { generator_parameters: countParams(el.gen.params) } : {}), steps: result.step, tokens_seen: result.tokensSeen,
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
