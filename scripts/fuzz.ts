// `npm run fuzz`: runs the fuzz corpus (scripts/fuzz-corpus.ts) and prints the counts per
// category. Cases run in-process in a worker child (scripts/fuzz/worker.ts: fast, and the same
// error handling as the kdqat command); the worker is watched from here, so a case that hangs
// (no result within --timeout) or kills the process (SIGSEGV, SIGABRT, …) is recorded as such,
// and a new worker continues with the next case.
//
//   tsx scripts/fuzz.ts [--seed N] [--sample K] [--category NAME] [--timeout MS] [--verbose]
// Exit code 1 when any case fails.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_SEED, buildBase, countByCategory, generateCorpus, sampleCorpus, type FuzzCase } from './fuzz-corpus.js';
import type { CaseResult } from './fuzz/check.js';

const WORKER = fileURLToPath(new URL('./fuzz/worker.ts', import.meta.url));
const ROOT = path.dirname(path.dirname(WORKER));

export interface FuzzOptions {
  seed?: number;
  /** Run a seeded sample of this many cases (spread over the categories). */
  sample?: number;
  category?: string;
  /** Per case, ms (default 60 s: a tiny model; a hang is a case that never ends). */
  timeoutMs?: number;
  onResult?: (r: CaseResult) => void;
  /** Ids run before the selected cases (the runner's self-test: selftest/hang, selftest/segv,
   *  selftest/abort, with KDQAT_FUZZ_SELFTEST=1 in the environment). */
  prepend?: string[];
}

export interface FuzzReport { results: CaseResult[]; total: number; seed: number }

/** Case ids of the run (generated here once to pick them; the worker regenerates them). */
async function selectIds(o: FuzzOptions): Promise<{ ids: string[]; cats: Map<string, string> }> {
  const base = await buildBase();
  try {
    let cases: FuzzCase[] = generateCorpus(o.seed ?? DEFAULT_SEED, base);
    if (o.category) cases = cases.filter((c) => c.category === o.category);
    if (o.sample) cases = sampleCorpus(cases, o.sample, o.seed ?? DEFAULT_SEED);
    return { ids: cases.map((c) => c.id), cats: new Map(cases.map((c) => [c.id, c.category])) };
  } finally {
    fs.rmSync(base.root, { recursive: true, force: true });
  }
}

/** Runs ids in a worker; resolves with the results and, if the worker died or hung, the id it was on. */
function runWorker(seed: number, ids: string[], timeoutMs: number, onResult: (r: CaseResult) => void):
  Promise<{ done: Set<string>; died?: { id: string; how: string; stderr: string } }> {
  return new Promise((resolve) => {
    // The worker's files (base inputs, a core dump) live in a directory this process removes when
    // the worker has gone, however it ended.
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-fuzz-'));
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { cwd: ROOT, stdio: ['pipe', 'ignore', 'pipe', 'pipe'] });
    const done = new Set<string>();
    let current: string | null = null, timer: NodeJS.Timeout | null = null, hung = false, buf = '', stderr = '';
    // Building the base inputs takes a few seconds before the first case starts.
    const arm = (ms: number): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, ms);
    };
    arm(timeoutMs + 120_000);
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    child.stdio[3]!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.start) { current = msg.start; arm(timeoutMs); }
        if (msg.result) { done.add(msg.result.id); current = null; onResult(msg.result); arm(timeoutMs); }
      }
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      fs.rmSync(scratch, { recursive: true, force: true });
      if (current === null && (code === 0 || done.size === ids.length)) return resolve({ done });
      const id = current ?? ids.find((i) => !done.has(i))!;
      const how = hung ? `hang (no result within ${timeoutMs} ms)` : signal ? `killed by ${signal}` : `worker exit code ${code}`;
      resolve({ done, died: { id, how, stderr } });
    });
    child.stdin!.end(JSON.stringify({ seed, ids, scratch }));
  });
}

export async function runFuzz(o: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = o.seed ?? DEFAULT_SEED, timeoutMs = o.timeoutMs ?? 60_000;
  const selected = await selectIds(o);
  const ids = [...(o.prepend ?? []), ...selected.ids], cats = selected.cats;
  const results: CaseResult[] = [];
  const push = (r: CaseResult): void => { results.push(r); o.onResult?.(r); };
  let left = ids;
  while (left.length) {
    const { done, died } = await runWorker(seed, left, timeoutMs, push);
    if (!died) break;
    // The case the worker was on failed (hang or crash); a new worker goes on after it.
    if (!done.has(died.id)) {
      push({ id: died.id, category: cats.get(died.id) ?? died.id.split('/')[0], pass: false, problems: [died.how], code: -1, message: died.stderr.split('\n').slice(-5).join('\n'), ms: 0 });
    }
    const i = left.indexOf(died.id);
    left = left.slice(i + 1).filter((id) => !done.has(id));
  }
  return { results, total: ids.length, seed };
}

/** "category  cases  pass  fail" rows. */
export function summarize(r: FuzzReport): string {
  const rows = new Map<string, { n: number; pass: number }>();
  for (const x of r.results) {
    const row = rows.get(x.category) ?? { n: 0, pass: 0 };
    row.n++;
    if (x.pass) row.pass++;
    rows.set(x.category, row);
  }
  const lines = [`${'category'.padEnd(18)} ${'cases'.padStart(6)} ${'pass'.padStart(6)} ${'fail'.padStart(6)}`];
  let n = 0, pass = 0;
  for (const [cat, row] of [...rows].sort()) {
    lines.push(`${cat.padEnd(18)} ${String(row.n).padStart(6)} ${String(row.pass).padStart(6)} ${String(row.n - row.pass).padStart(6)}`);
    n += row.n;
    pass += row.pass;
  }
  lines.push(`${'total'.padEnd(18)} ${String(n).padStart(6)} ${String(pass).padStart(6)} ${String(n - pass).padStart(6)}`);
  return lines.join('\n');
}

async function cli(): Promise<void> {
  const args = process.argv.slice(2);
  const val = (k: string): string | undefined => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const verbose = args.includes('--verbose');
  const t0 = performance.now();
  const report = await runFuzz({
    seed: val('--seed') === undefined ? undefined : Number(val('--seed')),
    sample: val('--sample') === undefined ? undefined : Number(val('--sample')),
    category: val('--category'),
    timeoutMs: val('--timeout') === undefined ? undefined : Number(val('--timeout')),
    onResult: (r) => {
      if (!r.pass) console.log(`FAIL ${r.id}: ${r.problems.join('; ')}\n     ${r.message.replace(/\n/g, '\n     ')}`);
      else if (verbose) console.log(`ok   ${r.id} (${r.ms} ms): ${r.message}`);
    },
  });
  console.log(`\nfuzz corpus, seed ${report.seed}: ${report.results.length} of ${report.total} cases in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  console.log(summarize(report));
  process.exitCode = report.results.length === report.total && report.results.every((r) => r.pass) ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await cli();
export { countByCategory };
