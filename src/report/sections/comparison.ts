// The comparison: FP teacher / RTN / KD-QAT variants, each cell the mean ± sample std over
// seeds (src/report/table.ts, the same cells as results.md), the best mean per column among the
// quantized rows in bold, and the per-seed values on hover.
import { summarize, tableCells, type Table } from '../table.js';
import { esc } from '../page.js';
import type { Section } from '../section.js';

/** Per metric column, the rows (indices into t.rows) holding the best quantized mean; none when
 *  every quantized row ties (nothing stands out) or the metric has no direction. */
function best(t: Table): Set<number>[] {
  return t.metrics.map((m) => {
    if (!m.better) return new Set<number>();
    const means = t.rows.map((r, i) => ({ i, v: r.values[m.key] })).filter((x) => t.rows[x.i].key !== 'teacher' && x.v?.length)
      .map((x) => ({ i: x.i, mean: summarize(x.v!.map((y) => y.value)).mean }));
    if (means.length < 2) return new Set<number>();
    const top = m.better === 'higher' ? Math.max(...means.map((x) => x.mean)) : Math.min(...means.map((x) => x.mean));
    const at = means.filter((x) => x.mean === top).map((x) => x.i);
    return new Set(at.length === means.length ? [] : at);
  });
}

export function tableHtml(t: Table): string {
  const cells = tableCells(t, true);
  const top = best(t);
  const head = `<tr>${cells[0].map((c, i) => `<th${i === 0 ? ' class="l"' : ''}>${esc(c)}</th>`).join('')}</tr>`;
  const body = cells.slice(1).map((row, ri) => {
    const r = t.rows[ri];
    return `<tr>${row.map((c, ci) => {
      if (ci === 0) return `<td class="l">${esc(c)}</td>`;
      const m = t.metrics[ci - 1];
      if (!m) return `<td>${esc(c)}</td>`;
      const seeds = (r.values[m.key] ?? []).map((x) => `seed ${x.seed}: ${(x.value * (m.scale ?? 1)).toFixed(m.digits)}`).join(', ');
      const b = top[ci - 1].has(ri);
      return `<td${seeds ? ` title="${esc(seeds)}"` : ''}>${b ? `<b>${esc(c)}</b>` : esc(c)}</td>`;
    }).join('')}</tr>`;
  }).join('\n');
  const notes = (t.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`).join('');
  return `<h3>${esc(t.title)}</h3>\n<table class="cmp">${head}\n${body}</table>${notes}`;
}

export const comparisonSection: Section = {
  id: 'comparison',
  title: 'Comparison',
  render(d) {
    const tables = d.sources.flatMap((s) => s.tables.map((t) => (d.sources.length > 1 ? { ...t, title: `${s.label} — ${t.title}` } : t)));
    if (tables.length === 0) return null;
    return '<p>Cells: mean ± sample standard deviation over seeds (n); the teacher and RTN are deterministic (one run). ' +
      'Bold: the best quantized row(s) per column. Hover a cell for its per-seed values.</p>\n' + tables.map(tableHtml).join('\n');
  },
};
