// --ppl-convention llama.cpp: kdqat's perplexity equals what llama.cpp computes the way
// llama-perplexity does (tools/perplexity/perplexity.cpp: chunks of n_ctx, BOS over each
// chunk's first token, the second half scored) on the same model exported to GGUF F32, within
// the float32 allowance of a forward pass; the windows themselves are checked exactly against
// the loop of perplexity.cpp.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { initParams } from '../../src/nn/params.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import type { Model } from '../../src/models/model.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { ggufGet, readGgufHeader } from '../../src/io/gguf_read.js';
import { llamaCppPerplexity, llamaCppWindows } from '../../src/eval/llamacpp-perplexity.js';
import { streamPerplexity } from '../../src/eval/stream-perplexity.js';
import { addedSpecials } from '../../src/cli/eval-tasks.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { byteLevelTokenizer } from '../io/gguf-fixtures.js';
import { f32Tolerance } from '../io/llamacpp.js';
import { tmpDir } from '../util.js';

const BOS = 256;
const CFG: LlamaConfig = {
  vocabSize: 264, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
  numKeyValueHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 64,
  tieWordEmbeddings: false, initializerRange: 0.15,
};
const N_CTX = 24;

let dir = '';
let llama: Llama;
before(async () => {
  dir = tmpDir('pplcpp');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** llama-perplexity's loop, run by llama.cpp on `file`: −log p of each scored token. */
async function llamaCppNll(file: string, tokens: number[], bos: number | null): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ threads: 1, contextSize: 64, batchSize: 64, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const nll: number[] = [];
  try {
    const first = Math.floor(N_CTX / 2);
    const seq = ctx.getSequence();
    for (let c = 0; c + 1 <= Math.floor(tokens.length / N_CTX); c++) {
      const chunk = tokens.slice(c * N_CTX, (c + 1) * N_CTX);
      if (bos !== null) chunk[0] = bos;
      await seq.clearHistory(); // llama_memory_clear: each chunk starts from an empty cache
      const items: ControlledEvaluateInputItem[] = chunk.map((t, j) =>
        j >= first && j <= N_CTX - 2 ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token));
      const res = await seq.controlledEvaluate(items);
      for (let j = first; j <= N_CTX - 2; j++) nll.push(-Math.log(res[j]!.next.probabilities!.get(chunk[j + 1] as Token)!));
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
  return nll;
}

/** The largest logit range over kdqat's scored positions (the unit of f32Tolerance). */
function maxRange(model: Model, tokens: number[], bos: number | null): number {
  let r = 0;
  for (let c = 0; c < Math.floor(tokens.length / N_CTX); c++) {
    const chunk = tokens.slice(c * N_CTX, (c + 1) * N_CTX);
    if (bos !== null) chunk[0] = bos;
    const z = noGrad(() => llamaForward(model.params, CFG, intTensor(chunk, [1, N_CTX])).logits.f32);
    for (let t = 0; t < N_CTX; t++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < CFG.vocabSize; i++) { lo = Math.min(lo, z[t * CFG.vocabSize + i]); hi = Math.max(hi, z[t * CFG.vocabSize + i]); }
      r = Math.max(r, hi - lo);
    }
  }
  return r;
}

for (const bos of [BOS, null]) {
  test(`llama.cpp convention = llama.cpp's own perplexity loop on the GGUF (${bos === null ? 'no BOS' : 'BOS per chunk'})`, async (t) => {
    const model: Model = { arch: 'llama', config: CFG, params: initParams(llamaParamSpec(CFG), 21) };
    const file = path.join(dir, `m-${bos}.gguf`);
    exportLlamaGguf(file, {
      config: CFG, params: model.params, tokenizerJson: byteLevelTokenizer(), dtype: 'F32',
      special: { bosTokenId: BOS, eosTokenId: 257 }, addBosToken: bos !== null,
    });
    // add_bos_token is always written, so llama.cpp does not fall back to its own default.
    assert.equal(ggufGet(readGgufHeader(file), 'tokenizer.ggml.add_bos_token'), bos !== null);
    const rng = new Rng(4);
    const text = Array.from({ length: 3 * N_CTX + 7 }, () => 32 + rng.int(90)); // 3 chunks + a remainder
    const tokens = bos === null ? text : [bos, ...text];
    const ours = llamaCppPerplexity(model, tokens, N_CTX, bos, { batchSize: 2 });
    const cpp = await llamaCppNll(file, tokens, bos);
    assert.equal(ours.tokens, cpp.length, 'scored tokens');
    assert.equal(ours.windows, 3);
    const cppNll = cpp.reduce((a, b) => a + b, 0) / cpp.length;
    // Per scored token |Δ log p| ≤ f32Tolerance · (its logit range); the means differ by no more.
    const bound = f32Tolerance(CFG) * maxRange(model, tokens, bos);
    const own = streamPerplexity(model, tokens, N_CTX);
    t.diagnostic(`nll kdqat ${ours.nll.toFixed(6)} llama.cpp ${cppNll.toFixed(6)} (bound ${bound.toExponential(2)}); kdqat convention ${own.nll.toFixed(6)}`);
    assert.ok(Math.abs(ours.nll - cppNll) <= bound, `|Δ nll| ${Math.abs(ours.nll - cppNll).toExponential(2)} > ${bound.toExponential(2)}`);
    assert.notEqual(own.tokens, ours.tokens, 'the two conventions score different token counts');
  });
}

test('the BOS a tokenizer adds is found from its post-processor; short texts are refused', () => {
  const file = path.join(dir, 'tokenizer.json');
  const json = byteLevelTokenizer();
  fs.writeFileSync(file, JSON.stringify(json));
  assert.deepEqual(addedSpecials(loadTokenizer(file)), { bos: null, addsEos: false });
  json.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [BOS], tokens: ['<s>'] } },
  };
  fs.writeFileSync(file, JSON.stringify(json));
  assert.deepEqual(addedSpecials(loadTokenizer(file)), { bos: BOS, addsEos: false });
  // tokenizer_config.json's flag wins over the template, as in the GGUF export.
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, bos_token: '<s>' }));
  assert.deepEqual(addedSpecials(loadTokenizer(file)), { bos: null, addsEos: false });
  fs.rmSync(path.join(dir, 'tokenizer_config.json'));
  const model: Model = { arch: 'llama', config: CFG, params: initParams(llamaParamSpec(CFG), 1) };
  assert.throws(() => llamaCppPerplexity(model, new Array(2 * N_CTX - 1).fill(40), N_CTX, null), /needs at least 2·seq = 48/);
});

test('the windows follow perplexity.cpp: n_ctx chunks, BOS over each first token, second half scored, remainder dropped', () => {
  const tokens = Array.from({ length: 2 * 10 + 7 }, (_, i) => 100 + i); // n_ctx 10: 2 chunks, 7 dropped
  for (const bos of [5, null]) {
    const w = llamaCppWindows(tokens, 10, bos);
    assert.equal(w.count, 2);
    assert.equal(w.scoreFrom, 5);
    const scored: number[] = [], firsts: number[] = [];
    for (let c = 0; c < w.count; c++) {
      const row = w.data.subarray(c * w.width, (c + 1) * w.width);
      firsts.push(row[0]);
      assert.deepEqual([...row.subarray(1)], tokens.slice(c * 10 + 1, c * 10 + 10), 'chunk tokens');
      // perplexity.cpp: for j in [first, n_ctx − 1): score tokens[start + j + 1]
      scored.push(...row.subarray(w.scoreFrom + 1));
    }
    assert.deepEqual(firsts, bos === null ? [100, 110] : [5, 5]);
    assert.deepEqual(scored, [...tokens.slice(6, 10), ...tokens.slice(16, 20)]);
  }
});
