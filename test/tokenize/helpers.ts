// Helpers for the tokenizer tests: corpora (read once), trained tokenizers (trained once per
// process), temp files, and random Unicode text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { Rng } from '../../src/tensor/rng.js';
import { mobyDickText, sotuTexts } from '../../src/tokenize/corpus.js';

let sotu: string[] | null = null;
export const SOTU = (): string[] => (sotu ??= sotuTexts());
let moby: string | null = null;
export const MOBY = (): string => (moby ??= mobyDickText());

export { tmpDir } from '../util.js';

/** Asserts two id arrays are equal, reporting the first difference (not a 2M-element diff). */
export function sameIds(a: readonly number[], b: readonly number[], what: string): void {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: first difference at index ${i}: ${a[i]} vs ${b[i]}`);
  }
  assert.equal(a.length, b.length, `${what}: lengths differ`);
}

const PIECES = [
  'Hello', ' world', "'s", "'ll", ' don\'t', '  ', '   ', '\t', '\t\t', '\r\n', '\n', '\n\n', ' \n ', '\r',
  '😀', '👩‍👩‍👧‍👦', '👍🏽', '🇺🇸', '🏳️‍🌈', '中文', '日本語のテキスト', '한국어', 'العربية', 'हिन्दी', 'ไทย',
  'é', 'e\u0301', 'a\u0300\u0316\u0301', '\u0301', 'Ω', 'ß', 'ﬁ', 'İ', 'ΣΑΣ', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '１２３', '½',
  '\u00a0', '\u2028', '\u200b', '\ufeff', '\u0000', '\u007f', '\u0085', '\ufffd', '\uE000', '\u{10FFFD}',
  '2024', '3.14', '$1,000', '...', '—', '“quoted”', '<s>', '</s>', '<pad>', '<|endoftext|>', '[CLS]', '<', 's>',
];

/** A random well-formed string: pieces above, random code points (no lone surrogates), ASCII. */
export function randomText(rng: Rng, maxPieces = 30): string {
  let s = '';
  const n = 1 + rng.int(maxPieces);
  for (let i = 0; i < n; i++) {
    const r = rng.uniform();
    if (r < 0.5) s += PIECES[rng.int(PIECES.length)];
    else if (r < 0.75) s += String.fromCharCode(32 + rng.int(95));
    else {
      let cp: number;
      do cp = rng.uniform() < 0.7 ? rng.int(0x10000) : rng.int(0x110000);
      while (cp >= 0xd800 && cp <= 0xdfff);
      s += String.fromCodePoint(cp);
    }
  }
  return s;
}

export { Rng };
