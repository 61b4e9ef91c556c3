// Figures of the signal-propagation study (METHODS.md §4): for each metric of SignalMonitor,
// (1) its mean over layers against the training step, one line per module kind, one panel per
// run (shared y axis, so KD-QAT and KD-QAT + ov-freeze compare at a glance), and (2) a
// layer × kind heatmap of its time-mean (or last) value per run; plus the loss terms over steps.
// Charts are drawn by @observablehq/plot into a linkedom DOM, wrapped in a standalone SVG with a
// title, subtitle and legend, and rasterized to PNG by resvg.
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import { Resvg } from '@resvg/resvg-js';
import { MODULE_KINDS } from '../models/registry.js';
import { SIGNAL_METRICS } from './signal.js';
import type { RunLog } from './signal-log.js';

export interface Figure {
  /** File stem: `loss`, `signal-grad_norm`, `signal-grad_norm-layers`. */
  name: string;
  svg: string;
}

export interface PlotOptions {
  /** Heatmap values: the mean over logged steps (default) or the last logged step. */
  heatmap?: 'mean' | 'last';
}

export interface MetricInfo { title: string; y: string; log: boolean }

const METRICS: Record<string, MetricInfo> = {
  grad_norm: { title: 'Weight-gradient norm ‖∂L/∂W‖', y: '‖∂L/∂W‖', log: true },
  update_ratio: { title: 'Relative latent-weight update ‖ΔW‖ / ‖W‖', y: '‖ΔW‖ / ‖W‖', log: true },
  act_norm: { title: 'Activation RMS at the input of each quantized Linear', y: 'RMS(x)', log: true },
  signal_norm: { title: 'Back-propagated signal ‖∂L/∂x‖ at each quantized Linear', y: '‖∂L/∂x‖', log: true },
  sqnr_db: { title: 'Weight quantization SQNR', y: 'SQNR (dB)', log: false },
  cross_rate: { title: 'Rounding-boundary crossings since the previous logged step', y: 'fraction of ŵ changed', log: false },
  step_cross_rate: { title: 'Rounding-boundary crossings per update', y: 'fraction of ŵ changed', log: false },
};
const KIND_ORDER: readonly string[] = MODULE_KINDS;
// METHODS.md §3's loss terms, after their weighted sum.
const LOSS_ORDER = ['total', 'pred', 'ce', 'rep', 'attn_score', 'attn_map', 'attn_out', 'context', 'sa_out'];
// Tableau 10: distinct, colour-blind-friendly hues for up to 10 series.
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const FONT = 'DejaVu Sans, Verdana, sans-serif';
const PANEL_W = 420, PANEL_H = 300, HEAD_H = 78;

/** Every figure for these runs: loss terms, then per metric its mean lines and heatmap. */
export function plotRuns(runs: RunLog[], o: PlotOptions = {}): Figure[] {
  if (runs.length === 0) throw new Error('plotRuns: no runs');
  const out: Figure[] = [];
  const loss = lossFigure(runs);
  if (loss) out.push(loss);
  for (const metric of metricsOf(runs)) {
    out.push(meanFigure(runs, metric));
    const heat = heatmapFigure(runs, metric, o.heatmap ?? 'mean');
    if (heat) out.push(heat);
  }
  return out;
}

/** PNG bytes of an SVG (resvg; system fonts), `scale`× its size. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: scale }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}

/** The signal metrics the runs log, SIGNAL_METRICS' order first. */
export function metricsOf(runs: RunLog[]): string[] {
  const seen = new Set<string>();
  for (const r of runs) for (const e of r.entries) if (e.signal) for (const m of Object.keys(e.signal)) seen.add(m);
  const known = SIGNAL_METRICS.filter((m) => seen.has(m)) as string[];
  return [...known, ...[...seen].filter((m) => !known.includes(m)).sort()];
}

/** A metric's title, axis label and scale. */
export function info(metric: string): MetricInfo {
  return METRICS[metric] ?? { title: metric, y: metric, log: false };
}

export function order(names: Iterable<string>, pref: readonly string[]): string[] {
  const rank = (k: string): number => (pref.includes(k) ? pref.indexOf(k) : pref.length);
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

// ---- figures ---------------------------------------------------------------------------------

/** A metric's mean over layers against the step, one line per module kind, one panel per run. */
export function meanFigure(runs: RunLog[], metric: string): Figure {
  const { title, y, log } = info(metric);
  const rows: { run: string; kind: string; step: number; value: number }[] = [];
  let dropped = 0;
  for (const r of runs) {
    for (const e of r.entries) {
      const byKind = e.signal?.[metric as keyof typeof e.signal];
      if (!byKind) continue;
      for (const [kind, values] of Object.entries(byKind)) {
        const vs = values.filter((v): v is number => v !== null);
        if (vs.length === 0) continue;
        const m = mean(vs);
        if (log && !(m > 0)) { dropped++; continue; }
        rows.push({ run: r.label, kind, step: e.step, value: m });
      }
    }
  }
  const kinds = order(kindsOf(runs, metric), KIND_ORDER);
  rows.sort((a, b) => kinds.indexOf(a.kind) - kinds.indexOf(b.kind)); // series drawn in legend order
  const colors = colorMap(kinds);
  let subtitle = `mean over layers per module kind; ${log ? 'log scale' : 'linear scale'}`;
  if (dropped) subtitle += `; ${dropped} zero point(s) not drawn (e.g. frozen weights)`;
  const chart = Plot.plot({
    ...base(runs.length),
    x: { label: 'step', grid: true },
    y: { type: log ? 'log' : 'linear', label: y, grid: true, tickFormat: log ? '~g' : undefined, nice: !log },
    color: { domain: kinds, range: kinds.map((k) => colors.get(k)!) },
    fx: { label: null, domain: runs.map((r) => r.label), padding: 0.12 },
    marks: [
      Plot.frame({ stroke: '#bbb' }),
      Plot.lineY(rows, { fx: 'run', x: 'step', y: 'value', stroke: 'kind', title: 'kind', strokeWidth: 1.8, sort: 'step' }),
      Plot.dot(rows, { fx: 'run', x: 'step', y: 'value', fill: 'kind', r: 1.6 }),
    ],
  });
  return { name: `signal-${metric}`, svg: wrap(chart, `${title}`, subtitle, kinds.map((k) => [k, colors.get(k)!])) };
}

/** A layer × kind heatmap of a metric's time-mean (or last) value, one panel per run. */
export function heatmapFigure(runs: RunLog[], metric: string, mode: 'mean' | 'last'): Figure | null {
  const { title, y, log } = info(metric);
  const cells: { run: string; kind: string; layer: string; value: number }[] = [];
  for (const r of runs) {
    const sums = new Map<string, number[]>(); // kind/layer → values over steps
    let last: Record<string, (number | null)[]> | null = null;
    for (const e of r.entries) {
      const byKind = e.signal?.[metric as keyof typeof e.signal];
      if (!byKind) continue;
      last = byKind;
      for (const [kind, values] of Object.entries(byKind)) {
        values.forEach((v, l) => {
          if (v === null) return;
          const key = `${kind}\u0000${l}`;
          const vs = sums.get(key);
          if (vs) vs.push(v);
          else sums.set(key, [v]);
        });
      }
    }
    if (mode === 'last' && last) {
      for (const [kind, values] of Object.entries(last)) values.forEach((v, l) => v !== null && cells.push({ run: r.label, kind, layer: String(l), value: v }));
    } else {
      for (const [key, vs] of sums) {
        const [kind, l] = key.split('\u0000');
        cells.push({ run: r.label, kind, layer: l, value: mean(vs) });
      }
    }
  }
  if (cells.length === 0) return null;
  const kinds = order(cells.map((c) => c.kind), KIND_ORDER);
  const layers = [...new Set(cells.map((c) => Number(c.layer)))].sort((a, b) => a - b).map(String);
  const pos = cells.filter((c) => !log || c.value > 0);
  const zero = cells.filter((c) => log && !(c.value > 0));
  const panelW = Math.max(260, 58 * kinds.length + 70);
  const chart = Plot.plot({
    ...base(runs.length, panelW, Math.max(160, 34 * layers.length + 70)),
    x: { label: 'module kind', domain: kinds, axis: 'bottom' },
    y: { label: 'layer', domain: layers },
    fx: { label: null, domain: runs.map((r) => r.label), padding: 0.08 },
    color: { type: log ? 'log' : 'linear', scheme: 'viridis' },
    marks: [
      Plot.cell(pos, { fx: 'run', x: 'kind', y: 'layer', fill: 'value', inset: 0.5 }),
      Plot.cell(zero, { fx: 'run', x: 'kind', y: 'layer', fill: '#e6e6e6', inset: 0.5 }),
      Plot.text(cells, {
        fx: 'run', x: 'kind', y: 'layer', text: (d: { value: number }) => fmt(d.value),
        fill: 'black', stroke: 'white', strokeWidth: 3, paintOrder: 'stroke', fontSize: 10,
      }),
    ],
  });
  const what = mode === 'last' ? 'last logged step' : 'mean over logged steps';
  const subtitle = `${y} per layer and module kind, ${what}; colour ${log ? 'log' : 'linear'} scale (viridis: dark = low)` +
    (zero.length ? '; grey = 0' : '');
  return { name: `signal-${metric}-layers`, svg: wrap(chart, `${title}: layer × kind`, subtitle, []) };
}

/** Loss terms over steps, one line per term, one panel per run; null if no run logs losses. */
export function lossFigure(runs: RunLog[]): Figure | null {
  const rows: { run: string; term: string; step: number; value: number }[] = [];
  for (const r of runs) for (const e of r.entries) for (const [term, v] of Object.entries(e.loss)) rows.push({ run: r.label, term, step: e.step, value: v });
  if (rows.length === 0) return null;
  const log = rows.every((d) => d.value > 0);
  const terms = order(rows.map((d) => d.term), LOSS_ORDER);
  rows.sort((a, b) => terms.indexOf(a.term) - terms.indexOf(b.term)); // series drawn in legend order
  const colors = colorMap(terms);
  const chart = Plot.plot({
    ...base(runs.length),
    x: { label: 'step', grid: true },
    y: { type: log ? 'log' : 'linear', label: 'loss', grid: true, tickFormat: log ? '~g' : undefined },
    color: { domain: terms, range: terms.map((t) => colors.get(t)!) },
    fx: { label: null, domain: runs.map((r) => r.label), padding: 0.12 },
    marks: [
      Plot.frame({ stroke: '#bbb' }),
      Plot.lineY(rows, { fx: 'run', x: 'step', y: 'value', stroke: 'term', title: 'term', strokeWidth: 1.8, sort: 'step' }),
    ],
  });
  return { name: 'loss', svg: wrap(chart, 'Training loss terms', `per logged step; ${log ? 'log' : 'linear'} scale`, terms.map((t) => [t, colors.get(t)!])) };
}

// ---- helpers ---------------------------------------------------------------------------------

function kindsOf(runs: RunLog[], metric: string): string[] {
  const out: string[] = [];
  for (const r of runs) for (const e of r.entries) out.push(...Object.keys(e.signal?.[metric as keyof typeof e.signal] ?? {}));
  return out;
}

export function colorMap(names: string[]): Map<string, string> {
  return new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length]]));
}

export function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 0.01 && a < 1000 ? String(Number(v.toPrecision(3))) : v.toExponential(1);
}

/** Common Plot options: a fresh linkedom document, readable fonts, one panel per run. */
export function base(nRuns: number, panelW = PANEL_W, panelH = PANEL_H): Plot.PlotOptions {
  const { document } = parseHTML('<!DOCTYPE html><html><body></body></html>');
  return {
    document: document as unknown as Document,
    width: 90 + panelW * nRuns,
    height: panelH,
    marginLeft: 72,
    marginRight: 20,
    marginTop: 28,
    marginBottom: 44,
    style: { fontFamily: FONT, fontSize: '12px', background: 'white', color: 'black' },
  };
}

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A standalone SVG document: title, subtitle and legend above the Plot chart. */
export function wrap(chart: Element | SVGElement | HTMLElement, title: string, subtitle: string, legend: [string, string][]): string {
  const el = chart as unknown as Element;
  if (el.tagName.toLowerCase() !== 'svg') throw new Error(`plot produced <${el.tagName}>, not <svg>`);
  const w = Number(el.getAttribute('width')), h = Number(el.getAttribute('height'));
  el.removeAttribute('class'); // Plot's scoped <style> stays inert without it
  const items: string[] = [];
  let x = 16;
  for (const [name, color] of legend) {
    items.push(`<g transform="translate(${x},0)"><line x1="0" x2="22" y1="-4" y2="-4" stroke="${color}" stroke-width="3"/>` +
      `<text x="28" y="0" font-size="12">${esc(name)}</text></g>`);
    x += 40 + 7.5 * name.length;
  }
  // Text widths estimated from DejaVu Sans: ~0.58 em per character in bold (17 px), ~0.55 em at 12 px.
  const width = Math.ceil(Math.max(w, x + 16, 10 * title.length + 32, 6.6 * subtitle.length + 32));
  const height = h + HEAD_H;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">` +
    `<rect width="${width}" height="${height}" fill="white"/>` +
    `<text x="16" y="26" font-size="17" font-weight="bold">${esc(title)}</text>` +
    `<text x="16" y="46" font-size="12" fill="#444">${esc(subtitle)}</text>` +
    `<g transform="translate(0,68)">${items.join('')}</g>` +
    `<g transform="translate(0,${HEAD_H})">${el.outerHTML}</g></svg>\n`;
}
