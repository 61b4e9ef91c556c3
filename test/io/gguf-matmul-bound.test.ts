// llama.cpp's quantized matmul against an exact bound, on any x86-64 CPU.
//
// A one-layer LLaMA whose attention and MLP output projections are zero is, in llama.cpp, one
// quantized matrix product per position: the residual stream stays the token's embedding row,
// so logits_t = W_out · x_t with x_t = RMSNorm(emb[token_t]) ⊙ g, and W_out the only quantized
// tensor (Q8_0, Q4_0, TQ2_0 or a K-quant Q2_K … Q6_K). kdqat's side is exact (float64 over the dequantized weights), so
// every difference is llama.cpp's arithmetic, which differs between its CPU variants (AVX2,
// AVX-512, AMX, repacked Q4_0 layouts...). What all of them share, and what the bound below
// relies on (ggml-cpu type_traits vec_dot_type; ggml-quants.c quantize_row_q8_0/_q8_K):
//   - the weight blocks are used as stored: kdqat's dequantization of the same bytes;
//   - the activation row is quantized per block to 8 bits, round to nearest, step d = amax/127
//     (Q8_0, blocks of 32, d stored as fp16: for Q8_0 and Q4_0 weights; Q8_K, blocks of 256,
//     d in f32: for TQ2_0 and the K-quants), so |x − x̂| ≤ e = d·(1/2 + 127·(ρ + 4u)), ρ the relative rounding
//     of the stored d (2⁻¹¹ for fp16, u for f32) and 4u for computing x·(1/d);
//   - block dot products are exact integers, combined with float scales in some order: at most
//     γ_K·Σ|w||x̂| of rounding (γ_n = n·u/(1 − n·u), u = 2⁻²⁴, K the row length);
//   - x itself is RMSNorm in float32: |δx| ≤ 8u·|x| (sum of squares in double, then four roundings).
// Hence per logit |Δz_i| ≤ B_i = Σ_j |w_ij|·(e_j + 8u|x_j|) + γ_K·Σ_j |w_ij|·(|x_j| + e_j), with
// e_j computed from amax inflated by 2⁻¹⁰ (llama.cpp's amax is of its own float32 x). llama.cpp
// returns probabilities; log p = z − logsumexp(z), so |Δ log p_i| ≤ B_i + max_k B_k + γ_V + 3u
// (its float32 softmax: a sum of V terms and an exp per term). The test asserts this for every
// logit of every position. Teeth: the activation-quantization term is needed (the rounding
// terms alone are exceeded), and a wrong reading of the weight blocks exceeds the bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { initParams, type Params } from '../../src/nn/params.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { exportLlamaGguf } from '../../src/io/gguf.js';
import { FORMATS, type FormatName } from '../../src/quant/formats.js';
import { Rng } from '../../src/tensor/rng.js';
import { byteLevelTokenizer, dequantQ4_0Interleaved, logSoftmax } from './gguf-fixtures.js';
import { runLlamaCpp } from './llamacpp.js';
import { U32, gamma } from '../bounds.js';
import { tmpDir } from '../util.js';


const CFG: LlamaConfig = {
  vocabSize: 512, hiddenSize: 256, intermediateSize: 256, numHiddenLayers: 1, numAttentionHeads: 4,
  numKeyValueHeads: 4, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 256,
  tieWordEmbeddings: false, initializerRange: 0.02,
};
// 40 distinct byte tokens (ids < 256 of the byte-level tokenizer).
const PROMPT = Array.from({ length: 40 }, (_, i) => 33 + ((i * 37) % 90));
/** Activation block and relative rounding of its stored step, per weight type. */
const ACT: Record<FormatName, { block: number; rho: number }> = {
  Q8_0: { block: 32, rho: 2 ** -11 }, Q4_0: { block: 32, rho: 2 ** -11 }, TQ2_0: { block: 256, rho: U32 },
  // The K-quants' dot products take Q8_K activations too (vec_dot_type, float32 scale).
  Q2_K: { block: 256, rho: U32 }, Q3_K: { block: 256, rho: U32 }, Q4_K: { block: 256, rho: U32 },
  Q5_K: { block: 256, rho: U32 }, Q6_K: { block: 256, rho: U32 },
};

let dir = '';
let llama: Llama;
before(async () => {
  dir = tmpDir('matmul');
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The model: random embedding, norm gain and head; every other matrix zero. */
function model(seed: number): Params {
  const params = initParams(llamaParamSpec(CFG), seed);
  const rng = new Rng(seed + 1);
  for (const [n, p] of params) {
    if (n === 'model.embed_tokens.weight') for (let i = 0; i < p.size; i++) p.f32[i] = rng.normal();
    else if (n === 'lm_head.weight') for (let i = 0; i < p.size; i++) p.f32[i] = 0.2 * rng.normal(); // logits ~ N(0, 10)
    else if (n === 'model.norm.weight') for (let i = 0; i < p.size; i++) p.f32[i] = 1 + 0.3 * rng.normal();
    else if (p.shape.length === 2) p.f32.fill(0);
  }
  return params;
}

/** x_t = RMSNorm(emb[token]) ⊙ g in float64, one row per position. */
function normed(params: Params, ids: readonly number[]): Float64Array[] {
  const C = CFG.hiddenSize, emb = params.get('model.embed_tokens.weight')!.f32, g = params.get('model.norm.weight')!.f32;
  return ids.map((id) => {
    const row = emb.subarray(id * C, (id + 1) * C);
    let ms = 0;
    for (const v of row) ms += v * v;
    const r = 1 / Math.sqrt(ms / C + CFG.rmsNormEps);
    return Float64Array.from(row, (v, i) => v * r * g[i]);
  });
}

/** Exact logits W·x and the per-logit bound B of the header. */
function logitsAndBound(w: Float32Array, x: Float64Array, type: FormatName, withAct = true): { z: Float64Array; b: Float64Array } {
  const K = x.length, V = w.length / K, { block, rho } = ACT[type];
  const e = new Float64Array(K);
  for (let b0 = 0; b0 < K; b0 += block) {
    let amax = 0;
    for (let j = b0; j < b0 + block; j++) amax = Math.max(amax, Math.abs(x[j]));
    const step = (amax * (1 + 2 ** -10)) / 127;
    e.fill(withAct ? step * (0.5 + 127 * (rho + 4 * U32)) : 0, b0, b0 + block);
  }
  const z = new Float64Array(V), b = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    let s = 0, act = 0, mag = 0;
    for (let j = 0; j < K; j++) {
      const aw = Math.abs(w[i * K + j]), ax = Math.abs(x[j]);
      s += w[i * K + j] * x[j];
      act += aw * (e[j] + 8 * U32 * ax);
      mag += aw * (ax + e[j]);
    }
    z[i] = s;
    b[i] = act + gamma(K) * mag;
  }
  return { z, b };
}

/** max over positions and logits of |Δ log p| − (its bound); ≤ 0 means within the bound. */
function excess(cppLogp: Float64Array[], w: Float32Array, xs: Float64Array[], type: FormatName, withAct = true): { worst: number; ratio: number } {
  let worst = -Infinity, ratio = 0;
  xs.forEach((x, t) => {
    const { z, b } = logitsAndBound(w, x, type, withAct);
    const mine = logSoftmax(z);
    let bmax = 0;
    for (const v of b) bmax = Math.max(bmax, v);
    for (let i = 0; i < z.length; i++) {
      const bound = b[i] + bmax + gamma(CFG.vocabSize) + 3 * U32;
      const d = Math.abs(mine[i] - cppLogp[t][i]);
      worst = Math.max(worst, d - bound);
      ratio = Math.max(ratio, d / bound);
    }
  });
  return { worst, ratio };
}

for (const type of ['Q8_0', 'Q4_0', 'TQ2_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as FormatName[]) {
  test(`llama.cpp's ${type} matmul is within the activation-quantization bound of the exact product`, async (t) => {
    const params = model(3);
    const file = path.join(dir, `${type}.gguf`);
    exportLlamaGguf(file, {
      config: CFG, params, tokenizerJson: byteLevelTokenizer(), dtype: 'F32',
      types: new Map([['lm_head.weight', type]]), special: { bosTokenId: 256, eosTokenId: 257 },
    });
    const cpp = await runLlamaCpp(llama, file, PROMPT, 1, CFG.vocabSize);
    const f = FORMATS[type];
    const w = f.dequantizeRef(f.quantizeRef(params.get('lm_head.weight')!.f32)); // what the file holds
    const xs = normed(params, PROMPT);
    const inBound = excess(cpp.logp, w, xs, type);
    const roundingOnly = excess(cpp.logp, w, xs, type, false);
    t.diagnostic(`${type}: max |Δ log p| / bound = ${inBound.ratio.toFixed(3)}; without the activation term ${roundingOnly.ratio.toFixed(1)}×`);
    assert.ok(inBound.worst <= 0, `${type}: |Δ log p| exceeds the bound by ${inBound.worst.toExponential(2)}`);
    // llama.cpp does quantize the activations: the float-rounding terms alone do not cover it.
    assert.ok(roundingOnly.worst > 0, `${type}: llama.cpp agrees to float rounding; the activation term was not needed`);
  });
}

test('a wrong reading of the Q4_0 blocks exceeds the bound', async () => {
  const params = model(5);
  const file = path.join(dir, 'Q4_0-layout.gguf');
  exportLlamaGguf(file, {
    config: CFG, params, tokenizerJson: byteLevelTokenizer(), dtype: 'F32',
    types: new Map([['lm_head.weight', 'Q4_0']]), special: { bosTokenId: 256, eosTokenId: 257 },
  });
  const cpp = await runLlamaCpp(llama, file, PROMPT, 1, CFG.vocabSize);
  // Nibbles read as interleaved pairs (byte j = elements 2j, 2j+1) instead of j and j + 16.
  const w = dequantQ4_0Interleaved(FORMATS.Q4_0.quantizeRef(params.get('lm_head.weight')!.f32));
  assert.ok(excess(cpp.logp, w, normed(params, PROMPT), 'Q4_0').worst > 0, 'a wrong block layout passes the bound');
});
