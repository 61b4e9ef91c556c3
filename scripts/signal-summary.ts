// The signal-propagation evidence of a `kdqat reproduce ov-freeze` directory as one table per
// metric: for each quantizer and method (KD-QAT, KD-QAT + ov-freeze, …), the mean of a signal
// (qat_log.jsonl's `signal`, METHODS.md §4) per module kind over layers, logged steps and seeds,
// and each kind's ratio to the median kind. Paper A's argument is that v_proj and o_proj carry
// the largest weight gradients and oscillate most across rounding boundaries under low-bit
// KD-QAT; this says, per bit width, whether they do here.
//
// Usage: npx tsx scripts/signal-summary.ts DIR [--metric grad_norm,cross_rate] [--json]
//   DIR: the --out of `kdqat reproduce ov-freeze` (runs/<run>/<seed>/qat_log.jsonl)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readSignalLog } from '../src/analysis/signal-log.js';
import { MODULE_KINDS } from '../src/models/registry.js';
import { median } from '../src/report/table.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { metric: { type: 'string', default: 'grad_norm,cross_rate' }, json: { type: 'boolean', default: false } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: npx tsx scripts/signal-summary.ts DIR (the --out of kdqat reproduce ov-freeze)');
const runsDir = path.join(dir, 'runs');
if (!fs.existsSync(runsDir)) throw new Error(`${dir}: no runs/ directory; pass the --out of kdqat reproduce ov-freeze`);
const metrics = a.metric!.split(',').filter(Boolean);

interface Row { run: string; seeds: number; kinds: Record<string, number> }

const out: Record<string, Row[]> = {};
for (const metric of metrics) {
  out[metric] = [];
  for (const run of fs.readdirSync(runsDir).sort()) {
    const sums = new Map<string, { sum: number; n: number }>();
    let seeds = 0;
    for (const seed of fs.readdirSync(path.join(runsDir, run))) {
      const log = path.join(runsDir, run, seed, 'qat_log.jsonl');
      if (!fs.existsSync(log)) continue;
      seeds++;
      for (const e of readSignalLog(log)) {
        const byKind = e.signal?.[metric as keyof typeof e.signal] as Record<string, (number | null)[]> | undefined;
        for (const [kind, values] of Object.entries(byKind ?? {})) {
          for (const v of values) {
            if (v === null) continue; // not measured (a frozen weight has no gradient)
            const acc = sums.get(kind) ?? { sum: 0, n: 0 };
            acc.sum += v;
            acc.n++;
            sums.set(kind, acc);
          }
        }
      }
    }
    if (seeds === 0 || sums.size === 0) continue;
    out[metric].push({ run, seeds, kinds: Object.fromEntries([...sums].map(([k, s]) => [k, s.sum / s.n])) });
  }
}

if (a.json) {
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
} else {
  for (const metric of metrics) {
    const rows = out[metric];
    const kinds = MODULE_KINDS.filter((k) => rows.some((r) => k in r.kinds));
    process.stdout.write(`\n${metric}: mean over layers, logged steps and seeds (× the median kind of the run)\n\n`);
    process.stdout.write(`| run | seeds | ${kinds.join(' | ')} |\n|---|---|${kinds.map(() => '---').join('|')}|\n`);
    for (const r of rows) {
      const med = median(Object.values(r.kinds))!; // a row has at least one kind
      const cell = (k: string): string => (k in r.kinds ? `${r.kinds[k].toPrecision(3)} (${(r.kinds[k] / med).toFixed(2)}×)` : '—');
      process.stdout.write(`| ${r.run} | ${r.seeds} | ${kinds.map(cell).join(' | ')} |\n`);
    }
  }
}
