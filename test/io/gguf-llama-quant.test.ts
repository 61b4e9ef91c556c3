// llama.cpp runs kdqat's low-bit GGUF exports of the shipped teacher (teachers/llama-sotu) as
// kdqat's forward runs the same dequantized weights (Q8_0, Q4_0, TQ2_0, Q2_K … Q6_K, and
// llama-quantize's Q4_K_M mix). llama.cpp's CPU matmul for Q8_0/Q4_0
// weights quantizes the activations to Q8_0 on the fly (TQ2_0, K-quants: Q8_K), and how exactly depends
// on its CPU variant (AVX2, AVX-512, AMX, repacked layouts): gguf-matmul-bound.test.ts checks
// one quantized matmul against the exact bound. Through four layers no useful worst-case bound
// exists, so this test compares llama.cpp with two kdqat runs of the dequantized weights:
// "plain" (float activations) and "sim" (inputs quantized as llama.cpp's reference quantizers
// do, WeightFn.input). Bound, per position (measure: max |Δ log p| / logit range, agreement()):
// every variant's quantized activation, like the simulated one, lies within e of the float one
// (the bound of gguf-matmul-bound), so llama.cpp's and the simulated activations differ by at
// most 2e per element; to first order the logits move linearly with that, so
//   |cpp − sim| ≤ 2·|sim − plain| + F   and   |cpp − plain| ≤ 3·|sim − plain| + F,
// with |sim − plain| (the effect of one full activation quantization) measured by kdqat on the
// same positions and F the float32 allowance of the F32 test (f32Tolerance). Where llama.cpp's
// argmax differs from ours, our top-two margin must be within that tolerance. The comparison
// has teeth: a GGUF whose q/k rows were not permuted and a wrong reading of the Q4_0/TQ2_0
// block layout exceed it many times, and the full-precision teacher is further from llama.cpp's
// run than the dequantized weights are (the file holds the quantized weights).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { intTensor, noGrad, Tensor } from '../../src/tensor/index.js';
import { llamaForward, type LlamaConfig } from '../../src/models/llama.js';
import { loadModelDir, type LoadedModel } from '../../src/io/model-dir.js';
import { exportLlamaGguf, permuteQK } from '../../src/io/gguf.js';
import { FORMATS, fakeQuantRef, type FormatName } from '../../src/quant/formats.js';
import { kMixTypes } from '../../src/quant/kmix.js';
import { readF16 } from '../../src/quant/blocks.js';
import type { Params, WeightFn } from '../../src/nn/params.js';
import { fromF16, toF16 } from '../../src/io/half.js';
import { loadTokenizer } from '../../src/tokenize/index.js';
import { loadCorpus, splitChronological } from '../../src/data/index.js';
import { dequantQ4_0Interleaved, logSoftmax } from './gguf-fixtures.js';
import { agreement, argmaxFlipsWithin, f32Tolerance, runLlamaCpp, type Agreement, type CppRun } from './llamacpp.js';
import { tmpDir } from '../util.js';

const TEACHER = fileURLToPath(new URL('../../teachers/llama-sotu', import.meta.url));
const GEN = 32;
const TYPES: FormatName[] = ['Q8_0', 'Q4_0', 'TQ2_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
const PROJ = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

let dir = '';
let llama: Llama;
let m: LoadedModel;
let cfg: LlamaConfig;
let tokenizerJson = '';
let prompt: number[] = [];
before(async () => {
  dir = tmpDir('llamaq');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  m = loadModelDir(TEACHER);
  cfg = m.config as LlamaConfig;
  tokenizerJson = fs.readFileSync(m.tokenizerPath!, 'utf8');
  // A passage from the latest address (held out of the teacher's training by the split).
  const docs = loadCorpus('sotu').documents;
  const { test: held } = splitChronological(docs, (d) => Number(d.meta.year), { valid: 0.05, test: 0.05 });
  prompt = loadTokenizer(m.tokenizerPath!).encode(held[held.length - 1].text.slice(0, 600), { addSpecialTokens: false }).slice(0, 48);
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The weights the GGUF holds, as floats: projections in `type`, embedding/head Q8_0 (the
 *  export's default), norms as they are. `deq` reads a block buffer (formats.ts by default). */
function dequantized(params: Params, type: FormatName, deq = (f: FormatName, b: Uint8Array) => FORMATS[f].dequantizeRef(b)): Params {
  const out: Params = new Map();
  for (const [name, p] of params) {
    const f: FormatName | null = PROJ.test(name) ? type : p.shape.length === 2 ? 'Q8_0' : null;
    out.set(name, f ? new Tensor(deq(f, FORMATS[f].quantizeRef(p.f32)), p.shape) : p);
  }
  return out;
}

// llama.cpp's CPU matmul quantizes a quantized weight's input on the fly (ggml-cpu
// type_traits_cpu vec_dot_type): Q8_0 for Q8_0/Q4_0 weights, Q8_K for TQ2_0 and the K-quants. These are those
// activation quantizers as the AVX2 build runs them, for kdqat's forward (WeightFn.input):
//   Q8_0 (arch/x86 quantize_row_q8_0): d = fp16(amax/127), q = rint(x · (127/amax)) ties to even;
//   Q8_K (quantize_row_q8_K_ref): m = signed max, s = -127/m, q = min(127, rint(s·x)), d = 1/s (f32).
function actQ8_0(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = fromF16(toF16(Math.fround(amax / 127))), id = amax ? Math.fround(127 / amax) : 0;
    for (let j = 0; j < 32; j++) y[b + j] = roundEven(Math.fround(x[b + j] * id)) * d;
  }
  return y;
}
function actQ8_K(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 256) {
    let amax = 0, max = 0;
    for (let j = 0; j < 256; j++) if (Math.abs(x[b + j]) > amax) { amax = Math.abs(x[b + j]); max = x[b + j]; }
    if (!amax) continue;
    const s = Math.fround(-127 / max), d = Math.fround(1 / s);
    for (let j = 0; j < 256; j++) y[b + j] = Math.fround(Math.min(127, roundEven(Math.fround(s * x[b + j]))) * d);
  }
  return y;
}
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** Weights as they are, inputs quantized as llama.cpp does for a file of `type`. */
function llamaCppActivations(type: FormatName): WeightFn {
  return Object.assign((_n: string, p: Tensor) => p, {
    input: (n: string, x: Tensor) => new Tensor((PROJ.test(n) && FORMATS[type].block === 256 ? actQ8_K : actQ8_0)(x.f32), x.shape),
  });
}

/** kdqat logits, one row per position. */
function logits(params: Params, ids: readonly number[], weight?: WeightFn): Float32Array[] {
  const V = cfg.vocabSize;
  return noGrad(() => {
    const z = llamaForward(params, cfg, intTensor([...ids], [1, ids.length]), { weight }).logits.f32;
    return ids.map((_, t) => z.subarray(t * V, (t + 1) * V));
  });
}

async function exportAndRun(name: string, params: Params, type: FormatName): Promise<CppRun> {
  const file = path.join(dir, `${name}.gguf`);
  assert.ok(m.hf.arch === 'llama');
  exportLlamaGguf(file, { config: m.hf, params, tokenizerJson, dtype: type });
  return runLlamaCpp(llama, file, prompt, GEN, cfg.vocabSize);
}

/** Our logits on llama.cpp's own token sequence (prompt + its continuation), vs llama.cpp. */
function against(cpp: CppRun, params: Params, weight?: WeightFn): Agreement {
  return agreement(logits(params, [...prompt, ...cpp.tokens.slice(0, -1)], weight), cpp);
}

/** The inverse of permuteQK: row (h, half, 2) → (h, 2, half). */
function unpermuteQK(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2, out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) out.set(w.subarray(((h * half + i) * 2 + s) * cols, ((h * half + i) * 2 + s + 1) * cols), ((h * 2 + s) * half + i) * cols);
    }
  }
  return out;
}

const fmt = (a: Agreement): string => `worst ${a.worst.toExponential(2)}, mean ${a.mean.toExponential(2)} × range, argmax ${(100 * a.argmax).toFixed(1)}%`;

const runs = new Map<FormatName, CppRun>();
/** The plain-comparison tolerance of each type's run, for the wrong-layout test. */
const tol = new Map<FormatName, number>();

for (const type of TYPES) {
  test(`llama.cpp ≈ kdqat on the ${type} export of the SOTU teacher`, async (t) => {
    const cpp = await exportAndRun(type, m.params, type);
    runs.set(type, cpp);
    const deq = dequantized(m.params, type);
    const plainRows = logits(deq, [...prompt, ...cpp.tokens.slice(0, -1)]);
    const simRows = logits(deq, [...prompt, ...cpp.tokens.slice(0, -1)], llamaCppActivations(type));
    const a = agreement(plainRows, cpp), sim = agreement(simRows, cpp);
    const effect = agreement(plainRows, { logp: simRows.map(logSoftmax), tokens: [] }); // |sim − plain|
    const fullSim = against(cpp, m.params, llamaCppActivations(type)); // the unquantized teacher
    const F = f32Tolerance(cfg);
    tol.set(type, 3 * effect.worst + F);
    t.diagnostic(`${type}: plain ${fmt(a)}; with activation quantization ${fmt(sim)}; activation-quantization effect ` +
      `${fmt(effect)}; full-precision teacher with activation quantization ${fmt(fullSim)}`);
    assert.ok(sim.worst <= 2 * effect.worst + F, `${type}: |cpp − sim| ${sim.worst.toExponential(2)} > 2·${effect.worst.toExponential(2)} + ${F.toExponential(2)}`);
    assert.ok(a.worst <= 3 * effect.worst + F, `${type}: |cpp − plain| ${a.worst.toExponential(2)} > 3·${effect.worst.toExponential(2)} + ${F.toExponential(2)}`);
    const flips = argmaxFlipsWithin(simRows, cpp, 2 * effect.worst + F);
    assert.equal(flips.outside, 0, `${type}: llama.cpp's argmax differs at ${flips.outside} position(s) where our margin exceeds the tolerance`);
    // The comparison sees the weight quantization: the full-precision teacher is further from
    // llama.cpp than the dequantized weights are.
    assert.ok(fullSim.mean > sim.mean, `${type}: full-precision teacher ${fmt(fullSim)} vs dequantized ${fmt(sim)}`);
  });
}

test('llama.cpp ≈ kdqat on the Q4_K_M export (llama-quantize\'s mix: Q4_K, Q6_K for some attn_v/ffn_down and the tied head)', async (t) => {
  const types = kMixTypes(cfg, 'Q4_K_M');
  const file = path.join(dir, 'Q4_K_M.gguf');
  assert.ok(m.hf.arch === 'llama');
  exportLlamaGguf(file, { config: m.hf, params: m.params, tokenizerJson, dtype: 'Q4_K', types });
  const cpp = await runLlamaCpp(llama, file, prompt, GEN, cfg.vocabSize);
  const deq: Params = new Map();
  for (const [name, p] of m.params) {
    const f = types.get(name);
    deq.set(name, f && f !== 'F32' ? new Tensor(fakeQuantRef(FORMATS[f], p.f32), p.shape) : p);
  }
  assert.equal(types.get('model.embed_tokens.weight'), 'Q6_K'); // tied: token_embd takes the output rule
  // Every quantized matmul of this file takes Q8_K activations (all its weights are K-quants).
  const k8: WeightFn = Object.assign((_n: string, p: Tensor) => p, { input: (_n: string, x: Tensor) => new Tensor(actQ8_K(x.f32), x.shape) });
  const ids = [...prompt, ...cpp.tokens.slice(0, -1)];
  const plainRows = logits(deq, ids), simRows = logits(deq, ids, k8);
  const a = agreement(plainRows, cpp), sim = agreement(simRows, cpp);
  const effect = agreement(plainRows, { logp: simRows.map(logSoftmax), tokens: [] });
  const F = f32Tolerance(cfg);
  t.diagnostic(`Q4_K_M: plain ${fmt(a)}; with activation quantization ${fmt(sim)}; effect ${fmt(effect)}`);
  assert.ok(sim.worst <= 2 * effect.worst + F, `Q4_K_M: |cpp − sim| ${sim.worst.toExponential(2)} > 2·${effect.worst.toExponential(2)} + ${F.toExponential(2)}`);
  assert.ok(a.worst <= 3 * effect.worst + F, `Q4_K_M: |cpp − plain| ${a.worst.toExponential(2)} > 3·${effect.worst.toExponential(2)} + ${F.toExponential(2)}`);
  assert.equal(argmaxFlipsWithin(simRows, cpp, 2 * effect.worst + F).outside, 0);
});

test('the tolerance catches a wrong q/k permutation and a wrong block layout', async (t) => {
  // A GGUF whose q/k rows were not permuted: pre-apply the inverse permutation, which the
  // exporter's permutation undoes (rows permute whole, so the blocks are the same).
  const unpermuted: Params = new Map(m.params);
  const H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads;
  for (const [name, p] of m.params) {
    const heads = name.endsWith('q_proj.weight') ? H : name.endsWith('k_proj.weight') ? Hkv : 0;
    if (!heads) continue;
    const [rows, cols] = p.shape;
    const w = unpermuteQK(p.f32, rows, cols, heads);
    assert.deepEqual(permuteQK(w, rows, cols, heads), p.f32);
    unpermuted.set(name, new Tensor(w, p.shape));
  }
  const wrongPerm = await exportAndRun('Q4_0-unpermuted', unpermuted, 'Q4_0');
  const deq = dequantized(m.params, 'Q4_0');
  const perm = against(wrongPerm, deq);
  // Wrong layouts, read on our side against llama.cpp's run of the right file: Q4_0 nibbles as
  // interleaved pairs (byte j = elements 2j, 2j+1), TQ2_0 2-bit fields as consecutive elements.
  const q4Interleaved = (f: FormatName, b: Uint8Array): Float32Array =>
    (f === 'Q4_0' ? dequantQ4_0Interleaved(b) : FORMATS[f].dequantizeRef(b));
  const tq2Consecutive = (f: FormatName, b: Uint8Array): Float32Array => {
    if (f !== 'TQ2_0') return FORMATS[f].dequantizeRef(b);
    const y = new Float32Array((b.length / 66) * 256);
    for (let i = 0; i < b.length / 66; i++) {
      const d = readF16(b, i * 66 + 64);
      for (let j = 0; j < 64; j++) for (let n = 0; n < 4; n++) y[i * 256 + 4 * j + n] = (((b[i * 66 + j] >>> (2 * n)) & 3) - 1) * d;
    }
    return y;
  };
  const q4 = against(runs.get('Q4_0')!, dequantized(m.params, 'Q4_0', q4Interleaved));
  const tq2 = against(runs.get('TQ2_0')!, dequantized(m.params, 'TQ2_0', tq2Consecutive));
  const msg = `unpermuted q/k ${fmt(perm)}; Q4_0 interleaved nibbles ${fmt(q4)}; TQ2_0 consecutive fields ${fmt(tq2)}`;
  t.diagnostic(msg);
  // Each must fail the plain comparison's tolerance of its type (3·effect + F).
  assert.ok(perm.worst > tol.get('Q4_0')!, `unpermuted q/k passes: ${fmt(perm)}`);
  assert.ok(q4.worst > tol.get('Q4_0')!, `Q4_0 wrong layout passes: ${fmt(q4)}`);
  assert.ok(tq2.worst > tol.get('TQ2_0')!, `TQ2_0 wrong layout passes: ${fmt(tq2)}`);
});
