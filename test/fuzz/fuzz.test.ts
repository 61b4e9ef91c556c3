// A seeded sample of the fuzz corpus (scripts/fuzz-corpus.ts, issue 16) on every run: each case
// must end with a non-zero exit code and one message naming the file, the field and the fix, no
// stack trace, no crash or hang, nothing left behind (scripts/fuzz/check.ts). `npm run fuzz` runs
// all of it. The seed is fixed (a failure reproduces on the same commit); FUZZ_SEED=N draws
// another corpus and sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runFuzz } from '../../scripts/fuzz.js';
import { buildBase, countByCategory, generateCorpus, sampleCorpus, DEFAULT_SEED } from '../../scripts/fuzz-corpus.js';
import { runCase } from '../../scripts/fuzz/check.js';

const SAMPLE = 220;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : DEFAULT_SEED;

test('the corpus: ≥ 1,000 cases over every input kind, reproducible from its seed', async () => {
  const base = await buildBase();
  try {
    const a = generateCorpus(DEFAULT_SEED, base), b = generateCorpus(DEFAULT_SEED, base);
    assert.ok(a.length >= 1000, `${a.length} cases`);
    assert.deepEqual(a.map((c) => c.id), b.map((c) => c.id));
    assert.equal(new Set(a.map((c) => c.id)).size, a.length, 'case ids are unique');
    const cats = countByCategory(a);
    for (const cat of ['safetensors', 'config', 'tokenizer', 'tokenizer_config', 'gguf', 'quant-json', 'student', 'tasks', 'text', 'paths', 'run-config']) {
      assert.ok((cats.get(cat) ?? 0) > 0, `category ${cat}`);
    }
    // Same seed → same bytes: two workspaces of one case are identical.
    const c = a.find((x) => x.id.startsWith('safetensors/nonfinite-payload'))!;
    const [w1, w2] = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-fuzz-t-')));
    try {
      c.setup(w1, base);
      c.setup(w2, base);
      assert.ok(fs.readFileSync(path.join(w1, 'm', 'model.safetensors')).equals(fs.readFileSync(path.join(w2, 'm', 'model.safetensors'))));
    } finally {
      for (const w of [w1, w2]) fs.rmSync(w, { recursive: true, force: true });
    }
    const s = sampleCorpus(a, SAMPLE, seed);
    assert.ok(s.length >= 200, `sample of ${s.length}`);
    assert.deepEqual(new Set(s.map((x) => x.category)), new Set(a.map((x) => x.category)), 'the sample covers every category');
  } finally {
    fs.rmSync(base.root, { recursive: true, force: true });
  }
});

test('the checker fails a case whose input is fine (it can fail)', async () => {
  const base = await buildBase();
  try {
    const c = generateCorpus(DEFAULT_SEED, base).find((x) => x.category === 'config' && x.id.includes('/llama-eval#'))!;
    // The same command on the unmutated model: exit 0, so the checker must report it.
    const setup = (ws: string): void => {
      fs.cpSync(base.llama, path.join(ws, 'm'), { recursive: true });
      fs.copyFileSync(base.text, path.join(ws, 'text.txt'));
    };
    const r = await runCase({ ...c, setup }, base);
    assert.equal(r.pass, false);
    assert.match(r.problems.join('; '), /exit code 0/);
  } finally {
    fs.rmSync(base.root, { recursive: true, force: true });
  }
});

test('the runner reports a hang and a native crash against their case, and goes on with the next', async () => {
  process.env.KDQAT_FUZZ_SELFTEST = '1';
  try {
    const report = await runFuzz({ seed, sample: 3, timeoutMs: 3_000, prepend: ['selftest/segv', 'selftest/hang'] });
    const by = new Map(report.results.map((r) => [r.id, r]));
    assert.match(by.get('selftest/segv')!.problems.join(), /killed by SIGSEGV/);
    assert.match(by.get('selftest/hang')!.problems.join(), /hang \(no result within 3000 ms\)/);
    assert.equal(report.results.length, report.total);
    assert.ok(report.results.filter((r) => !r.id.startsWith('selftest/')).every((r) => r.pass), 'the cases after them ran and passed');
  } finally {
    delete process.env.KDQAT_FUZZ_SELFTEST;
  }
});

test(`a seeded sample of ${SAMPLE} fuzz cases: every one ends with one clear error (seed ${seed})`, async () => {
  const report = await runFuzz({ seed, sample: SAMPLE, timeoutMs: 60_000 });
  assert.ok(report.total >= 200, `${report.total} cases`);
  assert.equal(report.results.length, report.total, 'every case ran');
  const failed = report.results.filter((r) => !r.pass);
  assert.deepEqual(failed.map((r) => `${r.id}: ${r.problems.join('; ')} | ${r.message}`), [],
    `reproduce with: FUZZ_SEED=${seed} node --import tsx scripts/fuzz.ts --seed ${seed} --sample ${SAMPLE}`);
});
