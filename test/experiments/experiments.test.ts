// The experiment definitions as data: their runs exist in the library (presets, loss names,
// freeze presets), --only selects what it says, seeds parse, and the derived fraction recovered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OV_FREEZE, fractionRecovered } from '../../src/experiments/ov-freeze.js';
import { ATTN_KD, unifiedPairs } from '../../src/experiments/attn-kd.js';
import { runSeeds, selectRuns } from '../../src/experiments/runner.js';
import { qatConfig, lossSpec } from '../../src/experiments/methods.js';
import { teacherTask } from '../../src/experiments/evaluate.js';
import { DEMO } from '../../src/experiments/demo.js';
import { resolveRepro, seedsArg } from '../../src/cli/reproduce.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { meanInterval95, summarize, t975, wilson95 } from '../../src/report/table.js';
import { LOSS_NAMES, parseLossWeights } from '../../src/distill/losses.js';
import type { Experiment, ReproSettings, RunResult } from '../../src/experiments/types.js';
import { tmpDir } from '../util.js';

const settings = (e: Experiment): ReproSettings => ({ ...e.defaults, teacher: '/t' });

test('every run names a real preset and real loss terms; keys are unique and directory-safe', () => {
  for (const e of [OV_FREEZE, ATTN_KD, DEMO]) {
    const runs = e.runs({ ...settings(e), sweep: [0.1, 0.5, 0.9] });
    assert.equal(new Set(runs.map((r) => r.key)).size, runs.length, e.name);
    for (const r of runs) {
      assert.match(r.key, /^[a-z0-9_.-]+$/);
      for (const g of r.groups) assert.ok(e.groups.some((x) => x.key === g), `${r.key}: group ${g}`);
      if (r.method.kind === 'teacher') continue;
      assert.ok(Object.hasOwn(QUANT_PRESETS, r.method.preset), `${r.key}: preset ${r.method.preset}`);
      if (r.method.kind === 'qat') {
        for (const k of Object.keys(r.method.losses)) assert.ok((LOSS_NAMES as readonly string[]).includes(k), `${r.key}: loss ${k}`);
        assert.deepEqual(parseLossWeights(lossSpec(r.method.losses), 'test'), r.method.losses);
      }
    }
  }
});

const OV_KEYS = ['w4-channel', 'w4-channel-lsq', 'q4_0', 'w3-channel', 'w3-g32', 'w2-channel', 'w2-g32', 'tq2_0', 'twn'];

test('ov-freeze: FP, RTN, KD-QAT, KD-QAT + ov, KD-QAT + auto per quantizer (4, 3, 2 bits, ternary); logits loss only', () => {
  const runs = OV_FREEZE.runs(settings(OV_FREEZE));
  assert.equal(runs.length, 1 + 4 * OV_KEYS.length);
  for (const q of OV_KEYS) {
    assert.ok(Object.hasOwn(QUANT_PRESETS, q), `${q} is a preset`);
    const inGroup = runs.filter((r) => r.groups.includes(q)).map((r) => r.family);
    assert.deepEqual(inGroup, ['teacher', 'rtn', 'qat', 'qat-ov', 'qat-auto']);
  }
  const ov = runs.find((r) => r.key === 'qat-ov-q4_0')!;
  assert.deepEqual(ov.method, { kind: 'qat', preset: 'q4_0', losses: { pred: 1 }, freeze: 'ov' });
  assert.deepEqual(runs.find((r) => r.key === 'qat-auto-q4_0')!.method, { kind: 'qat', preset: 'q4_0', losses: { pred: 1 }, freeze: 'auto' });
  assert.ok(OV_FREEZE.defaults.seeds >= 3, 'at least 3 seeds by default');
  // The demo is the w4-channel-lsq table of ov-freeze, one seed.
  assert.deepEqual(DEMO.runs(settings(DEMO)).map((r) => r.key), ['teacher', 'rtn-w4-channel-lsq', 'qat-w4-channel-lsq', 'qat-ov-w4-channel-lsq']);
  assert.equal(DEMO.defaults.seeds, 1);
});

test('attn-kd: one table per quantizer, twn-a8 first; the unified sweep fixes one coefficient at 1', () => {
  assert.deepEqual(unifiedPairs([0.1, 0.5]), [[1, 0.1], [1, 0.5], [0.1, 1], [0.5, 1]]);
  assert.deepEqual(unifiedPairs([0.5, 1]), [[1, 0.5], [1, 1], [0.5, 1]], '(1, 1) once');
  const runs = ATTN_KD.runs({ ...settings(ATTN_KD), sweep: [0.5] });
  assert.deepEqual(ATTN_KD.groups.map((g) => g.key), ['twn-a8', 'twn', 'tq2_0', 'w2-channel', 'w2-g32', 'w3-channel', 'w3-g32']);
  const keys = (q: string): string[] => selectRuns(runs, [q], ATTN_KD).map((r) => r.key);
  assert.deepEqual(keys('twn-a8'), ['teacher', 'rtn-twn-a8', 'qat-pred-rep-twn-a8', 'qat-attn-score-twn-a8', 'qat-attn-map-twn-a8',
    'qat-attn-out-twn-a8', 'qat-unified-a1-b0.5-twn-a8', 'qat-unified-a0.5-b1-twn-a8']);
  assert.deepEqual(runs.find((r) => r.key === 'qat-unified-a0.5-b1-twn-a8')!.method, { kind: 'qat', preset: 'twn-a8', losses: { pred: 1, rep: 1, attn_map: 0.5, attn_out: 1 } });
  assert.deepEqual(runs.find((r) => r.key === 'qat-attn-map-w2-g32')!.method, { kind: 'qat', preset: 'w2-g32', losses: { pred: 1, rep: 1, attn_map: 1 } });
  for (const g of ATTN_KD.groups) {
    for (const r of selectRuns(runs, [g.key], ATTN_KD)) if (r.method.kind !== 'teacher') assert.equal(r.method.preset, g.key, r.key);
  }
  assert.equal(runs.length, 1 + 7 * ATTN_KD.groups.length, 'teacher once, 7 rows per quantizer');
});

test('--only: by run, method or quantizer (a quantizer brings the teacher); unknown names listed', () => {
  const all = OV_FREEZE.runs(settings(OV_FREEZE));
  const keys = (only: string[]): string[] => selectRuns(all, only, OV_FREEZE).map((r) => r.key);
  assert.deepEqual(keys(['q4_0']), ['teacher', 'rtn-q4_0', 'qat-q4_0', 'qat-ov-q4_0', 'qat-auto-q4_0']);
  assert.deepEqual(keys(['qat-ov']), OV_KEYS.map((q) => `qat-ov-${q}`));
  assert.deepEqual(keys(['rtn-w3-channel', 'teacher']), ['teacher', 'rtn-w3-channel']);
  assert.equal(keys([]).length, all.length);
  assert.throws(() => keys(['qat', 'w5']), /--only w5: no such run; .*name a method: teacher, rtn, qat, qat-ov, qat-auto/);
});

test('confidence intervals: t interval of a mean over seeds, Wilson interval of an accuracy, and the multiple-choice note', () => {
  // t quantiles: the table, then the Cornish–Fisher tail (published: t(31) = 2.0395, t(60) = 2.0003,
  // t(120) = 1.9799, rounded to 1e-4), within its stated 2e-4 plus the rounding.
  assert.equal(t975(2), 4.303);
  for (const [df, t] of [[31, 2.0395], [60, 2.0003], [120, 1.9799]]) assert.ok(Math.abs(t975(df) - t) < 2.5e-4, `t975(${df}) = ${t975(df)}`);
  assert.ok(t975(31) < t975(30) && t975(30) > 1.96);
  const iv = meanInterval95(summarize([1, 2, 3]))!; // mean 2, s 1, n 3: 2 ± 4.303/√3 = 2 ± 2.484
  assert.ok(Math.abs(iv[0] - (2 - 4.303 / Math.sqrt(3))) < 1e-12 && Math.abs(iv[1] - (2 + 4.303 / Math.sqrt(3))) < 1e-12);
  assert.equal(meanInterval95(summarize([5])), null);
  // Wilson at p = 0.3, n = 300 (z = 1.96): d = 1 + z²/n = 1.012805, centre (p + z²/2n)/d = 0.30253,
  // half-width (z/d)·√(p(1−p)/n + z²/4n²) = 0.05159: [0.2509, 0.3541].
  const [lo, hi] = wilson95(0.3, 300);
  assert.ok(Math.abs(lo - 0.2509) < 1e-4 && Math.abs(hi - 0.3541) < 1e-4, `${lo} ${hi}`);
  assert.deepEqual(wilson95(0, 10).map((x) => Number(x.toFixed(4))), [0, 0.2775]);
  const res = (run: string, metrics: Record<string, number>): RunResult => ({ run, seed: 0, metrics, seconds: { method: 0, eval: 0 }, files: {} });
  const notes = OV_FREEZE.derive!(new Map([['teacher', [res('teacher', { ppl: 10, cont_acc: 0.3, cont_items: 300, wn_acc: 0.25, wn_items: 300 })]]]), []);
  assert.match(notes['w4-channel'][0], /300 continuation and 300 wordnet-def items; one model's accuracy has a 95% interval of ±5\.2 \/ ±4\.9 points/);
});

test('seeds: a count or a list; deterministic runs once', () => {
  assert.deepEqual(seedsArg('3'), [0, 1, 2]);
  assert.deepEqual(seedsArg('4,7'), [4, 7]);
  assert.deepEqual(seedsArg('5,'), [5]);
  assert.throws(() => seedsArg('5,,'), /comma-separated list/);
  assert.throws(() => seedsArg(','), /comma-separated list/);
  assert.throws(() => seedsArg('0'), /≥ 1/);
  assert.throws(() => seedsArg('1,1'), /repeats/);
  assert.throws(() => seedsArg('1.5'), /comma-separated list/);
  const [t, , q] = OV_FREEZE.runs(settings(OV_FREEZE)).filter((r) => r.groups.includes('q4_0'));
  assert.deepEqual(runSeeds(t, [3, 4]), [0]);
  assert.deepEqual(runSeeds(q, [3, 4]), [3, 4]);
});

test('settings: defaults, --quick, flags on top; QAT config of a run', () => {
  const { settings: s, seeds } = resolveRepro(OV_FREEZE, { quick: true, steps: 5, teacher: '/x/t' });
  assert.deepEqual(seeds, [0, 1]);
  const { seeds: _n, ...quick } = OV_FREEZE.quick;
  assert.deepEqual(s, { ...quick, steps: 5, teacher: '/x/t' });
  const c = qatConfig(OV_FREEZE, { ...s, steps: 300 }, { preset: 'q4_0', losses: { pred: 1 }, freeze: 'ov', seed: 4 });
  assert.equal(c.data, 'sotu');
  assert.equal(c.task, '');
  assert.equal(c.quant, 'q4_0');
  assert.equal(c.loss, 'pred=1');
  assert.equal(c.freeze, 'ov');
  assert.equal(c.seed, 4);
  assert.equal(c.steps, 300);
  const e = qatConfig(ATTN_KD, { ...s, steps: 2, teacher: 'teachers/bert-brown-genre' }, { preset: 'twn-a8', losses: { pred: 1, rep: 1, attn_out: 0.5 }, seed: 0 });
  assert.equal(e.task, 'brown-genre');
  assert.equal(e.loss, 'pred=1,rep=1,attn_out=0.5');
  assert.equal(e.warmup, 0, 'warmup at most a tenth of the steps');
  assert.throws(() => resolveRepro(OV_FREEZE, { steps: 0 }), /--steps must be at least 1/);
  assert.throws(() => resolveRepro(OV_FREEZE, { evalTokens: 1 }), /--eval-tokens 1: perplexity needs at least 2 tokens/);
});

test("an encoder teacher's task is the built-in task with its labels; other labels are refused", () => {
  assert.equal(teacherTask('teachers/bert-brown-genre'), 'brown-genre');
  const dir = tmpDir('teacher-task');
  try {
    const cfg = JSON.parse(fs.readFileSync('teachers/bert-brown-genre/config.json', 'utf8'));
    const labelled = (labels: string[]) => {
      cfg.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
      cfg.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    };
    labelled(['swapped', 'original']);
    assert.equal(teacherTask(dir), 'word-order');
    const c = qatConfig(ATTN_KD, { ...resolveRepro(ATTN_KD, { quick: true }).settings, teacher: dir }, { preset: 'twn-a8', losses: { pred: 1 }, seed: 0 });
    assert.equal(c.task, 'word-order');
    labelled(['original', 'swapped']); // the same names in another order: another classifier
    assert.throws(() => teacherTask(dir), /labels \["original","swapped"\] are not those of a built-in task \(brown-genre, word-order\)/);
    labelled(['neg', 'pos']);
    assert.throws(() => teacherTask(dir), /config\.json: the labels \["neg","pos"\].*kdqat finetune --task/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => teacherTask('teachers/llama-npm'), /no id2label, so not a classifier/);
});

test('fraction recovered: (ppl_RTN − ppl_QAT)/(ppl_RTN − ppl_FP) per seed, with a note per quantizer', () => {
  assert.equal(fractionRecovered(10, 14, 11), 0.75);
  assert.equal(fractionRecovered(10, 14, 14), 0);
  assert.equal(fractionRecovered(10, 14, 16), -0.5);
  const res = (run: string, seed: number, ppl: number): RunResult => ({ run, seed, metrics: { ppl }, seconds: { method: 0, eval: 0 }, files: {} });
  const results = new Map<string, RunResult[]>([
    ['teacher', [res('teacher', 0, 10)]],
    ['rtn-w4-channel', [res('rtn-w4-channel', 0, 14)]],
    ['qat-w4-channel', [res('qat-w4-channel', 0, 11), res('qat-w4-channel', 1, 12)]],
    ['rtn-q4_0', [res('rtn-q4_0', 0, 9)]],
    ['qat-q4_0', [res('qat-q4_0', 0, 9.5)]],
  ]);
  const notes = OV_FREEZE.derive!(results, OV_FREEZE.runs(settings(OV_FREEZE)));
  assert.deepEqual(results.get('qat-w4-channel')!.map((r) => r.metrics.recovered), [0.75, 0.5]);
  // mean 62.5 %, sample std of (75, 50) = 17.7 %; 95% CI 62.5 ± t(1)·17.68/√2 = 62.5 ± 12.706·12.5 = 62.5 ± 158.8.
  assert.deepEqual(notes['w4-channel'], [
    "KD-QAT recovers 62.5 ± 17.7 % of RTN's perplexity loss (ppl_RTN − ppl_KDQAT)/(ppl_RTN − ppl_FP), RTN 14.00, FP 10.00, n=2" +
    '; 95% CI of the mean [-96.3, 221.3] % (t, 1 dof)',
  ]);
  assert.match(notes.q4_0[0], /RTN perplexity 9.00 is not above the teacher's 10.00: there is no loss to recover/);
  assert.equal(results.get('qat-q4_0')![0].metrics.recovered, undefined);
  assert.deepEqual(notes['w3-channel'], []);
});
