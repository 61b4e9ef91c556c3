// The native backend implements every kernel of the contract: nothing silently falls back to
// the TypeScript reference when KDQAT_BACKEND=native, except the kernels listed in PENDING,
// which fall back knowingly until their native port lands (and must be dropped from the list then).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels } from '../../src/backend/ref/index.js';
import { useBackend, nativeAvailable } from '../../src/backend/index.js';
import { kernelSource } from '../../src/tensor/registry.js';
import { nativeIsaInfo } from '../../src/tensor/index.js';
import type { KernelName } from '../../src/tensor/kernels.js';

/** Kernels that run on the reference under the native backend until their C++ port lands. */
const PENDING: KernelName[] = [];

test('every reference kernel has a native implementation (but the PENDING ones)', () => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  useBackend('native');
  const missing = (Object.keys(refKernels) as KernelName[]).filter((k) => kernelSource(k) !== 'native');
  // matmulQ8 and matmulQ8Grad are registered only where a SIMD path runs them
  // (src/backend/native/index.ts): their portable code is slower than the float32 GEMM Linear
  // then runs instead.
  // matmulOnGrid exists only on AMX (native/gemm_grid.cc): elsewhere Linear's float32 backward.
  const info = nativeIsaInfo()!;
  const declined: KernelName[] = [
    ...(info.families.gemmQ8.selected === 'portable' ? ['matmulQ8' as const, 'matmulQ8Grad' as const] : []),
    ...(info.amx.matmulOnGrid ? [] : ['matmulOnGrid' as const]),
  ];
  assert.deepEqual(missing, [...PENDING, ...declined], `kernels without a native implementation: ${missing.join(', ')} ` +
    `(expected exactly the pending ${PENDING.join(', ')}; drop a kernel from PENDING once native has it)`);
});
