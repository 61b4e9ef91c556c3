// `kdqat reproduce ov-freeze|attn-kd` and `kdqat demo` end to end on tiny random teachers with
// --quick settings: every row and seed ends up in results.json / results.md, students and QAT
// logs are kept per run, a rerun skips finished runs, and bad input is refused clearly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { U64, gamma } from '../bounds.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, kdqat as kdqatInProcess } from './helpers.js';
import { makeReproFixture, type ReproFixture } from './repro-fixture.js';

let fx: ReproFixture;
before(() => { fx = makeReproFixture('repro'); });
after(() => fx?.cleanup());

/** `node bin/kdqat.js ...args` (stdout carries the table; the test runner's own stdout must stay
 *  untouched, so successful runs go to a child process). */
function kdqat(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, KDQAT_THREADS: '2' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface ResultsJson {
  experiment: string;
  command: string[];
  settings: Record<string, unknown>;
  seeds: number[];
  tables: { title: string; rows: { key: string; metrics: Record<string, { mean: number; std: number | null; n: number; values: { seed: number; value: number }[] }> }[] }[];
  runs: { run: string; seed: number; metrics: Record<string, number>; seconds: { method: number; eval: number }; files: Record<string, string>; freeze_auto?: string[] }[];
}
const readJson = (f: string): ResultsJson => JSON.parse(fs.readFileSync(f, 'utf8'));

test('reproduce ov-freeze --quick: 2 seeds: every row, per-seed values, students, QAT logs; rerun skips', async () => {
  const out = path.join(fx.root, 'ov');
  // (KD-QAT + ov-freeze runs in the demo test.)
  const args = ['reproduce', 'ov-freeze', '--quick', '--teacher', fx.llama, '--out', out, '--only', 'teacher,rtn-w4-channel,qat-w4-channel,qat-auto-w4-channel', '--threads', '2'];
  const r = kdqat(...args);
  assert.equal(r.code, 0, r.stderr);
  const j = readJson(path.join(out, 'results.json'));
  assert.equal(j.experiment, 'ov-freeze');
  assert.deepEqual(j.command, ['kdqat', ...args]);
  assert.deepEqual(j.seeds, [0, 1]);
  assert.equal(j.settings.steps, 2);
  assert.equal(j.tables.length, 1, 'only the quantizer that ran gets a table');
  const rows = j.tables[0].rows;
  assert.deepEqual(rows.map((x) => x.key), ['teacher', 'rtn-w4-channel', 'qat-w4-channel', 'qat-ov-w4-channel', 'qat-auto-w4-channel']);
  // The teacher and RTN are deterministic: one run; KD-QAT: one per seed.
  assert.deepEqual(rows.map((x) => x.metrics.ppl?.n ?? 0), [1, 1, 2, 0, 2]);
  assert.deepEqual(rows[3].metrics, {}, 'a run not done has an empty row');
  for (const row of rows.slice(0, 3)) {
    for (const k of ['ppl', 'cont_acc', 'cont_acc_norm', 'wn_acc', 'wn_acc_norm']) assert.ok(row.metrics[k], `${row.key}: ${k}`);
    assert.ok(row.metrics.ppl.mean > 1);
    assert.ok(row.metrics.cont_acc.mean >= 0 && row.metrics.cont_acc.mean <= 1);
  }
  const qat = rows[2].metrics.ppl;
  assert.deepEqual(qat.values.map((v) => v.seed), [0, 1]);
  // Both means are float64 sums of the same two numbers: at most γ64(2) of their magnitude apart.
  const [a, b] = [qat.values[0].value, qat.values[1].value];
  assert.ok(Math.abs(qat.mean - (a + b) / 2) <= gamma(2, U64) * (Math.abs(a) + Math.abs(b)) / 2);
  // The fraction recovered follows the per-seed perplexities, when RTN lost anything.
  const [fp, rtn] = [rows[0].metrics.ppl.mean, rows[1].metrics.ppl.mean];
  if (rtn > fp) {
    const rec = rows[2].metrics.recovered.values.map((v) => v.value);
    assert.deepEqual(rec, qat.values.map((v) => (rtn - v.value) / (rtn - fp)));
  } else assert.match(r.stdout, /no loss to recover/);
  // Each run: student directory (a kdqat student), QAT log with loss terms and signal records.
  for (const run of j.runs.filter((x) => x.run.startsWith('qat'))) {
    assert.ok(fs.existsSync(path.join(out, run.files.student, 'quantization.json')), run.run);
    const log = fs.readFileSync(path.join(out, run.files.log), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(log.some((l) => l.loss?.pred !== undefined && l.signal), `${run.run}: a log line with the pred term and signal statistics`);
    // Periodic evaluations (steps / 5, at least every step): the report's evaluation curves.
    assert.deepEqual(log.filter((l) => l.valid_ppl !== undefined).map((l) => l.step), [1, 2], `${run.run}: evaluation lines`);
  }
  assert.ok(fs.existsSync(path.join(out, 'runs', 'rtn-w4-channel', '0', 'student', 'model.quantized.safetensors')));
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  assert.match(md, /\| KD-QAT \| [\d.]+ ± [\d.]+ \|/);
  assert.match(md, /\| KD-QAT \+ ov-freeze \| — \|/);
  assert.match(md, /\| KD-QAT \+ auto-freeze \| [\d.]+ ± [\d.]+ \|/);
  // --freeze auto: what the probe chose, per seed, in results.json and in the notes.
  const autoRuns = j.runs.filter((x) => x.run === 'qat-auto-w4-channel');
  assert.deepEqual(autoRuns.map((x) => x.seed), [0, 1]);
  for (const x of autoRuns) {
    const rec = JSON.parse(fs.readFileSync(path.join(out, x.files.freeze_auto), 'utf8'));
    assert.deepEqual(x.freeze_auto, rec.patterns, `seed ${x.seed}`);
    assert.equal(rec.probe.steps, 2, 'the probe is no longer than the --quick run');
  }
  const said = (p: string[]): string => (p.length ? p.join(', ') : 'nothing');
  assert.ok(md.includes(`auto-freeze chose: seed 0: ${said(autoRuns[0].freeze_auto!)}`), md);
  assert.ok(md.includes(`seed 1: ${said(autoRuns[1].freeze_auto!)}`), md);
  assert.match(md, /\| method \| valid ppl ↓ \|/);
  assert.match(r.stdout, /FP teacher/);

  // Rerun: nothing recomputed, the same table.
  const mtime = fs.statSync(path.join(out, 'runs', 'qat-w4-channel', '0', 'result.json')).mtimeMs;
  const again = kdqat(...args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stderr.match(/finished earlier, kept/g) ?? []).length, 6);
  assert.doesNotMatch(again.stderr, /KD-QAT with/);
  assert.equal(fs.statSync(path.join(out, 'runs', 'qat-w4-channel', '0', 'result.json')).mtimeMs, mtime);
  assert.deepEqual(readJson(path.join(out, 'results.json')).tables, j.tables);

  // An interrupted run (no result.json) is redone, the others kept.
  fs.rmSync(path.join(out, 'runs', 'qat-w4-channel', '1', 'result.json'));
  const resumed = kdqat(...args);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal((resumed.stderr.match(/finished earlier, kept/g) ?? []).length, 5);
  assert.match(resumed.stderr, /qat-w4-channel seed 1: KD-QAT with w4-channel, loss pred\n/);

  // Other settings into the same directory: refused, nothing touched; --force starts over.
  const before = fs.readFileSync(path.join(out, 'results.json'), 'utf8');
  const clash = kdqat('reproduce', 'ov-freeze', '--quick', '--teacher', fx.llama, '--out', out, '--steps', '3', '--only', 'teacher');
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /its runs were made with steps 2, not 3; .*--force to start over/);
  assert.equal(fs.readFileSync(path.join(out, 'results.json'), 'utf8'), before);
  const forced = kdqat('reproduce', 'ov-freeze', '--quick', '--teacher', fx.llama, '--out', out, '--steps', '3', '--only', 'teacher', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(fs.readdirSync(path.join(out, 'runs')), ['teacher']);
  assert.equal(readJson(path.join(out, 'results.json')).settings.steps, 3);
});

test('reproduce attn-kd --quick: ternary rows with dev and test accuracy per seed, of the best-dev student', async () => {
  const out = path.join(fx.root, 'attn');
  const r = kdqat('reproduce', 'attn-kd', '--quick', '--teacher', fx.bert, '--out', out, '--only', 'teacher,rtn-twn-a8,qat-attn-map-twn-a8', '--seeds', '3,5');
  assert.equal(r.code, 0, r.stderr);
  const j = readJson(path.join(out, 'results.json'));
  const rows = j.tables[0].rows;
  // Every row of the experiment is in the table; those not run are empty.
  assert.deepEqual(rows.map((x) => x.key), ['teacher', 'rtn-twn-a8', 'qat-pred-rep-twn-a8', 'qat-attn-score-twn-a8', 'qat-attn-map-twn-a8',
    'qat-attn-out-twn-a8', 'qat-unified-a1-b0.5-twn-a8', 'qat-unified-a0.5-b1-twn-a8']);
  const byKey = Object.fromEntries(rows.map((x) => [x.key, x]));
  assert.deepEqual(byKey['qat-attn-map-twn-a8'].metrics.dev_acc.values.map((v) => v.seed), [3, 5]);
  assert.equal(byKey['rtn-twn-a8'].metrics.test_acc.n, 1);
  assert.deepEqual(byKey['qat-pred-rep-twn-a8'].metrics, {});
  assert.equal(j.tables.length, 1, 'only the quantizer that ran has a table');
  assert.match(j.tables[0].title, /twn-a8/);
  for (const k of ['teacher', 'rtn-twn-a8', 'qat-attn-map-twn-a8']) {
    for (const m of ['dev_acc', 'test_acc']) {
      for (const v of byKey[k].metrics[m].values) assert.ok(v.value >= 0 && v.value <= 1 && Number.isInteger(v.value * 8), `${k} ${m} ${v.value}: a count out of 8 items`);
    }
  }
  // The measured student is the best-dev one (paper B); it quantizes activations (twn-a8) and
  // the run keeps its loss weights.
  const run = j.runs.find((x) => x.run === 'qat-attn-map-twn-a8' && x.seed === 5)!;
  assert.equal(run.files.student, path.join('runs', 'qat-attn-map-twn-a8', '5', 'best-student'));
  const q = JSON.parse(fs.readFileSync(path.join(out, run.files.student, 'quantization.json'), 'utf8'));
  assert.equal(q.config.activations.bits, 8);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'runs', 'qat-attn-map-twn-a8', '5', 'summary.json'), 'utf8'));
  assert.equal(summary.config.loss, 'pred=1,rep=1,attn_map=1');
  assert.equal(summary.config.seed, 5);
  assert.deepEqual([summary.config.evalEvery, summary.config.keepBest], [1, true]);
  assert.ok([1, 2].includes(summary.best.step) && summary.best.metrics.dev_accuracy >= 0, JSON.stringify(summary.best));
  // The reproduction measures every student itself; KD-QAT evaluates only periodically, to choose.
  assert.deepEqual([summary.teacher, summary.rtn, summary.final], [{}, {}, {}]);
  assert.match(fs.readFileSync(path.join(out, 'results.md'), 'utf8'), /\| KD-QAT \+attn_map \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| 2 \|/);
});

test('demo --quick: RTN, KD-QAT, KD-QAT + ov-freeze at w4-channel-lsq, one seed; refuses a foreign --out', async () => {
  const out = path.join(fx.root, 'demo');
  const r = kdqat('demo', '--quick', '--teacher', fx.llama, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const j = readJson(path.join(out, 'results.json'));
  assert.equal(j.experiment, 'demo');
  assert.deepEqual(j.tables[0].rows.map((x) => [x.key, x.metrics.ppl.n]), [['teacher', 1], ['rtn-w4-channel-lsq', 1], ['qat-w4-channel-lsq', 1], ['qat-ov-w4-channel-lsq', 1]]);
  assert.match(r.stdout, /KD-QAT \+ ov-freeze/);
  assert.match(r.stderr, /\[4\/4\] qat-ov-w4-channel-lsq seed 0: done/);

  // A directory that holds something else is not touched without --force.
  const foreign = path.join(fx.root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  const refused = kdqat('demo', '--quick', '--teacher', fx.llama, '--out', foreign);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--out .*foreign: exists, is not empty and holds no demo reproduction; choose another --out, or --force/);
  assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
  // A reproduction of another experiment is not mistaken for this one.
  const other = kdqat('reproduce', 'ov-freeze', '--quick', '--teacher', fx.llama, '--out', out, '--only', 'teacher');
  assert.equal(other.code, 1);
  assert.match(other.stderr, /holds a reproduction of demo, not ov-freeze/);
});

test('a run that fails (NaN loss) is named, the others are tabled, and a rerun retries it', () => {
  const out = path.join(fx.root, 'nan');
  const args = ['reproduce', 'ov-freeze', '--quick', '--teacher', fx.llama, '--out', out, '--lr', '1e30', '--only', 'teacher,qat-w4-channel', '--seeds', '1'];
  const r = kdqat(...args);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /qat-w4-channel seed 0: FAILED: training stopped at step \d+: the loss term 'pred' NaN/);
  assert.match(r.stderr, /1 run\(s\) failed \(the tables hold the others; rerun the command to retry them\)/);
  const rows = readJson(path.join(out, 'results.json')).tables[0].rows;
  assert.equal(rows[0].metrics.ppl.n, 1);
  assert.deepEqual(rows[2].metrics, {});
  assert.ok(!fs.existsSync(path.join(out, 'runs', 'qat-w4-channel', '0', 'result.json')));
  // The report of what finished is written all the same.
  assert.equal(r.stdout.match(/^report: (.*)$/m)?.[1], path.join(out, 'report.html'));
  assert.match(fs.readFileSync(path.join(out, 'report.html'), 'utf8'), /<td class="l">FP teacher<\/td>/);
  const again = kdqat(...args);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /teacher: finished earlier, kept/);
  assert.match(again.stderr, /qat-w4-channel seed 0: KD-QAT with w4-channel/);
});

test('bad flags: clear errors, nothing written', async () => {
  const out = path.join(fx.root, 'bad');
  const cases: [string[], RegExp][] = [
    [['reproduce', 'ov-freeze', '--seeds', '0,x'], /--seeds <n\|list>' argument '0,x' is invalid. expected a number of seeds \(3 = seeds 0,1,2\) or a comma-separated list/],
    [['reproduce', 'ov-freeze', '--seeds', '1,1'], /repeats a seed/],
    [['reproduce', 'ov-freeze', '--seeds', '0'], /number of seeds ≥ 1/],
    [['reproduce', 'ov-freeze', '--only', 'w5-channel', '--teacher', fx.llama], /--only w5-channel: no such run; ov-freeze has runs teacher, rtn-w4-channel, .*or a quantizer: w4-channel, w4-channel-lsq, q4_0, w3-channel, w3-g32, w2-channel, w2-g32, tq2_0, twn/],
    [['reproduce', 'ov-freeze', '--steps', '0', '--teacher', fx.llama], /--steps must be at least 1, got 0/],
    [['reproduce', 'ov-freeze', '--eval-items', '-1', '--teacher', fx.llama], /--eval-items must be ≥ 0 \(0 = all\), got -1/],
    [['reproduce', 'ov-freeze', '--lr', 'fast'], /--lr <x>' argument 'fast' is invalid. expected a number/],
    [['reproduce', 'attn-kd', '--sweep', '0.5,-1'], /comma-separated list of positive numbers/],
    [['reproduce', 'ov-freeze', '--teacher', path.join(fx.root, 'nope')], /--teacher .*nope: no such directory/],
    [['reproduce', 'attn-kd', '--quick', '--teacher', fx.llama, '--only', 'teacher'], /--teacher .*llama: is a llama model; attn-kd needs an encoder classifier/],
    [['reproduce', 'paper-c'], /error: unknown command 'paper-c'/],
  ];
  for (const [args, want] of cases) {
    const r = await kdqatInProcess(...args, '--out', out);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, want, args.join(' '));
  }
  assert.ok(!fs.existsSync(out), 'every check comes before anything is written');
});
