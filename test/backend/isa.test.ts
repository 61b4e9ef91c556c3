// The addon runs the SIMD path it was asked for: scripts/test.mjs reruns the kernel tests with
// KDQAT_ISA=avx512|avx2|portable and KDQAT_EXPECT_ISA set to the same level, and this file fails
// that run if the addon selected anything else (a cap silently ignored would otherwise count the
// wrong path as tested). Per family, the selected path must be the family's best compiled path
// at or below the level in force (e.g. the topk family, plain C++, runs its portable code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
