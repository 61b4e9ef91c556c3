// The run report in a real browser (headless Chromium, test/report/browser.ts): `kdqat demo`
// writes report.html and prints its path; `kdqat report` of that demo and of a `kdqat qat` run
// (with periodic evaluation and a GGUF export) renders with no errors, every figure has drawn
// marks (as many heatmap cells as the logs hold values), and every figure is visible in the
// screenshot. Without Chromium the test fails, saying how to install it.
// KDQAT_REPORT_SHOTS=dir keeps the screenshot and the page for a look.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseHTML } from 'linkedom';
import { BIN, smallTextFile } from '../cli/helpers.js';
import { makeReproFixture, type ReproFixture } from '../cli/repro-fixture.js';
import { htmlPage } from '../../src/report/page.js';
import { dumpDom, findChromium, screenshot } from './browser.js';
import { decodePng, inkOf } from './png.js';

let fx: ReproFixture;
before(() => { fx = makeReproFixture('report'); });
after(() => fx?.cleanup());

function kdqat(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, KDQAT_THREADS: '2' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const doc = (html: string): Document => parseHTML(html).document as unknown as Document;

/** Marks a figure drew: line/area paths with coordinates, rects and cells with an area, dots. */
function marks(fig: Element): { paths: number; rects: number; dots: number } {
  let paths = 0, rects = 0, dots = 0;
  for (const g of fig.querySelectorAll('g[aria-label]')) {
    const kind = g.getAttribute('aria-label');
    if (kind === 'line' || kind === 'area') paths += [...g.querySelectorAll('path')].filter((p) => /\d/.test(p.getAttribute('d') ?? '')).length;
    if (kind === 'rect' || kind === 'cell' || kind === 'bar') {
      rects += [...g.querySelectorAll('rect')].filter((r) => Number(r.getAttribute('width')) > 0 && Number(r.getAttribute('height')) > 0).length;
    }
    if (kind === 'dot') dots += g.querySelectorAll('circle').length;
  }
  return { paths, rects, dots };
}

test('the watcher of the page shell counts script errors and blocked loads in a real browser', () => {
  findChromium();
  const file = path.join(fx.root, 'bad.html');
  fs.writeFileSync(file, htmlPage({ title: 'bad', body: '<img src="http://example.invalid/x.png"><script>notDefined()</script><figure><svg width="10" height="10"></svg></figure>' }));
  const html = doc(dumpDom(file)).documentElement;
  assert.equal(html.getAttribute('data-loaded'), '1');
  // The blocked image counts as a policy violation and, in Chromium, as a failed load too.
  assert.ok(Number(html.getAttribute('data-errors')) >= 2, html.getAttribute('data-error-list') ?? '');
  assert.match(html.getAttribute('data-error-list')!, /blocked: http:\/\/example\.invalid\/x\.png/);
  assert.match(html.getAttribute('data-error-list')!, /notDefined/);
  assert.equal(html.querySelector('figure > svg')!.getAttribute('data-rect')?.split(',').slice(2).join('x'), '10x10');
});

test('without a browser the report test fails and says how to install one', () => {
  const saved = { PATH: process.env.PATH, CHROMIUM: process.env.CHROMIUM };
  try {
    process.env.PATH = path.join(fx.root, 'no-bin');
    delete process.env.CHROMIUM;
    assert.throws(() => findChromium(), /apt-get install -y chromium/);
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.CHROMIUM !== undefined) process.env.CHROMIUM = saved.CHROMIUM;
  }
});

test('demo writes report.html; kdqat report of a demo and a qat run renders in Chromium with every figure drawn and no errors', () => {
  findChromium(); // before the runs: a missing browser fails at once
  const demo = path.join(fx.root, 'demo');
  const d = kdqat('demo', '--quick', '--steps', '6', '--teacher', fx.llama, '--out', demo);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.stdout.match(/^report: (.*)$/m)?.[1], path.join(demo, 'report.html'));
  assert.match(fs.readFileSync(path.join(demo, 'report.html'), 'utf8'), /<td class="l">KD-QAT \+ ov-freeze<\/td>/);

  const qat = path.join(fx.root, 'qat-w4');
  const q = kdqat('qat', '--teacher', fx.llama, '--data', smallTextFile(fx.root), '--quant', 'w4-g32', '--freeze', 'auto', '--freeze-probe-steps', '4', '--steps', '8',
    '--eval-every', '2', '--eval-windows', '2', '--log-every', '1', '--batch', '2', '--seq-len', '16', '--lr', '1e-3', '--save-every', '4', '--out', qat);
  assert.equal(q.code, 0, q.stderr);
  const e = kdqat('export', '--model', path.join(qat, 'student'), '--format', 'gguf', '--out', path.join(qat, 'student.gguf'));
  assert.equal(e.code, 0, e.stderr);

  const page = path.join(fx.root, 'out', 'report.html');
  const r = kdqat('report', demo, qat, '--out', page);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `wrote ${page}`);
  const again = kdqat('report', demo, qat, '--out', page);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /--out .*report\.html: already exists; pass --force to replace it/);
  assert.equal(kdqat('report', demo, qat, '--out', page, '--force').code, 0);
  const source = fs.readFileSync(page, 'utf8');
  assert.doesNotMatch(source, /\s(src|href)="(?!#)/, 'no reference outside the page');

  // The DOM after the page's script ran.
  const dom = doc(dumpDom(page, 1400));
  const root = dom.documentElement;
  assert.equal(root.getAttribute('data-loaded'), '1', 'the load handler ran');
  assert.equal(root.getAttribute('data-errors'), '0', root.getAttribute('data-error-list') ?? '');
  const figs = [...dom.querySelectorAll('figure.plot')];
  const ids = figs.map((f) => f.id);
  // 3 runs (one panel each, one figure): loss; the qat run's 3 evaluation metrics; per signal metric
  // the mean lines and the step heatmap.
  const metrics = ['grad_norm', 'update_ratio', 'cross_rate', 'step_cross_rate', 'sqnr_db', 'act_norm', 'signal_norm'];
  assert.deepEqual(ids.sort(), ['fig-loss-0', 'fig-eval-valid_ppl', 'fig-eval-valid_kl', 'fig-eval-valid_nll',
    ...metrics.flatMap((m) => [`fig-signal-${m}-0`, `fig-signal-${m}-steps-0`])].sort());
  for (const f of figs) {
    const [, , w, h] = (f.querySelector('svg')!.getAttribute('data-rect') ?? '').split(',').map(Number);
    assert.ok(w > 100 && h > 100, `${f.id}: laid out at ${w}×${h}`);
    const m = marks(f);
    assert.ok(m.paths + m.rects + m.dots > 0, `${f.id}: no drawn marks`);
    if (/^fig-(loss|eval|signal-\w+-0$)/.test(f.id) && !f.id.includes('steps')) assert.ok(m.paths > 0, `${f.id}: lines`);
  }
  // The grad-norm heatmap has one cell per value the logs hold (frozen v/o of ov-freeze: none).
  const logs = [path.join(demo, 'runs', 'qat-w4-channel-lsq', '0', 'qat_log.jsonl'), path.join(demo, 'runs', 'qat-ov-w4-channel-lsq', '0', 'qat_log.jsonl'), path.join(qat, 'qat_log.jsonl')];
  let values = 0;
  for (const f of logs) {
    for (const line of fs.readFileSync(f, 'utf8').trim().split('\n')) {
      const g = JSON.parse(line).signal?.grad_norm as Record<string, (number | null)[]> | undefined;
      for (const vs of Object.values(g ?? {})) values += vs.filter((v) => v !== null && v > 0).length;
    }
  }
  assert.equal(marks(dom.getElementById('fig-signal-grad_norm-steps-0')!).rects, values);
  // --freeze auto: the probe's evidence as five layer × kind tables (2 layers × 7 kinds), its
  // choice in words, the frozen kinds marked; the tables are laid out (the browser gave them size).
  const rec = JSON.parse(fs.readFileSync(path.join(qat, 'freeze_auto.json'), 'utf8'));
  const fa = dom.getElementById('freeze-auto')!;
  assert.ok(fa, 'the freeze-auto section');
  const tables = [...fa.querySelectorAll('table.fauto')];
  assert.equal(tables.length, 5);
  for (const t of tables) {
    assert.equal(t.querySelectorAll('td').length, 2 * 7, t.id);
    assert.deepEqual([...t.querySelectorAll('th.frozen')].map((h) => h.textContent!.replace(' ❄', '')), rec.kinds.filter((k: { frozen: boolean }) => k.frozen).map((k: { kind: string }) => k.kind));
  }
  assert.match(fa.textContent ?? '', rec.patterns.length ? new RegExp(`Chosen: ${rec.patterns.join(', ').replace(/\./g, '\\.')}\\.`) : /Chosen: nothing\./);
  // The qat run's row of the comparison: its final perplexity from summary.json.
  const summary = JSON.parse(fs.readFileSync(path.join(qat, 'summary.json'), 'utf8'));
  const rows = [...dom.querySelectorAll('#comparison table.cmp tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
  assert.ok(rows.some((c) => c[0] === 'KD-QAT' && c[1] === summary.final.valid_ppl.toFixed(2)), JSON.stringify(rows));
  // The GGUF export, with its size in bytes; checkpoints are not exports.
  const files = [...dom.querySelectorAll('#exports table.files tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
  assert.ok(files.some((c) => c[0] === 'student.gguf' && c[4] === String(fs.statSync(path.join(qat, 'student.gguf')).size)), JSON.stringify(files));
  assert.ok(!files.some((c) => c[0]?.startsWith('checkpoint')));

  // The screenshot: the whole page (up to 16000 px), every figure's box visibly drawn.
  const height = Math.min(16000, Number(root.getAttribute('data-height')));
  assert.ok(height > 2000, `page height ${height}`);
  const shot = screenshot(page, 1400, height);
  assert.deepEqual(shot.console, [], 'the page logged nothing to the console');
  const img = decodePng(shot.png, 'screenshot');
  assert.deepEqual([img.width, img.height], [1400, height]);
  if (process.env.KDQAT_REPORT_SHOTS) {
    fs.mkdirSync(process.env.KDQAT_REPORT_SHOTS, { recursive: true });
    fs.writeFileSync(path.join(process.env.KDQAT_REPORT_SHOTS, 'report.png'), shot.png);
    fs.copyFileSync(page, path.join(process.env.KDQAT_REPORT_SHOTS, 'report.html'));
  }
  assert.ok(inkOf(img, { x: 0, y: 0, w: img.width, h: img.height }).colours > 200, 'a page of figures has many colours');
  for (const f of figs) {
    const [x, y, w, h] = f.querySelector('svg')!.getAttribute('data-rect')!.split(',').map(Number);
    if (y + h > height) continue; // below the screenshot
    const ink = inkOf(img, { x, y, w, h });
    // Text, axes and marks: a drawn figure inks a few percent of its box in several colours.
    assert.ok(ink.ink > 0.02 * ink.pixels && ink.colours >= 8, `${f.id}: ${ink.ink} of ${ink.pixels} pixels inked, ${ink.colours} colours`);
  }
});
