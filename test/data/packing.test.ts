import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packSequences, batches, encodeDocuments } from '../../src/data/packing.js';
import { maskTokens, IGNORE_INDEX } from '../../src/data/mlm.js';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

test('packing: documents joined with EOS, windows of seqLen + 1 with stride seqLen', () => {
  const w = packSequences([[1, 2, 3], [4, 5], [6, 7, 8, 9]], { seqLen: 4, eosId: 0 });
  // stream: 1 2 3 0 4 5 0 6 7 8 9 0 (12 tokens) → floor(11 / 4) = 2 windows
  assert.equal(w.width, 5);
  assert.equal(w.count, 2);
  assert.deepEqual([...w.data], [1, 2, 3, 0, 4, /**/ 4, 5, 0, 6, 7]);
  assert.equal(w.droppedTokens, 12 - 9);
  const bos = packSequences([[5, 6]], { seqLen: 2, bosId: 9, eosId: 0 });
  assert.deepEqual([...bos.data], [9, 5, 6]);
  const enc = packSequences([[1, 2, 3], [4, 5, 6]], { seqLen: 3, shift: false });
  assert.deepEqual([enc.width, enc.count, [...enc.data]], [3, 2, [1, 2, 3, 4, 5, 6]]);
});

test('packing: every token after the first is a target exactly once', () => {
  const docs = [range(0, 37), range(100, 180), range(200, 203)];
  const w = packSequences(docs, { seqLen: 8, eosId: -1 });
  const stream = docs.flatMap((d) => [...d, -1]);
  const targets: number[] = [];
  for (let r = 0; r < w.count; r++) targets.push(...w.data.subarray(r * w.width + 1, (r + 1) * w.width));
  assert.deepEqual(targets, stream.slice(1, 1 + w.count * 8));
  assert.equal(w.count, Math.floor((stream.length - 1) / 8));
});

test('packing errors', () => {
  assert.throws(() => packSequences([[1, 2]], { seqLen: 4 }), /only 2 tokens, fewer than one window of 5 — use a smaller seqLen/);
  assert.throws(() => packSequences([[1, 2]], { seqLen: 0 }), /seqLen must be a positive integer/);
});

test('batches: targets are inputs shifted by one; seeded order per epoch; each window once', () => {
  const w = packSequences([range(1, 200)], { seqLen: 6 });
  const epoch0 = [...batches(w, 4, 42, 0)];
  assert.equal(epoch0.length, Math.floor(w.count / 4));
  for (const b of epoch0) {
    assert.equal(b.inputs.length, 4 * 6);
    for (let i = 0; i < 4; i++) {
      for (let t = 0; t < 6; t++) assert.equal(b.targets![i * 6 + t], b.inputs[i * 6 + t] + 1);
    }
  }
  const again = [...batches(w, 4, 42, 0)];
  assert.deepEqual(again.map((b) => b.rows), epoch0.map((b) => b.rows));
  const epoch1 = [...batches(w, 4, 42, 1)];
  assert.notDeepEqual(epoch1.map((b) => b.rows), epoch0.map((b) => b.rows));
  const all = [...batches(w, 4, 42, 0, false)].flatMap((b) => b.rows).sort((a, b) => a - b);
  assert.deepEqual(all, range(0, w.count));
  assert.throws(() => batches(w, 1000, 0, 0).next(), /cannot fill one batch of 1000/);
});

test('encodeDocuments uses any encode(text) tokenizer', () => {
  const tok = { encode: (t: string) => [...t].map((c) => c.charCodeAt(0)) };
  assert.deepEqual(encodeDocuments([{ id: 'a', text: 'hi', meta: {} }], tok), [[104, 105]]);
});

test('MLM masking: ~15% chosen, 80/10/10, labels -100 elsewhere, specials untouched', () => {
  const n = 200_000, vocab = 1000, MASK = 3, specials = [0, 1, 2, 3];
  const ids = Int32Array.from({ length: n }, (_, i) => (i % 50 === 0 ? 1 : 4 + (i * 7919) % (vocab - 4)));
  const { inputIds, labels } = maskTokens(ids, { maskId: MASK, vocabSize: vocab, specialIds: specials, seed: 5 });
  let chosen = 0, masked = 0, random = 0, kept = 0, eligible = 0;
  for (let i = 0; i < n; i++) {
    if (ids[i] === 1) {
      assert.equal(labels[i], IGNORE_INDEX);
      assert.equal(inputIds[i], 1);
      continue;
    }
    eligible++;
    if (labels[i] === IGNORE_INDEX) { assert.equal(inputIds[i], ids[i]); continue; }
    assert.equal(labels[i], ids[i]);
    chosen++;
    if (inputIds[i] === MASK) masked++;
    else if (inputIds[i] === ids[i]) kept++;
    else { random++; assert.ok(!specials.includes(inputIds[i]), 'random replacement is never special'); }
  }
  const near = (x: number, p: number, tol: number, what: string) => assert.ok(Math.abs(x - p) < tol, `${what}: ${x} vs ${p}`);
  near(chosen / eligible, 0.15, 0.005, 'chosen');
  near(masked / chosen, 0.8, 0.01, 'mask');
  near(random / chosen, 0.1, 0.01, 'random'); // a random token equal to the original counts as kept (p = 1/996)
  near(kept / chosen, 0.1, 0.01, 'kept');
  const again = maskTokens(ids, { maskId: MASK, vocabSize: vocab, specialIds: specials, seed: 5 });
  assert.deepEqual(again.labels, labels);
});

test('MLM masking chooses at least one token of a short sequence', () => {
  for (let seed = 0; seed < 50; seed++) {
    const { labels } = maskTokens([0, 10, 11, 1], { maskId: 3, vocabSize: 20, specialIds: [0, 1, 3], seed });
    assert.equal(labels[0], IGNORE_INDEX);
    assert.equal(labels[3], IGNORE_INDEX);
    assert.ok(labels[1] !== IGNORE_INDEX || labels[2] !== IGNORE_INDEX);
  }
});
