// KD-QAT's inputs (src/train/qat.ts): the teacher, the student made from it (a copy of the
// teacher's weights or of --student-init, fake-quantized by --quant, --freeze applied) and the
// training data of a decoder (text windows) or a classifier (task examples), each checked with
// an error naming the flag before anything is written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import type { Params } from '../nn/params.js';
import { archOf, type Model } from '../models/model.js';
import { inputLayout } from '../eval/classification.js';
import type { ArchName } from '../models/registry.js';
import { asModel, loadModelDir, type LoadedModel } from '../io/model-dir.js';
import { chatRendererOf } from '../io/chat-template.js';
import { loadTokenizer, type LoadedTokenizer } from '../tokenize/index.js';
import { loadQuantConfig } from '../quant/config.js';
import { prepare, quantTargets, type Prepared } from '../quant/prepare.js';
import { narrowBf16 } from '../tensor/bf16.js';
import type { ComputePrecision } from '../tensor/compute.js';
import { parseLossWeights, type LossWeights } from '../distill/losses.js';
import { freeze, type FreezeResult } from './freeze.js';
import { decoderData, encoderData, type QatData } from './qat-data.js';
import { fieldNames } from '../data/classification.js';
import type { QatConfig } from './qat-config.js';
import { UsageError } from './usage.js';

export function loadTeacher(dir: string): { loaded: LoadedModel; tok: LoadedTokenizer } {
  if (!fs.existsSync(dir)) throw new Error(`--teacher ${dir}: no such directory`);
  let loaded: LoadedModel;
  try {
    loaded = loadModelDir(dir);
  } catch (e) {
    throw new Error(`--teacher ${dir}: cannot load the model: ${(e as Error).message}`);
  }
  const rec = archOf(loaded.hf);
  if (rec.kind === 'encoder' && !rec.headsOf(loaded.hf.meta).classifier) {
    throw new Error(`--teacher ${dir}: is a ${rec.label} model without a classifier head; KD-QAT of an encoder needs a fine-tuned classifier (kdqat finetune)`);
  }
  if (!loaded.tokenizerPath) throw new Error(`--teacher ${dir}: has no tokenizer.json; the data is tokenized with the teacher's own tokenizer`);
  const tok = loadTokenizer(loaded.tokenizerPath);
  if (tok.vocabSize > loaded.config.vocabSize) {
    throw new Error(`--teacher ${dir}: vocabulary mismatch: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${loaded.config.vocabSize}`);
  }
  for (const p of loaded.params.values()) p.requiresGrad = false;
  return { loaded, tok };
}

/** The student's starting weights: a copy of the teacher's, or of --student-init (same model). */
export function studentParams(teacher: LoadedModel, tok: LoadedTokenizer, init: string): Params {
  let src = teacher.params;
  if (init) {
    let s: LoadedModel;
    try {
      s = loadModelDir(init);
    } catch (e) {
      throw new Error(`--student-init ${init}: cannot load the model: ${(e as Error).message}`);
    }
    if (s.arch !== teacher.arch) throw new Error(`--student-init ${init}: is a ${s.arch} model, the teacher is ${teacher.arch}`);
    const vs = s.config.vocabSize, vt = teacher.config.vocabSize;
    const st = s.tokenizerPath ? loadTokenizer(s.tokenizerPath) : null;
    if (vs !== vt || (st && JSON.stringify(st.json) !== JSON.stringify(tok.json))) {
      throw new Error(`--student-init ${init}: teacher/student vocabulary mismatch: the student has vocab_size ${vs}` +
        `${st ? ` and a tokenizer of ${st.vocabSize} tokens` : ''}, the teacher vocab_size ${vt} and a tokenizer of ${tok.vocabSize} tokens` +
        `${vs === vt ? ' (the tokenizers differ)' : ''}; distillation compares outputs token by token, so both must use the same vocabulary`);
    }
    for (const [name, p] of teacher.params) {
      const q = s.params.get(name);
      if (!q) throw new Error(`--student-init ${init}: has no "${name}"; it must have the teacher's architecture and sizes`);
      if (q.shape.join() !== p.shape.join()) throw new Error(`--student-init ${init}: "${name}" is [${q.shape}], the teacher's is [${p.shape}]`);
    }
    src = s.params;
  }
  const out: Params = new Map();
  for (const name of teacher.params.keys()) {
    const p = src.get(name)!;
    const t = new Tensor(p.f32.slice(), p.shape, true);
    t.name = name;
    out.set(name, t);
  }
  return out;
}

/** The teacher and the student made from it: fake-quantized by --quant, --freeze applied. */
export interface Models {
  teacherDir: LoadedModel;
  tok: LoadedTokenizer;
  arch: ArchName;
  rec: ReturnType<typeof archOf>;
  teacher: Model;
  student: Model;
  prepared: Prepared;
  frozen: FreezeResult;
  weights: LossWeights;
  /** --cache-teacher-topk (0: full logits; absent in the checkpoints of older runs). */
  topk: number;
  /** Bytes the teacher's weights held as bf16 save (narrowTeacher). */
  teacherBf16Saved: number;
}

/** Models before --freeze auto has chosen (frozen: null). */
export type Built = Omit<Models, 'frozen'> & { frozen: FreezeResult | null };

/** `applyFreeze` false: --freeze auto, whose probe chooses later (frozen null). teacherPrec: the
 *  GEMM precision of the teacher's forward (its weight matrices are held as bf16 under 'fp32'). */
export function buildModels(c: QatConfig, applyFreeze: boolean, teacherPrec: ComputePrecision): Built {
  const { loaded: teacherDir, tok } = loadTeacher(c.teacher);
  const arch = teacherDir.arch;
  const rec = archOf(teacherDir.hf);
  const teacher = asModel(teacherDir);
  const student = asModel(teacherDir, studentParams(teacherDir, tok, c.studentInit));
  const { config: quant, source } = loadQuantConfig(c.quant);
  let prepared: Prepared;
  try {
    prepared = prepare(student, quant, { source });
  } catch (e) {
    // prepare's messages name the config's source; otherwise say which option it came from.
    const m = (e as Error).message;
    throw new Error(m.includes(c.quant) ? m : `--quant ${c.quant}: ${m}`);
  }
  const weights: LossWeights = parseLossWeights(c.loss, '--loss');
  const topk = c.cacheTeacherTopk ?? 0;
  if (topk && rec.kind !== 'decoder') throw new UsageError(`--cache-teacher-topk ${topk}: top-K logits are for a decoder teacher's token logits; ${c.teacher} is a ${rec.label} classifier`);
  if (topk >= teacher.config.vocabSize) throw new UsageError(`--cache-teacher-topk ${topk} must be below the teacher's vocab_size ${teacher.config.vocabSize} (0 keeps the full logits)`);
  const frozen = applyFreeze ? freeze(c.freeze, arch, student.params, prepared.quantParams) : null;
  const teacherBf16Saved = teacherPrec === 'fp32' ? narrowTeacher(teacher) : 0; // after the student's copy
  return { teacherDir, tok, arch, rec, teacher, student, prepared, frozen, weights, topk, teacherBf16Saved };
}

/**
 * Holds the teacher's weight matrices as bf16 where every value of one is a bf16 value (a
 * checkpoint stored BF16; tensor/bf16.ts): half their memory, and every product bit for bit the
 * same (the float32 GEMM widens them exactly as it packs, gather the rows it takes). Which: the
 * weights quantization could target (quantTargets: the blocks' Linears, the LM head, a tied or
 * BERT word embedding), read by Linears, the head and the embedding lookup only; position and
 * token-type tables, norms and biases stay float32. For a teacher whose forward runs in float32:
 * matmulBf16 takes float32 operands only, so under --bf16 each weight would be widened again at
 * every forward. The teacher's parameters must not require gradients. Returns the bytes saved.
 */
export function narrowTeacher(teacher: Model): number {
  let saved = 0;
  for (const name of new Set(quantTargets(teacher).map((t) => t.name))) {
    const p = teacher.params.get(name)!;
    const h = narrowBf16(p);
    if (!h) continue;
    teacher.params.set(name, h);
    saved += p.size * 2;
  }
  return saved;
}

/** The training (and validation) windows of a decoder teacher, or the examples of a classifier's. */
export function qatDataOf(c: QatConfig, m: Built): QatData {
  const { rec, teacher, tok } = m;
  const maxPos = teacher.config.maxPositionEmbeddings;
  const seqLen = c.seqLen || Math.min(128, maxPos);
  if (seqLen > maxPos) throw new UsageError(`--seq-len ${seqLen} exceeds the teacher's max_position_embeddings ${maxPos}`);
  if (rec.kind === 'decoder') {
    if (!c.data) throw new UsageError('--data NAME|FILE is required for a decoder teacher: sotu, brown, moby-dick, or a text file');
    if (c.task || c.dev) throw new UsageError(`--task/--dev are for a classifier teacher; ${c.teacher} is a ${rec.label} decoder: give --data`);
    if (c.labelField) throw new UsageError(`--label-field names the label of --task/--dev files; ${c.teacher} is a ${rec.label} decoder`);
    if (c.textField.includes(',')) throw new UsageError(`--text-field ${c.textField}: a decoder's --data has one text field, not a pair`);
    // A corpus of conversations is rendered with the teacher tokenizer's chat template.
    const data = decoderData(c.data, tok, seqLen, chatRendererOf(path.dirname(tok.path)), c.textField || undefined);
    if (data.train.count < c.batch) throw new Error(`--data ${c.data}: ${data.train.count} training windows of ${seqLen} tokens cannot fill one --batch of ${c.batch}`);
    return data;
  }
  if (!c.task) throw new UsageError(`--task NAME|FILE is required for an encoder (classifier) teacher, e.g. --task brown-genre`);
  if (c.data) throw new UsageError(`--data is for a decoder teacher; ${c.teacher} is a ${rec.label} classifier: give --task (and --dev for a file)`);
  const labels = rec.labels(m.teacherDir.hf.meta) ?? [];
  const K = 'numLabels' in teacher.config ? teacher.config.numLabels : 0;
  return encoderData(c.task, c.dev, tok, labels.length ? labels : Array.from({ length: K }, (_, i) => String(i)), seqLen, inputLayout(teacher),
    fieldNames(c.textField, c.labelField));
}
