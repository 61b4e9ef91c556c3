// `kdqat bench --json` records: every kind names the CPU and the SIMD path it ran on (bench/env.ts)
// and has the fields bench/schema.ts lists. One real KD-QAT step record on a tiny shape goes
// through the same worker and record builders as `--only qat` / `--only scaling`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { annotate, benchEnv, cpuFromProc, envFields, type BenchEnv } from '../../bench/env.js';
import { recordProblems } from '../../bench/schema.js';
import { runChild } from '../../bench/step.js';
import { scalingRecord, attnFlopShare, scalingPoints, shapeOf } from '../../bench/scaling.js';
import { realSizeToQatStep } from '../../bench/run.js';
import type { QatStepRecord } from '../../bench/qat_step.js';
import type { IsaInfo } from '../../src/backend/native/index.js';
import { nativeAddon } from '../../src/backend/native/index.js';

const PROC = `processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 1\n\n` +
  `processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nstepping\t: 1\n`;

const fam = (selected: string, paths: string[]) => ({ selected, paths });
const INFO: IsaInfo = {
  cpu: 'avx512', vendor: 'AuthenticAMD', cap: null, isa: 'avx512', levels: [], bf16: { available: true, reason: null },
  amx: { available: false, reason: 'this CPU lacks the amx_tile, amx_bf16 and amx_int8 instructions', matmulBf16: false, matmulQ8: false, matmulOnGrid: false },
  gemmPrefetch: false,
  families: { gemm: fam('avx512', ['portable', 'avx2', 'avx512']), quant: fam('avx2', ['portable', 'avx2']), kquant: fam('avx512', ['portable', 'avx2', 'avx512']) },
};
const ENV: BenchEnv = {
  cpu: 'AMD EPYC (family 25, model 17, stepping 1)', kdqat: INFO,
  torch: { torch: '1.13.0', aten: 'avx2', blas: 'OpenBLAS 0.3.21 DYNAMIC_ARCH Cooperlake', blas_core: 'Cooperlake' },
};

test('cpuFromProc: the model name with family/model/stepping (a VM may name only "AMD EPYC")', () => {
  assert.equal(cpuFromProc(PROC), 'AMD EPYC (family 25, model 17, stepping 1)');
  assert.equal(cpuFromProc('model name\t: Intel(R) Xeon(R) Platinum 8480+\n'), 'Intel(R) Xeon(R) Platinum 8480+');
  assert.equal(cpuFromProc('processor : 0\nBogoMIPS : 50\n'), null); // e.g. some ARM kernels: falls back to os.cpus()
});

test('every record kind gets cpu/isa/isa_paths and passes the schema', () => {
  const st = { tokens_per_s: 100, step_ms: 10, best_tokens_per_s: 120, best_step_ms: 8, peak_rss_mb: 50, loss_first: 1, loss_last: 0.5 };
  const cases: [object, string][] = [
    [{ bench: 'gemm', impl: 'kdqat', threads: 1, m: 8, k: 8, n: 8, gflops: 1 }, 'avx512'],
    [{ bench: 'gemm', impl: 'torch', threads: 1, m: 8, k: 8, n: 8, gflops: 1 }, 'avx2+openblas-cooperlake'],
    [{ bench: 'train_step', impl: 'kdqat', threads: 2, ...st }, 'avx512'],
    [{ bench: 'qat_step', shape: 'd256', impl: 'torch', threads: 2, ...st }, 'avx2+openblas-cooperlake'],
    [{ bench: 'quant', backend: 'native', threads: 1, what: 'sym4', shape: '8x8', ms: 1 }, 'avx2'],
    [{ bench: 'quant', backend: 'ref', threads: 1, what: 'sym4', shape: '8x8', ms: 1 }, 'ts-ref'],
    [{ bench: 'kquant', impl: 'avx2', threads: 1, format: 'q4_k', usPerWeight: 1 }, 'avx2'],
    [{ bench: 'kquant', impl: 'ref', threads: 1, format: 'q4_k', usPerWeight: 1 }, 'ts-ref'],
    [{ bench: 'onnx', model: 'm', weights: 'w4', bytes: 1, threads: 1, ms: 1, unit: 'token' }, 'onnxruntime'],
  ];
  for (const [rec, isa] of cases) {
    const a = annotate(rec, ENV);
    assert.equal(a.cpu, ENV.cpu);
    assert.equal(a.isa, isa, JSON.stringify(rec));
    assert.deepEqual(recordProblems(a), [], JSON.stringify(a));
  }
  assert.deepEqual(envFields({ bench: 'gemm', impl: 'torch' }, ENV).isa_paths, { aten: 'avx2', blas: ENV.torch!.blas, torch: '1.13.0' });
  assert.equal(annotate({ bench: 'gemm', impl: 'kdqat' }, { ...ENV, kdqat: null }).isa, 'ts-ref');
  // the schema does fail: a record without its machine, or with a missing measurement
  assert.match(recordProblems({ bench: 'gemm', impl: 'kdqat', threads: 1, m: 8, k: 8, n: 8, gflops: 1 }).join(), /cpu.*isa/);
  assert.match(recordProblems(annotate({ bench: 'qat_step', impl: 'kdqat', threads: 1, ...st, tokens_per_s: NaN }, ENV)).join(), /shape.*tokens_per_s|tokens_per_s/);
});

test('real-size runs become qat_step records named by the model', () => {
  const r = realSizeToQatStep({
    bench: 'real_size', impl: 'kdqat', model: 'bert-base', threads: 2, batch: 16, seq: 128, load_ms: 1, forward_tokens_per_s: 900,
    qat_tokens_per_s: 150, qat_best_tokens_per_s: 160, peak_rss_mb: 3000, loss_first: 1, loss_last: 1,
  });
  assert.equal(r.shape, 'bert-base');
  assert.ok(Math.abs(r.step_ms - (16 * 128) / 150 * 1000) < 1e-6);
  assert.deepEqual(recordProblems(annotate(r, ENV)), []);
  // the worker's --bf16 mode names the record's path: fp32, the teacher's GEMMs in bf16, all but the student's LM head (the default with AVX512_BF16), all
  const base = { bench: 'real_size', impl: 'kdqat', model: 'bert-base', threads: 1, batch: 16, seq: 128, load_ms: 1, forward_tokens_per_s: 900,
    qat_tokens_per_s: 150, qat_best_tokens_per_s: 160, peak_rss_mb: 3000, loss_first: 1, loss_last: 1 } as const;
  for (const [bf16, isa] of [['off', 'avx512'], ['teacher', 'avx512_bf16_teacher'], ['layers', 'avx512_bf16_layers'], ['all', 'avx512_bf16']]) {
    const a = annotate(realSizeToQatStep({ ...base, bf16 }), ENV);
    assert.equal(a.isa, isa, bf16);
    assert.deepEqual(recordProblems(a), [], bf16);
  }
  assert.equal(annotate(realSizeToQatStep({ ...base, bf16: 'teacher' }), ENV).isa_paths.gemm, 'avx512 (student), avx512_bf16 (teacher)');
  assert.equal(annotate(realSizeToQatStep({ ...base, bf16: 'layers' }), ENV).isa_paths.gemm, "avx512_bf16, avx512 (the student's LM head)");
  // on a CPU whose AMX runs matmulBf16, the bf16 GEMMs are named amx_bf16
  const amxEnv: BenchEnv = { ...ENV, kdqat: { ...INFO, amx: { available: true, reason: null, matmulBf16: true, matmulQ8: true, matmulOnGrid: true } } };
  for (const [bf16, isa] of [['off', 'avx512'], ['teacher', 'amx_bf16_teacher'], ['layers', 'amx_bf16_layers'], ['all', 'amx_bf16']]) {
    assert.equal(annotate(realSizeToQatStep({ ...base, bf16 }), amxEnv).isa, isa, `${bf16} on AMX`);
  }
  assert.equal(annotate(realSizeToQatStep({ ...base, bf16: 'teacher' }), amxEnv).isa_paths.gemm, 'avx512 (student), amx_bf16 (teacher)');
  // float32 steps there run their grid backward on AMX (matmulOnGrid); elsewhere nothing is said
  assert.equal(annotate(realSizeToQatStep({ ...base, bf16: 'off' }), amxEnv).isa_paths.grid_gemm, 'amx_bf16x3');
  assert.equal(annotate(realSizeToQatStep({ ...base, bf16: 'off' }), ENV).isa_paths.grid_gemm, undefined);
  // int8 input gradients (KDQAT_INT8_GRAD=on): their own series, naming the integer GEMM's path
  const i8 = annotate(realSizeToQatStep({ ...base, int8_grad: true }), { ...ENV, kdqat: { ...INFO, families: { ...INFO.families, gemmQ8: fam('avx512', ['portable', 'avx2', 'avx512']) } } });
  assert.equal(i8.compute, 'fp32-int8grad');
  assert.equal(i8.isa, 'avx512_int8grad');
  assert.equal(i8.isa_paths.int8_grad, 'avx512');
  assert.deepEqual(recordProblems(i8), []);
  assert.equal(annotate(realSizeToQatStep({ ...base, int8_grad: true }), amxEnv).isa_paths.int8_grad, 'amx_int8');
  assert.equal(realSizeToQatStep({ ...base, int8_grad: false }).compute, 'fp32');
  // the worker's recompute mode; true in records from before the selective mode is all
  for (const [recompute, want] of [['off', 'off'], ['selective', 'selective'], ['all', 'all'], [true, 'all'], [false, 'off'], [undefined, 'off']] as const) {
    assert.equal(realSizeToQatStep({ ...base, recompute }).recompute, want, String(recompute));
  }
});

test('scaling sweep: points, attention FLOP share growing with T, and a real step on a tiny shape', () => {
  const pts = scalingPoints([1, 2]);
  assert.deepEqual(pts.find((p) => p.dim === 256 && p.seq === 256 && p.threads === 2)?.sweeps, ['threads', 'width', 'seq']);
  assert.equal(pts.filter((p) => p.sweeps.includes('width')).length, 4);
  assert.equal(pts.filter((p) => p.sweeps.includes('seq')).length, 4);
  const shares = [128, 256, 512, 1024].map((T) => attnFlopShare(shapeOf(256, T)));
  for (let i = 1; i < shares.length; i++) assert.ok(shares[i] > shares[i - 1]);
  // hand count at d256, T1024, 2 layers: attention 2·1024·256 per layer, projections 2·(4·256² + 3·256·688), head 2·256·4096
  const a = 2 * 1024 * 256, p = 2 * (4 * 256 * 256 + 3 * 256 * 688);
  assert.ok(Math.abs(shares[3] - (2 * a) / (2 * (a + p) + 2 * 256 * 4096)) < 1e-12);

  const tiny = { dim: 64, layers: 1, heads: 2, hidden: 96, vocab: 128, seq: 16, batch: 2 };
  const worker = fileURLToPath(new URL('../../bench/qat_step_worker.ts', import.meta.url));
  const r = runChild<QatStepRecord>(process.execPath, ['--import', 'tsx', worker, '1', JSON.stringify(tiny), '1'], 1);
  assert.equal(r.bench, 'qat_step');
  assert.equal(r.threads, 1);
  assert.ok(r.tokens_per_s > 0 && Number.isFinite(r.loss_last));
  const rec = annotate(scalingRecord(r, ['seq'], { ...tiny }), ENV);
  assert.equal(rec.shape, 'd64-L1-T16-B2');
  assert.equal(rec.tokens_per_step, 32);
  assert.deepEqual(recordProblems(rec), []);
});

test('benchEnv: this machine, and the addon path in force (KDQAT_ISA respected)', async () => {
  const env = await benchEnv({ torch: false });
  assert.ok(env.cpu.length > 0);
  const rec = annotate({ bench: 'gemm', impl: 'kdqat', threads: 1, m: 8, k: 8, n: 8, gflops: 1 }, env);
  const info = nativeAddon()?.isaInfo();
  assert.equal(rec.isa, info ? info.families.gemm.selected : 'ts-ref');
  assert.deepEqual(recordProblems(rec), []);
});
