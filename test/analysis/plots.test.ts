// `kdqat plot` on small synthetic logs: each figure is well-formed SVG (parsed by resvg's strict
// XML parser) with the series, run labels and values it should show; PNGs have the PNG
// signature and twice the SVG's size; malformed logs fail naming file and line; nothing is
// overwritten without --force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseHTML } from 'linkedom';
import { Resvg } from '@resvg/resvg-js';
import { kdqat, tmpDir } from '../cli/helpers.js';
import { parseSignalLog } from '../../src/analysis/signal-log.js';

const KINDS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

/** A two-layer run: grad norms k·(step+1)·(layer+1)/100; v and o frozen when `ov`. */
function syntheticLog(dir: string, name: string, ov: boolean): string {
  const lines: string[] = [];
  for (const step of [0, 10, 20]) {
    const byKind = (f: (k: number, l: number) => number | null): Record<string, (number | null)[]> =>
      Object.fromEntries(KINDS.map((kind, k) => [kind, [0, 1].map((l) => f(k, l))]));
    const frozen = (kind: string): boolean => ov && (kind === 'v' || kind === 'o');
    lines.push(JSON.stringify({
      step, lr: 1e-3, loss: { total: 3 - step / 10, pred: 2 - step / 20, attn_map: 0.5 },
      signal: {
        grad_norm: byKind((k, l) => (frozen(KINDS[k]) ? null : ((k + 1) * (step + 1) * (l + 1)) / 100)),
        update_ratio: byKind((k) => (frozen(KINDS[k]) ? 0 : 1e-3 * (k + 1))),
        sqnr_db: byKind((k, l) => 20 + k + l + step / 10),
      },
    }));
  }
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function svgDoc(file: string): Document {
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, `${file}: a standalone SVG document`);
  new Resvg(text); // strict XML parse: throws on malformed markup
  return parseHTML(text).document as unknown as Document;
}

function pngSize(file: string): [number, number] {
  const b = fs.readFileSync(file);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file}: PNG signature`);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

test('kdqat plot: two runs side by side, one line per kind, heatmap of time means, loss terms', async () => {
  const dir = tmpDir('plot');
  const a = syntheticLog(dir, 'kdqat/qat_log.jsonl', false);
  const b = syntheticLog(dir, 'kdqat-ov/qat_log.jsonl', true);
  const out = path.join(dir, 'fig');
  const r = await kdqat('plot', '--log', a, '--log', b, '--label', 'KD-QAT', '--label', 'KD-QAT + ov-freeze', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const stems = ['loss', 'signal-grad_norm', 'signal-grad_norm-layers', 'signal-update_ratio', 'signal-update_ratio-layers',
    'signal-sqnr_db', 'signal-sqnr_db-layers'];
  assert.deepEqual(fs.readdirSync(out).sort(), stems.flatMap((s) => [`${s}.png`, `${s}.svg`]).sort());
  for (const s of stems) {
    const doc = svgDoc(path.join(out, `${s}.svg`));
    const svg = doc.querySelector('svg')!;
    const [w, h] = pngSize(path.join(out, `${s}.png`));
    assert.deepEqual([w, h], [2 * Number(svg.getAttribute('width')), 2 * Number(svg.getAttribute('height'))], `${s}: PNG at 2×`);
    const text = [...doc.querySelectorAll('text')].map((t) => t.textContent);
    assert.ok(text.includes('KD-QAT') && text.includes('KD-QAT + ov-freeze'), `${s}: both run labels`);
  }

  // Mean lines: a legend entry and a titled path per kind and run; frozen kinds have no grad.
  const g = svgDoc(path.join(out, 'signal-grad_norm.svg'));
  const legend = [...g.querySelectorAll('text')].map((t) => t.textContent);
  for (const k of KINDS) assert.ok(legend.includes(k), `legend has ${k}`);
  const lines = [...g.querySelectorAll('g[aria-label="line"] path')].map((p) => p.querySelector('title')?.textContent);
  assert.deepEqual(lines, [...KINDS, ...KINDS.filter((k) => k !== 'v' && k !== 'o')]);
  assert.match(legend.join('|'), /Weight-gradient norm/);
  assert.match(legend.join('|'), /log scale/);
  // update_ratio: the frozen zeros cannot sit on a log axis and are said to be left out.
  const u = svgDoc(path.join(out, 'signal-update_ratio.svg'));
  assert.match([...u.querySelectorAll('text')].map((t) => t.textContent).join('|'), /6 zero point\(s\) not drawn/);

  // Heatmap: time mean of grad_norm for kind q (k = 0), layer 1 = mean of (1, 11, 21)·2/100 = 0.22;
  // for down (k = 6), layer 0: mean of 7·(1, 11, 21)/100 = 0.77; frozen cells absent.
  const heat = svgDoc(path.join(out, 'signal-grad_norm-layers.svg'));
  const cells = [...heat.querySelectorAll('g[aria-label="text"] text')].map((t) => t.textContent);
  assert.equal(cells.length, 7 * 2 + 5 * 2); // kinds × layers per run
  assert.ok(cells.includes('0.22') && cells.includes('0.77'), cells.join(' '));
  // Loss: one line per term per run, in METHODS.md order after the total.
  const loss = svgDoc(path.join(out, 'loss.svg'));
  const terms = [...loss.querySelectorAll('g[aria-label="line"] path')].map((p) => p.querySelector('title')?.textContent);
  assert.deepEqual(terms, ['total', 'pred', 'attn_map', 'total', 'pred', 'attn_map']);

  // --heatmap last: the last step's values (q, layer 1: 21·2/100 = 0.42).
  const out2 = path.join(dir, 'fig-last');
  assert.equal((await kdqat('plot', '--log', a, '--out', out2, '--heatmap', 'last', '--no-png')).code, 0);
  const last = svgDoc(path.join(out2, 'signal-grad_norm-layers.svg'));
  const lastCells = [...last.querySelectorAll('g[aria-label="text"] text')].map((t) => t.textContent);
  assert.ok(lastCells.includes('0.42'), lastCells.join(' '));
  assert.ok(fs.readdirSync(out2).every((f) => f.endsWith('.svg')));
  // Default label: the run directory's name.
  assert.ok([...last.querySelectorAll('text')].some((t) => t.textContent === 'kdqat'));
});

test('kdqat plot: the train_log.jsonl of pretrain gives the learning curves (loss as one number, validation perplexity)', async () => {
  const dir = tmpDir('plot-pretrain');
  const file = path.join(dir, 'llama', 'train_log.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // What `kdqat pretrain` logs: loss as a number, periodic validation on some lines.
  const lines = [10, 20, 30, 40].map((step) => JSON.stringify({
    step, loss: 8 - step / 10, lr: 1e-3, tokens_per_s: 2000, grad_norm: 0.5,
    ...(step % 20 === 0 ? { valid_nll: 6 - step / 20, valid_ppl: Math.exp(6 - step / 20) } : {}),
  }));
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const entries = parseSignalLog(fs.readFileSync(file, 'utf8'), file);
  assert.deepEqual(entries.map((e) => e.loss), [{ total: 7 }, { total: 6 }, { total: 5 }, { total: 4 }]);
  assert.deepEqual(entries.map((e) => e.eval.valid_nll ?? null), [null, 5, null, 4]);
  const out = path.join(dir, 'fig');
  const r = await kdqat('plot', '--log', file, '--out', out, '--no-png');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(out).sort(), ['eval-valid_nll.svg', 'eval-valid_ppl.svg', 'loss.svg']);
  const ppl = svgDoc(path.join(out, 'eval-valid_ppl.svg'));
  const dots = [...ppl.querySelectorAll('g[aria-label="dot"] title')].map((t) => t.textContent);
  assert.equal(dots.length, 2);
  assert.equal(dots[0], "llama, step 20: 148"); // e^5 = 148.41 at fmt()'s 3 significant digits; the label is the run directory's name
  const loss = svgDoc(path.join(out, 'loss.svg'));
  assert.deepEqual([...loss.querySelectorAll('g[aria-label="line"] path')].map((p) => p.querySelector('title')?.textContent), ['total']);
  assert.throws(() => parseSignalLog('{"step": 1, "loss": "x"}', 'bad.jsonl'), /bad\.jsonl:1: "loss" must be a number or an object of loss terms/);
});

test('kdqat plot refuses to overwrite figures without --force', async () => {
  const dir = tmpDir('plot-force');
  const a = syntheticLog(dir, 'run.jsonl', false);
  const out = path.join(dir, 'fig');
  assert.equal((await kdqat('plot', '--log', a, '--out', out)).code, 0);
  const file = path.join(out, 'loss.svg');
  fs.writeFileSync(file, 'mine');
  const r = await kdqat('plot', '--log', a, '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already exist.*--force/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'mine');
  assert.equal((await kdqat('plot', '--log', a, '--out', out, '--force')).code, 0);
  assert.match(fs.readFileSync(file, 'utf8'), /^<svg/);
  assert.ok(!fs.readdirSync(out).some((f) => f.endsWith('.tmp')), 'no temporary files left');
});

test('malformed logs fail naming the file and line', async () => {
  const dir = tmpDir('plot-bad');
  const good = fs.readFileSync(syntheticLog(dir, 'good.jsonl', false), 'utf8').trim().split('\n');
  const cases: [string, RegExp][] = [
    [`${good[0]}\n${good[1]}\n{"step": 20, "loss": {"total": 1}`, /bad\.jsonl:3: not valid JSON/],
    [`${good[0]}\n\n{"lr": 1}`, /bad\.jsonl:3: "step" must be a number/],
    ['{"step": 1, "loss": {"total": "x"}}', /bad\.jsonl:1: loss\.total must be a number/],
    ['{"step": 1, "signal": {"grad_norm": {"q": [1, "a"]}}}', /bad\.jsonl:1: signal\.grad_norm\.q must be an array of numbers/],
    ['[1, 2]', /bad\.jsonl:1: expected a JSON object/],
    ['\n\n', /bad\.jsonl: no records/],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parseSignalLog(text, 'bad.jsonl'), want);
    const file = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(file, text);
    const r = await kdqat('plot', '--log', file, '--out', path.join(dir, 'fig'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${want.source}`));
    assert.ok(!fs.existsSync(path.join(dir, 'fig')), 'nothing written');
  }
  const r = await kdqat('plot', '--log', path.join(dir, 'good.jsonl'), '--label', 'A', '--label', 'B', '--out', path.join(dir, 'fig'));
  assert.match(r.stderr, /--label given 2 time\(s\) for 1 --log file/);
  const missing = await kdqat('plot', '--log', path.join(dir, 'nope.jsonl'), '--out', path.join(dir, 'fig'));
  assert.match(missing.stderr, /nope\.jsonl: file not found/);
});
