// Perplexity windows over a token stream: every token after the first is predicted exactly once,
// the tail is scored, and the result agrees with perplexity() on the same windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initParams } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import type { Model } from '../../src/models/model.js';
import { perplexity } from '../../src/eval/perplexity.js';
import { streamPerplexity, streamWindows } from '../../src/eval/stream-perplexity.js';
import { U64, gamma } from '../bounds.js';

test('windows: inputs never overlap, each target appears once, the tail is kept', () => {
  for (const [N, T] of [[2, 1], [10, 3], [11, 5], [9, 4], [5, 8], [100, 7]]) {
    const stream = Array.from({ length: N }, (_, i) => i);
    const w = streamWindows(stream, T);
    const targets: number[] = [];
    const inputs: number[] = [];
    const rows = [
      ...Array.from({ length: w.full.count }, (_, r) => w.full.data.subarray(r * w.full.width, (r + 1) * w.full.width)),
      ...(w.tail ? [w.tail.data] : []),
    ];
    for (const row of rows) {
      assert.ok(row.length <= T + 1 && row.length >= 2);
      inputs.push(...row.subarray(0, -1));
      targets.push(...row.subarray(1));
    }
    assert.deepEqual(targets, stream.slice(1), `N=${N} T=${T}: targets`);
    assert.deepEqual(inputs, stream.slice(0, -1), `N=${N} T=${T}: inputs`);
    assert.equal(w.predicted, N - 1);
    assert.equal(w.tail === null, (N - 1) % T === 0);
  }
  assert.throws(() => streamWindows([1], 4), /1 token\(s\): perplexity needs at least 2 tokens/);
});

test('streamPerplexity = token-weighted combination of perplexity() on the full windows and the tail', () => {
  const cfg: LlamaConfig = {
    vocabSize: 50, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2,
    rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 16, tieWordEmbeddings: false, initializerRange: 0.3,
  };
  const model: Model = { arch: 'llama', config: cfg, params: initParams(llamaParamSpec(cfg), 5) };
  const stream = Array.from({ length: 37 }, (_, i) => (i * 7 + 3) % 50);
  const w = streamWindows(stream, 8);
  const a = perplexity(model, w.full, { batchSize: 3 }), b = perplexity(model, w.tail!);
  const nll = (a.nll * a.tokens + b.nll * b.tokens) / (a.tokens + b.tokens);
  let calls = 0;
  const r = streamPerplexity(model, stream, 8, { batchSize: 3, onBatch: () => calls++ });
  assert.equal(r.tokens, 36);
  assert.equal(r.windows, 5);
  // Same windows, same batches: identical float32 per-token terms (deterministic kernels),
  // recombined in float64 here and there: ≤ γ⁽⁶⁴⁾ of the 36 terms' sum.
  assert.ok(Math.abs(r.nll - nll) <= gamma(2 * 36, U64) * nll, `nll ${r.nll} vs ${nll}`);
  assert.equal(r.ppl, Math.exp(r.nll));
  assert.equal(calls, 3, 'progress per batch: 2 batches of full windows + the tail');
});
