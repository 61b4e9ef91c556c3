// The fuzz corpus (issue 16): a seeded, reproducible list of malformed inputs over every file
// kdqat reads, each a valid tiny input (scripts/fuzz/base.ts) with one thing changed, the command
// a user would run on it, and what its one error message must name. The same seed and the same
// kdqat give the same cases (mutations draw from src/tensor/rng.ts; the base inputs are built
// from fixed seeds). scripts/fuzz.ts runs them (`npm run fuzz`).
//
//   tsx scripts/fuzz-corpus.ts [--seed N] [--out DIR]
//     prints the cases per category; with --out, writes every case's workspace to DIR/<n>/ with
//     its command line in DIR/<n>/case.json (to replay one by hand).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Rng } from '../src/tensor/rng.js';
import { buildBase, type Base } from './fuzz/base.js';
import type { FuzzCase } from './fuzz/case.js';
import { safetensorsCases } from './fuzz/corpus-model.js';
import { configCases, studentCases, tokenizerCases, tokenizerConfigCases } from './fuzz/corpus-json.js';
import { pathCases } from './fuzz/corpus-paths.js';
import { settingsCases, taskCases, textCases } from './fuzz/corpus-data.js';
import { ggufCases } from './fuzz/corpus-gguf.js';

export type { FuzzCase } from './fuzz/case.js';
export { buildBase, type Base } from './fuzz/base.js';

export const DEFAULT_SEED = 16;

/** Every case for `seed`, in a fixed order; each category draws from its own Rng stream so that
 *  adding cases to one category does not change the others. */
export function generateCorpus(seed: number, base: Base): FuzzCase[] {
  const stream = (k: number): Rng => new Rng(seed * 1009 + k);
  const out: FuzzCase[] = [];
  out.push(...safetensorsCases(stream(1), base, 330));
  configCases(stream(2), out);
  tokenizerCases(stream(3), out);
  tokenizerConfigCases(stream(4), out);
  studentCases(stream(5), base, out);
  pathCases(stream(6), out);
  textCases(stream(7), out);
  taskCases(stream(8), out);
  settingsCases(stream(9), out);
  const gguf: FuzzCase[] = [];
  ggufCases(stream(10), base, gguf, 200);
  out.push(...gguf);
  const seen = new Set<string>();
  for (const c of out) {
    // Ids are unique (a repeated mutation gets a suffix), so a failure names one case.
    let id = c.id;
    for (let k = 2; seen.has(id); k++) id = `${c.id}.${k}`;
    c.id = id;
    seen.add(id);
  }
  return out;
}

/** A seeded sample of `k` cases, spread over the categories in proportion (each gets ≥ 1). */
export function sampleCorpus(cases: FuzzCase[], k: number, seed: number): FuzzCase[] {
  if (k >= cases.length) return cases;
  const rng = new Rng(seed ^ 0x5eed);
  const byCat = new Map<string, FuzzCase[]>();
  for (const c of cases) byCat.set(c.category, [...(byCat.get(c.category) ?? []), c]);
  const out: FuzzCase[] = [];
  for (const list of byCat.values()) {
    const want = Math.max(1, Math.round((k * list.length) / cases.length));
    const idx = list.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) { const j = rng.int(i + 1); [idx[i], idx[j]] = [idx[j], idx[i]]; }
    out.push(...idx.slice(0, want).sort((a, b) => a - b).map((i) => list[i]));
  }
  return out;
}

export function countByCategory(cases: FuzzCase[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of cases) m.set(c.category, (m.get(c.category) ?? 0) + 1);
  return m;
}

async function cli(): Promise<void> {
  const args = process.argv.slice(2);
  const val = (k: string): string | undefined => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
  const seed = Number(val('--seed') ?? DEFAULT_SEED);
  const base = await buildBase();
  try {
    const cases = generateCorpus(seed, base);
    for (const [cat, n] of countByCategory(cases)) console.log(`${cat.padEnd(18)} ${n}`);
    console.log(`${'total'.padEnd(18)} ${cases.length} (seed ${seed})`);
    const dir = val('--out');
    if (dir) {
      if (fs.existsSync(dir)) throw new Error(`--out ${dir}: already exists; choose a new directory`);
      cases.forEach((c, i) => {
        const ws = path.join(dir, String(i));
        fs.mkdirSync(ws, { recursive: true });
        c.setup(ws, base);
        const run = 'argv' in c.run ? { kdqat: c.run.argv(ws) } : { library: 'readGgufHeader + readGgufTensor of every tensor' };
        fs.writeFileSync(path.join(ws, 'case.json'), JSON.stringify({ id: c.id, expect: c.expect, file: c.file, field: c.field.split('\u0000'), ...run }, null, 2));
      });
      console.log(`wrote ${cases.length} cases to ${dir}`);
    }
  } finally {
    fs.rmSync(base.root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await cli();
