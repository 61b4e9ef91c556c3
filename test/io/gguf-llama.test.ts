// The llama.cpp check: a tiny random LLaMA exported with exportLlamaGguf is run by llama.cpp
// (node-llama-cpp's prebuilt CPU build) and must agree with kdqat: per position, max |Δ log p|
// within the float32 allowance of a forward pass (f32Tolerance in llamacpp.ts, a stated
// rounding bound: 2·2·(7L + 2)·γ_K of the logit range), and identical greedy continuations of
// 32 tokens wherever a continuation is decided by more than that (argmaxFlipsWithin). llama.cpp hands back softmax probabilities, not logits; log p = logit − logsumexp,
// so comparing log-probabilities compares logits up to the per-position constant, which is
// what softmax and greedy decoding see.
//   1. vs a naive float64 HF-semantics forward (gguf-fixtures.ts), needs no compute kernels;
//   2. vs llamaForward, the model kdqat trains (needs the compute kernels).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { intTensor, noGrad, Tensor } from '../../src/tensor/index.js';
import { fromF16, toF16 } from '../../src/io/half.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { llamaForward, llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { Rng } from '../../src/tensor/rng.js';
import { argmax, byteLevelTokenizer, referenceLlama } from './gguf-fixtures.js';
import { agreement, argmaxFlipsWithin, f32Tolerance, runLlamaCpp, type CppRun } from './llamacpp.js';
import { tmpDir } from '../util.js';

const GEN = 32;
const PROMPT = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]; // "Hello, world"

let dir = '';
let llama: Llama;
before(async () => {
  dir = tmpDir('llamacpp');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function tinyLlama(tie: boolean, seed: number): { cfg: LlamaConfig; params: Params } {
  const cfg: LlamaConfig = {
    vocabSize: 264, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
    numKeyValueHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 256,
    tieWordEmbeddings: tie, initializerRange: 0.15,
  };
  const params = initParams(llamaParamSpec(cfg), seed);
  const rng = new Rng(seed + 1);
  for (const [n, p] of params) { // non-trivial norm gains
    if (n.endsWith('norm.weight')) for (let i = 0; i < p.size; i++) p.f32[i] = 1 + 0.3 * rng.normal();
  }
  return { cfg, params };
}

/** kdqat side: logits at every position of llama.cpp's sequence (prompt + its continuation). */
function runOurs(forward: (ids: number[]) => ArrayLike<number>[], cpp: CppRun): ArrayLike<number>[] {
  return forward([...PROMPT, ...cpp.tokens.slice(0, -1)]);
}

/** The bar: log p within `tol` of the logit range everywhere; an argmax that differs from
 *  llama.cpp's only where our margin is within the tolerance (else the continuations differ). */
function compare(ours: ArrayLike<number>[], cpp: CppRun, tol: number, what: string): void {
  assert.equal(cpp.logp.length, ours.length, `${what}: positions`);
  const { worst, worstAt } = agreement(ours, cpp);
  assert.ok(worst <= tol, `${what}: max |Δ log p| = ${worst.toExponential(2)} × range at position ${worstAt} (> ${tol.toExponential(2)})`);
  assert.equal(argmaxFlipsWithin(ours, cpp, tol).outside, 0, `${what}: greedy continuations differ`);
}

function exported(name: string, tie: boolean, dtype: 'F32' | 'F16' = 'F32', seed = 7): { cfg: LlamaConfig; params: Params; file: string } {
  const m = tinyLlama(tie, seed);
  const file = path.join(dir, `${name}.gguf`);
  exportLlamaGguf(file, {
    config: m.cfg, params: m.params, tokenizerJson: byteLevelTokenizer(), dtype, special: { bosTokenId: 256, eosTokenId: 257 },
  });
  return { ...m, file };
}

test('llama.cpp ≡ HF-semantics reference: F32, GQA, untied head (float32 bound, 32 greedy tokens)', async () => {
  const m = exported('untied', false);
  const cpp = await runLlamaCpp(llama, m.file, PROMPT, GEN, m.cfg.vocabSize);
  compare(runOurs((ids) => referenceLlama(m.params, m.cfg, ids), cpp), cpp, f32Tolerance(m.cfg), 'untied F32');
});

test('llama.cpp ≡ HF-semantics reference: tied embeddings (no output.weight)', async () => {
  const m = exported('tied', true, 'F32', 11);
  const cpp = await runLlamaCpp(llama, m.file, PROMPT, GEN, m.cfg.vocabSize);
  compare(runOurs((ids) => referenceLlama(m.params, m.cfg, ids), cpp), cpp, f32Tolerance(m.cfg), 'tied F32');
});

test('llama.cpp runs the F16 export within the fp16 bound of the reference on the rounded weights', async () => {
  const m = exported('f16', false, 'F16');
  const cpp = await runLlamaCpp(llama, m.file, PROMPT, GEN, m.cfg.vocabSize);
  // The reference runs the F16-rounded weights; llama.cpp also rounds each matmul's input to
  // fp16 (vec_dot_type of F16), which the bound adds per reduction.
  const rounded: Params = new Map([...m.params].map(([n, p]) => [n, p.shape.length === 2 ? new Tensor(Float32Array.from(p.f32, (v) => fromF16(toF16(v))), p.shape) : p]));
  compare(runOurs((ids) => referenceLlama(rounded, m.cfg, ids), cpp), cpp, f32Tolerance(m.cfg, { inputRounding: 2 ** -11 }), 'F16');
});

test('llama.cpp ≡ kdqat llamaForward (the issue bar)', async () => {
  const m = exported('ours', false);
  const cpp = await runLlamaCpp(llama, m.file, PROMPT, GEN, m.cfg.vocabSize);
  const V = m.cfg.vocabSize;
  const forward = (ids: number[]): Float32Array[] => noGrad(() => {
    const logits = llamaForward(m.params, m.cfg, intTensor(ids, [1, ids.length])).logits.f32; // (1, T, V)
    return ids.map((_, t) => logits.subarray(t * V, (t + 1) * V));
  });
  compare(runOurs(forward, cpp), cpp, f32Tolerance(m.cfg), 'llamaForward F32');
});
