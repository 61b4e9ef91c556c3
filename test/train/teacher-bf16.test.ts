// A KD-QAT teacher's weights held as bf16 (src/train/qat-models.ts narrowTeacher,
// src/tensor/bf16.ts): for every registered family and head, a model whose weights are bf16
// values (a checkpoint stored BF16) gives bit for bit the same logits and taps with its weight
// matrices narrowed (the blocks' Linears, the head, a tied or BERT word embedding), on both
// backends; the rest, weights with other values and parameters that require a gradient stay
// float32; a bf16 tensor is refused by ops that need
// float32, and a gradient through a bf16 B operand equals the float32 one; `kdqat qat` holds a
// BF16 teacher so (and resumes bitwise), a float32 one not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ARCHITECTURES, modelOf, moduleOf, parseHfConfig } from '../../src/models/registry.js';
import { quantTargets } from '../../src/quant/prepare.js';
import { asModel, loadModelDir } from '../../src/io/model-dir.js';
import type { Architecture } from '../../src/models/architecture.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { Rng, Tensor, add, backward, bf16Unavailable, headKlDiv, intTensor, matmul, linear } from '../../src/tensor/index.js';
import { narrowBf16, widenBf16 } from '../../src/tensor/bf16.js';
import { narrowTeacher } from '../../src/train/qat-models.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { readTrainLog } from '../../src/train/train-log.js';
import type { Reporter } from '../../src/train/loop.js';
import { decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';
import { BACKENDS, onBackend } from '../backends.js';

const SIZES = { vocab: 40, hidden: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 24, seq: 16, dropout: 0.1 };

/** The float32 bits of every value of t (a float32 tensor). */
const bitsOf = (t: Tensor): Uint32Array => new Uint32Array(t.f32.slice().buffer);

/** A copy of f with every value truncated to a bf16 value (as loaded from a BF16 file). */
function truncated(f: Float32Array): Float32Array {
  const out = f.slice(), u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) u[i] &= 0xffff0000;
  return out;
}
const bf16Valued = (p: Params): Params => new Map([...p].map(([k, v]) => [k, new Tensor(truncated(v.f32), v.shape)]));

for (const [name, rec] of Object.entries(ARCHITECTURES) as [string, Architecture][]) {
  for (const cls of Object.keys(rec.hfClasses)) {
    test(`${name} (${cls}): weights held as bf16 give the same logits and taps bit for bit`, () => {
      const json = rec.config.toJson(rec.pretrain.config(SIZES), rec.config.defaultMeta(rec.pretrain.meta({ bos: 1, eos: 2, pad: 0 })));
      const hf = parseHfConfig({ ...json, architectures: [cls], id2label: { 0: 'a', 1: 'b' } });
      const spec = rec.paramSpec(hf.config as never, rec.headsOf(hf.meta as never));
      const params = bf16Valued(initParams(new Map([...spec].map(([n, s]) => [n, { shape: s.shape, init: { kind: 'normal' as const, std: 0.3 } }])), 5));
      const rng = new Rng(3);
      const ids = intTensor(Int32Array.from({ length: 2 * 7 }, () => 3 + rng.int(SIZES.vocab - 3)), [2, 7]);
      const capture = { hidden: true, probs: true, scores: true, context: true, saOut: true, attnOut: true };
      const narrowed = new Map([...params].map(([k, v]) => [k, new Tensor(v.f32.slice(), v.shape)]));
      const teacher = modelOf(hf, narrowed);
      const saved = narrowTeacher(teacher);
      // The weights quantization could target (the blocks' Linears, the head, a tied or BERT word
      // embedding): each held as bf16, two bytes saved per value; the rest float32.
      const targets = new Set(quantTargets(modelOf(hf, params)).map((t) => t.name));
      assert.ok([...targets].some((n) => moduleOf(n).layer !== null) && [...targets].some((n) => moduleOf(n).layer === null), [...targets].join());
      assert.equal(saved, [...targets].reduce((n, k) => n + 2 * params.get(k)!.size, 0), 'two bytes saved per value');
      for (const [k, v] of narrowed) assert.equal(v.dtype, targets.has(k) ? 'bf16' : 'f32', k);
      const heads = rec.headsOf(hf.meta as never);
      for (const backend of BACKENDS) {
        onBackend(backend, () => {
          // The forward with taps where the model has an LM head or a classifier; else the
          // masked-LM logits, or the last hidden state.
          const run = (m: ReturnType<typeof modelOf>): { logits: Tensor } & Partial<Record<keyof typeof capture, Tensor[]>> =>
            heads.lm || heads.classifier ? rec.forward(m as never, { ids }, { capture })
              : { logits: heads.mlm ? rec.lmLogits(m as never, ids) : rec.encode!(m as never, ids) };
          const want = run(modelOf(hf, params));
          const got = run(teacher);
          assert.deepEqual(bitsOf(got.logits), bitsOf(want.logits), `${backend}: logits`);
          for (const tap of Object.keys(capture) as (keyof typeof capture)[]) {
            const g = got[tap] ?? [], w = want[tap] ?? [];
            assert.equal(g.length, w.length);
            g.forEach((t, i) => assert.deepEqual(bitsOf(t), bitsOf(w[i]), `${backend}: ${tap}[${i}]`));
          }
        });
      }
    });
  }
}

test('narrowBf16: only float32 tensors of bf16 values that need no gradient; widenBf16 gives the values back', () => {
  const f = new Float32Array([1, -0, 0.5, Infinity, -3.25, 2 ** -130]); // 2^-130: a bf16 subnormal
  const h = narrowBf16(new Tensor(f, [2, 3]))!;
  assert.equal(h.dtype, 'bf16');
  assert.deepEqual([...h.bf16], [0x3f80, 0x8000, 0x3f00, 0x7f80, 0xc050, new Uint32Array(new Float32Array([2 ** -130]).buffer)[0] >>> 16]);
  assert.deepEqual(bitsOf(widenBf16(h)), bitsOf(new Tensor(f, [2, 3])));
  assert.equal(narrowBf16(new Tensor(new Float32Array([1, 1 + 2 ** -10]), [2])), null, 'a value bf16 cannot hold');
  assert.equal(narrowBf16(new Tensor(new Float32Array([1, 2]), [2], true)), null, 'a tensor that requires a gradient');
  assert.equal(narrowBf16(intTensor(new Int32Array(2), [2])), null);
  assert.equal(new Tensor(new Uint16Array([0x4040]), [1]).item(), 3);
});

test('a bf16 weight: refused where float32 is needed; dA through it equals the float32 one', () => {
  const rng = new Rng(9);
  const w = new Tensor(truncated(Float32Array.from({ length: 12 }, () => rng.normal())), [3, 4]);
  const h = narrowBf16(w)!;
  assert.throws(() => add(h, h), /add: expected a float32 tensor, got bf16/);
  const grad = new Tensor(new Uint16Array(12), [3, 4]);
  grad.requiresGrad = true;
  assert.throws(() => linear(new Tensor(new Float32Array(8), [2, 4]), grad), /linear: expected a float32 tensor, got bf16/);
  for (const backend of BACKENDS) {
    onBackend(backend, () => {
      // y = xᵀ·b with x (2, 5) stored transposed: dx = (dy·bᵀ)ᵀ reads b as the A operand.
      const grads = (b: Tensor): Uint32Array[] => {
        const x = new Tensor(Float32Array.from({ length: 10 }, (_, i) => Math.sin(i + 1)), [2, 5], true);
        const y = matmul(x, b, { transA: true }); // (5, 4)
        backward(y, new Tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos(i)), y.shape));
        return [bitsOf(y), bitsOf(x.grad!)];
      };
      const b32 = new Tensor(w.f32.slice(0, 8), [2, 4]), b16 = narrowBf16(b32)!;
      assert.deepEqual(grads(b16), grads(b32), backend);
    });
  }
});

test('kdqat qat on a BF16 teacher: its weights are held as bf16 (the run says how much), a crash + --resume is bitwise; a float32 teacher stays float32', () => {
  const root = tmpDir('qat-teacher-bf16');
  const lines: string[] = [];
  const saying: Reporter = { ...silentReporter, message: (t) => { lines.push(t); } };
  const teacher = llamaTeacher(root, { dtype: 'BF16', name: 'bf16' });
  // Float32 teacher GEMMs, where the weights are narrowed (qat-models.ts buildModels): --bf16 off,
  // since auto runs them in bf16 on a CPU with avx512_bf16 (below).
  const config = decoderConfig(teacher, { steps: 6, saveEvery: 2, logEvery: 1, loss: 'pred=1,rep=0.5', bf16: 'off' });
  const ref = path.join(root, 'ref'), out = path.join(root, 'crashed');
  runQat({ out: ref, config, reporter: saying });
  // Two bytes less per value of the weights quantization could target (the blocks' Linears, lm_head).
  const kib = (2 * quantTargets(asModel(loadModelDir(teacher.dir))).reduce((n, t) => n + t.rows * t.cols, 0) / 1024).toFixed(0);
  assert.ok(lines.some((l) => l.includes(`(weights held as bf16, ${kib} KiB less)`)), lines.join('\n'));
  const crashing: Reporter = { ...silentReporter, step: (s) => { if (s.step === 5) throw new Error('simulated crash'); } };
  assert.throws(() => runQat({ out, config, reporter: crashing }), /simulated crash/);
  runQat({ out, config, resume: true, reporter: silentReporter });
  const strip = (l: Record<string, unknown>): Record<string, unknown> => { const { tokens_per_s: _t, wall_time_s: _w, ...r } = l; return r; };
  assert.deepEqual(readTrainLog(path.join(out, 'qat_log.jsonl')).map(strip), readTrainLog(path.join(ref, 'qat_log.jsonl')).map(strip));
  for (const f of fs.readdirSync(path.join(ref, STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(out, STUDENT_DIR, f)), fs.readFileSync(path.join(ref, STUDENT_DIR, f)), `student/${f}`);
  }
  // The run described its teacher and said nothing of bf16 weights.
  const notNarrowed = (): void =>
    assert.ok(lines.some((l) => / teacher .*: [\d,]+ parameters; /.test(l)) && !lines.some((l) => l.includes('held as bf16')), lines.join('\n'));
  lines.length = 0;
  runQat({ out: path.join(root, 'out-f32'), config: decoderConfig(llamaTeacher(root, { name: 'f32' }), { steps: 1, saveEvery: 0, bf16: 'off' }), reporter: saying });
  notNarrowed();
  // Where the teacher's GEMMs run in bf16 (--bf16 teacher, layers, all; what auto picks on such a
  // CPU) its float32 weights feed matmulBf16 as they are: nothing is narrowed, nothing said.
  if (!bf16Unavailable()) {
    lines.length = 0;
    runQat({ out: path.join(root, 'out-bf16-gemm'), config: { ...config, steps: 1, saveEvery: 0, bf16: 'teacher' }, reporter: saying });
    notNarrowed();
  }
  fs.rmSync(root, { recursive: true });
});

test('the fused logits KL with a bf16 teacher head: loss and student gradients bit for bit those of the float32 head', () => {
  const rng = new Rng(4);
  const [rows, C, V] = [6, 8, 37];
  const tx = new Tensor(Float32Array.from({ length: rows * C }, () => rng.normal()), [2, 3, C]);
  const tw = new Tensor(truncated(Float32Array.from({ length: V * C }, () => rng.normal())), [V, C]);
  for (const backend of BACKENDS) {
    onBackend(backend, () => {
      const run = (teacherW: Tensor): Uint32Array[] => {
        const sx = new Tensor(Float32Array.from({ length: rows * C }, (_, i) => Math.sin(i)), [2, 3, C], true);
        const sw = new Tensor(Float32Array.from({ length: V * C }, (_, i) => Math.cos(i) / 2), [V, C], true);
        const loss = headKlDiv({ x: tx, weight: teacherW }, { x: sx, weight: sw }, 1.5, undefined, 4); // chunks of 4 rows
        backward(loss);
        return [bitsOf(loss), bitsOf(sx.grad!), bitsOf(sw.grad!)];
      };
      assert.deepEqual(run(narrowBf16(tw)!), run(tw), backend);
    });
  }
  // The student's head must be float32.
  assert.throws(() => headKlDiv({ x: tx, weight: tw }, { x: tx, weight: narrowBf16(tw)! }), /headKlDiv: expected a float32 tensor, got bf16/);
});
