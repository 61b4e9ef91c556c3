// Sizes of the model files in the runs: the teacher's weights as the reference, each student's
// latent weights and its integer codes, and any GGUF / ONNX export found under the directory.
import { esc } from '../page.js';
import type { Section } from '../section.js';

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export const exportsSection: Section = {
  id: 'exports',
  title: 'Model files and exports',
  render(d) {
    const all = d.sources.filter((s) => s.exports.length);
    if (all.length === 0) return null;
    return all.map((s) => {
      const ref = s.exports.find((e) => e.role === 'teacher (reference)')?.bytes ?? null;
      const max = Math.max(...s.exports.map((e) => e.bytes), 1);
      const rows = s.exports.map((e) => `<tr><td class="l"><code>${esc(e.file)}</code></td><td class="l">${esc(e.role)}</td><td class="l">${esc(e.format)}</td>` +
        `<td>${esc(humanBytes(e.bytes))}</td><td>${e.bytes}</td><td>${ref ? `${(100 * e.bytes / ref).toFixed(1)}%` : '—'}</td>` +
        `<td class="l"><div class="bar" style="width:${(100 * e.bytes / max).toFixed(1)}%"></div></td></tr>`).join('\n');
      return `<h3>${esc(s.label)}</h3>\n<table class="files"><tr><th class="l">file</th><th class="l">what</th><th class="l">format</th><th>size</th><th>bytes</th><th>of the teacher</th><th class="l barcol"></th></tr>\n${rows}</table>`;
    }).join('\n') + '<p class="note">Relative paths are inside the run directory. Export a student with <code>kdqat export --model DIR/student --format gguf|onnx --out DIR/…</code> and its file appears here.</p>';
  },
};
