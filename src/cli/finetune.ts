// `kdqat finetune`: a sequence classifier from a pre-trained encoder directory of any encoder
// family (BERT, RoBERTa, XLM-RoBERTa, DistilBERT: src/train/finetune.ts asks its record).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { preloadTables } from '../data/tables.js';
import { Command } from 'commander';
import { FINETUNE_DEFAULTS, runFinetune, type FinetuneConfig } from '../train/finetune.js';
import { findCheckpoint, readCheckpointState } from '../train/checkpoint.js';
import { CLASSIFICATION_TASKS } from '../data/tasks.js';
import {
  JSON_HELP, UsageError, blameConfigFile, commandLine, flagName, givenOptions, intArg, numArg, printJson, readConfigFile, requireOut, resolveSettings,
  runTrainingJob,
} from './options.js';
import { addFlag, flagOf, keyAliases } from './flags.js';

const D = FINETUNE_DEFAULTS;

export function finetuneCommand(): Command {
  const cmd = new Command('finetune')
    .description('fine-tune an encoder (BERT, RoBERTa, XLM-RoBERTa, DistilBERT) as a sequence classifier (…ForSequenceClassification); keeps the best dev-accuracy model')
    .option('--model <dir>', 'pre-trained encoder directory (a Hugging Face BERT/RoBERTa/XLM-RoBERTa/DistilBERT checkpoint, or `kdqat pretrain --arch bert`)')
    .option('--task <name>', `built-in classification task: ${CLASSIFICATION_TASKS.join(', ')}`)
    .option('--train <file>', 'training examples, JSONL {"text", "label"[, "text_pair"]}, TSV, CSV, Parquet or Arrow')
    .option('--dev <file>', 'dev examples, same format (labels as in --train)')
    .option('--test <file>', 'test examples, same format: scored once at the end with the kept (best-dev) model')
    .option('--text-field <name[,pair]>', 'the files\' field (column) holding the text, or two for a pair, when it is not one kdqat recognizes (text, sentence, premise/hypothesis, …)')
    .option('--label-field <name>', 'the files\' field (column) holding the label, when it is not "label" or "labels"')
    .option('--out <dir>', 'output model directory (config.json with id2label/label2id, model.safetensors, tokenizer, logs)')
    .option('--epochs <n>', `epochs (default ${D.epochs})`, intArg);
  addFlag(cmd, '--batch <n>', `batch size (default ${D.batch})`, intArg);
  cmd.option('--lr <x>', 'peak learning rate (default 0.0384 / hidden size: 5e-5 for BERT-base, 1.5e-4 for a 256-wide encoder; docs/finetune.md)', numArg);
  addFlag(cmd, '--seq-len <n>', `maximum tokens per example, special tokens included (default ${D.maxLen})`, intArg, 'maxLen');
  cmd
    .option('--warmup-ratio <x>', `fraction of steps for linear warmup, then linear decay (default ${D.warmupRatio})`, numArg)
    .option('--weight-decay <x>', `AdamW weight decay (default ${D.weightDecay})`, numArg)
    .option('--clip <x>', `gradient norm clipping, 0 = off (default ${D.clip})`, numArg)
    .option('--seed <n>', `seed of the new head, data order and dropout (default ${D.seed})`, intArg);
  addFlag(cmd, '--steps <n>', 'stop after n steps (default: epochs × batches per epoch)', intArg, 'maxSteps');
  return cmd
    .option('--eval-every <n>', 'dev evaluation every n steps (default: after every epoch)', intArg)
    .option('--save-every <n>', 'checkpoint every n steps for --resume, 0 = never (default 0)', intArg)
    .option('--log-every <n>', `train_log.jsonl line every n steps (default ${D.logEvery})`, intArg)
    .option('--eval-test', "score the kept (best-dev) model on the task's test split at the end (implied by --test)")
    .option('--threads <n>', 'native threads (default: all cores)', intArg)
    .option('--distributed <engine>', "data parallel over the ranks of an MPI job: 'mpi' (start with mpirun -np N; each rank takes a contiguous slice of every --batch, rank 0 evaluates and writes; docs/distributed.md)")
    .option('--config <file.json>', 'settings as JSON, same keys as the flags (flags override)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--force', 'replace an earlier kdqat run in --out (never an input, never a directory kdqat did not write)')
    .option('--json', JSON_HELP)
    .action(async function (this: Command) {
      const opts = this.opts();
      const flag = (k: string): string => flagOf(this, k) ?? flagName(k);
      const fromFile = opts.config ? readConfigFile(opts.config, { ...D, out: '', threads: 0 }, keyAliases(this), flag) : {};
      const fromCli = givenOptions(this, Object.keys(D));
      // Paths are stored absolute, so --resume works from any directory.
      for (const o of [fromFile, fromCli]) for (const k of ['model', 'train', 'dev', 'test']) if (o[k]) o[k] = path.resolve(o[k] as string);
      const out = requireOut((opts.out ?? fromFile.out) as string | undefined, 'the directory for the classifier');
      let saved: FinetuneConfig | undefined;
      if (opts.resume) {
        const dir = findCheckpoint(out);
        if (!dir) throw new Error(`--resume: ${out} has no checkpoint/ to resume from; run without --resume (and --force) to start over`);
        saved = readCheckpointState(dir).config as unknown as FinetuneConfig;
      }
      const config = resolveSettings(D, fromFile, fromCli, saved, flag);
      // Parquet / Arrow examples are read (asynchronously) before the run loads them.
      await preloadTables([config.train, config.dev, config.test].filter((f): f is string => !!f && fs.existsSync(f)), 'all');
      blameConfigFile(opts.config, fromFile, fromCli, () => {
        if (!config.model) throw new UsageError('--model DIR is required: an encoder model directory');
        for (const k of ['epochs', 'batch', 'maxLen'] as const) {
          if (!(config[k] >= 1)) throw new UsageError(`${flag(k)} must be at least 1, got ${config[k]}`);
        }
        for (const k of ['maxSteps', 'evalEvery', 'saveEvery', 'logEvery'] as const) {
          if (!(Number.isInteger(config[k]) && config[k] >= 0)) throw new UsageError(`${flag(k)} must be an integer ≥ 0, got ${config[k]}`);
        }
        // lr 0 is the default's marker (by the model's width); a given one must be positive.
        const givenLr = fromCli.lr ?? fromFile.lr;
        if (givenLr !== undefined && !((givenLr as number) > 0)) throw new UsageError(`--lr must be positive, got ${givenLr}`);
        if (!(config.warmupRatio >= 0 && config.warmupRatio < 1)) throw new UsageError(`--warmup-ratio must be in [0, 1), got ${config.warmupRatio}`);
      }, flag);
      const { result: s, reporter } = runTrainingJob('finetune', out,
        { threads: (opts.threads ?? fromFile.threads) as number | undefined, distributed: opts.distributed, announce: 'distributed' },
        (reporter, dist) => blameConfigFile(opts.config, fromFile, fromCli, () => runFinetune({
          out, config, resume: !!opts.resume, force: !!opts.force, reporter, commandLine: commandLine(), evalTest: !!opts.evalTest, dist,
        }), flag));
      if (!reporter) return;
      const test = s.test_accuracy === null ? '' : `, test accuracy ${s.test_accuracy.toFixed(4)}`;
      reporter.message(`done: best dev accuracy ${s.best_dev_accuracy.toFixed(4)} at step ${s.best_step}${test}; classifier in ${out}`);
      if (opts.json) printJson(s);
    });
}
