// A section of the run report (report.ts): an id (the anchor), a title, and a function from the
// runs to its HTML, or null when the runs hold nothing for it. One section kind per file under
// sections/; the order of the page is the registry's (sections.ts).
import type { ReportLog, ReportSource } from './runs.js';
import { esc } from './page.js';

export interface ReportData {
  sources: ReportSource[];
  /** The logs drawn: the first seed of every KD-QAT run, labelled (source-prefixed when the
   *  report has several sources). */
  logs: ReportLog[];
}

export interface Section {
  id: string;
  title: string;
  render(d: ReportData): string | null;
}

/** At most 3 runs side by side per figure (panels stay readable); more runs: more figures. */
export const PANELS = 3;

export function chunks<T>(xs: T[], n = PANELS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** An inline figure; `name` is a stable id for tests and links. */
export function figure(name: string, svg: string, caption = ''): string {
  return `<figure class="plot" id="fig-${esc(name)}">${svg.trim()}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>`;
}
