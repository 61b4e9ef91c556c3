// The fuzz worker: a child process of scripts/fuzz.ts that builds the base inputs once, then runs
// the cases it is given in-process (check.ts), one after another. It reports on fd 3, one JSON
// line per event: {"start": id} before a case, {"result": CaseResult} after it, so the parent can
// tell which case was running when the process hung or died of a signal.
//   stdin: {"seed": N, "ids": [case id, ...]}
import * as fs from 'node:fs';
import { buildBase, generateCorpus } from '../fuzz-corpus.js';
import { runCase } from './check.js';

const send = (o: unknown): void => { fs.writeSync(3, `${JSON.stringify(o)}\n`); };

const input = JSON.parse(fs.readFileSync(0, 'utf8')) as { seed: number; ids: string[] };
const base = await buildBase();
try {
  const byId = new Map(generateCorpus(input.seed, base).map((c) => [c.id, c]));
  for (const id of input.ids) {
    const c = byId.get(id);
    if (!c) throw new Error(`no case ${id} for seed ${input.seed}`);
    send({ start: id });
    send({ result: await runCase(c, base) });
  }
} finally {
  fs.rmSync(base.root, { recursive: true, force: true });
}
send({ end: true });
