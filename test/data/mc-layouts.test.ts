// Multiple-choice files in the layouts of the Hugging Face datasets (src/data/mc-layouts.ts):
// each fixture's rows read into the items scripts/ref_mc_layouts.py builds from them (the
// lm-evaluation-harness prompts transcribed in Python), and every bad row named with its fix.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadMultipleChoice, loadMultipleChoiceFile } from '../../src/data/multiple-choice.js';
import { LAYOUTS } from '../../src/data/mc-layouts.js';
import { writeJsonl } from '../../src/data/jsonl.js';
import { FIXTURES, assertFileErrors, tmpFile, tmpPath, cleanup } from './helpers.js';

after(cleanup);

const DIR = path.join(FIXTURES, 'mc-layouts');
const EXPECTED = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as Record<string, unknown[]>;

test('each layout reads its rows into the items the harness prompts (scripts/ref_mc_layouts.py)', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), fs.readdirSync(DIR).filter((f) => f.endsWith('.jsonl')).sort());
  for (const [file, items] of Object.entries(EXPECTED)) {
    const got = loadMultipleChoiceFile(path.join(DIR, file));
    assert.equal(got.layout, file.replace(/(-answer)?\.jsonl$/, ''), file);
    assert.deepEqual(got.records, items, file);
  }
  // Every layout has a fixture.
  assert.deepEqual(LAYOUTS.map((l) => `${l.name}.jsonl`).filter((f) => !(f in EXPECTED)), []);
});

test('a layout is picked by the first line and every line must keep to it', () => {
  const arc = fs.readFileSync(path.join(DIR, 'arc.jsonl'), 'utf8').split('\n')[0];
  const mmlu = fs.readFileSync(path.join(DIR, 'mmlu.jsonl'), 'utf8').split('\n')[0];
  // ARC and MMLU share "question" and "choices"; the answer field and the shape of choices tell them apart.
  assert.equal(loadMultipleChoiceFile(tmpFile('a.jsonl', `${arc}\n`)).layout, 'arc');
  assert.equal(loadMultipleChoiceFile(tmpFile('m.jsonl', `${mmlu}\n`)).layout, 'mmlu');
  const mixed = tmpFile('mixed.jsonl', `${arc}\n${mmlu}\n`);
  assert.throws(() => loadMultipleChoice(mixed), (e: Error) =>
    e.message === `${mixed}:2: missing field "answerKey" — the first line is in the arc layout (question, choices, answerKey), so every line needs these fields`);
});

test('bad rows: the file, the line, the field and the fix', () => {
  const hs = (o: Record<string, unknown>): string => JSON.stringify({ activity_label: 'A', ctx_a: 'b.', ctx_b: 'c', endings: ['d', 'e'], label: '0', ...o });
  const cases: [string, number | undefined, string][] = [
    ['{"text": "x", "label": 0}\n', 1, 'no multiple-choice layout has these fields (text, label) — write kdqat\'s items, e.g. {"context"'],
    ['{"text": "x", "label": 0}\n', 1, 'hellaswag (activity_label, ctx_a, ctx_b, endings, label); arc (question, choices, answerKey)'],
    [`${hs({ label: '' })}\n`, 1, '"label" is empty (hellaswag layout) — the test splits of these datasets carry no answers'],
    [`${hs({})}\n${hs({ label: '2' })}\n`, 2, '"label" 2 is out of range for 2 choices (hellaswag layout) — use 0…1'],
    [`${hs({ label: 'x' })}\n`, 1, '"label" must be an integer (or a string of digits), got "x" (hellaswag layout)'],
    [`${hs({ endings: 'd e' })}\n`, 1, '"endings" must be an array of strings, got "d e" (hellaswag layout)'],
    [`${hs({ endings: ['[header]', 'e'] })}\n`, 1, 'choice 0 is empty after the hellaswag prompt\'s preprocessing — fill it in or remove the row'],
    ['{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}\n', 1,
      '"answerKey" "C" is not one of the choice labels ["A","B"] (arc layout)'],
    ['{"question": "q", "choices": {"text": ["a", "b"], "label": ["A"]}, "answerKey": "A"}\n', 1, '"choices" has 2 texts and 1 labels (arc layout)'],
    ['{"question": "q", "choices": {"text": ["a", "b"]}, "answerKey": "A"}\n', 1, 'missing field "label" (arc layout)'],
    ['{"question": "q", "choices": ["a", "b"], "answer": 4}\n', 1, '"answer" 4 is out of range for 2 choices (mmlu layout)'],
    ['{"goal": "g", "sol1": "a", "sol2": "b", "label": -1}\n', 1, '"label" is -1 (piqa layout) — the test splits of these datasets carry no answers'],
    ['{"sentence": "no blank here", "option1": "a", "option2": "b", "answer": "1"}\n', 1, '"sentence" has no "_" blank for the options to fill (winogrande layout)'],
    ['{"sentence": "a _ b", "option1": "a", "option2": "b", "answer": "3"}\n', 1, '"answer" 3 is out of range for 2 choices (winogrande layout) — use 1…2'],
    ['{"premise": "p.", "choice1": "A", "choice2": "B", "question": "reason", "label": 0}\n', 1, '"question" is "reason" (copa layout) — use "cause" or "effect", as COPA does'],
    ['{"passage": "p", "question": "q"}\n', 1, 'missing field "label" (or "answer") (boolq layout)'],
    ['{"passage": "p", "question": "q", "answer": "yes"}\n', 1, '"answer" must be true or false, got "yes" (boolq layout)'],
    ['{"context": "c", "choices": ["a", "b"], "label": 0, "continuation": ""}\n', 1, '"continuation" must be a non-empty string'],
  ];
  assertFileErrors(loadMultipleChoice, cases);
});

test('kdqat\'s own items with a continuation (partial scoring) round-trip through writeJsonl', () => {
  const recs = EXPECTED['winogrande.jsonl'];
  const f = tmpPath('wg.jsonl');
  writeJsonl(f, recs);
  const back = loadMultipleChoiceFile(f);
  assert.equal(back.layout, 'kdqat');
  assert.deepEqual(back.records, recs);
});
