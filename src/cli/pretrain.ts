// `kdqat pretrain`: train a small decoder (causal LM: LLaMA, Mistral, Qwen2, Qwen3, Phi-3) or BERT
// (masked LM) from scratch on text, or continue a pre-trained one on new text (--init).
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { preloadTables, textColumns } from '../data/tables.js';
import { CORPUS_NAMES } from '../data/corpora.js';
import { PRETRAIN_DEFAULTS, PRETRAIN_OBJECTIVES, runPretrain, type PretrainConfig } from '../train/pretrain.js';
import { initDefaults } from '../train/pretrain-init.js';
import { SUPPORTED_MODEL_TYPES } from '../models/registry.js';
import { corpusList } from '../train/pretrain-data.js';
import { findCheckpoint, readCheckpointState } from '../train/checkpoint.js';
import {
  JSON_HELP, commandLine, flagName, givenOptions, intArg, listArg, numArg, printJson, readConfigFile, requireOut, resolveSettings,
  runTrainingJob,
} from './options.js';
import { addFlag, flagOf, keyAliases } from './flags.js';
import { POSITION_EMBEDDING_TYPES } from '../models/relative-position.js';

const D = PRETRAIN_DEFAULTS;

export function pretrainCommand(): Command {
  const cmd = new Command('pretrain')
    .description('pre-train a small LLaMA (causal LM) or BERT (masked LM) from scratch, or continue a pre-trained model on new text (--init): tokenizer, training, HF model directory')
    .addOption(new Option('--arch <arch>', `model family (default ${D.arch})`).choices(SUPPORTED_MODEL_TYPES))
    .option('--corpus <name|path>', `sotu, brown, moby-dick, or a .txt / .jsonl ({"text": …} per line) / .parquet / .arrow (a text column) file or a directory of them; repeatable or comma list (default ${D.corpus})`, listArg)
    .option('--text-field <name>', 'the field (column) holding the text of .jsonl / .parquet / .arrow corpora, when it is not "text" or "content"')
    .option('--out <dir>', 'output directory (model, tokenizer, train_log.jsonl, summary.json, checkpoint/)')
    .option('--init <dir>', 'continue this pre-trained model (its weights, sizes and tokenizer) instead of starting from scratch: domain-adaptive pre-training')
    .option('--hidden <n>', `hidden size (default ${D.hidden})`, intArg)
    .option('--layers <n>', `layers (default ${D.layers})`, intArg)
    .option('--heads <n>', `attention heads (default ${D.heads})`, intArg)
    .option('--kv-heads <n>', `key/value heads, LLaMA (default ${D.kvHeads})`, intArg)
    .option('--intermediate <n>', `MLP hidden size (default ${D.intermediate})`, intArg)
    .option('--vocab <n>', `tokenizer vocabulary size (default ${D.vocab})`, intArg);
  addFlag(cmd, '--seq-len <n>', `sequence length (default ${D.seq})`, intArg, 'seq');
  addFlag(cmd, '--steps <n>', `optimizer steps (default ${D.steps})`, intArg);
  addFlag(cmd, '--batch <n>', `sequences per micro-batch (default ${D.batch})`, intArg);
  addFlag(cmd, '--accumulate <n>', `micro-batches per step, gradient accumulation (default ${D.accum})`, intArg, 'accum');
  return cmd
    .option('--lr <x>', `peak learning rate, cosine decay to 10% (default ${D.lr})`, numArg)
    .option('--warmup <n>', `linear warmup steps (default ${D.warmup})`, intArg)
    .option('--weight-decay <x>', `AdamW weight decay (default ${D.weightDecay})`, numArg)
    .option('--clip <x>', `gradient norm clipping, 0 = off (default ${D.clip})`, numArg)
    .option('--dropout <p>', `BERT dropout (default ${D.dropout})`, numArg)
    .addOption(new Option('--objective <name>', `lm: the family's own (causal LM for decoders, masked LM for encoders); electra: replaced-token detection, a loss at every position (encoders; README "Pre-training objectives") (default ${D.objective})`).choices(PRETRAIN_OBJECTIVES))
    .option('--generator-size <f>', `ELECTRA: the generator's hidden size, MLP size and heads as a fraction of the model's (default ${D.generatorSize})`, numArg)
    .option('--disc-weight <x>', `ELECTRA: weight λ of the replaced-token loss against the generator's masked-LM loss (default ${D.discWeight})`, numArg)
    .addOption(new Option('--position-embedding <type>', `how an encoder's attention sees positions: absolute (learned vectors added to the input, as BERT-base) or relative_key / relative_key_query (distance scores in every layer, BERT's position_embedding_type; bert only) (default ${D.positionEmbedding})`).choices(POSITION_EMBEDDING_TYPES))
    .option('--seed <n>', `seed of initialization, data order and dropout (default ${D.seed})`, intArg)
    .option('--eval-every <n>', `validation every n steps, 0 = only at the end (default ${D.evalEvery})`, intArg)
    .option('--eval-windows <n>', `validation windows for periodic evaluation; the final one uses all (default ${D.evalWindows})`, intArg)
    .option('--save-every <n>', `checkpoint every n steps, 0 = never (default ${D.saveEvery})`, intArg)
    .option('--log-every <n>', `train_log.jsonl line every n steps (default ${D.logEvery})`, intArg)
    .option('--threads <n>', 'native threads (default: all cores; resume with the same count for bitwise-equal results)', intArg)
    .option('--distributed <engine>', "data parallel over the ranks of an MPI job: 'mpi' (start with mpirun -np N; each rank takes a contiguous slice of every --batch, rank 0 writes; docs/distributed.md)")
    .option('--config <file.json>', 'settings as JSON, same keys as the flags (flags override)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--force', 'replace an earlier kdqat run in --out (never an input, never a directory kdqat did not write)')
    .option('--json', JSON_HELP)
    .action(async function (this: Command) {
      const opts = this.opts();
      const keys = Object.keys(D);
      const fromFile = opts.config ? readConfigFile(opts.config, { ...D, out: '', threads: 0 }, keyAliases(this), (k) => flagOf(this, k) ?? flagName(k)) : {};
      const fromCli = givenOptions(this, keys);
      // Paths are stored absolute, so --resume works from any directory.
      const corpora = (v: string[]): string[] => corpusList(v).map((c) => (CORPUS_NAMES.includes(c as never) ? c : path.resolve(c)));
      for (const o of [fromFile, fromCli]) if (o.corpus) o.corpus = corpora(o.corpus as string[]);
      for (const o of [fromFile, fromCli]) if (o.init) o.init = path.resolve(o.init as string);
      const out = requireOut((opts.out ?? fromFile.out) as string | undefined, 'the directory for the model, logs and checkpoints');
      let saved: PretrainConfig | undefined;
      if (opts.resume) {
        const dir = findCheckpoint(out);
        if (!dir) throw new Error(`--resume: ${out} has no checkpoint/ to resume from; run without --resume (and --force) to start over`);
        saved = readCheckpointState(dir).config as unknown as PretrainConfig;
      }
      // --init: the model's family and sizes are the defaults (a flag that disagrees is refused).
      const init = (fromCli.init ?? fromFile.init) as string | undefined;
      const defaults = init && !saved ? { ...D, ...initDefaults(init, D.seq) } : D;
      const config = resolveSettings(defaults, fromFile, fromCli, saved, (k) => flagOf(this, k) ?? flagName(k));
      // Parquet / Arrow text is read (asynchronously) before the run builds its windows.
      await preloadTables(config.corpus, textColumns(config.textField));
      const { result: summary, reporter } = runTrainingJob('pretrain', out,
        { threads: (opts.threads ?? fromFile.threads) as number | undefined, distributed: opts.distributed },
        (reporter, dist) => runPretrain({
          out, config, resume: !!opts.resume, force: !!opts.force, reporter, commandLine: commandLine(), dist,
        }));
      if (!reporter) return;
      const m = Object.entries(summary.final).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
      reporter.message(`done: ${summary.steps} steps in ${summary.wall_time_s}s (${summary.train_tokens_per_s} tokens/s)${m ? `; ${m}` : ''}; model in ${out}`);
      if (opts.json) printJson(summary);
    });
}
