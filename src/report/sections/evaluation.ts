// The periodic evaluations of KD-QAT (--eval-every: validation perplexity / KL to the teacher,
// or dev accuracy) against the step, runs overlaid.
import { evalFigures } from '../../analysis/plots-steps.js';
import { figure, type Section } from '../section.js';

export const evaluationSection: Section = {
  id: 'evaluation',
  title: 'Evaluation over steps',
  render(d) {
    if (d.logs.length === 0) return null;
    const figs = evalFigures(d.logs);
    if (figs.length === 0) {
      return '<p class="note">No periodic evaluations in these logs (the runs evaluated at the end only: see the comparison; ' +
        '<code>kdqat qat --eval-every n</code> evaluates during training).</p>';
    }
    return `<div class="row">${figs.map((f) => figure(f.name, f.svg)).join('\n')}</div>`;
  },
};
