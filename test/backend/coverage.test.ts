// The native backend implements every kernel of the contract: nothing silently falls back to
// the TypeScript reference when KDQAT_BACKEND=native, except the kernels listed in PENDING,
// which fall back knowingly until their native port lands (and must be dropped from the list then).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels } from '../../src/backend/ref/index.js';
import { useBackend, nativeAvailable } from '../../src/backend/index.js';
import { kernelSource } from '../../src/tensor/registry.js';
import type { KernelName } from '../../src/tensor/kernels.js';

/** Kernels that run on the reference under the native backend until their C++ port lands. */
const PENDING: KernelName[] = [];

test('every reference kernel has a native implementation (but the PENDING ones)', () => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  useBackend('native');
  const missing = (Object.keys(refKernels) as KernelName[]).filter((k) => kernelSource(k) !== 'native');
  assert.deepEqual(missing, PENDING, `kernels without a native implementation: ${missing.join(', ')} ` +
    `(expected exactly the pending ${PENDING.join(', ')}; drop a kernel from PENDING once native has it)`);
});
