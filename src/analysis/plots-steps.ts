// Figures over training steps that plots.ts does not draw: a signal metric per layer × module
// kind as a heatmap against the step (one column of cells per logged step, one row per layer,
// one band per kind, one panel per run), and the periodic evaluation's metrics against the step
// (one line per run, runs overlaid so they compare on one axis). Same drawing path as plots.ts
// (@observablehq/plot into linkedom, wrapped by wrap()).
import * as Plot from '@observablehq/plot';
import { MODULE_KINDS } from '../models/registry.js';
import { base, colorMap, esc, fmt, info, order, wrap, type Figure } from './plots.js';
import type { RunLog } from './signal-log.js';

/** Step columns per heatmap panel, at most, and cells per figure the columns are cut to fit
 *  (a 2000-step run of a 30-layer model would otherwise draw 40k cells per panel and metric). */
export const MAX_COLUMNS = 80;
const CELL_BUDGET = 24_000;
/** Above this many cells, cells carry no hover title (it doubles the page's size). */
const TITLED_CELLS = 6000;

interface Cell { run: string; kind: string; layer: number; x1: number; x2: number; value: number }

/**
 * `metric` per layer and kind against the step. A cell spans (previous logged step, step], so
 * the x axis is the step itself however often the run logged. Cells not measured (null: e.g. no
 * gradient for a frozen weight) are left blank; on a log colour scale, values ≤ 0 are grey.
 */
export function stepHeatmapFigure(runs: RunLog[], metric: string): Figure | null {
  const { title, y, log } = info(metric);
  const cells: Cell[] = [];
  let binned = 1;
  const rowsOf = new Map<string, number>(); // kind → layers
  for (const r of runs) for (const e of r.entries) for (const [k, vs] of Object.entries(e.signal?.[metric as keyof typeof e.signal] ?? {})) rowsOf.set(k, Math.max(rowsOf.get(k) ?? 0, vs.length));
  const rows = [...rowsOf.values()].reduce((a, b) => a + b, 0);
  const maxColumns = Math.max(10, Math.min(MAX_COLUMNS, Math.floor(CELL_BUDGET / Math.max(1, rows * runs.length))));
  for (const r of runs) {
    const logged = r.entries.filter((e) => e.signal?.[metric as keyof typeof e.signal]);
    // Consecutive logged steps are averaged in bins of at most maxColumns columns.
    const bin = Math.max(1, Math.ceil(logged.length / maxColumns));
    binned = Math.max(binned, bin);
    let prev = 0;
    for (let i = 0; i < logged.length; i += bin) {
      const group = logged.slice(i, i + bin), last = group[group.length - 1].step;
      const sums = new Map<string, { kind: string; layer: number; sum: number; n: number }>();
      for (const e of group) {
        for (const [kind, values] of Object.entries(e.signal![metric as keyof typeof e.signal] as Record<string, (number | null)[]>)) {
          values.forEach((v, layer) => {
            if (v === null) return;
            const key = `${kind}\u0000${layer}`, acc = sums.get(key) ?? { kind, layer, sum: 0, n: 0 };
            acc.sum += v;
            acc.n++;
            sums.set(key, acc);
          });
        }
      }
      for (const a of sums.values()) cells.push({ run: r.label, kind: a.kind, layer: a.layer, x1: prev, x2: last, value: a.sum / a.n });
      prev = last;
    }
  }
  if (cells.length === 0) return null;
  const pos = cells.filter((c) => !log || c.value > 0), zero = cells.filter((c) => log && !(c.value > 0));
  const kinds = order(cells.map((c) => c.kind), MODULE_KINDS);
  const layers = Math.max(...cells.map((c) => c.layer)) + 1;
  // Rows: up to 12 px per layer, at least 3, a band of at most ~160 px per kind.
  const rowH = Math.max(3, Math.min(12, Math.floor(160 / layers)));
  const bandH = Math.max(22, rowH * layers);
  const values = pos.map((c) => c.value);
  const domain: [number, number] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  if (domain[0] === domain[1]) domain[1] = log ? domain[0] * 1.0001 : domain[0] + 1e-9;
  const color = { type: log ? 'log' : 'linear', scheme: 'viridis', domain } as const;
  // A (run, kind) with no value at all (frozen weights have no gradient) keeps its band, labelled.
  const steps = cells.map((c) => c.x2), xMid = (Math.min(...cells.map((c) => c.x1)) + Math.max(...steps)) / 2;
  const empty = runs.flatMap((r) => kinds.filter((k) => !cells.some((c) => c.run === r.label && c.kind === k))
    .map((kind) => ({ run: r.label, kind })));
  const opts = base(runs.length, 420, kinds.length * (bandH + 6) + 72);
  const chart = Plot.plot({
    ...opts,
    marginLeft: 86,
    x: { label: 'step', grid: false },
    y: { label: null, domain: [-0.5, layers - 0.5], reverse: true, axis: null },
    fx: { label: null, domain: runs.map((r) => r.label), padding: 0.08 },
    fy: { label: 'module kind (rows: layer 0 at the top)', domain: kinds, padding: 0.12 },
    color,
    marks: [
      Plot.rect(pos, { fx: 'run', fy: 'kind', x1: 'x1', x2: 'x2', y1: (d: Cell) => d.layer - 0.5, y2: (d: Cell) => d.layer + 0.5, fill: 'value', title: cells.length > TITLED_CELLS ? undefined : (d: Cell) => `${d.kind} layer ${d.layer}, step ${d.x2}: ${fmt(d.value)}` }),
      Plot.rect(zero, { fx: 'run', fy: 'kind', x1: 'x1', x2: 'x2', y1: (d: Cell) => d.layer - 0.5, y2: (d: Cell) => d.layer + 0.5, fill: '#d9d9d9' }),
      Plot.text(empty, { fx: 'run', fy: 'kind', x: () => xMid, y: () => (layers - 1) / 2, text: () => 'not measured (e.g. frozen)', fill: '#666', fontSize: 11 }),
      Plot.frame({ stroke: '#bbb' }),
    ],
  });
  const when = binned > 1 ? `mean of every ${binned} logged steps` : 'at each logged step';
  const subtitle = `${y} per layer (rows) and module kind (bands), ${when}; colour ${log ? 'log' : 'linear'} scale` +
    (zero.length ? '; grey = 0' : '') + '; blank = not measured';
  const svg = wrap(chart, `${title}: layers over steps`, subtitle, []);
  return { name: `signal-${metric}-steps`, svg: withRamp(svg, Plot.scale({ color }), y) };
}

/** Evaluation metrics against the step, one figure per metric, one line per run. */
export function evalFigures(runs: RunLog[]): Figure[] {
  const rows: { run: string; metric: string; step: number; value: number }[] = [];
  for (const r of runs) for (const e of r.entries) for (const [metric, value] of Object.entries(e.eval)) rows.push({ run: r.label, metric, step: e.step, value });
  const metrics = order(rows.map((d) => d.metric), ['valid_ppl', 'valid_kl', 'valid_nll', 'dev_accuracy']);
  const labels = runs.map((r) => r.label).filter((l) => rows.some((d) => d.run === l));
  const colors = colorMap(labels);
  return metrics.map((metric) => {
    const data = rows.filter((d) => d.metric === metric);
    // Perplexity on a log scale when it spans a wide range (early in training); a narrow range
    // gets no log ticks at all, so it stays linear.
    const vs = data.map((d) => d.value);
    const log = metric === 'valid_ppl' && Math.min(...vs) > 0 && Math.max(...vs) / Math.min(...vs) > 4;
    const chart = Plot.plot({
      ...base(1, 500, 260),
      x: { label: 'step', grid: true },
      y: { type: log ? 'log' : 'linear', label: EVAL_LABEL[metric] ?? metric, grid: true, tickFormat: log ? '~g' : undefined },
      color: { domain: labels, range: labels.map((l) => colors.get(l)!) },
      marks: [
        Plot.frame({ stroke: '#bbb' }),
        Plot.lineY(data, { x: 'step', y: 'value', stroke: 'run', strokeWidth: 1.8, sort: 'step' }),
        Plot.dot(data, { x: 'step', y: 'value', fill: 'run', r: 2.5, title: (d: { run: string; step: number; value: number }) => `${d.run}, step ${d.step}: ${fmt(d.value)}` }),
      ],
    });
    const shown = labels.filter((l) => data.some((d) => d.run === l));
    return {
      name: `eval-${metric}`,
      svg: wrap(chart, `Evaluation during training: ${EVAL_LABEL[metric] ?? metric}`, `periodic evaluation (--eval-every; --eval-windows windows); ${log ? 'log' : 'linear'} scale`,
        shown.map((l) => [l, colors.get(l)!])),
    };
  });
}

const EVAL_LABEL: Record<string, string> = {
  valid_ppl: 'validation perplexity', valid_nll: 'validation NLL (nats/token)', valid_kl: 'KL(teacher ‖ student) per token', dev_accuracy: 'dev accuracy', valid_mlm_loss: 'validation masked-LM loss (nats/masked token)',
};

/** The figure with a colour ramp (64 steps of `scale`, ticks at both ends and the middle) in its
 *  header's legend row: Plot's own ramp legend needs a canvas, which linkedom lacks. */
function withRamp(svg: string, scale: Plot.Scale, label: string): string {
  if (!/^<svg [^>]*width="\d/.test(svg)) throw new Error('withRamp: not an SVG from plots.ts wrap()');
  const [lo, hi] = (scale.domain ?? [0, 1]) as number[];
  const W = 240, N = 64;
  const at = (t: number): number => (scale.type === 'log' ? lo * Math.pow(hi / lo, t) : lo + (hi - lo) * t);
  const rects = Array.from({ length: N }, (_, i) => `<rect x="${(i * W / N).toFixed(2)}" y="0" width="${(W / N + 0.5).toFixed(2)}" height="9" fill="${String(scale.apply(at((i + 0.5) / N)))}"/>`).join('');
  const ticks = [0, 0.5, 1].map((t) => `<text x="${t * W}" y="19" font-size="10" text-anchor="${t === 0 ? 'start' : t === 1 ? 'end' : 'middle'}">${esc(fmt(at(t)))}</text>`).join('');
  const ramp = `<g class="ramp" transform="translate(16,56)">${rects}${ticks}<text x="${W + 10}" y="9" font-size="11" fill="#444">${esc(label)}</text></g>`;
  return svg.replace(/<\/svg>\n?$/, `${ramp}</svg>\n`);
}
