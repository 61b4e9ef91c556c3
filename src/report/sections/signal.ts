// Signal propagation (METHODS.md §4, src/analysis/signal.ts): per metric the mean over layers
// per module kind against the step, and the layer × kind heatmap against the step — gradient
// norms, update ratios, rounding-boundary crossings, SQNR, activation and back-propagated signal
// norms, as the runs logged them.
import { info, meanFigure, metricsOf } from '../../analysis/plots.js';
import { stepHeatmapFigure } from '../../analysis/plots-steps.js';
import { esc } from '../page.js';
import { chunks, figure, type Section } from '../section.js';

// The metrics the study reads first (paper A's argument), then the rest.
const FIRST = ['grad_norm', 'update_ratio', 'cross_rate', 'step_cross_rate', 'sqnr_db'];

export const signalSection: Section = {
  id: 'signal',
  title: 'Signal propagation',
  render(d) {
    const metrics = metricsOf(d.logs);
    if (metrics.length === 0) return null;
    const sorted = [...metrics.filter((m) => FIRST.includes(m)).sort((a, b) => FIRST.indexOf(a) - FIRST.indexOf(b)), ...metrics.filter((m) => !FIRST.includes(m))];
    const nav = sorted.map((m) => `<a href="#signal-${esc(m)}">${esc(info(m).title)}</a>`).join(' · ');
    return `<p class="toc">${nav}</p>\n` + sorted.map((m) => {
      const figs = chunks(d.logs).flatMap((c, i) => {
        const heat = stepHeatmapFigure(c, m);
        return [figure(`signal-${m}-${i}`, meanFigure(c, m).svg), ...(heat ? [figure(`signal-${m}-steps-${i}`, heat.svg)] : [])];
      });
      return `<div class="metric" id="signal-${esc(m)}">\n${figs.join('\n')}\n</div>`;
    }).join('\n');
  },
};
