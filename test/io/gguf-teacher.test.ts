// The llama.cpp bar on the shipped LM teacher (teachers/llama-sotu) and real text: the
// teacher exported to GGUF F32 and run by llama.cpp (node-llama-cpp) agrees with kdqat's
// llamaForward on a held-out State of the Union passage: max |Δ logit| ≤ 1e-3·(logit range)
// at every position, and identical greedy continuations for 32 tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { llamaForward, type LlamaConfig } from '../../src/models/llama.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { loadCorpus, splitChronological } from '../../src/data/index.js';
import { argmax, logSoftmax } from './gguf-fixtures.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
const GEN = 32;

let dir = '';
let llama: Llama;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-teacher-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('llama.cpp ≡ kdqat on the shipped SOTU teacher and held-out text', async () => {
  const m = loadModelDir(TEACHER);
  assert.ok(m.arch === 'llama' && m.hf.arch === 'llama');
  const cfg = m.config as LlamaConfig;
  const tokFile = m.tokenizerPath!;
  const tok = loadTokenizer(tokFile);
  const file = path.join(dir, 'teacher.gguf');
  exportLlamaGguf(file, { config: m.hf, params: m.params, tokenizerJson: fs.readFileSync(tokFile, 'utf8'), dtype: 'F32' });

  // A passage from the latest address (held out of the teacher's training by the split).
  const docs = loadCorpus('sotu').documents;
  const { test: held } = splitChronological(docs, (d) => Number(d.meta.year), { valid: 0.05, test: 0.05 });
  const text = held[held.length - 1].text.slice(0, 600);
  const prompt = tok.encode(text, { addSpecialTokens: false }).slice(0, 48);
  assert.ok(prompt.length === 48, 'the passage encodes to at least 48 tokens');

  // llama.cpp: log-probabilities after each position, greedy continuation.
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({
    threads: 1, contextSize: 128, batchSize: 128, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  const V = cfg.vocabSize;
  const cpp: Float64Array[] = [];
  const cppTokens: number[] = [];
  try {
    const seq = ctx.getSequence();
    const item = (t: number): ControlledEvaluateInputItem => [t as Token, { generateNext: { probabilities: true } }];
    const toLogp = (mp: Map<number, number> | undefined): Float64Array => {
      assert.ok(mp && mp.size === V, `llama.cpp returned ${mp?.size} probabilities, expected ${V}`);
      const out = new Float64Array(V);
      for (const [t, p] of mp) out[t] = Math.log(p);
      return out;
    };
    let res = await seq.controlledEvaluate(prompt.map(item));
    for (let i = 0; i < prompt.length; i++) cpp.push(toLogp(res[i]?.next.probabilities));
    for (let g = 0; g < GEN; g++) {
      const next = argmax(cpp[cpp.length - 1]);
      cppTokens.push(next);
      if (g === GEN - 1) break;
      res = await seq.controlledEvaluate([item(next)]);
      cpp.push(toLogp(res[0]?.next.probabilities));
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }

  // kdqat: greedy continuation, then the logits of every position in one pass.
  const forward = (ids: number[]): Float32Array[] => noGrad(() => {
    const z = llamaForward(m.params, cfg, intTensor(ids, [1, ids.length])).logits.f32;
    return ids.map((_, t) => z.subarray(t * V, (t + 1) * V));
  });
  const ids = [...prompt];
  for (let g = 0; g < GEN; g++) {
    const rows = forward(ids);
    ids.push(argmax(rows[rows.length - 1]));
  }
  const ours = forward(ids.slice(0, -1));
  assert.deepEqual(cppTokens, ids.slice(prompt.length), 'greedy continuations differ');
  let worst = 0;
  for (let t = 0; t < cpp.length; t++) {
    const z = ours[t];
    let lo = Infinity, hi = -Infinity;
    for (const v of z) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const mine = logSoftmax(z);
    let d = 0;
    for (let i = 0; i < V; i++) d = Math.max(d, Math.abs(mine[i] - cpp[t][i]));
    worst = Math.max(worst, d / (hi - lo));
  }
  assert.ok(worst <= 1e-3, `max |Δ logit| = ${worst.toExponential(2)} × range (> 1e-3)`);
});
