// The run report without a browser (report-browser.test.ts renders it): what each section takes
// from the run directories — mean ± sample std per seed set, the best row, one heatmap cell per
// logged value, the files and their sizes — the refusals (existing --out, unknown directories,
// unfinished runs), the evaluation lines of the log, and the test's PNG decoder against resvg.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHTML } from 'linkedom';
import { reportHtml, writeRunReport } from '../../src/report/report.js';
import { readSource } from '../../src/report/runs.js';
import { parseSignalLog } from '../../src/analysis/signal-log.js';
import { svgToPng } from '../../src/analysis/plots.js';
import { MAX_COLUMNS, stepHeatmapFigure } from '../../src/analysis/plots-steps.js';
import { kdqat, tmpDir } from '../cli/helpers.js';
import { decodePng, inkOf } from './png.js';
import { chooseFreeze, type FreezeAutoRecord, type ModuleSignals } from '../../src/train/freeze-auto.js';

let root: string;
before(() => { root = tmpDir('report-unit'); });
after(() => fs.rmSync(root, { recursive: true, force: true }));

const KINDS = ['q', 'k', 'v', 'o'];

/** A log of `steps` lines over 2 layers; frozen kinds have null gradients and 0 updates. */
function logText(steps: number, frozen: string[] = [], evalEvery = 0): string {
  const lines: string[] = [];
  for (let s = 1; s <= steps; s++) {
    const per = (f: (k: string, l: number) => number | null) => Object.fromEntries(KINDS.map((k) => [k, [0, 1].map((l) => f(k, l))]));
    const signal = {
      grad_norm: per((k, l) => (frozen.includes(k) ? null : 0.1 * (s + l + 1))),
      update_ratio: per((k) => (frozen.includes(k) ? 0 : 1e-3 / s)),
      sqnr_db: per((_, l) => 20 + l),
    };
    lines.push(JSON.stringify({ step: s, lr: 1e-3, loss: { total: 1 / s, pred: 1 / s }, signal, ...(evalEvery && s % evalEvery === 0 ? { valid_ppl: 100 - s, valid_kl: 0.5 / s } : {}) }));
  }
  return lines.join('\n') + '\n';
}

const ppl = { key: 'ppl', label: 'valid ppl', digits: 2, better: 'lower' };
const acc = { key: 'acc', label: 'acc %', digits: 1, better: 'higher', scale: 100 };
const vals = (xs: number[]) => ({ values: xs.map((value, seed) => ({ seed, value })) });

/** A reproduction directory as kdqat reproduce writes it (results.json, runs/<run>/<seed>/). */
function reproDir(name: string): string {
  const dir = path.join(root, name);
  const runs = [
    { run: 'teacher', seed: 0, files: {} },
    { run: 'rtn-w4', seed: 0, files: { student: 'runs/rtn-w4/0/student' } },
    ...[0, 1, 2].map((seed) => ({ run: 'qat-w4', seed, files: { log: `runs/qat-w4/${seed}/qat_log.jsonl` } })),
    ...[0, 1, 2].map((seed) => ({ run: 'qat-ov-w4', seed, files: { log: `runs/qat-ov-w4/${seed}/qat_log.jsonl` } })),
  ];
  for (const r of runs) {
    const d = path.join(dir, 'runs', r.run, String(r.seed));
    fs.mkdirSync(d, { recursive: true });
    if ('log' in r.files) fs.writeFileSync(path.join(dir, r.files.log!), logText(4, r.run.includes('-ov-') ? ['v', 'o'] : []));
  }
  fs.mkdirSync(path.join(dir, 'runs', 'rtn-w4', '0', 'student'));
  fs.writeFileSync(path.join(dir, 'runs', 'rtn-w4', '0', 'student', 'model.safetensors'), Buffer.alloc(1000));
  fs.writeFileSync(path.join(dir, 'runs', 'rtn-w4', '0', 'student', 'model.quantized.safetensors'), Buffer.alloc(300));
  fs.mkdirSync(path.join(dir, 'runs', 'qat-w4', '0', 'checkpoint'));
  fs.writeFileSync(path.join(dir, 'runs', 'qat-w4', '0', 'checkpoint', 'model.safetensors'), Buffer.alloc(50)); // not an export
  fs.writeFileSync(path.join(dir, 'runs', 'qat-w4', '0', 'student.gguf'), Buffer.alloc(123));
  fs.writeFileSync(path.join(dir, 'reproduce.json'), '{}');
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify({
    experiment: 'ov-freeze', description: 'test reproduction', command: ['kdqat', 'reproduce', 'ov-freeze', '--out', 'x y'],
    settings: { teacher: path.join(root, 'no-teacher'), steps: 4 }, seeds: [0, 1, 2],
    tables: [{
      title: 'ov-freeze: 4-bit (w4)', metrics: [ppl, acc], notes: ['a note'],
      rows: [
        { key: 'teacher', label: 'FP teacher', metrics: { ppl: vals([10]), acc: vals([0.9]) } },
        { key: 'rtn-w4', label: 'RTN', metrics: { ppl: vals([20]), acc: vals([0.4]) } },
        { key: 'qat-w4', label: 'KD-QAT', metrics: { ppl: vals([10, 12, 14]), acc: vals([0.5, 0.6, 0.7]) } },
        { key: 'qat-ov-w4', label: 'KD-QAT + ov-freeze', metrics: { ppl: vals([11, 11.5, 12]), acc: vals([0.6, 0.6, 0.6]) } },
      ],
    }],
    runs, seconds: { runs_total: 12.5 }, written: '2026-12-03T00:00:00Z',
  }));
  return dir;
}

const doc = (html: string): Document => parseHTML(html).document as unknown as Document;
const cells = (d: Document, sel: string): string[][] => [...d.querySelectorAll(`${sel} tr`)].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''));

test('a reproduction: mean ± sample std per row, the best quantized row in bold, a heatmap cell per logged value, the files', () => {
  const dir = reproDir('repro');
  const html = reportHtml([readSource(dir)], { generated: new Date(0) });
  const d = doc(html);
  // KD-QAT ppl 10, 12, 14: mean 12, sample std sqrt((4 + 0 + 4) / 2) = 2; acc 50/60/70 %: 60 ± 10.
  const rows = cells(d, '#comparison table.cmp');
  assert.deepEqual(rows.find((r) => r[0] === 'KD-QAT'), ['KD-QAT', '12.00 ± 2.00', '60.0 ± 10.0', '3']);
  assert.deepEqual(rows.find((r) => r[0] === 'KD-QAT + ov-freeze'), ['KD-QAT + ov-freeze', '11.50 ± 0.50', '60.0 ± 0.0', '3']);
  assert.deepEqual(rows.find((r) => r[0] === 'RTN'), ['RTN', '20.00', '40.0', '1']);
  // Best quantized: ppl 11.50 (ov-freeze); acc ties at 60.0 between the two KD-QAT rows (both bold, RTN not).
  const bold = [...d.querySelectorAll('#comparison td b')].map((b) => b.textContent);
  assert.deepEqual(bold, ['60.0 ± 10.0', '11.50 ± 0.50', '60.0 ± 0.0']);
  assert.match(html, /<p class="note">a note<\/p>/);
  assert.match(d.querySelector('td[title]')?.getAttribute('title') ?? '', /^seed 0: /);
  // The command line as it would be typed again.
  assert.equal(d.querySelector('pre.cmd code')?.textContent, "kdqat reproduce ov-freeze --out 'x y'");
  // One figure of two panels per plot: the first seed of each run.
  const heat = d.getElementById('fig-signal-grad_norm-steps-0')!;
  const drawn = [...heat.querySelectorAll('g[aria-label="rect"] rect')];
  // 4 steps × 2 layers × (4 kinds + 2 unfrozen kinds): v and o of ov-freeze have no gradient.
  assert.equal(drawn.length, 4 * 2 * (4 + 2));
  assert.match(heat.textContent ?? '', /not measured \(e\.g\. frozen\)/);
  // Update ratios of frozen weights are 0: drawn grey on the log scale.
  const grey = d.getElementById('fig-signal-update_ratio-steps-0')!.querySelectorAll('g[aria-label="rect"] g[fill="#d9d9d9"] rect');
  assert.equal(grey.length, 4 * 2 * 2);
  assert.ok(d.getElementById('fig-loss-0') && d.getElementById('fig-signal-sqnr_db-0'));
  assert.match(d.getElementById('evaluation')!.textContent ?? '', /No periodic evaluations/);
  // Files: sizes as on disk, checkpoints left out; no teacher directory, no reference size.
  const files = cells(d, '#exports table.files');
  assert.deepEqual(files.slice(1).map((r) => [r[0], r[4]]), [
    [path.join('runs', 'qat-w4', '0', 'student.gguf'), '123'],
    [path.join('runs', 'rtn-w4', '0', 'student', 'model.quantized.safetensors'), '300'],
    [path.join('runs', 'rtn-w4', '0', 'student', 'model.safetensors'), '1000'],
  ]);
  // Self-contained: one script (the watcher), a policy that forbids loads, only in-page links.
  assert.equal((html.match(/<script>/g) ?? []).length, 1);
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
  assert.doesNotMatch(html, /\s(src|href)="(?!#)/);
});

test('several sources: run labels carry the source; a qat run directory gives teacher / RTN / KD-QAT rows and evaluation curves', () => {
  const a = reproDir('repro-a');
  const q = path.join(root, 'qat-run');
  fs.mkdirSync(q);
  fs.writeFileSync(path.join(q, 'qat_log.jsonl'), logText(6, [], 2));
  fs.writeFileSync(path.join(q, 'summary.json'), JSON.stringify({
    arch: 'llama', steps: 6, metric: 'valid_ppl', teacher: { valid_ppl: 50 }, rtn: { valid_ppl: 70 }, final: { valid_ppl: 55.5 }, best: null,
    frozen: [], config: { teacher: '/nowhere', quant: 'w4-g32', loss: 'pred=1', freeze: '', seed: 3 }, command: ['kdqat', 'qat'],
  }));
  const d = doc(reportHtml([readSource(a), readSource(q)]));
  assert.deepEqual(cells(d, '#comparison table.cmp').slice(-3), [['FP teacher', '50.00', '1'], ['RTN', '70.00', '1'], ['KD-QAT', '55.50', '1']]);
  const panels = [...d.getElementById('fig-loss-0')!.querySelectorAll('text')].map((t) => t.textContent);
  for (const p of ['repro-a: KD-QAT', 'repro-a: KD-QAT + ov-freeze', 'qat-run']) assert.ok(panels.includes(p), `${p} in ${panels}`);
  // Eval lines at steps 2, 4, 6: one dot each on each evaluation figure.
  assert.equal(d.getElementById('fig-eval-valid_ppl')!.querySelectorAll('g[aria-label="dot"] circle').length, 3);
  assert.equal(d.getElementById('fig-eval-valid_kl')!.querySelectorAll('g[aria-label="dot"] circle').length, 3);
});

test('a long run: the step heatmap averages consecutive logged steps into at most MAX_COLUMNS columns', () => {
  // 200 logged steps, grad_norm 1 on odd steps and 3 on even ones: bins of ceil(200 / 80) = 3.
  const entries = Array.from({ length: 200 }, (_, i) => ({
    step: i + 1, lr: null, loss: {}, eval: {}, signal: { grad_norm: Object.fromEntries(KINDS.map((k) => [k, [(i + 1) % 2 ? 1 : 3, (i + 1) % 2 ? 1 : 3]])) },
  }));
  const fig = stepHeatmapFigure([{ label: 'long', file: 'x', entries }], 'grad_norm')!;
  const d = doc(`<figure>${fig.svg}</figure>`);
  const rects = [...d.querySelectorAll('g[aria-label="rect"] rect')];
  const bin = Math.ceil(200 / MAX_COLUMNS), columns = Math.ceil(200 / bin);
  assert.equal(rects.length, columns * KINDS.length * 2);
  const titles = rects.map((r) => r.querySelector('title')?.textContent ?? '');
  assert.ok(titles.includes('q layer 0, step 3: 1.67'), 'the first bin: (1 + 3 + 1) / 3');
  assert.ok(titles.includes('q layer 1, step 200: 2'), 'the last bin: steps 199 and 200, (1 + 3) / 2');
  assert.match(fig.svg, /mean of every 3 logged steps/);
});

test('the log reader keeps the evaluation metrics and names a bad one', () => {
  const [e] = parseSignalLog('{"step": 4, "loss": {"total": 1}, "valid_ppl": 12.5, "tokens_per_s": 9}\n', 'x.jsonl');
  assert.deepEqual(e.eval, { valid_ppl: 12.5 });
  assert.throws(() => parseSignalLog('{"step": 4, "valid_kl": "high"}\n', 'x.jsonl'), /x\.jsonl:1: "valid_kl" must be a number, got "high"/);
});

test('writing: refuses an existing --out without --force (untouched), replaces with it, leaves no temp file; bad directories are named', async () => {
  const dir = reproDir('repro-w');
  const out = path.join(root, 'pages', 'sub', 'r.html');
  assert.equal(writeRunReport([dir], out), out);
  fs.writeFileSync(out, 'mine');
  assert.throws(() => writeRunReport([dir], out), /--out .*r\.html: already exists; pass --force to replace it/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'mine');
  writeRunReport([dir], out, { force: true });
  assert.match(fs.readFileSync(out, 'utf8'), /^<!DOCTYPE html>/);
  assert.deepEqual(fs.readdirSync(path.dirname(out)), ['r.html']);
  assert.throws(() => writeRunReport([dir], path.dirname(out)), /is a directory; give a file name such as/);

  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  assert.throws(() => readSource(empty), /empty: not a kdqat run directory: expected reproduce\.json and results\.json .* or summary\.json and qat_log\.jsonl/);
  assert.throws(() => readSource(path.join(root, 'nope')), /nope: no such directory/);
  const half = path.join(root, 'half');
  fs.mkdirSync(half);
  fs.writeFileSync(path.join(half, 'qat_log.jsonl'), logText(1));
  assert.throws(() => readSource(half), /has qat_log\.jsonl but no summary\.json: .*kdqat qat --resume/);
  const broken = reproDir('repro-broken');
  fs.rmSync(path.join(broken, 'runs', 'qat-w4', '1', 'qat_log.jsonl'));
  assert.throws(() => readSource(broken), /results\.json: run qat-w4 seed 1 names its log runs\/qat-w4\/1\/qat_log\.jsonl, which is missing/);
  fs.writeFileSync(path.join(broken, 'results.json'), '{"experiment": 1}');
  assert.throws(() => readSource(broken), /results\.json: not a kdqat reproduce results\.json/);

  // The command: usage errors from commander (status 2); a bad directory is a run-time error naming it (1).
  const none = await kdqat('report', '--out', out);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /missing required argument 'run-dir'/);
  const bad = await kdqat('report', empty, '--out', path.join(root, 'x.html'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /kdqat: .*empty: not a kdqat run directory/);
  assert.ok(!fs.existsSync(path.join(root, 'x.html')));
});

/** A --freeze auto record over 2 layers × KINDS, by the rule itself: v stands out in both layers. */
function autoRecord(seed: number): FreezeAutoRecord {
  const signals: ModuleSignals[] = [0, 1].flatMap((layer) => KINDS.map((kind, i) => ({
    name: `model.layers.${layer}.self_attn.${kind}_proj.weight`, layer, kind,
    grad_rel: kind === 'v' ? 0.5 : 0.01 * (i + 1 + seed), update_ratio: 1e-3 * (layer + 1), cross_rate: kind === 'k' ? null : 0.01 * (i + 1),
    dhat_ms: 1e-4, hess_mean: 0.1 * (i + 1), hess_se: 0.01,
  })));
  return { ...chooseFreeze(signals, 2), probe: { steps: 6, vectors: 8, seed: 77, batch: 4, seconds: 1.5, student_passes: 22, teacher_passes: 6 } };
}

test('--freeze auto: the section shows the rule, the choice per seed, the probe cost and layer × kind heatmaps with the frozen kinds marked', () => {
  // A qat run directory with freeze_auto.json.
  const q = path.join(root, 'qat-auto');
  fs.mkdirSync(q);
  fs.writeFileSync(path.join(q, 'qat_log.jsonl'), logText(2));
  const rec = autoRecord(0);
  assert.deepEqual(rec.patterns, ['self_attn.v_proj']);
  fs.writeFileSync(path.join(q, 'freeze_auto.json'), JSON.stringify(rec));
  fs.writeFileSync(path.join(q, 'summary.json'), JSON.stringify({
    arch: 'llama', steps: 2, metric: 'valid_ppl', teacher: {}, rtn: {}, final: {}, best: null, frozen: [],
    config: { teacher: '/nowhere', quant: 'w4-channel', loss: 'pred=1', freeze: 'self_attn.v_proj', freezeAuto: 'auto', seed: 0 }, command: ['kdqat', 'qat'],
  }));
  const d = doc(reportHtml([readSource(q)]));
  const sec = d.getElementById('freeze-auto')!;
  assert.ok(sec, 'the section is there');
  assert.match(sec.textContent ?? '', /Chosen: self_attn\.v_proj\./);
  assert.match(sec.textContent ?? '', /Rule \(R = 2\): a module is flagged when/);
  assert.match(sec.textContent ?? '', /Probe: 6 KD-QAT steps .* 22 student forward\+backward and 6 teacher forward passes, 1\.5 s/);
  const tables = [...sec.querySelectorAll('table.fauto')];
  assert.deepEqual(tables.map((t) => t.id), ['grad_rel', 'update_ratio', 'cross_rate', 'hess_mean', 'score'].map((k) => `fauto-0-0-${k}`));
  for (const t of tables) {
    // One cell per module: 2 layers × 4 kinds; the frozen kind's header marked.
    assert.equal(t.querySelectorAll('td').length, 2 * KINDS.length, t.id);
    assert.deepEqual([...t.querySelectorAll('th.frozen')].map((h) => h.textContent), ['v ❄'], t.id);
  }
  // Values as measured (— where not measured), and bold exactly where the rule flagged.
  const grid = (id: string): string[][] => [...d.getElementById(id)!.querySelectorAll('tr')].slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''));
  assert.deepEqual(grid('fauto-0-0-grad_rel')[0], ['0.0100', '0.0200', '0.500', '0.0400']);
  assert.deepEqual(grid('fauto-0-0-cross_rate').map((r) => r[1]), ['—', '—']);
  const bold = [...d.getElementById('fauto-0-0-score')!.querySelectorAll('td b')].length;
  assert.equal(bold, rec.modules.filter((m) => m.flagged).length);
  assert.ok(bold > 0);
  // A reproduction: every seed's choice, the first seed's evidence; no record, no section.
  const r = reproDir('repro-auto');
  const j = JSON.parse(fs.readFileSync(path.join(r, 'results.json'), 'utf8'));
  for (const seed of [1, 0]) {
    const f = `runs/qat-auto-w4/${seed}/freeze_auto.json`;
    fs.mkdirSync(path.join(r, path.dirname(f)), { recursive: true });
    const x = autoRecord(seed);
    fs.writeFileSync(path.join(r, f), JSON.stringify(seed === 1 ? { ...x, patterns: [] } : x));
    j.runs.push({ run: 'qat-auto-w4', seed, files: { freeze_auto: f } });
  }
  fs.writeFileSync(path.join(r, 'results.json'), JSON.stringify(j));
  const dr = doc(reportHtml([readSource(r)]));
  assert.match(dr.getElementById('freeze-auto')!.textContent ?? '', /Chosen per seed: seed 0: self_attn\.v_proj; seed 1: nothing\. Evidence below: seed 0\./);
  assert.equal(doc(reportHtml([readSource(reproDir('repro-plain'))])).getElementById('freeze-auto'), null);
});

test('the PNG decoder reads what resvg encodes: a crisp 20×10 red rectangle on white', () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="white"/>' +
    '<rect x="10" y="5" width="20" height="10" fill="#ff0000" shape-rendering="crispEdges"/></svg>';
  const img = decodePng(svgToPng(svg, 1), 'resvg');
  assert.deepEqual([img.width, img.height], [40, 30]);
  const at = (x: number, y: number) => [...img.data.subarray((y * 40 + x) * img.channels, (y * 40 + x) * img.channels + 3)];
  assert.deepEqual(at(15, 10), [255, 0, 0]);
  assert.deepEqual(at(2, 2), [255, 255, 255]);
  assert.deepEqual(inkOf(img, { x: 0, y: 0, w: 40, h: 30 }), { ink: 200, pixels: 1200, colours: 2 });
  assert.throws(() => decodePng(new Uint8Array([1, 2, 3])), /not a PNG/);
});
