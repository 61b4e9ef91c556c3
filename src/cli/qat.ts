// `kdqat qat`: quantization-aware training with knowledge distillation (KD-QAT) of a student
// that starts as a fake-quantized copy of the teacher (src/train/qat.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { preloadTables, textColumns } from '../data/tables.js';
import { corpusList } from '../train/pretrain-data.js';
import { CORPUS_NAMES } from '../data/corpora.js';
import { CLASSIFICATION_TASKS } from '../data/tasks.js';
import { QUANT_PRESETS } from '../quant/config.js';
import { LOSS_NAMES } from '../distill/losses.js';
import { QAT_DEFAULTS, STUDENT_DIR, runQat, type QatConfig } from '../train/qat.js';
import { findCheckpoint, readCheckpointState } from '../train/checkpoint.js';
import {
  JSON_HELP, blameConfigFile, commandLine, flagName, givenOptions, intArg, numArg, printJson, readConfigFile, requireOut,
  resolveSettings, runTrainingJob,
} from './options.js';
import { addFlag, flagOf, keyAliases } from './flags.js';

const D = QAT_DEFAULTS;

const EXAMPLES = `
Examples:
  # 4-bit per-channel KD-QAT of the built-in LM teacher on SOTU, logits loss (paper A)
  kdqat qat --teacher teachers/llama-sotu --data sotu --quant w4-channel --steps 300 --out runs/qat-w4

  # the same with ov-freeze (v_proj, o_proj stay at their round-to-nearest values)
  kdqat qat --teacher teachers/llama-sotu --data sotu --quant w4-channel --freeze ov --out runs/qat-w4-ov

  # let a short probe choose what to freeze (its evidence: OUT/freeze_auto.json and the report)
  kdqat qat --teacher teachers/llama-sotu --data sotu --quant w4-channel --freeze auto --out runs/qat-w4-auto

  # ternary weights, 8-bit activations, pred + rep + attention-map KD of a BERT classifier (paper B)
  kdqat qat --teacher teachers/bert-brown-genre --task brown-genre --quant twn-a8 \\
    --loss pred=1,rep=1,attn_map=1 --lr 5e-5 --out runs/qat-twn

  # measure the result, continue an interrupted run
  kdqat eval --model runs/qat-w4/${STUDENT_DIR} --corpus sotu --split valid
  kdqat qat --out runs/qat-w4 --resume

  # data parallel on 2 MPI ranks of one thread each: the same global batches as one process
  mpirun -np 2 -x KDQAT_THREADS=1 npx kdqat qat --teacher teachers/llama-sotu --data sotu --out runs/qat-dp --distributed mpi

Output (--out): ${STUDENT_DIR}/ (the student: latent weights, quantization.json, model.quantized.safetensors
with codes and scales), qat_log.jsonl (loss terms and per-module signal statistics every --log-every
steps), summary.json (teacher / round-to-nearest / KD-QAT metrics), checkpoint/.`;

export function qatCommand(): Command {
  const cmd = new Command('qat')
    .description('KD-QAT: train a low-bit (fake-quantized) copy of a teacher model with distillation losses; writes the student')
    .option('--teacher <dir>', 'full-precision teacher: a LLaMA model directory, or a BERT classifier (kdqat finetune)')
    .option('--data <name|file>', `decoder: training text, ${CORPUS_NAMES.join(', ')} or a .txt / .jsonl / .parquet file or directory, or several comma-separated (split as in pretrain); .jsonl lines may be conversations (messages, ShareGPT conversations, prompt-completion), rendered with the teacher's chat template`)
    .option('--task <name|file>', `encoder: classification task, ${CLASSIFICATION_TASKS.join(', ')} or a JSONL/TSV training file`)
    .option('--dev <file>', 'encoder: dev examples (JSONL/TSV) when --task is a file')
    .option('--text-field <name[,pair]>', 'the field holding the text, when it is not one kdqat recognizes: of --data JSON Lines / Parquet / Arrow (decoder), or of --task/--dev files (encoder; two for a pair)')
    .option('--label-field <name>', 'encoder: the task files\' field holding the label, when it is not "label" or "labels"')
    .option('--quant <preset|file.json>', `quantization config: ${Object.keys(QUANT_PRESETS).join(', ')}, or a JSON file (default ${D.quant})`)
    .option('--loss <terms>', `loss weights, e.g. pred=1,rep=1,attn_map=1; terms: ${LOSS_NAMES.join(', ')} (default ${D.loss})`)
    .option('--tau <x>', `softmax temperature of the logits loss (default ${D.tau})`, numArg)
    .option('--freeze <ov|auto|patterns>', "modules not trained (stay fake-quantized): 'ov' (v_proj, o_proj / value, attention.output.dense), comma-separated name patterns, " +
      "or 'auto' / 'auto:R': a short KD-QAT probe measures per layer × module kind the relative gradient norm, update ratio, boundary-crossing rate and " +
      'Hessian trace, and freezes the kinds that are outliers (≥ R × the median, default 2) in most layers (docs/freeze-auto.md; OUT/freeze_auto.json)')
    .option('--freeze-probe-steps <n>', `--freeze auto: KD-QAT steps of the probe (default ${D.freezeProbeSteps})`, intArg)
    .option('--student-init <dir>', 'start the student from this model directory instead of a copy of the teacher (same architecture and vocabulary)');
  addFlag(cmd, '--steps <n>', `optimizer steps (default ${D.steps})`, intArg);
  cmd
    .option('--lr <x>', `peak learning rate, cosine decay to 10% (default ${D.lr})`, numArg)
    .option('--warmup <n>', `linear warmup steps (default ${D.warmup})`, intArg);
  addFlag(cmd, '--batch <n>', `sequences per micro-batch (default ${D.batch})`, intArg);
  addFlag(cmd, '--seq-len <n>', 'tokens per window (decoder) / maximum length (encoder) (default: min(128, max positions))', intArg);
  addFlag(cmd, '--accumulate <n>', `micro-batches per step (default ${D.accumulate})`, intArg);
  return cmd
    .option('--clip <x>', `gradient norm clipping, 0 = off (default ${D.clip})`, numArg)
    .option('--weight-decay <x>', `AdamW weight decay of the latent weights (default ${D.weightDecay})`, numArg)
    .option('--eval-every <n>', `evaluation every n steps, 0 = only at the end (default ${D.evalEvery})`, intArg)
    .option('--keep-best', 'also keep the student of the best periodic evaluation (lowest valid_ppl / highest dev_accuracy) in OUT/best-student')
    .option('--eval-windows <n>', `validation windows of a periodic evaluation; baselines and the final one use all (default ${D.evalWindows})`, intArg)
    .option('--log-every <n>', `qat_log.jsonl line (loss terms, signal statistics) every n steps (default ${D.logEvery})`, intArg)
    .option('--save-every <n>', `checkpoint every n steps, 0 = never (default ${D.saveEvery})`, intArg)
    .option('--seed <n>', `seed of the data order (default ${D.seed})`, intArg)
    .option('--cache-teacher <dir>', "cache the teacher's outputs on disk, reused by runs with the same teacher and batches")
    .option('--cache-teacher-topk <k>', 'decoder: cache only the top k teacher logits per token (with the logsumexp of the full row at --tau and the log-mass of ' +
      "the rest); 'pred' then uses KL(p̃ ‖ q) where p̃ is the teacher's exact top-k probabilities plus its remaining mass spread over the other tokens " +
      'in proportion to the student\'s own probabilities (the exact KL of the (k+1)-bucket coarsening; docs/distillation.md). 0 = full logits (default 0)', intArg)
    .option('--bf16 <auto|off|teacher|layers|all>', `GEMMs in bf16 with float32 accumulation (needs a CPU with avx512_bf16): the teacher's forward; layers: also the student's forward and backward except a decoder's logits (its LM head's forward); all: every GEMM; auto: layers where bf16 GEMMs are the faster (AMX tiles, or avx512_bf16 on CPUs not made by Intel: on Intel's it measured slower than float32), off elsewhere (the run records which); evaluations stay float32 (default ${D.bf16})`)
    .option('--recompute [mode]', "recompute the student's layers in backward: 'all' (a bare --recompute; gradient checkpointing) keeps only each layer's input " +
      'for one more student forward per step; \'selective\' also keeps the GEMM outputs and runs the rest again (attention, norms, activations, fake ' +
      'quantization). Peak memory and speed of both: docs/qat.md. Results equal bit for bit, or within float32 ' +
      `rounding when a loss reads the layer outputs (rep) (default ${D.recompute})`)
    .option('--int8-grad [auto|on|off]', "the student's input gradients dX = dY·Ŵ as int8 GEMMs with dY rounded to 8 bits per row (an approximation: " +
      'Kernels.matmulQ8Grad bounds it; speed and quality in docs/performance.md and docs/qat.md), from the codes of weights on TWN or sym ≤ 7-bit grids per tensor or channel ' +
      '(e.g. --quant twn-a8 or w4-channel), and for every other quantizer (per group, K-quants, 8 bits) from ŵ rounded to a 7-bit grid per row first; ' +
      'on (a bare --int8-grad) needs a CPU with AVX2; auto: on where the CPU has it and the student\'s ' +
      `GEMMs are float32 (in an encoder only if every weight is taken by its codes), off elsewhere (the run records which) (default ${D.int8Grad})`)
    .option('--threads <n>', 'native threads (default: all cores; resume with the same count for bitwise-equal results)', intArg)
    .option('--distributed <engine>', "data parallel over the ranks of an MPI job: 'mpi' (start with mpirun -np N; each rank takes a contiguous slice of every --batch, rank 0 writes; docs/distributed.md)")
    .option('--out <dir>', 'output directory')
    .option('--config <file.json>', 'settings as JSON, same keys as the flags (flags override)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--force', 'replace an earlier kdqat run in --out (never an input, never a directory kdqat did not write)')
    .option('--json', JSON_HELP)
    .addHelpText('after', EXAMPLES)
    .action(async function (this: Command) {
      const opts = this.opts();
      const keys = Object.keys(D);
      const flag = (k: string): string => flagOf(this, k) ?? flagName(k);
      const fromFile = opts.config ? readConfigFile(opts.config, { ...D, out: '', threads: 0 }, keyAliases(this), flag) : {};
      const fromCli = givenOptions(this, keys);
      // Paths are stored absolute, so --resume works from any directory; names stay names.
      const names: Record<string, readonly string[]> = {
        data: CORPUS_NAMES, task: CLASSIFICATION_TASKS, quant: Object.keys(QUANT_PRESETS),
      };
      for (const o of [fromFile, fromCli]) {
        for (const k of ['teacher', 'data', 'task', 'dev', 'quant', 'studentInit', 'cacheTeacher']) {
          const v = o[k];
          // A name or a missing file stays as typed, so errors show what the user wrote.
          if (k === 'data' && typeof v === 'string' && v.includes(',')) {
            // Several corpora (as pretrain's --corpus): each path made absolute, names kept.
            o[k] = corpusList(v).map((x) => (CORPUS_NAMES.includes(x as never) || !fs.existsSync(x) ? x : path.resolve(x))).join(',');
          } else if (typeof v === 'string' && v && !names[k]?.includes(v) && (!names[k] || fs.existsSync(v))) o[k] = path.resolve(v);
        }
      }
      const out = requireOut((opts.out ?? fromFile.out) as string | undefined, 'the directory for the student, logs and checkpoints');
      let saved: QatConfig | undefined;
      if (opts.resume) {
        const dir = findCheckpoint(out);
        if (!dir) throw new Error(`--resume: ${out} has no checkpoint/ to resume from; run without --resume (and --force) to start over`);
        saved = readCheckpointState(dir).config as unknown as QatConfig;
      }
      // --freeze auto was resolved into patterns when the run started: the same spec again is the same run.
      for (const o of [fromFile, fromCli]) if (saved?.freezeAuto && o.freeze === saved.freezeAuto) delete o.freeze;
      // A bare --recompute is all (runs from before 'selective' saved true: recomputeModeOf).
      if (fromCli.recompute === true) fromCli.recompute = 'all';
      for (const o of [fromFile, fromCli]) {
        // --int8-grad on|off ("on"|"off" in a config file; a bare --int8-grad is on) are the run's true|false.
        if (o.int8Grad === 'on') o.int8Grad = true;
        else if (o.int8Grad === 'off') o.int8Grad = false;
        // --bf16 and --int8-grad auto were resolved when the run started: auto again means that.
        if (saved && o.bf16 === 'auto') delete o.bf16;
        if (saved && o.int8Grad === 'auto') delete o.int8Grad;
      }
      const config = resolveSettings(D, fromFile, fromCli, saved, flag);
      // Parquet / Arrow data (text, or a task's examples) is read (asynchronously) before the run builds it.
      if (config.data) await preloadTables(corpusList(config.data), textColumns(config.textField));
      await preloadTables([config.task, config.dev].filter((f): f is string => !!f && fs.existsSync(f)), 'all');
      const { result: s, reporter } = runTrainingJob('qat', out,
        { threads: (opts.threads ?? fromFile.threads) as number | undefined, distributed: opts.distributed },
        (reporter, dist) => blameConfigFile(opts.config, fromFile, fromCli, () => runQat({
          out, config, resume: !!opts.resume, force: !!opts.force, reporter, commandLine: commandLine(), dist,
        }), flag));
      if (!reporter) return;
      const m = s.metric, f = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(4));
      const rtnLostNothing = m === 'valid_ppl' && s.rtn[m] !== undefined && s.teacher[m] !== undefined && s.rtn[m]! <= s.teacher[m]!;
      const rec = s.recovered !== null ? `; recovered ${(100 * s.recovered).toFixed(1)}% of what RTN lost`
        : rtnLostNothing ? '; RTN lost nothing to recover (its perplexity is not above the teacher\'s)' : '';
      reporter.message(`done: ${s.steps} steps in ${s.wall_time_s}s (${s.train_tokens_per_s} tokens/s); ${m}: teacher ${f(s.teacher[m])}, ` +
        `RTN ${f(s.rtn[m])}, KD-QAT ${f(s.final[m])}${rec}; student in ${path.join(out, STUDENT_DIR)}`);
      if (opts.json) printJson(s);
    });
}
