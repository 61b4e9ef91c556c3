// The native backend implements every kernel of the contract: nothing silently falls back to
// the TypeScript reference when KDQAT_BACKEND=native.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refKernels } from '../../src/backend/ref/index.js';
import { useBackend, nativeAvailable } from '../../src/backend/index.js';
import { kernelSource } from '../../src/tensor/registry.js';
import type { KernelName } from '../../src/tensor/kernels.js';

test('every reference kernel has a native implementation', () => {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  useBackend('native');
  const missing = (Object.keys(refKernels) as KernelName[]).filter((k) => kernelSource(k) !== 'native');
  assert.deepEqual(missing, [], `kernels without a native implementation: ${missing.join(', ')}`);
});
