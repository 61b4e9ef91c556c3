// The run report (`kdqat report RUN_DIR... --out report.html`, and report.html at the end of
// `kdqat demo` / `kdqat reproduce`): one self-contained HTML page for one or several runs, the
// sections of sections.ts in order, in the page shell of page.ts (inline SVG, nothing fetched).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWrite } from '../io/atomic.js';
import { esc, htmlPage } from './page.js';
import { readSource, type ReportLog, type ReportSource } from './runs.js';
import type { ReportData } from './section.js';
import { SECTIONS } from './sections.js';

/** The file name demo and reproduce write into their output directory. */
export const REPORT_FILE = 'report.html';

/** The logs the figures draw: the first seed of each run; labels made unique across sources. */
export function reportData(sources: ReportSource[]): ReportData {
  const logs: ReportLog[] = [];
  for (const s of sources) {
    const first = new Map<string, ReportLog>();
    for (const l of s.logs) if (!first.has(l.run) || l.seed < first.get(l.run)!.seed) first.set(l.run, l);
    for (const l of first.values()) logs.push({ ...l, label: sources.length > 1 && l.label !== s.label ? `${s.label}: ${l.label}` : l.label });
  }
  const seen = new Map<string, number>();
  for (const l of logs) {
    const n = (seen.get(l.label) ?? 0) + 1;
    seen.set(l.label, n);
    if (n > 1) l.label = `${l.label} (${n})`;
  }
  return { sources, logs };
}

const CSS = 'h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}h3{margin-top:22px}' +
  'figure.plot{margin:10px 0 18px}figure.plot svg{max-width:100%;height:auto}' +
  'td.l,th.l{text-align:left}table.cmp td,table.cmp th{padding:3px 8px;font-size:13px}table.cmp tr:first-child th{background:#f3f3f3}' +
  '.kv{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}.kv th{text-align:left;background:#f7f7f7}.kv td{text-align:left}' +
  'caption{text-align:left;font-weight:bold;padding:2px 0}pre.cmd{background:#f3f3f3;padding:8px;white-space:pre-wrap;word-break:break-all}' +
  '.note{color:#555;font-size:13px}.toc{font-size:13px}nav{font-size:14px;margin:8px 0 16px}nav a{margin-right:14px}' +
  'table.files td{font-size:12px}td .bar{background:#4e79a7;height:10px;min-width:1px}th.barcol,table.files td:last-child{width:200px}' +
  'small{color:#666;font-weight:normal}.row{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}.kv table.facts{max-width:720px}';

/** The page for these sources. */
export function reportHtml(sources: ReportSource[], o: { generated?: Date } = {}): string {
  if (sources.length === 0) throw new Error('report: no run directories');
  const d = reportData(sources);
  const parts = SECTIONS.map((s) => ({ s, html: s.render(d) })).filter((x) => x.html !== null);
  const title = `kdqat report: ${sources.map((s) => s.label).join(', ')}`;
  const when = (o.generated ?? new Date()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const body = `<h1>${esc(title)}</h1>\n<p class="note">Written ${esc(when)} by <code>kdqat report</code> from ${sources.map((s) => `<code>${esc(s.dir)}</code>`).join(', ')}. ` +
    `${d.logs.length} KD-QAT log${d.logs.length === 1 ? '' : 's'} drawn (the first seed of each run).</p>\n` +
    `<nav>${parts.map(({ s }) => `<a href="#${s.id}">${esc(s.title)}</a>`).join('')}</nav>\n` +
    parts.map(({ s, html }) => `<section id="${s.id}">\n<h2>${esc(s.title)}</h2>\n${html}\n</section>`).join('\n');
  return htmlPage({ title, css: CSS, body });
}

/** Reads the run directories and writes the page to `out` atomically (never over an existing
 *  file without `force`). Returns the absolute path written. */
export function writeRunReport(dirs: string[], out: string, o: { force?: boolean } = {}): string {
  if (dirs.length === 0) throw new Error('report: give at least one run directory (the --out of kdqat qat, reproduce or demo)');
  const file = path.resolve(out);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new Error(`--out ${out}: is a directory; give a file name such as ${path.join(out, REPORT_FILE)}`);
  if (!o.force && fs.existsSync(file)) throw new Error(`--out ${out}: already exists; pass --force to replace it`);
  const html = reportHtml(dirs.map(readSource));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  atomicWrite(file, o.force ?? false, (w) => w(html));
  return file;
}
