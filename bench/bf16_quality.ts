// KD-QAT quality with bf16 GEMMs: the same short run with each --bf16 mode per seed, evaluated in
// float32, so the modes differ only in the training GEMMs' precision.
// - A decoder teacher (default teachers/llama-sotu): SOTU, w4-channel, logits KL; prints the final
//   training KL, validation KL and validation perplexity on `windows` windows.
// - An encoder classifier teacher (config.json with id2label, fine-tuned on a built-in task, e.g.
//   teachers/roformer-brown-genre): that task, paper B's twn-a8 with pred + rep + attn_map,
//   batch 16, 64 tokens; prints the final training loss terms and the final dev accuracy on the
//   whole dev split (`windows` is unused).
// A mode may end in `:float` (e.g. off,off:float): the student's Linears on integer grids (the
// encoder's twn-a8) then run their forward in float32 instead of the integer GEMM (withIntegerGemm);
// and/or in `:nogrid`: their float32 GEMMs with one operand on a grid as the float32 GEMM instead
// of matmulOnGrid (AMX; withGridGemm); and/or in `:int8grad`: the student's input gradients as int8
// GEMMs (`kdqat qat --int8-grad`, e.g. off,off:int8grad).
// A last argument names another --quant preset (e.g. twn for a ternary decoder).
// Usage: npx tsx bench/bf16_quality.ts [steps] [seeds] [windows] [modes, e.g. off,teacher,layers,all] [teacher dir] [quant]
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { runQat, QAT_DEFAULTS, type QatConfig } from '../src/train/qat.js';
import { readHfConfig } from '../src/io/hf-config.js';
import { teacherTask } from '../src/experiments/evaluate.js';
import { withGridGemm, withIntegerGemm } from '../src/tensor/index.js';

const [steps = 20, seeds = 3, windows = 16] = process.argv.slice(2, 5).map(Number);
const modes = (process.argv[5] ?? 'off,all').split(',');
for (const m of modes) {
  if (!/^(off|teacher|layers|all)(:float)?(:nogrid)?(:int8grad)?$/.test(m)) {
    throw new Error(`mode ${m}: use off, teacher, layers or all, optionally with :float, :nogrid and/or :int8grad (in that order)`);
  }
}
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bf16-quality-'));
const teacher = path.resolve(process.argv[6] ??
  path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'teachers', 'llama-sotu'));
// A classifier (id2label) is an encoder teacher: the built-in task it was fine-tuned on.
const meta = readHfConfig(path.join(teacher, 'config.json')).meta;
const task = 'labels' in meta && meta.labels ? teacherTask(teacher) : undefined;
const setting: Partial<QatConfig> = task
  ? { task, quant: process.argv[7] ?? 'twn-a8', loss: 'pred=1,rep=1,attn_map=1', batch: 16, seqLen: 64 }
  : { data: 'sotu', quant: process.argv[7] ?? 'w4-channel', evalWindows: windows };
for (let seed = 1; seed <= seeds; seed++) {
  for (const mode of modes) {
    const [bf16, ...flags] = mode.split(':') as ['off' | 'teacher' | 'layers' | 'all', ...string[]];
    const out = path.join(root, `s${seed}-${mode.replaceAll(':', '-')}`);
    const t0 = performance.now();
    withGridGemm(!flags.includes('nogrid'), () => withIntegerGemm(!flags.includes('float'), () => runQat({
      out, evaluate: 'periodic',
      config: { ...QAT_DEFAULTS, ...setting, teacher, steps, seed, bf16, evalEvery: steps, saveEvery: 0, logEvery: steps, int8Grad: flags.includes('int8grad') },
    })));
    const lines = fs.readFileSync(path.join(out, 'qat_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ev = lines.filter((l) => l.valid_ppl !== undefined || l.dev_accuracy !== undefined).at(-1);
    const tr = lines.filter((l) => l.loss !== undefined).at(-1);
    const metrics = task ? { train_loss: tr.loss, dev_accuracy: ev.dev_accuracy }
      : { train_kl: tr.loss.total, valid_kl: ev.valid_kl, valid_ppl: ev.valid_ppl };
    console.log(JSON.stringify({ teacher: path.basename(teacher), quant: setting.quant, seed, mode, steps, ...metrics,
      seconds: Math.round((performance.now() - t0) / 100) / 10 }));
  }
}
fs.rmSync(root, { recursive: true });
