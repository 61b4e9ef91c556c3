// The llama.cpp bar on the shipped LM teacher (teachers/llama-sotu) and real text: the
// teacher exported to GGUF F32 and run by llama.cpp (node-llama-cpp) agrees with kdqat's
// llamaForward on a held-out State of the Union passage: at every position of the prompt and of
// llama.cpp's 32-token greedy continuation, max |Δ log p| is within the float32 allowance of a
// whole forward pass (f32Tolerance in llamacpp.ts: 2·2·(7L + 2)·γ_K of the logit range), and
// wherever llama.cpp's argmax differs from ours our top-two margin is within that allowance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { llamaForward, type LlamaConfig } from '../../src/models/llama.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { loadCorpus, splitChronological } from '../../src/data/index.js';
import { agreement, argmaxFlipsWithin, f32Tolerance, runLlamaCpp } from './llamacpp.js';
import { tmpDir } from '../util.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
const GEN = 32;

let dir = '';
let llama: Llama;
before(async () => {
  dir = tmpDir('teacher');
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
  const V = cfg.vocabSize;
  const cpp = await runLlamaCpp(llama, file, prompt, GEN, V);

  // kdqat: the logits of every position of llama.cpp's sequence, in one pass.
  const ids = [...prompt, ...cpp.tokens.slice(0, -1)];
  const z = noGrad(() => llamaForward(m.params, cfg, intTensor(ids, [1, ids.length])).logits.f32);
  const ours = ids.map((_, t) => z.subarray(t * V, (t + 1) * V));
  const tol = f32Tolerance(cfg);
  const { worst } = agreement(ours, cpp);
  assert.ok(worst <= tol, `max |Δ log p| = ${worst.toExponential(2)} × range (> ${tol.toExponential(2)})`);
  assert.equal(argmaxFlipsWithin(ours, cpp, tol).outside, 0, 'llama.cpp picks a different token where our margin exceeds the tolerance');
});
