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
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { intTensor, noGrad } from '../../src/tensor/index.js';
import { llamaForward, type LlamaConfig } from '../../src/models/llama.js';
import { loadModelDir } from '../../src/io/model-dir.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { loadCorpus, splitChronological } from '../../src/data/index.js';
import { argmax } from './gguf-fixtures.js';
import { agreement, runLlamaCpp } from './llamacpp.js';

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
  const V = cfg.vocabSize;
  const cpp = await runLlamaCpp(llama, file, prompt, GEN, V);

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
  assert.deepEqual(cpp.tokens, ids.slice(prompt.length), 'greedy continuations differ');
  const { worst } = agreement(ours, cpp);
  assert.ok(worst <= 1e-3, `max |Δ logit| = ${worst.toExponential(2)} × range (> 1e-3)`);
});
