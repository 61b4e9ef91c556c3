// The addon runs the SIMD path it was asked for: scripts/test.mjs reruns the kernel tests with
// KDQAT_ISA=avx512|avx2|portable and KDQAT_EXPECT_ISA set to the same level, and this file fails
// that run if the addon selected anything else (a cap silently ignored would otherwise count the
// wrong path as tested). Per family, the selected path must be the family's best compiled path
// at or below the level in force (e.g. the topk family, plain C++, runs its portable code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { nativeAvailable, nativeIsa, nativeIsaInfo } from '../../src/tensor/index.js';

test('isaInfo: the level in force is the CPU best capped by KDQAT_ISA', () => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  const info = nativeIsaInfo()!;
  const names = info.levels.map((l) => l.isa);
  const rank = (isa: string): number => names.indexOf(isa);
  assert.ok(rank(info.cpu) >= 0 && rank(info.isa) >= 0, JSON.stringify(info));
  // The CPU supports every level up to `cpu` and lacks a feature of the next one.
  for (const l of info.levels) {
    assert.equal(l.missing.length === 0, rank(l.isa) <= rank(info.cpu), `level ${l.isa}: ${JSON.stringify(l)}`);
  }
  const cap = process.env.KDQAT_ISA;
  const want = cap && rank(cap) >= 0 && rank(cap) < rank(info.cpu) ? cap : info.cpu;
  assert.equal(info.isa, want, `KDQAT_ISA=${cap ?? '(unset)'} on a ${info.cpu} CPU`);
  assert.equal(nativeIsa(), info.isa);
  const expected = process.env.KDQAT_EXPECT_ISA;
  if (expected) {
    assert.equal(info.isa, expected, `the runner asked for ${expected}, the addon runs ${info.isa}`);
  }
});

test('isaInfo: every kernel family runs its best path at or below the level in force', () => {
  const info = nativeIsaInfo()!;
  const rank = (isa: string): number => info.levels.findIndex((l) => l.isa === isa);
  const families = Object.keys(info.families).sort();
  assert.deepEqual(families, ['attention', 'elementwise', 'gemm', 'gemmQ8', 'kquant', 'nn', 'optim', 'quant', 'topk']);
  for (const [fam, { selected, paths }] of Object.entries(info.families)) {
    const want = paths.filter((p) => rank(p) <= rank(info.isa)).at(-1);
    assert.equal(selected, want, `${fam}: paths ${paths.join(', ')} under ${info.isa}`);
  }
});

// AMX (native/amx.h): an engine on top of avx512 for matmulBf16 and matmulQ8, decided here from
// /proc/cpuinfo, KDQAT_ISA and KDQAT_AMX independently of the addon's answer. scripts/test.mjs
// reruns the bf16 and integer GEMM tests with KDQAT_AMX=off (KDQAT_EXPECT_AMX=off) on an AMX CPU,
// so both kernels of each are compared with the reference there.
test('isaInfo: AMX runs matmulBf16, matmulQ8 and matmulOnGrid exactly where the CPU has it and neither KDQAT_ISA nor KDQAT_AMX turns it off', () => {
  const info = nativeIsaInfo()!;
  let flags: string[] = [];
  try {
    flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/);
  } catch {
    // Not Linux: kdqat asks Linux for AMX tile data, so AMX cannot be in use.
  }
  const cpu = ['amx_tile', 'amx_bf16', 'amx_int8'].every((f) => flags.includes(f));
  const want = cpu && info.isa === 'avx512' && process.env.KDQAT_AMX !== 'off';
  assert.equal(info.amx.available, want, JSON.stringify(info.amx));
  assert.equal(info.amx.matmulBf16, want && info.bf16.available, 'matmulBf16 on AMX');
  assert.equal(info.amx.matmulQ8, want, 'matmulQ8 on AMX');
  assert.equal(info.amx.matmulOnGrid, want && info.bf16.available, 'matmulOnGrid: only on AMX');
  if (!want) {
    const why = !cpu ? 'lacks the amx' : info.isa !== 'avx512' ? 'KDQAT_ISA caps' : 'KDQAT_AMX=off';
    assert.ok(info.amx.reason?.includes(why), `reason "${info.amx.reason}" should say it ${why}`);
  }
  const expected = process.env.KDQAT_EXPECT_AMX;
  if (expected) assert.equal(info.amx.available, expected === 'on', `the runner asked for AMX ${expected}`);
});

// The fp32 GEMM's AVX-512 instance with software prefetches (native/gemm_impl.h): on Intel CPUs
// (vendor from /proc/cpuinfo here, not from the addon), or as KDQAT_GEMM_PREFETCH says.
// scripts/test.mjs reruns the fp32 GEMM tests with the other setting at avx512
// (KDQAT_EXPECT_GEMM_PREFETCH), so both instances are compared with the reference on every
// AVX-512 CPU.
test('isaInfo: the fp32 GEMM prefetches on Intel at avx512 unless KDQAT_GEMM_PREFETCH says otherwise', () => {
  const info = nativeIsaInfo()!;
  let vendor = '';
  try {
    vendor = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^vendor_id\s*:\s*(\S+)/m)?.[1] ?? '';
  } catch {
    vendor = info.vendor;  // not Linux: CPUID's answer is the only one
  }
  const env = process.env.KDQAT_GEMM_PREFETCH;
  const wanted = env === 'on' ? true : env === 'off' ? false : vendor === 'GenuineIntel';
  assert.equal(info.gemmPrefetch, wanted && info.isa === 'avx512',
    `vendor ${vendor}, level ${info.isa}, KDQAT_GEMM_PREFETCH=${env ?? '(unset)'}`);
  const expected = process.env.KDQAT_EXPECT_GEMM_PREFETCH;
  if (expected) assert.equal(info.gemmPrefetch, expected === 'on', `the runner asked for prefetch ${expected}`);
});
