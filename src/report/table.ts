// A results table: rows = methods, columns = metrics, each cell the mean ± sample standard
// deviation of that metric over seeds. Printed aligned for the terminal, as Markdown, and kept as
// JSON with every per-seed value (src/report/write.ts).
//
// Sample std: s = sqrt(Σ (x - x̄)² / (n - 1)), the spread a reader expects from "± over seeds"
// (numpy's std(ddof=1), pandas' default). With n = 1 there is no spread: the cell shows the
// value alone and `std` is null.

export interface MetricSpec {
  key: string;
  /** Column heading. */
  label: string;
  /** Digits after the decimal point, for mean and std alike. */
  digits: number;
  /** Direction of "better", shown in the Markdown heading as ↑ / ↓. */
  better?: 'higher' | 'lower';
  /** Multiply before display (e.g. 100 for accuracies shown in %). */
  scale?: number;
}

/** One measurement: the seed it came from and its value. */
export interface SeedValue { seed: number; value: number }

export interface TableRow {
  key: string;
  label: string;
  /** metric key → per-seed values (missing key: not measured for this row). */
  values: Record<string, SeedValue[]>;
}

export interface Summary { mean: number; std: number | null; n: number; min: number; max: number }

/** Mean, sample std (null for n < 2), n, min, max. Throws on an empty list or a non-finite value
 *  (a NaN in a results table would hide a failed run). */
export function summarize(xs: readonly number[]): Summary {
  const n = xs.length;
  if (n === 0) throw new RangeError('summarize: no values');
  for (const x of xs) if (!Number.isFinite(x)) throw new RangeError(`summarize: non-finite value ${x}`);
  // Two-pass: mean first, then squared deviations (numerically stable for the small n here).
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : null, n, min: Math.min(...xs), max: Math.max(...xs) };
}

/** The median (the mean of the two middle values for an even count); null for an empty list. */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
  2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];

/** t_{0.975}(df): the table above; beyond it the Cornish–Fisher expansion to 1/df²,
 *  z + (z³ + z)/(4·df) + (5z⁵ + 16z³ + 3z)/(96·df²) (error < 2e-4 for df > 30). */
export function t975(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new RangeError(`t975: degrees of freedom must be a positive integer, got ${df}`);
  const z = 1.959964;
  return df <= T975.length ? T975[df - 1] : z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/** 95% confidence interval of the mean over seeds, mean ± t(n−1)·s/√n; null for n < 2. */
export function meanInterval95(s: Summary): [number, number] | null {
  if (s.std === null) return null;
  const h = t975(s.n - 1) * s.std / Math.sqrt(s.n);
  return [s.mean - h, s.mean + h];
}

/** 95% Wilson score interval of a proportion p measured on n items. */
export function wilson95(p: number, n: number): [number, number] {
  if (!(n >= 1) || !(p >= 0 && p <= 1)) throw new RangeError(`wilson95: need 0 ≤ p ≤ 1 and n ≥ 1, got p=${p}, n=${n}`);
  const z = 1.959964, d = 1 + z * z / n, c = (p + z * z / (2 * n)) / d;
  const h = (z / d) * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

export interface Table {
  title: string;
  metrics: MetricSpec[];
  rows: TableRow[];
  /** Lines printed under the table (derived figures, caveats). */
  notes?: string[];
}

/** "12.34 ± 0.56" (or "12.34" for one seed); scale applied. */
export function formatCell(s: Summary, m: MetricSpec): string {
  const k = m.scale ?? 1;
  const mean = (s.mean * k).toFixed(m.digits);
  return s.std === null ? mean : `${mean} ± ${(s.std * k).toFixed(m.digits)}`;
}

/** The cells of the table as strings: a header row, then one per row. The "n" column is the
 *  number of seeds of the row; a cell whose own count differs says so ("(n=2)"). Unmeasured
 *  cells are "—". */
export function tableCells(t: Table, markdown = false): string[][] {
  const head = ['method', ...t.metrics.map((m) => markdown && m.better ? `${m.label} ${m.better === 'higher' ? '↑' : '↓'}` : m.label), 'n'];
  const body = t.rows.map((r) => {
    const counts = t.metrics.map((m) => r.values[m.key]?.length ?? 0);
    const n = Math.max(0, ...counts);
    const cells = t.metrics.map((m, i) => {
      const v = r.values[m.key];
      if (!v || v.length === 0) return '—';
      const cell = formatCell(summarize(v.map((x) => x.value)), m);
      return counts[i] === n ? cell : `${cell} (n=${counts[i]})`;
    });
    return [r.label, ...cells, String(n)];
  });
  return [head, ...body];
}

const width = (s: string): number => [...s].length; // '±' and '—' are one column each

/** Aligned plain text: the method column left-aligned, numbers right-aligned. */
export function formatText(t: Table): string {
  const cells = tableCells(t);
  const w = cells[0].map((_, c) => Math.max(...cells.map((r) => width(r[c]))));
  const pad = (s: string, c: number): string => c === 0 ? s + ' '.repeat(w[c] - width(s)) : ' '.repeat(w[c] - width(s)) + s;
  const line = (r: string[]): string => r.map(pad).join('  ').trimEnd();
  const rule = w.map((x) => '─'.repeat(x)).join('  ');
  const notes = (t.notes ?? []).map((n) => `${n}\n`).join('');
  return `${t.title}\n${line(cells[0])}\n${rule}\n${cells.slice(1).map(line).join('\n')}\n${notes}`;
}

/** GitHub-flavoured Markdown table (pipes in labels escaped). */
export function formatMarkdown(t: Table): string {
  const cells = tableCells(t, true).map((r) => r.map((s) => s.replace(/\|/g, '\\|')));
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  const align = `|${cells[0].map((_, c) => c === 0 ? ':---' : '---:').join('|')}|`;
  const notes = (t.notes ?? []).length ? `\n${t.notes!.map((n) => `${n}\n`).join('')}` : '';
  return `### ${t.title}\n\n${line(cells[0])}\n${align}\n${cells.slice(1).map(line).join('\n')}\n${notes}`;
}

/** The table as JSON-ready data: per row and metric the summary and every per-seed value. */
export function tableJson(t: Table): unknown {
  return {
    title: t.title,
    metrics: t.metrics,
    rows: t.rows.map((r) => ({
      key: r.key, label: r.label,
      metrics: Object.fromEntries(t.metrics.filter((m) => r.values[m.key]?.length).map((m) => {
        const v = r.values[m.key];
        return [m.key, { ...summarize(v.map((x) => x.value)), values: v }];
      })),
    })),
    notes: t.notes ?? [],
  };
}
