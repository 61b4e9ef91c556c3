import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadMultipleChoice } from '../../src/data/multiple-choice.js';
import { writeJsonl } from '../../src/data/jsonl.js';
import { FIXTURES, assertFileErrors, tmpFile, tmpPath, cleanup } from './helpers.js';

after(cleanup);

test('loads items, keeping an optional id', () => {
  assert.deepEqual(loadMultipleChoice(path.join(FIXTURES, 'mc.jsonl')), [
    { context: 'The river', choices: ['flows.', 'sings.'], label: 0 },
    { context: 'Two plus two is', choices: ['three', 'four', 'five'], label: 1, id: 'math-1' },
  ]);
});

test('errors name the file, the line and the problem', () => {
  const ok = '{"context":"c","choices":["a","b"],"label":0}';
  const cases: [string, number | undefined, string][] = [
    [`${ok}\n{"context": "c", "choices": [\n`, 2, 'not valid JSON'],
    [`${ok}\n${ok}\n{"choices":["a","b"],"label":0}\n`, 3, 'missing field "context"'],
    ['{"context":"c","label":0}\n', 1, 'missing field "choices"'],
    ['{"context":"c","choices":["a","b"]}\n', 1, 'missing field "label"'],
    ['{"context":1,"choices":["a","b"],"label":0}\n', 1, '"context" must be a string'],
    ['{"context":"c","choices":"a b","label":0}\n', 1, '"choices" must be an array of strings'],
    ['{"context":"c","choices":["a",2],"label":0}\n', 1, '"choices" must be an array of strings'],
    ['{"context":"c","choices":["a"],"label":0}\n', 1, '"choices" has 1 entries, need at least 2'],
    ['{"context":"c","choices":["a","a"],"label":0}\n', 1, '"choices" contains duplicates'],
    ['{"context":"c","choices":["a",""],"label":0}\n', 1, '"choices" contains an empty string'],
    [`${ok}\n{"context":"c","choices":["a","b"],"label":2}\n`, 2, '"label" 2 is out of range for 2 choices — use 0…1'],
    ['{"context":"c","choices":["a","b"],"label":-1}\n', 1, 'out of range'],
    ['{"context":"c","choices":["a","b"],"label":"0"}\n', 1, '"label" must be an integer index'],
    ['{"context":"c","choices":["a","b"],"label":0,"id":7}\n', 1, '"id" must be a string'],
    ['\n', undefined, 'is empty (no JSON lines)'],
  ];
  assertFileErrors(loadMultipleChoice, cases);
});

test('writeJsonl: atomic write, refuses to overwrite without force, round-trips', () => {
  const f = tmpPath('out.jsonl');
  const recs = [{ context: 'x', choices: ['a', 'b'], label: 1 }];
  writeJsonl(f, recs);
  assert.deepEqual(loadMultipleChoice(f), recs);
  assert.throws(() => writeJsonl(f, []), (e: Error) => e.message === `${f}: already exists — pass { force: true } to overwrite it, or choose another path`);
  writeJsonl(f, [...recs, ...recs], { force: true });
  assert.equal(loadMultipleChoice(f).length, 2);
  assert.deepEqual(fs.readdirSync(path.dirname(f)).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  assert.throws(() => writeJsonl(path.join(f + '-missing-dir', 'x.jsonl'), recs), /does not exist — create it first/);
});
