// Runs a test body once per backend ("every op test runs on every backend"). The native
// backend must be available: a test suite that silently fell back would hide a broken build.
import assert from 'node:assert/strict';
import { useBackend, nativeAvailable } from '../src/tensor/index.js';

export const BACKENDS = ['ref', 'native'] as const;

export function onBackend(name: (typeof BACKENDS)[number], fn: () => void): void {
  if (name === 'native') assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  useBackend(name);
  try {
    fn();
  } finally {
    useBackend();
  }
}
