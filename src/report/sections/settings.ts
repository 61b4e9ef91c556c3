// Settings: per run directory, what ran — the command line as typed, the settings the runs were
// made with (reproduce.json's / the KD-QAT config), the seeds, and what it cost.
import { esc } from '../page.js';
import { chunks, type Section } from '../section.js';

/** A shell-quoted command line (what to paste to run it again). */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[\w./:=,@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const value = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export const settingsSection: Section = {
  id: 'settings',
  title: 'Settings',
  render(d) {
    return d.sources.map((s) => {
      const kv = Object.entries(s.settings).filter(([, v]) => v !== '' && v !== null && !(Array.isArray(v) && v.length === 0));
      // A long config (kdqat qat's ~25 keys) in three key/value column pairs.
      const per = kv.length > 10 ? 3 : 1;
      const rows = chunks(kv, per).map((c) => `<tr>${c.map(([k, v]) => `<th>${esc(k)}</th><td>${esc(value(v))}</td>`).join('')}</tr>`).join('');
      const facts = [['directory', s.dir], ['seeds', s.seeds.join(', ')], ...s.facts]
        .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
      return `<div class="source"><h3>${esc(s.label)} <small>(${esc(s.kind === 'qat' ? 'kdqat qat' : s.experiment === 'demo' ? 'kdqat demo' : `kdqat reproduce ${s.experiment}`)})</small></h3>\n` +
        (s.description ? `<p>${esc(s.description)}</p>\n` : '') +
        `<p>Command:</p><pre class="cmd"><code>${esc(s.command.length ? shellLine(s.command) : '(not recorded)')}</code></pre>\n` +
        `<div class="kv"><table class="settings"><caption>settings</caption>${rows}</table><table class="facts"><caption>run</caption>${facts}</table></div></div>`;
    }).join('\n');
  },
};
