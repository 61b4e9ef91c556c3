import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSentences, splitParagraphs } from '../../src/data/sentences.js';

test('splits on . ! ? before a capital or a quote', () => {
  assert.deepEqual(splitSentences('It rained. Then it stopped! Did it? "Yes," he said. (Really.) Done.'), [
    'It rained.', 'Then it stopped!', 'Did it?', '"Yes," he said.', '(Really.)', 'Done.',
  ]);
});

test('closing quotes stay with their sentence', () => {
  assert.deepEqual(splitSentences('He said "go home." She went.'), ['He said "go home."', 'She went.']);
});

test('no split after abbreviations and initials', () => {
  assert.deepEqual(splitSentences('Mr. Smith met Dr. Jones at St. Paul. They talked.'), [
    'Mr. Smith met Dr. Jones at St. Paul.', 'They talked.',
  ]);
  assert.deepEqual(splitSentences('John F. Kennedy spoke to the U.S. Senate. It listened.'), [
    'John F. Kennedy spoke to the U.S. Senate.', 'It listened.',
  ]);
});

test('no split before a lowercase word or a number', () => {
  assert.deepEqual(splitSentences('Costs rose 3.5 percent. e.g. this. in 1990. 2000 came.'), [
    'Costs rose 3.5 percent. e.g. this. in 1990. 2000 came.',
  ]);
});

test('paragraph breaks always end a sentence; single newlines do not', () => {
  assert.deepEqual(splitSentences('A heading\n\nThe body\ncontinues here. Next one.'), [
    'A heading', 'The body continues here.', 'Next one.',
  ]);
  assert.deepEqual(splitParagraphs('\n\na\n \nb\n\n\n c \n'), ['a', 'b', 'c']);
});
