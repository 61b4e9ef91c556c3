// `kdqat bench --plot DIR --records FILE` on a small synthetic record file: one SVG per figure
// (well-formed: parsed by resvg's strict XML parser) with its series and the CPU in it, an HTML
// page naming the CPU and every SIMD path beside each figure, nothing overwritten without
// --force, and records without their machine refused naming the line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { kdqat, tmpDir } from '../cli/helpers.js';
import { benchFigures, modelRows, parseBenchRecords, seriesOf, type BenchRec } from '../../src/report/bench-page.js';

const dirs: string[] = [];
const tmp = (prefix: string): string => { const d = tmpDir(prefix); dirs.push(d); return d; };
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

const CPU = 'Test CPU 9000 (family 25, model 17, stepping 1)';
const TORCH_ISA = 'avx2+openblas-cooperlake';
const paths = { kdqat: { gemm: 'avx512', nn: 'avx2' }, torch: { aten: 'avx2', blas: 'OpenBLAS 0.3.21 Cooperlake' } };

function records(): object[] {
  const out: object[] = [];
  const m = { cpu: CPU };
  const side = (impl: 'kdqat' | 'torch') => ({ impl, isa: impl === 'kdqat' ? 'avx512' : TORCH_ISA, isa_paths: paths[impl] });
  // kdqat tokens/s = 1000·threads·256/dim·(1 − share); torch 0.8× that: distinct, checkable values
  const pts: [number, number, number, string[]][] = [
    [256, 256, 1, ['threads']], [256, 256, 2, ['threads', 'width', 'seq']], [512, 256, 2, ['width']], [768, 256, 2, ['width']],
    [1024, 256, 2, ['width']], [256, 128, 2, ['seq']], [256, 512, 2, ['seq']], [256, 1024, 2, ['seq']],
  ];
  for (const [dim, seq, threads, sweeps] of pts) {
    for (const impl of ['kdqat', 'torch'] as const) {
      const share = seq / 4096;
      const tps = Math.round((impl === 'kdqat' ? 1 : 0.8) * 1000 * threads * (256 / dim) * (1 - share));
      out.push({ bench: 'qat_scaling', ...side(impl), threads, sweeps, shape: `d${dim}-L2-T${seq}-B${1024 / seq}`, dim, layers: 2, heads: dim / 64, ff: dim * 2.6875,
        vocab: 4096, seq, batch: 1024 / seq, tokens_per_step: 1024, attn_flop_share: share, matmul_flops_per_token: 1e6 * (dim / 256) / (1 - share), tokens_per_s: tps, step_ms: 1024 / tps * 1000,
        best_tokens_per_s: tps, best_step_ms: 1, peak_rss_mb: 100, loss_first: 1, loss_last: 1, ...m });
    }
  }
  for (const shape of ['d256', 'smollm2-135m']) {
    for (const threads of [1, 2]) {
      for (const impl of ['kdqat', 'torch'] as const) {
        // two rounds: the figure draws the better one (50·threads), the page lists both
        out.push({ bench: 'qat_step', shape, ...side(impl), threads, tokens_per_s: 40 * threads, step_ms: 1, best_tokens_per_s: 1, best_step_ms: 1, peak_rss_mb: 1, loss_first: 1, loss_last: 1, ...m });
        out.push({ bench: 'qat_step', shape, ...side(impl), threads, tokens_per_s: 50 * threads, step_ms: 1, best_tokens_per_s: 1, best_step_ms: 1, peak_rss_mb: 1, loss_first: 1, loss_last: 1, ...m });
      }
    }
  }
  for (const threads of [1, 2]) {
    for (const impl of ['kdqat', 'torch'] as const) {
      out.push({ bench: 'gemm', ...side(impl), threads, m: 512, k: 256, n: 1024, gflops: impl === 'kdqat' ? 123.4 * threads : 111.1 * threads, ...m });
    }
  }
  out.push({ bench: 'kquant', impl: 'avx2', isa: 'avx2', isa_paths: {}, threads: 1, format: 'q4_k', usPerWeight: 1, ...m }); // no figure: ignored
  return out;
}

function writeRecords(dir: string): string {
  const f = path.join(dir, 'bench.jsonl');
  // a table line between the records, as a text run would interleave: skipped
  fs.writeFileSync(f, records().map((r) => JSON.stringify(r)).join('\n') + '\nCPU: table line\n');
  return f;
}

test('seriesOf names the path and the recompute mode (true, in older records, is all)', () => {
  const r = { bench: 'qat_step', impl: 'kdqat', cpu: CPU, isa: 'avx512' };
  assert.equal(seriesOf(r), 'kdqat (avx512)');
  assert.equal(seriesOf({ ...r, recompute: 'off' }), 'kdqat (avx512)');
  assert.equal(seriesOf({ ...r, recompute: 'selective' }), 'kdqat (avx512, recompute selective)');
  assert.equal(seriesOf({ ...r, recompute: 'all' }), 'kdqat (avx512, recompute)');
  assert.equal(seriesOf({ ...r, recompute: true }), 'kdqat (avx512, recompute)');
});

test('kdqat bench --plot draws the records: SVG per figure and a page with the CPU and SIMD paths', async () => {
  const dir = tmp('bench-plot');
  const file = writeRecords(dir);
  const out = path.join(dir, 'fig');
  const r = await kdqat('bench', '--plot', out, '--records', file);
  assert.equal(r.code, 0, r.stderr);
  const names = ['bench-threads', 'bench-width', 'bench-seq', 'bench-qat-d256', 'bench-qat-smollm2-135m', 'bench-gemm'];
  assert.deepEqual(fs.readdirSync(out).sort(), [...names.map((n) => `${n}.svg`), 'index.html'].sort());
  for (const n of names) {
    const svg = fs.readFileSync(path.join(out, `${n}.svg`), 'utf8');
    assert.doesNotThrow(() => new Resvg(svg), `${n}.svg parses`);
    assert.ok(svg.includes(CPU), `${n}.svg names the CPU`);
    assert.ok(svg.includes('kdqat (avx512)') && svg.includes(`torch (${TORCH_ISA})`), `${n}.svg has both series with their SIMD path`);
  }
  // the width figure's x ticks are the widths; the seq figure labels the attention share (256/4096 → 6%)
  const width = fs.readFileSync(path.join(out, 'bench-width.svg'), 'utf8');
  for (const d of ['512', '768', '1024']) assert.match(width, new RegExp(`>${d}<`));
  assert.match(fs.readFileSync(path.join(out, 'bench-seq.svg'), 'utf8'), /attn 25%/); // T1024: 1024/4096
  assert.match(fs.readFileSync(path.join(out, 'bench-gemm.svg'), 'utf8'), />247</); // 123.4·2, rounded
  // dashed model lines: linear in threads, cost ∝ matmul FLOPs per token along width and seq
  for (const n of ['bench-threads', 'bench-width', 'bench-seq']) assert.match(fs.readFileSync(path.join(out, `${n}.svg`), 'utf8'), /stroke-dasharray="5,4"/, n);
  const qat = fs.readFileSync(path.join(out, 'bench-qat-smollm2-135m.svg'), 'utf8');
  assert.equal((qat.match(/<circle /g) ?? []).length, 4, 'bench-qat-smollm2-135m: 2 impls × 2 thread counts, the best round each');
  assert.match(qat, /KD-QAT step tokens\/s at smollm2-135m/);
  const page = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
  for (const n of names) assert.match(page, new RegExp(`<section id="${n}">[\\s\\S]*?<svg[\\s\\S]*?${CPU.replace(/[()]/g, '\\$&')}[\\s\\S]*?</section>`), `${n}: figure with the CPU beside it`);
  assert.ok(page.includes('<code>avx512</code> (gemm avx512, nn avx2)'));
  assert.ok(page.includes(`<code>${TORCH_ISA}</code> (aten avx2, blas OpenBLAS 0.3.21 Cooperlake)`));
  // data table rows: the kdqat d1024 point, 1000·2·256/1024·(1 − 1/16) = 469 tokens/s
  assert.match(page, /<td>d1024-L2-T256-B4<\/td><td>kdqat<\/td><td>2<\/td><td>avx512<\/td><td>469<\/td>/);
});

test('model lines: tokens/s of the first point scaled by its cost per token', () => {
  const recs = (records() as BenchRec[]).filter((r) => r.bench === 'qat_scaling' && (r.sweeps as string[]).includes('width'));
  const rows = modelRows(recs, (r) => Number(r.dim), (r) => Number(r.matmul_flops_per_token));
  // synthetic tokens/s = round(c/dim), FLOPs ∝ dim, d256 exact: the model gives c/dim, within the rounding (0.5)
  for (const r of recs) {
    const m = rows.find((x) => x.series === seriesOf(r) && x.x === r.dim)!;
    assert.ok(Math.abs(m.y - Number(r.tokens_per_s)) <= 0.5, `${seriesOf(r)} d${r.dim}: ${m.y} vs ${r.tokens_per_s}`);
  }
  assert.equal(rows.length, recs.length);
});

test('kdqat bench --plot refuses to overwrite without --force; a page path puts figures beside it', async () => {
  const dir = tmp('bench-plot-force');
  const file = writeRecords(dir);
  const page = path.join(dir, 'out', 'bench.html');
  fs.mkdirSync(path.dirname(page));
  assert.equal((await kdqat('bench', '--plot', page, '--records', file)).code, 0);
  assert.ok(fs.existsSync(path.join(dir, 'out', 'bench-gemm.svg')));
  const before = fs.statSync(page).mtimeMs;
  const r = await kdqat('bench', '--plot', page, '--records', file);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /already exist.*--force/);
  assert.equal(fs.statSync(page).mtimeMs, before);
  assert.equal((await kdqat('bench', '--plot', page, '--records', file, '--force')).code, 0);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out')).filter((f) => f.endsWith('.tmp')), []);
});

test('records without cpu/isa are refused naming the line; no drawable record is an error', async () => {
  const dir = tmp('bench-plot-bad');
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, `${JSON.stringify({ bench: 'gemm', impl: 'kdqat', threads: 1, m: 1, k: 1, n: 1, gflops: 1, cpu: CPU, isa: 'avx2' })}\n` +
    `${JSON.stringify({ bench: 'gemm', impl: 'kdqat', threads: 1, m: 1, k: 1, n: 1, gflops: 1 })}\n`);
  assert.throws(() => parseBenchRecords(fs.readFileSync(bad, 'utf8'), 'bad.jsonl'), /bad\.jsonl:2: gemm record without "cpu"\/"isa"/);
  const r = await kdqat('bench', '--plot', path.join(dir, 'fig'), '--records', bad);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bad\.jsonl:2/);
  const none = path.join(dir, 'none.jsonl');
  fs.writeFileSync(none, JSON.stringify({ bench: 'kquant', impl: 'avx2', isa: 'avx2', threads: 1, format: 'q4_k', usPerWeight: 1, cpu: CPU }) + '\n');
  assert.deepEqual(benchFigures(parseBenchRecords(fs.readFileSync(none, 'utf8'))), []);
  const r2 = await kdqat('bench', '--plot', path.join(dir, 'fig2'), '--records', none);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /no records to draw \(kquant\)/);
  assert.ok(!fs.existsSync(path.join(dir, 'fig2')));
});
