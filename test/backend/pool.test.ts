// The thread pool must take a job posted right after its workers were created: resize the pool
// and immediately run a parallel kernel, many times, in a child process with a time limit (a
// missed job hangs the caller forever, which the time limit turns into a failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const addonPath = fileURLToPath(new URL('../../build/Release/kdqat.node', import.meta.url));

test('pool: a parallel job right after a resize is never missed', () => {
  const script = `
    const a = require(${JSON.stringify(addonPath)});
    const x = new Float32Array(1 << 20).fill(1), y = new Float32Array(1 << 20);
    for (let i = 0; i < 300; i++) {
      a.setThreads(1 + (i % 3));
      a.axpy(1, x, y);
    }
    process.stdout.write(String(y[12345]));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, null, `the child was killed (${r.signal}): the pool missed a job and hung`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '300');
});
