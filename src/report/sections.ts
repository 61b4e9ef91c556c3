// The run report's sections, in page order: one file per section kind (sections/*.ts); a new
// kind of content is a new file and one line here.
import type { Section } from './section.js';
import { settingsSection } from './sections/settings.js';
import { comparisonSection } from './sections/comparison.js';
import { lossSection } from './sections/loss.js';
import { evaluationSection } from './sections/evaluation.js';
import { signalSection } from './sections/signal.js';
import { freezeAutoSection } from './sections/freeze-auto.js';
import { exportsSection } from './sections/exports.js';

export const SECTIONS: readonly Section[] = [
  settingsSection, comparisonSection, lossSection, evaluationSection, freezeAutoSection, signalSection, exportsSection,
];
