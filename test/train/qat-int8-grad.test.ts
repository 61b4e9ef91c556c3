// `kdqat qat --int8-grad` (compute.ts withInt8Grad, Kernels.matmulQ8Grad): the student's input
// gradients as int8 GEMMs. It changes the training (not the forward: the first step's loss is the
// float run's), reaches recomputed layers (--recompute selective), is saved in the checkpoint and
// resumes bit for bit; a config it cannot honour (no weight on a grid it takes, or a CPU without
// the kernel's SIMD path) is refused naming the flag.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR, QAT_DEFAULTS } from '../../src/train/qat.js';
import type { Reporter } from '../../src/train/loop.js';
import { kernelSource } from '../../src/tensor/registry.js';
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
  // 8-bit codes (|q| ≤ 128) are past the integer kernels' 64: no weight it takes.
  assert.throws(() => runQat({ out: path.join(root, 'g32'), config: { ...config, quant: 'w8-channel' }, reporter: silentReporter }),
    /--int8-grad: none of the 12 quantized weights of --quant w8-channel is on a grid it takes \(TWN or sym ≤ 7 bits, per tensor or per channel/);
  assert.throws(() => runQat({ out: path.join(root, 'bad'), config: { ...config, int8Grad: 'yes' as unknown as boolean }, reporter: silentReporter }),
    /--int8-grad is a switch \(true or false in a config file\), got "yes"/);
  fs.rmSync(root, { recursive: true });
});
