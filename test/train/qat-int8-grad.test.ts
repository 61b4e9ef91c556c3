// `kdqat qat --int8-grad` (compute.ts withInt8Grad, Kernels.matmulQ8Grad): the student's input
// gradients as int8 GEMMs. It changes the training (not the forward: the first step's loss is the
// float run's), reaches recomputed layers (--recompute selective), is saved in the checkpoint and
// resumes bit for bit; weights on no grid it takes (per group) have ŵ rounded to 7 bits per row
// first; a config it cannot honour (a CPU without the kernel's SIMD path) is refused naming the flag. The default, auto, is on exactly where it
// applies with float32 GEMMs, and the run records what it resolved to.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR, QAT_DEFAULTS } from '../../src/train/qat.js';
import type { Reporter } from '../../src/train/loop.js';
import { kernelSource } from '../../src/tensor/registry.js';
import { resolveInt8GradAuto, type QatConfig } from '../../src/train/qat-config.js';
import { prepare } from '../../src/quant/prepare.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { asModel, loadModelDir } from '../../src/io/model-dir.js';
import { bertTeacher, silentReporter, tmpDir } from './qat-fixture.js';

const runsHere = kernelSource('matmulQ8Grad') === 'native';

it('--int8-grad: paper B (twn-a8, --recompute selective) trains differently from float32 input gradients, resumes bit for bit, is saved; refused where it cannot apply', () => {
  const root = tmpDir('qat-int8-grad');
  const t = bertTeacher(root);
  const config = {
    ...QAT_DEFAULTS, teacher: t.dir, task: t.train, dev: t.dev, quant: 'twn-a8', loss: 'pred=1,rep=1,attn_map=1',
    steps: 6, lr: 1e-3, warmup: 0, batch: 8, seqLen: 32, evalEvery: 0, logEvery: 1, saveEvery: 2, bf16: 'off', recompute: 'selective', int8Grad: true,
  };
  if (!runsHere) {
    // Registered only where matmulQ8 has a SIMD path (src/backend/native/index.ts).
    assert.throws(() => runQat({ out: path.join(root, 'x'), config, reporter: silentReporter }),
      /--int8-grad: int8 input gradients need the native addon's SIMD path for integer GEMMs/);
    fs.rmSync(root, { recursive: true });
    return;
  }
  const messages: string[] = [];
  const ref = path.join(root, 'ref'), plain = path.join(root, 'plain'), out = path.join(root, 'crashed');
  runQat({ out: ref, config, reporter: { ...silentReporter, message: (m) => messages.push(m) } });
  // BERT's twn-a8 quantizes the six Linears of each of the two blocks.
  assert.ok(messages.some((m) => /--int8-grad: the input gradients of 12 of 12 quantized weights as int8 GEMMs/.test(m)), messages.join('\n'));
  assert.equal((readCheckpoint(path.join(ref, 'checkpoint')).state.config as { int8Grad?: unknown }).int8Grad, true);
  runQat({ out: plain, config: { ...config, int8Grad: false }, reporter: silentReporter });
  const strip = (l: Record<string, unknown>) => { const { tokens_per_s: _t, wall_time_s: _w, ...r } = l; return r; };
  const a = readTrainLog(path.join(ref, 'qat_log.jsonl')).map(strip), p = readTrainLog(path.join(plain, 'qat_log.jsonl')).map(strip);
  const loss = (l: Record<string, unknown>): number => (l.loss as { total: number }).total;
  assert.equal(loss(a[0]), loss(p[0]), 'the first forward is the same');
  assert.notEqual(loss(a.at(-1)!), loss(p.at(-1)!), 'later steps differ: the input gradients were the int8 GEMM\'s');
  // Resume after a crash in step 5: bit for bit.
  const crashing: Reporter = { ...silentReporter, step: (s) => { if (s.step === 5) throw new Error('simulated crash'); } };
  assert.throws(() => runQat({ out, config, reporter: crashing }), /simulated crash/);
  assert.equal(readCheckpoint(path.join(out, 'checkpoint')).state.step, 4);
  runQat({ out, config, resume: true, reporter: silentReporter });
  assert.deepEqual(readTrainLog(path.join(out, 'qat_log.jsonl')).map(strip), a);
  for (const f of fs.readdirSync(path.join(ref, STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(out, STUDENT_DIR, f)), fs.readFileSync(path.join(ref, STUDENT_DIR, f)), `student/${f}`);
  }
  // Weights on no grid the kernel takes (per group of 32: the two FFN outputs, whose 64 inputs are
  // two groups — the other Linears have 32 inputs, one group per row, i.e. per channel; 8-bit codes,
  // past its 64: all twelve): ŵ rounded to a 7-bit grid per row first
  // (test/backend/gemm-q8-grad.test.ts), said so; it trains differently.
  for (const [quant, rounded] of [['w4-g32', 2], ['w8-channel', 12]] as const) {
    const said: string[] = [];
    const short = { ...config, quant, steps: 2, saveEvery: 0, recompute: 'off' };
    runQat({ out: path.join(root, `${quant}-on`), config: short, reporter: { ...silentReporter, message: (m) => said.push(m) } });
    assert.ok(said.some((m) => m.includes(`--int8-grad: the input gradients of 12 of 12 quantized weights (${rounded} of them with ŵ rounded to a 7-bit grid per row first`)), said.join('\n'));
    runQat({ out: path.join(root, `${quant}-off`), config: { ...short, int8Grad: false }, reporter: silentReporter });
    const on = readTrainLog(path.join(root, `${quant}-on`, 'qat_log.jsonl')), off = readTrainLog(path.join(root, `${quant}-off`, 'qat_log.jsonl'));
    assert.equal(loss(on[0]), loss(off[0]), `${quant}: the first forward is the same`);
    assert.notEqual(loss(on[1]), loss(off[1]), `${quant}: the second step differs: the input gradients were the int8 GEMM's`);
  }
  assert.throws(() => runQat({ out: path.join(root, 'bad'), config: { ...config, int8Grad: 'yes' as unknown as boolean }, reporter: silentReporter }),
    /--int8-grad must be auto, on or off, got "yes"/);
  fs.rmSync(root, { recursive: true });
});

it('--int8-grad auto (the default): the run of --int8-grad on where the CPU, the GEMMs and a grid allow it, of off elsewhere (saying why); recorded for --resume', () => {
  const root = tmpDir('qat-int8-grad-auto');
  const t = bertTeacher(root);
  const config: QatConfig = {
    ...QAT_DEFAULTS, teacher: t.dir, task: t.train, dev: t.dev, quant: 'twn-a8', loss: 'pred=1,rep=1,attn_map=1',
    steps: 3, lr: 1e-3, warmup: 0, batch: 8, seqLen: 32, evalEvery: 0, logEvery: 1, saveEvery: 1, bf16: 'off',
  };
  assert.equal(QAT_DEFAULTS.int8Grad, 'auto');
  const strip = (l: Record<string, unknown>) => { const { tokens_per_s: _t, wall_time_s: _w, ...r } = l; return r; };
  const log = (dir: string) => readTrainLog(path.join(dir, 'qat_log.jsonl')).map(strip);
  const saved = (dir: string) => (readCheckpoint(path.join(dir, 'checkpoint')).state.config as { int8Grad?: unknown }).int8Grad;
  const messages: string[] = [];
  const auto = path.join(root, 'auto');
  runQat({ out: auto, config, reporter: { ...silentReporter, message: (m) => messages.push(m) } });
  const cpuWhy = /int8 input gradients need the native addon's SIMD path for integer GEMMs/;
  const said = messages.find((m) => m.startsWith('--int8-grad auto: ')) ?? messages.join('\n');
  assert.match(said, runsHere ? /^--int8-grad auto: on \(12 of 12 quantized weights, float32 GEMMs/ : /^--int8-grad auto: off \(int8 input gradients need/);
  assert.equal(saved(auto), runsHere);
  // The same run, bit for bit, as the explicit setting it resolved to.
  const explicit = path.join(root, 'explicit');
  if (runsHere) runQat({ out: explicit, config: { ...config, int8Grad: true }, reporter: silentReporter });
  else runQat({ out: explicit, config: { ...config, int8Grad: false }, reporter: silentReporter });
  assert.deepEqual(log(auto), log(explicit));
  // A resumed run keeps what was resolved; a checkpoint that says auto was not written by kdqat qat.
  runQat({ out: auto, config: { ...config, steps: 4 }, resume: true, reporter: silentReporter });
  assert.equal(saved(auto), runsHere);
  const ck = path.join(auto, 'checkpoint', 'state.json');
  const st = JSON.parse(fs.readFileSync(ck, 'utf8'));
  st.config.int8Grad = 'auto';
  fs.writeFileSync(ck, JSON.stringify(st));
  assert.throws(() => runQat({ out: auto, config: { ...config, steps: 5 }, resume: true, reporter: silentReporter }),
    /--resume: the checkpoint's config has int8Grad "auto", which runs resolve before saving/);
  // Per group it is on in a decoder, saying which weights it rounds, and off in an encoder; off,
  // and why, beside bf16 student GEMMs and where the CPU has no SIMD path.
  const m = asModel(loadModelDir(t.dir));
  const q = (preset: string) => prepare({ ...m, params: new Map([...m.params]) }, QUANT_PRESETS[preset]);
  const g32 = resolveInt8GradAuto({ ...config, quant: 'w4-g32' }, q('w4-g32'), 'decoder');
  const g32Encoder = resolveInt8GradAuto({ ...config, quant: 'w4-g32' }, q('w4-g32'), 'encoder');
  const w8Encoder = resolveInt8GradAuto({ ...config, quant: 'w8-channel' }, q('w8-channel'), 'encoder');
  const bf16 = resolveInt8GradAuto({ ...config, bf16: 'layers' }, q('twn-a8'), 'encoder');
  const teacherBf16 = resolveInt8GradAuto({ ...config, bf16: 'teacher' }, q('twn-a8'), 'encoder');
  assert.equal(bf16.on || g32Encoder.on || w8Encoder.on, false);
  assert.equal(g32.on, runsHere);
  assert.equal(teacherBf16.on, runsHere, 'a bf16 teacher leaves the student\'s GEMMs float32');
  if (runsHere) {
    assert.match(g32.why, /^12 of 12 quantized weights \(2 of them with ŵ rounded to a 7-bit grid per row first/);
    assert.match(g32Encoder.why, /^2 of the 12 quantized weights of --quant w4-g32 are on no grid it takes .* in an encoder raised the final training loss on every seed/);
    assert.match(w8Encoder.why, /^12 of the 12 quantized weights of --quant w8-channel are on no grid it takes/);
    assert.match(bf16.why, /the student's GEMMs are bf16 \(--bf16 layers\)/);
  } else for (const r of [g32, g32Encoder, w8Encoder, bf16, teacherBf16]) assert.match(r.why, cpuWhy);
  fs.rmSync(root, { recursive: true });
});
