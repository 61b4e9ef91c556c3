// The fuzz worker: a child process of scripts/fuzz.ts that builds the base inputs once, then runs
// the cases it is given in-process (check.ts), one after another. It reports on fd 3, one JSON
// line per event: {"start": id} before a case, {"result": CaseResult} after it, so the parent can
// tell which case was running when the process hung or died of a signal.
//   stdin: {"seed": N, "ids": [case id, ...], "scratch": a directory the parent removes}
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildBase, generateCorpus } from '../fuzz-corpus.js';
import { runCase } from './check.js';

const send = (o: unknown): void => { fs.writeSync(3, `${JSON.stringify(o)}\n`); };

const input = JSON.parse(fs.readFileSync(0, 'utf8')) as { seed: number; ids: string[]; scratch: string };
const base = await buildBase(fs.mkdtempSync(path.join(input.scratch, 'base-')));
try {
  const byId = new Map(generateCorpus(input.seed, base).map((c) => [c.id, c]));
  for (const id of input.ids) {
    // The runner's own test (test/fuzz/fuzz.test.ts) checks that a hang and a native crash are
    // caught and reported against their case: these ids exist only with KDQAT_FUZZ_SELFTEST=1.
    if (process.env.KDQAT_FUZZ_SELFTEST === '1' && id.startsWith('selftest/')) {
      send({ start: id });
      // A core file, if the system writes one, lands in a temp directory, not the repository.
      process.chdir(fs.mkdtempSync(path.join(input.scratch, 'selftest-')));
      if (id === 'selftest/hang') for (;;);
      if (id === 'selftest/segv') process.kill(process.pid, 'SIGSEGV');
      if (id === 'selftest/abort') process.abort();
      await new Promise((r) => setTimeout(r, 60_000));
    }
    const c = byId.get(id);
    if (!c) throw new Error(`no case ${id} for seed ${input.seed}`);
    send({ start: id });
    send({ result: await runCase(c, base) });
  }
} finally {
  fs.rmSync(base.root, { recursive: true, force: true });
}
send({ end: true });
