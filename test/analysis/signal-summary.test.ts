// scripts/signal-summary.ts on a synthetic reproduction directory: per run, the mean of a signal
// per module kind over layers, logged steps and seeds (null cells = not measured are skipped),
// and the ratio to the run's median kind in the Markdown table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../cli/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/signal-summary.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });

function log(dir: string, runName: string, seed: number, lines: { step: number; v: (number | null)[]; q: number[] }[]): void {
  const d = path.join(dir, 'runs', runName, String(seed));
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'qat_log.jsonl'), lines.map((l) => JSON.stringify({ step: l.step, loss: { total: 1 }, signal: { grad_norm: { q: l.q, v: l.v } } })).join('\n') + '\n');
}

test('signal-summary: means per kind over layers, steps and seeds; frozen (null) cells skipped', () => {
  const dir = tmpDir('signal-summary');
  log(dir, 'qat-w2-g32', 0, [{ step: 10, q: [1, 2], v: [4, 8] }, { step: 20, q: [3, 4], v: [null, null] }]);
  log(dir, 'qat-w2-g32', 1, [{ step: 10, q: [5, 5], v: [6, 6] }]);
  fs.mkdirSync(path.join(dir, 'runs', 'rtn-w2-g32', '0'), { recursive: true }); // no log: left out
  const r = run(dir, '--metric', 'grad_norm', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  // q: (1+2+3+4+5+5)/6 = 20/6; v: (4+8+6+6)/4 = 6.
  assert.deepEqual(out.grad_norm, [{ run: 'qat-w2-g32', seeds: 2, kinds: { q: 20 / 6, v: 6 } }]);
  const md = run(dir, '--metric', 'grad_norm');
  assert.equal(md.status, 0, md.stderr);
  // median of (3.33, 6) = 4.667: q 0.71×, v 1.29×.
  assert.match(md.stdout, /\| qat-w2-g32 \| 2 \| 3\.33 \(0\.71×\) \| 6\.00 \(1\.29×\) \|/);
  const bad = run(path.join(dir, 'nowhere'));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /nowhere: no runs\/ directory; pass the --out of kdqat reproduce ov-freeze/);
});
