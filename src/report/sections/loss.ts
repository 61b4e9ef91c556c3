// The loss terms of every KD-QAT run against the step (plots.ts's loss figure), up to three runs
// side by side per figure.
import { lossFigure } from '../../analysis/plots.js';
import { chunks, figure, type Section } from '../section.js';

export const lossSection: Section = {
  id: 'loss',
  title: 'Loss terms over steps',
  render(d) {
    const figs = chunks(d.logs).map((c, i) => ({ i, f: lossFigure(c) })).filter((x) => x.f);
    if (figs.length === 0) return null;
    return figs.map(({ i, f }) => figure(`loss-${i}`, f!.svg)).join('\n');
  },
};
