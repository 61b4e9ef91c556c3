// Automatic freeze selection (`--freeze auto`, src/train/freeze-auto.ts): per run with a probe
// record, the rule, what it chose (and the preset that equals, e.g. ov), what the probe cost, and
// the evidence as layer × kind heatmaps (HTML tables shaded on a log scale per table): the four
// signals (relative gradient norm, update ratio, boundary-crossing rate, Hessian trace per weight)
// and the rule's score max(r_grad, r_curv) with the flagged modules in bold. Frozen kinds are
// marked in every table's header. Several seeds of a run: the choice of each, the evidence of
// the first.
import type { FreezeAutoRecord, ModuleEvidence } from '../../train/freeze-auto.js';
import type { FreezeAutoRun } from '../runs.js';
import { esc } from '../page.js';
import type { Section } from '../section.js';

interface Panel {
  key: string;
  title: string;
  value(m: ModuleEvidence): number | null;
  /** Tooltip extra (e.g. the standard error). */
  extra?(m: ModuleEvidence): string;
}

const PANELS: Panel[] = [
  { key: 'grad_rel', title: 'relative gradient norm ‖∇W‖/‖W‖', value: (m) => m.grad_rel },
  { key: 'update_ratio', title: 'update ratio ‖ΔW‖/‖W‖ per step', value: (m) => m.update_ratio },
  { key: 'cross_rate', title: 'rounding-boundary crossings per step (fraction of codes)', value: (m) => m.cross_rate },
  { key: 'hess_mean', title: 'Hessian trace per weight tr(H)/n (Hutchinson)', value: (m) => m.hess_mean, extra: (m) => (m.hess_se !== null ? ` ± ${fmt(m.hess_se)} (s.e.)` : '') },
  {
    key: 'score', title: 'rule score max(r_grad, r_curv) (ratios to the median of the layer; bold: flagged)',
    value: (m) => (m.r_grad === null && m.r_curv === null ? null : Math.max(m.r_grad ?? 0, m.r_curv ?? 0)),
    extra: (m) => ` (r_grad ${m.r_grad === null ? '—' : fmt(m.r_grad)}, r_curv ${m.r_curv === null ? '—' : fmt(m.r_curv)})`,
  },
];

const meds = (xs: (number | null)[]): string => xs.map((x) => (x === null ? '—' : fmt(x))).join(', ');
const fmt = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(3) : v.toExponential(2));

/** One signal as a layer × kind table, shaded by log10 of the value within the table. */
function heatmap(rec: FreezeAutoRecord, p: Panel, id: string): string {
  const kinds = rec.kinds.map((k) => k.kind);
  const frozen = new Set(rec.kinds.filter((k) => k.frozen).map((k) => k.kind));
  const layers = [...new Set(rec.modules.map((m) => m.layer))].sort((a, b) => a - b);
  const at = new Map(rec.modules.map((m) => [`${m.layer}/${m.kind}`, m]));
  const logs = rec.modules.map(p.value).filter((v): v is number => v !== null && v > 0).map(Math.log10);
  const lo = Math.min(...logs), hi = Math.max(...logs);
  const shade = (v: number | null): string => {
    if (v === null || !(v > 0) || logs.length === 0) return 'background:#eee';
    const t = hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 0.5;
    const a = 0.08 + 0.82 * t;
    return `background:rgba(78,121,167,${a.toFixed(3)})${a > 0.55 ? ';color:#fff' : ''}`;
  };
  const head = `<tr><th>layer</th>${kinds.map((k) => `<th${frozen.has(k) ? ' class="frozen" title="frozen by the rule"' : ''}>${esc(k)}${frozen.has(k) ? ' ❄' : ''}</th>`).join('')}</tr>`;
  const rows = layers.map((l) => `<tr><th>${l}</th>${kinds.map((k) => {
    const m = at.get(`${l}/${k}`);
    if (!m) return '<td></td>';
    const v = p.value(m);
    const text = v === null ? '—' : fmt(v);
    const title = `${m.name}: ${v === null ? 'not measured' : fmt(v)}${p.extra?.(m) ?? ''}${m.flagged ? '; flagged' : ''}`;
    const body = p.key === 'score' && m.flagged ? `<b>${text}</b>` : text;
    return `<td style="${shade(v)}${frozen.has(k) ? ';outline:2px dashed #c44;outline-offset:-3px' : ''}" title="${esc(title)}">${body}</td>`;
  }).join('')}</tr>`).join('');
  return `<table class="cmp fauto" id="${esc(id)}" style="margin-bottom:14px"><caption>${esc(p.title)}</caption>${head}${rows}</table>`;
}

function runBlock(runs: FreezeAutoRun[], idBase: string): string {
  const first = runs[0], rec = first.record;
  const chose = (r: FreezeAutoRecord): string => (r.patterns.length ? r.patterns.map((p) => `<code>${esc(p)}</code>`).join(', ') : 'nothing');
  const seeds = runs.length > 1
    ? `<p>Chosen per seed: ${runs.map((r) => `seed ${r.seed}: ${chose(r.record)}`).join('; ')}. Evidence below: seed ${first.seed}.</p>`
    : `<p>Chosen: ${chose(rec)}.</p>`;
  const pr = rec.probe;
  const cost = `Probe: ${pr.steps} KD-QAT steps (batch ${pr.batch}, its own seed ${pr.seed}) and ${pr.vectors} Rademacher vectors for the curvature; ` +
    `${pr.student_passes} student forward+backward and ${pr.teacher_passes} teacher forward passes, ${pr.seconds} s.`;
  const kinds = rec.kinds.map((k) => `${esc(k.kind)}: flagged in ${k.flagged_layers.length}/${k.layers} layers${k.frozen ? ' → frozen' : ''}`).join('; ');
  return `<div class="source"><h3>${esc(first.label)}</h3>\n${seeds}\n` +
    `<p class="note">Rule (R = ${rec.ratio}): ${esc(rec.rule)}. ${esc(kinds)}. ` +
    `Medians per layer: ‖∇W‖/‖W‖ ${meds(rec.medians.grad_rel)}; curvature cost ${meds(rec.medians.curv_cost)}. ${esc(cost)}</p>\n` +
    `<div class="row">${PANELS.map((p) => heatmap(rec, p, `${idBase}-${p.key}`)).join('\n')}</div></div>`;
}

export const freezeAutoSection: Section = {
  id: 'freeze-auto',
  title: 'Automatic freeze selection',
  render(d) {
    const blocks: string[] = [];
    d.sources.forEach((s, si) => {
      const byRun = new Map<string, FreezeAutoRun[]>();
      for (const r of s.freezeAuto ?? []) byRun.set(r.run, [...(byRun.get(r.run) ?? []), r]);
      let ri = 0;
      for (const runs of byRun.values()) {
        runs.sort((a, b) => a.seed - b.seed);
        const label = d.sources.length > 1 && runs[0].label !== s.label ? `${s.label}: ${runs[0].label}` : runs[0].label;
        blocks.push(runBlock(runs.map((r) => ({ ...r, label })), `fauto-${si}-${ri++}`));
      }
    });
    if (blocks.length === 0) return null;
    return '<p class="note">What <code>--freeze auto</code> measured in its probe (docs/freeze-auto.md) and what it froze. ' +
      'Cells: one module (layer × kind), shaded by the value on a log scale within its table; ❄ and a dashed outline: a frozen kind.</p>\n' + blocks.join('\n');
  },
};
