// Figures and an HTML page of `kdqat bench --json` records (bench/run.ts): KD-QAT step tokens/s
// against threads, width and sequence length (bench/scaling.ts; kdqat and PyTorch lines), the
// fixed-shape KD-QAT steps (d256 and the real-size models) against threads, and GEMM GFLOP/s per
// shape. Each figure's subtitle and the page beside it name the CPU and the SIMD path of every
// series, from the records themselves. Charts are drawn with src/analysis/plots.ts's helpers.
import * as Plot from '@observablehq/plot';
import { PALETTE, base, esc, wrap, type Figure } from '../analysis/plots.js';
import { htmlPage } from './page.js';
import { recomputeModeOf } from '../tensor/recompute.js';

/** A record as printed by `kdqat bench --json`: at least these fields. */
export interface BenchRec {
  bench: string;
  impl?: string;
  backend?: string;
  threads?: number;
  cpu: string;
  isa: string;
  isa_paths?: Record<string, string>;
  [k: string]: unknown;
}

export interface BenchFigure extends Figure {
  title: string;
  /** The records drawn (for the page's machine and data lists). */
  records: BenchRec[];
}

/** Parses JSON-lines records; lines not starting with `{` (tables, logs) are skipped. */
export function parseBenchRecords(text: string, file = 'records'): BenchRec[] {
  const out: BenchRec[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (!l.startsWith('{')) return;
    let r: unknown;
    try { r = JSON.parse(l); } catch (e) { throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`); }
    const o = r as Partial<BenchRec>;
    if (typeof o.bench !== 'string') throw new Error(`${file}:${i + 1}: a bench record needs a "bench" field`);
    if (typeof o.cpu !== 'string' || typeof o.isa !== 'string') {
      throw new Error(`${file}:${i + 1}: ${o.bench} record without "cpu"/"isa" (written by an older kdqat bench? run it again)`);
    }
    out.push(o as BenchRec);
  });
  return out;
}

const implOf = (r: BenchRec): string => String(r.impl ?? r.backend ?? '?');
/** A series: who ran it and on which path, e.g. "kdqat (avx512)", "kdqat (avx512_bf16, recompute)",
 *  "kdqat (avx512, recompute selective)" (recompute: 'all' or true in older records). */
export const seriesOf = (r: BenchRec): string =>
  `${implOf(r)} (${r.isa}${{ off: '', selective: ', recompute selective', all: ', recompute' }[recomputeModeOf(r.recompute as string | boolean | undefined)]})`;

/** "CPU: …; kdqat: avx512; torch: avx2+openblas-cooperlake" for a set of records. */
export function machineLine(recs: BenchRec[]): string {
  const cpus = [...new Set(recs.map((r) => r.cpu))];
  const paths = [...new Set(recs.map((r) => `${implOf(r)}: ${r.isa}`))];
  return `CPU: ${cpus.join(' | ')}; SIMD: ${paths.join(', ')}`;
}

type Row = { series: string; x: number | string; y: number; label?: string };

/** What tokens/s would be if the cost per token grew as `cost` from each series' first point
 *  (the lowest x): the dashed lines. */
export function modelRows(recs: BenchRec[], x: (r: BenchRec) => number, cost: (r: BenchRec) => number): { series: string; x: number; y: number }[] {
  const out: { series: string; x: number; y: number }[] = [];
  for (const s of new Set(recs.map(seriesOf))) {
    const rs = recs.filter((r) => seriesOf(r) === s).sort((a, b) => x(a) - x(b));
    const r0 = rs[0];
    for (const r of rs) out.push({ series: s, x: x(r), y: Number(r0.tokens_per_s) * cost(r0) / cost(r) });
  }
  return out;
}

function lineFigure(name: string, title: string, what: string, recs: BenchRec[], x: (r: BenchRec) => number, xLabel: string,
  o: { logX?: boolean; fx?: (r: BenchRec) => string; label?: (r: BenchRec) => string | undefined;
    model?: { cost: (r: BenchRec) => number; what: string } } = {}): BenchFigure | null {
  if (recs.length === 0) return null;
  const rows: (Row & { fx: string })[] = recs.map((r) => ({
    series: seriesOf(r), x: x(r), y: Number(r.tokens_per_s), fx: o.fx?.(r) ?? '', label: o.label?.(r),
  }));
  const model = o.model ? modelRows(recs, x, o.model.cost) : [];
  rows.sort((a, b) => a.series.localeCompare(b.series) || (a.x as number) - (b.x as number));
  const series = [...new Set(rows.map((r) => r.series))].sort();
  const panels = [...new Set(rows.map((r) => r.fx))];
  const xs = [...new Set(rows.map((r) => r.x as number))].sort((a, b) => a - b);
  const colors = series.map((_, i) => PALETTE[i % PALETTE.length]);
  const chart = Plot.plot({
    ...base(panels.length, 520, 320),
    x: { type: o.logX ? 'log' : 'linear', label: xLabel, ticks: xs, tickFormat: (d: number) => String(d), grid: true, nice: false },
    y: { label: 'tokens/s', grid: true, zero: true },
    color: { domain: series, range: colors },
    fx: { label: null, domain: panels, padding: 0.15 },
    marks: [
      Plot.frame({ stroke: '#bbb' }),
      Plot.line(model, { x: 'x', y: 'y', stroke: 'series', strokeWidth: 1.2, strokeDasharray: '5,4', sort: 'x' }),
      Plot.line(rows, { fx: 'fx', x: 'x', y: 'y', stroke: 'series', strokeWidth: 2, sort: 'x' }),
      Plot.dot(rows, { fx: 'fx', x: 'x', y: 'y', fill: 'series', r: 3 }),
      Plot.text(rows.filter((r) => r.label), { fx: 'fx', x: 'x', y: 'y', text: 'label', dy: -10, fontSize: 10, fill: '#333' }),
    ],
  });
  const sub = o.model ? `${what}; dashed: ${o.model.what}` : what;
  return { name, title, records: recs, svg: withMachine(wrap(chart, title, sub, series.map((s, i) => [s, colors[i]])), recs, sub) };
}

/** Every figure the records allow, in page order. */
export function benchFigures(recs: BenchRec[]): BenchFigure[] {
  const out: (BenchFigure | null)[] = [];
  const sc = recs.filter((r) => r.bench === 'qat_scaling');
  const on = (s: string) => sc.filter((r) => (r.sweeps as string[] | undefined)?.includes(s));
  const tps = (r: BenchRec) => `${Number(r.tokens_per_step)} tokens/step`;
  const layers = sc[0] ? `${sc[0].layers} layers, ${tps(sc[0])}, vocab ${sc[0].vocab}` : '';
  const flops = { cost: (r: BenchRec) => Number(r.matmul_flops_per_token), what: 'cost ∝ matmul FLOPs per token, from the first point' };
  out.push(lineFigure('bench-threads', 'KD-QAT step tokens/s against threads', `d256, T256, ${layers}`,
    on('threads'), (r) => Number(r.threads), 'threads', { model: { cost: (r) => 1 / Number(r.threads), what: 'linear in threads' } }));
  out.push(lineFigure('bench-width', 'KD-QAT step tokens/s against width', `T256, ${layers}, heads = d/64, SwiGLU 2.6875·d, ${Math.max(0, ...on('width').map((r) => Number(r.threads)))} threads`,
    on('width'), (r) => Number(r.dim), 'hidden size d', { model: flops }));
  out.push(lineFigure('bench-seq', 'KD-QAT step tokens/s against sequence length',
    `d256, ${layers} (batch = tokens/T); attention ∝ T per token, ∝ T² per sequence; labels: its FLOP share`,
    on('seq'), (r) => Number(r.seq), 'sequence length T', { logX: true, model: flops, label: (r) => (r.impl === 'kdqat' ? `attn ${(100 * Number(r.attn_flop_share)).toFixed(0)}%` : undefined) }));
  // repeated rounds (--only qat runs 2): the best tokens/s per shape, impl, threads and path
  const qat = bestOf(recs.filter((r) => r.bench === 'qat_step'), (r) => `${r.shape}|${seriesOf(r)}|${r.threads}|${r.cpu}`, (r) => Number(r.tokens_per_s));
  // one figure per shape: their tokens/s differ by orders of magnitude
  for (const shape of new Set(qat.map((r) => String(r.shape ?? 'd256')))) {
    out.push(lineFigure(`bench-qat-${shape}`, `KD-QAT step tokens/s at ${shape}`,
      `${shape === 'd256' ? 'bench/qat_step.ts (4 layers, B8×T256)' : 'real size (bench/real_size_shapes.ts)'}; best of the rounds`,
      qat.filter((r) => String(r.shape ?? 'd256') === shape), (r) => Number(r.threads), 'threads', { model: { cost: (r) => 1 / Number(r.threads), what: 'linear in threads' } }));
  }
  out.push(gemmFigure(recs.filter((r) => r.bench === 'gemm')));
  return out.filter((f): f is BenchFigure => f !== null);
}

/** One record per key: the one with the highest score (records keep their order). */
export function bestOf(recs: BenchRec[], key: (r: BenchRec) => string, score: (r: BenchRec) => number): BenchRec[] {
  const best = new Map<string, BenchRec>();
  for (const r of recs) {
    const b = best.get(key(r));
    if (!b || score(r) > score(b)) best.set(key(r), r);
  }
  return recs.filter((r) => best.get(key(r)) === r);
}

function gemmFigure(recs: BenchRec[]): BenchFigure | null {
  if (recs.length === 0) return null;
  const rows = recs.map((r) => ({ shape: `${r.m}×${r.k}×${r.n}`, bar: `${seriesOf(r)} ${r.threads}t`, series: seriesOf(r), y: Number(r.gflops) }));
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const bars = [...new Set(rows.map((r) => r.bar))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const series = [...new Set(rows.map((r) => r.series))].sort();
  const colors = series.map((_, i) => PALETTE[i % PALETTE.length]);
  const chart = Plot.plot({
    ...base(shapes.length, Math.max(220, 46 * bars.length + 40), 320),
    marginBottom: 90,
    x: { domain: bars, label: null, tickRotate: -30 },
    y: { label: 'GFLOP/s', grid: true },
    color: { domain: series, range: colors },
    fx: { label: 'M×K×N', domain: shapes, padding: 0.1 },
    marks: [
      Plot.barY(rows, { fx: 'shape', x: 'bar', y: 'y', fill: 'series' }),
      Plot.text(rows, { fx: 'shape', x: 'bar', y: 'y', text: (d: { y: number }) => d.y.toFixed(0), dy: -6, fontSize: 10 }),
      Plot.ruleY([0]),
    ],
  });
  const title = 'fp32 GEMM GFLOP/s per shape';
  return { name: 'bench-gemm', title, records: recs, svg: withMachine(wrap(chart, title, 'best of interleaved rounds; bars per impl and thread count', series.map((s, i) => [s, colors[i]])), recs) };
}

/** The figure with its machine below the chart: one line per CPU, one per series' SIMD path. */
function withMachine(svg: string, recs: BenchRec[], subtitle = ''): string {
  const m = svg.match(/^<svg [^>]*width="(\d+(?:\.\d+)?)" height="(\d+(?:\.\d+)?)" viewBox="0 0 [\d.]+ [\d.]+"/);
  if (!m) throw new Error('withMachine: not an SVG from plots.ts wrap()');
  const lines = [
    ...[...new Set(recs.map((r) => r.cpu))].map((c) => `CPU: ${c}`),
    ...[...new Set(recs.map((r) => `${implOf(r)}: ${r.isa}${pathNote(r)}`))],
  ];
  const w = Math.max(Number(m[1]), 16 + 6.4 * Math.max(...lines.map((l) => l.length)), 24 + 6.6 * subtitle.length), h0 = Number(m[2]), h = h0 + 10 + 16 * lines.length;
  const text = lines.map((l, i) => `<text x="16" y="${h0 + 4 + 16 * (i + 1)}" font-size="11" fill="#333">${esc(l)}</text>`).join('');
  return svg.replace(m[0], `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"`)
    .replace(/<rect width="[\d.]+" height="[\d.]+" fill="white"\/>/, `<rect width="${w}" height="${h}" fill="white"/>`)
    .replace(/<\/svg>\n?$/, `${text}</svg>\n`);
}

/** " (gemm avx512, nn avx2, …)" for kdqat, " (ATen avx2, BLAS …)" for torch. */
function pathNote(r: BenchRec): string {
  const p = Object.entries(r.isa_paths ?? {}).map(([k, v]) => `${k} ${v}`);
  return p.length ? ` (${p.join(', ')})` : '';
}

/** The columns of a figure's data table: what varies, then the measurement. */
const COLUMNS: Record<string, string[]> = {
  qat_scaling: ['shape', 'impl', 'threads', 'isa', 'tokens_per_s', 'best_tokens_per_s', 'step_ms', 'peak_rss_mb', 'attn_flop_share', 'matmul_flops_per_token'],
  qat_step: ['shape', 'impl', 'threads', 'isa', 'recompute', 'tokens_per_s', 'best_tokens_per_s', 'step_ms', 'peak_rss_mb'],
  gemm: ['m', 'k', 'n', 'impl', 'threads', 'isa', 'gflops'],
};

function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v < 1 ? v.toFixed(3) : v.toFixed(1);
  return esc(String(v ?? ''));
}

function machineList(recs: BenchRec[]): string {
  const seen = new Map<string, BenchRec>();
  for (const r of recs) seen.set(`${r.cpu}|${implOf(r)}|${r.isa}|${JSON.stringify(r.isa_paths ?? {})}`, r);
  return [...seen.values()].map((r) => {
    const paths = Object.entries(r.isa_paths ?? {}).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(', ');
    return `<li><b>${esc(implOf(r))}</b> on <span class="cpu">${esc(r.cpu)}</span>: <code>${esc(r.isa)}</code>${paths ? ` (${paths})` : ''}</li>`;
  }).join('\n');
}

/** A standalone HTML page: every figure inline, with the CPU, SIMD paths and data beside it. */
export function benchPage(figures: BenchFigure[], o: { title?: string; source?: string } = {}): string {
  const title = o.title ?? 'kdqat bench';
  const all = figures.flatMap((f) => f.records);
  const body = figures.map((f) => {
    const cols = COLUMNS[f.records[0]?.bench] ?? ['impl', 'threads', 'isa'];
    const rows = f.records.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join('')}</tr>`).join('\n');
    return `<section id="${f.name}">\n<h2>${esc(f.title)}</h2>\n<div class="fig">\n<figure>${f.svg.trim()}\n<figcaption><a href="${f.name}.svg">${f.name}.svg</a></figcaption></figure>\n` +
      `<aside><h3>Machine</h3><ul>\n${machineList(f.records)}\n</ul></aside>\n</div>\n` +
      `<details><summary>data (${f.records.length} records)</summary><table><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>\n${rows}</table></details>\n</section>`;
  }).join('\n');
  return htmlPage({
    title,
    css: '.fig{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}aside{min-width:280px;max-width:460px;font-size:13px}',
    body: `<h1>${esc(title)}</h1>\n<p class="machine">${esc(machineLine(all))}</p>\n` +
      (o.source ? `<p>records: <code>${esc(o.source)}</code> (one JSON object per line, as printed by <code>kdqat bench --json</code>)</p>\n` : '') + body,
  });
}
