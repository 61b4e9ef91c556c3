import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCell, formatMarkdown, formatText, summarize, tableCells, tableJson, type Table } from '../../src/report/table.js';

test('summarize: mean and sample std (n - 1), min, max', () => {
  const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(s.mean, 5);
  // Σ(x - 5)² = 32; sample variance 32/7.
  assert.ok(Math.abs(s.std! - Math.sqrt(32 / 7)) < 1e-15);
  assert.deepEqual([s.n, s.min, s.max], [8, 2, 9]);
  const two = summarize([1, 3]);
  assert.equal(two.std, Math.SQRT2);
});

test('summarize: one value has no spread; empty and non-finite lists are errors', () => {
  assert.deepEqual(summarize([3.5]), { mean: 3.5, std: null, n: 1, min: 3.5, max: 3.5 });
  assert.throws(() => summarize([]), /no values/);
  assert.throws(() => summarize([1, NaN]), /non-finite value NaN/);
  assert.throws(() => summarize([Infinity]), /non-finite/);
});

test('summarize: stable for large offsets (two-pass)', () => {
  const s = summarize([1e9 + 1, 1e9 + 2, 1e9 + 3]);
  assert.equal(s.std, 1);
});

const table: Table = {
  title: 'demo',
  metrics: [
    { key: 'ppl', label: 'valid ppl', digits: 2, better: 'lower' },
    { key: 'acc', label: 'acc %', digits: 1, better: 'higher', scale: 100 },
  ],
  rows: [
    { key: 'fp', label: 'FP teacher', values: { ppl: [{ seed: 0, value: 85.0712 }], acc: [{ seed: 0, value: 0.25 }] } },
    {
      key: 'qat', label: 'KD-QAT | w4', values: {
        ppl: [{ seed: 0, value: 90 }, { seed: 1, value: 92 }, { seed: 2, value: 94 }],
        acc: [{ seed: 0, value: 0.2 }, { seed: 1, value: 0.3 }],
      },
    },
    { key: 'none', label: 'not run', values: {} },
  ],
  notes: ['fraction recovered: 0.5'],
};

test('cells: mean ± std with the metric digits and scale; n per row; a short cell says its n', () => {
  const c = tableCells(table);
  assert.deepEqual(c[0], ['method', 'valid ppl', 'acc %', 'n']);
  assert.deepEqual(c[1], ['FP teacher', '85.07', '25.0', '1']);
  // ppl: mean 92, std 2; acc: mean 25 %, std = 0.0707… → 7.1 %.
  assert.deepEqual(c[2], ['KD-QAT | w4', '92.00 ± 2.00', '25.0 ± 7.1 (n=2)', '3']);
  assert.deepEqual(c[3], ['not run', '—', '—', '0']);
  assert.equal(formatCell(summarize([1, 2]), { key: 'x', label: 'x', digits: 3 }), '1.500 ± 0.707');
});

test('text: columns aligned (numbers right, method left)', () => {
  const lines = formatText(table).split('\n');
  assert.equal(lines[0], 'demo');
  const body = lines.slice(1, 6);
  const lens = body.map((l) => [...l.padEnd(60)].length);
  assert.ok(lens.every((n) => n === lens[0]));
  // Right edges of the "valid ppl" column line up.
  const header = body[0];
  const end = header.indexOf('valid ppl') + 'valid ppl'.length;
  const w = Math.max('valid ppl'.length, '92.00 ± 2.00'.length);
  const colEnd = header.indexOf('method') + Math.max(...['method', 'FP teacher', 'KD-QAT | w4', 'not run'].map((s) => s.length)) + 2 + w;
  assert.equal(end, colEnd);
  assert.equal(body[2].slice(0, colEnd).trimEnd().endsWith('85.07'), true);
  assert.equal(body[3].slice(0, colEnd).endsWith('92.00 ± 2.00'), true);
  assert.ok(lines.includes('fraction recovered: 0.5'));
});

test('markdown: header with direction arrows, alignment row, escaped pipes, notes', () => {
  const md = formatMarkdown(table);
  const lines = md.split('\n');
  assert.equal(lines[0], '### demo');
  assert.equal(lines[2], '| method | valid ppl ↓ | acc % ↑ | n |');
  assert.equal(lines[3], '|:---|---:|---:|---:|');
  assert.equal(lines[5], '| KD-QAT \\| w4 | 92.00 ± 2.00 | 25.0 ± 7.1 (n=2) | 3 |');
  assert.ok(md.includes('\nfraction recovered: 0.5\n'));
});

test('json: every per-seed value with its summary; unmeasured metrics left out', () => {
  const j = tableJson(table) as { rows: { key: string; metrics: Record<string, { mean: number; std: number | null; n: number; values: unknown[] }> }[] };
  assert.equal(j.rows[1].metrics.ppl.mean, 92);
  assert.equal(j.rows[1].metrics.ppl.std, 2);
  assert.deepEqual(j.rows[1].metrics.ppl.values, [{ seed: 0, value: 90 }, { seed: 1, value: 92 }, { seed: 2, value: 94 }]);
  assert.equal(j.rows[0].metrics.acc.std, null);
  assert.deepEqual(j.rows[2].metrics, {});
});
