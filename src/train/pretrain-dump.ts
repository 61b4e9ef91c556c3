// A debugging aid for masked-LM pre-training: what a finished `kdqat pretrain --arch bert` run
// fed its model, so an independent implementation (scripts/ref_mlm.py, PyTorch) can replay it.
// Rebuilt from the run's summary.json and tokenizer.json with the functions pretrain.ts uses
// (the split, packing, initialization, shuffled batches, [CLS]/[SEP] wrapping, 80/10/10 masks
// seeded by the loop's stepSeed, and the validation batches mlmEval masks), so nothing is copied.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer } from '../tokenize/index.js';
import { architecture, isArchName } from '../models/registry.js';
import { hash32 } from '../tensor/rng.js';
import { readTrainLog } from './train-log.js';
import { stepSeed } from './loop.js';
import { loadPretrainText } from './pretrain-data.js';
import { maskBatch, sequentialBatches, shuffledBatches, wrapClsSep, type TokenBatch } from './objectives.js';
import { buildModel, evalBatchSize, mlmSpecials, noDecay, pack, type PretrainConfig, type PretrainSummary } from './pretrain.js';
import type { WriteTensor } from '../io/safetensors.js';

export interface MlmDump {
  /** Tensors: init.<param> (F32), step.<k>.inputs / step.<k>.labels (I32, (B, T)) for the first
   *  `steps` updates, valid.inputs / valid.labels (I32, every validation window, masked as the
   *  final evaluation masks them). */
  tensors: Map<string, WriteTensor>;
  /** JSON strings: config (the run's PretrainConfig), optimizer (what pretrain.ts passes the
   *  loop), specials ([CLS], [SEP], [MASK] and the never-masked ids), no_decay (kdqat's list of parameters without weight decay), kdqat_losses (the
   *  run's per-step losses from train_log.jsonl; needs --log-every 1), kdqat_valid_mlm_loss. */
  metadata: Record<string, string>;
}

/** The first `steps` masked-LM batches (and the initial parameters) of the run in `dir`. */
export function dumpMlmRun(dir: string, steps: number): MlmDump {
  const summaryFile = path.join(dir, 'summary.json');
  if (!fs.existsSync(summaryFile)) throw new Error(`${summaryFile}: not found; give the --out directory of a finished kdqat pretrain run`);
  const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as PretrainSummary;
  const c: PretrainConfig = summary.config;
  if (!isArchName(c.arch) || architecture(c.arch).kind !== 'encoder') {
    throw new Error(`${summaryFile}: config.arch is "${c.arch}"; the masked-LM dump needs an encoder run (kdqat pretrain --arch bert)`);
  }
  if (c.accum !== 1) throw new Error(`${summaryFile}: config.accum is ${c.accum}; the dump replays --accumulate 1 runs only`);
  if (!(steps >= 1 && steps <= c.steps)) throw new Error(`steps must be in 1..${c.steps} (the run's --steps), got ${steps}`);
  const tok = loadTokenizer(path.join(dir, 'tokenizer.json'));
  const sp = mlmSpecials(tok);
  const text = loadPretrainText(c.corpus, { field: c.textField || undefined });
  const train = pack(c, tok, text.train);
  if (typeof train === 'string') throw new Error(`--corpus ${c.corpus.join(',')}: ${train}`);
  const model = buildModel(c, tok.vocabSize);
  const V = model.config.vocabSize;

  const tensors = new Map<string, WriteTensor>();
  for (const [name, p] of model.params) tensors.set(`init.${name}`, { shape: p.shape.slice(), data: p.f32 });
  // The loop's order (loop.ts nextBatch): the epochs' shuffled batches one after another.
  let epoch = 0, it = shuffledBatches(train, c.batch, c.seed, epoch);
  for (let step = 0; step < steps; step++) {
    let r = it.next();
    if (r.done) {
      it = shuffledBatches(train, c.batch, c.seed, ++epoch);
      r = it.next();
    }
    const b = wrapClsSep(r.value as TokenBatch, sp);
    const m = maskBatch(b, sp, V, stepSeed(c.seed, step, 0, 1));
    tensors.set(`step.${step}.inputs`, { shape: [b.rows, b.seqLen], data: m.inputs });
    tensors.set(`step.${step}.labels`, { shape: [b.rows, b.seqLen], data: m.labels });
  }
  const valid = text.valid.length ? pack(c, tok, text.valid) : null;
  if (valid && typeof valid !== 'string') {
    // mlmEval's masks: batch starting at row `row` seeded by hash32(0x6d6c6d, row).
    const ins: Int32Array[] = [], labs: Int32Array[] = [];
    let row = 0, T = 0;
    for (const plain of sequentialBatches(valid, evalBatchSize(c))) {
      const b = wrapClsSep(plain, sp);
      const m = maskBatch(b, sp, V, hash32(0x6d6c6d, row));
      row += b.rows;
      T = b.seqLen;
      ins.push(m.inputs);
      labs.push(m.labels);
    }
    const cat = (xs: Int32Array[]): Int32Array => {
      const out = new Int32Array(row * T);
      let at = 0;
      for (const x of xs) { out.set(x, at); at += x.length; }
      return out;
    };
    tensors.set('valid.inputs', { shape: [row, T], data: cat(ins) });
    tensors.set('valid.labels', { shape: [row, T], data: cat(labs) });
  }

  const logFile = path.join(dir, 'train_log.jsonl');
  const losses = fs.existsSync(logFile) ? readTrainLog(logFile).map((r) => r.loss) : [];
  const isDecayFree = noDecay(model.params);
  const metadata: Record<string, string> = {
    config: JSON.stringify(c),
    model: JSON.stringify(model.config),
    optimizer: JSON.stringify({
      lr: c.lr, warmup: c.warmup, total_steps: c.steps, decay: 'cosine', min_ratio: 0.1, weight_decay: c.weightDecay,
      clip: c.clip, beta1: 0.9, beta2: 0.999, eps: 1e-8,
    }),
    specials: JSON.stringify(sp),
    no_decay: JSON.stringify([...model.params.keys()].filter(isDecayFree)),
    kdqat_losses: JSON.stringify(losses.length === c.steps ? losses : []),
    kdqat_valid_mlm_loss: JSON.stringify(summary.final.valid_mlm_loss ?? null),
  };
  return { tensors, metadata };
}
