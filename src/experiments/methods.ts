// The methods of a reproduction, done by the library functions the commands use:
// round-to-nearest = prepare + saveStudent (what `kdqat quantize` does), KD-QAT = runQat (what
// `kdqat qat` does), evaluation = evaluate.ts on the student directory as it is deployed.
import * as path from 'node:path';
import { asModel, loadModelDir } from '../io/model-dir.js';
import { readHfConfig } from '../io/hf-config.js';
import { architecture } from '../models/registry.js';
import { loadQuantConfig } from '../quant/config.js';
import { prepare } from '../quant/prepare.js';
import { saveStudent } from '../quant/student.js';
import { BEST_STUDENT_DIR, QAT_DEFAULTS, STUDENT_DIR, runQat, type QatConfig } from '../train/qat.js';
import { FREEZE_AUTO_FILE } from '../train/freeze-auto.js';
import type { Model } from '../models/model.js';
import type { MethodRunner } from './runner.js';
import type { Experiment, ReproSettings } from './types.js';
import {
  decoderEvalData, encoderEvalData, evaluateDecoder, evaluateEncoder, loadModel, teacherTask, teacherTokenizer,
  type DecoderEvalData, type EncoderEvalData,
} from './evaluate.js';

/** The KD-QAT data: SOTU for a decoder, the task an encoder teacher was fine-tuned on. */
const qatData = (exp: Experiment, teacher: string): { data: string; task: string } =>
  architecture(exp.arch).kind === 'decoder' ? { data: 'sotu', task: '' } : { data: '', task: teacherTask(teacher) };

/** "pred=1,rep=1,attn_map=0.5": `kdqat qat --loss` syntax. */
export const lossSpec = (w: Record<string, number>): string => Object.entries(w).map(([k, v]) => `${k}=${v}`).join(',');

/** The KD-QAT settings of one run. Warmup: QAT's default, at most a tenth of the steps. */
export function qatConfig(exp: Experiment, s: ReproSettings, o: { preset: string; losses: Record<string, number>; freeze?: string; seed: number }): QatConfig {
  const bestDev = exp.select === 'best-dev';
  return {
    ...QAT_DEFAULTS, ...qatData(exp, s.teacher),
    teacher: path.resolve(s.teacher), quant: o.preset, loss: lossSpec(o.losses), freeze: o.freeze ?? '',
    // --freeze auto: the probe is never longer than the run itself (--quick runs a few steps).
    freezeProbeSteps: Math.min(QAT_DEFAULTS.freezeProbeSteps, s.steps),
    steps: s.steps, lr: s.lr, batch: s.batch, seqLen: s.seqLen, seed: o.seed,
    warmup: Math.min(QAT_DEFAULTS.warmup, Math.floor(s.steps / 10)),
    // The reproduction measures every student itself (evaluate.ts); QAT evaluates five times
    // during training (on --eval-windows windows: the report's evaluation curves) and, for
    // paper B, keeps the best-dev student (each evaluation costs about a fifth of a run's
    // training on brown-genre; on the SOTU decoder about two training steps). The checkpoints
    // of a run are not needed (runs restart whole).
    evalEvery: Math.max(1, Math.floor(s.steps / 5)), keepBest: bestDev, saveEvery: 0,
    logEvery: Math.max(1, Math.min(QAT_DEFAULTS.logEvery, Math.floor(s.steps / 10))),
    // float32 GEMMs and input gradients on every CPU (not --bf16 / --int8-grad auto): the
    // reproduction's figures in the README are float32 ones, and every CPU must reproduce them.
    bf16: 'off', int8Grad: false,
  };
}

function teacherModel(dir: string): { model: Model; hf: ReturnType<typeof loadModelDir>['hf'] } {
  const m = loadModelDir(dir);
  return { model: asModel(m), hf: m.hf };
}

export function libraryMethods(exp: Experiment, s: ReproSettings): MethodRunner {
  // Evaluation data is tokenized once per reproduction, on first use.
  let tok: ReturnType<typeof teacherTokenizer> | null = null;
  let dec: DecoderEvalData | null = null, enc: EncoderEvalData | null = null;
  return {
    rtn({ teacher, preset, runDir }) {
      const { model, hf } = teacherModel(teacher);
      const { config, source } = loadQuantConfig(preset);
      const prepared = prepare(model, config, { source });
      const dir = path.join(runDir, STUDENT_DIR);
      saveStudent(dir, model, prepared, { tokenizerFrom: teacher, hf });
      return { modelDir: dir };
    },
    qat({ method, settings, seed, runDir, reporter }) {
      const config = qatConfig(exp, settings, { preset: method.preset, losses: method.losses, freeze: method.freeze, seed });
      const s = runQat({ out: runDir, config, reporter, evaluate: 'periodic', commandLine: ['kdqat', 'reproduce', exp.name] });
      return {
        modelDir: path.join(runDir, config.keepBest ? BEST_STUDENT_DIR : STUDENT_DIR), log: path.join(runDir, 'qat_log.jsonl'),
        ...(s.freeze_auto ? { freezeAuto: { patterns: s.freeze_auto.patterns, file: path.join(runDir, FREEZE_AUTO_FILE) } } : {}),
      };
    },
    evaluate(modelDir, progress) {
      tok ??= teacherTokenizer(s.teacher);
      const { model, weight } = loadModel(modelDir);
      if (architecture(exp.arch).kind === 'decoder') {
        if (!dec) {
          const eos = teacherEos(s.teacher, tok);
          dec = decoderEvalData(tok, eos, s);
        }
        return evaluateDecoder(model, weight, tok, dec, progress);
      }
      enc ??= encoderEvalData(s);
      return evaluateEncoder(model, weight, tok, enc, s, progress);
    },
  };
}

/** config.json's eos_token_id (the first, if a list), else the tokenizer's EOS. */
function teacherEos(dir: string, tok: ReturnType<typeof teacherTokenizer>): number | undefined {
  const hf = readHfConfig(path.join(dir, 'config.json'));
  const e = architecture(hf.arch).specialIds(hf.meta).eos;
  if (Array.isArray(e)) return e[0];
  if (e !== null && e !== undefined) return e;
  return tok.specials.eos;
}
