// Frozen modules skip their weight-gradient GEMMs (issue 13): with --freeze ov, the backward
// of a KD-QAT step must not run dW = dYᵀ·X for v_proj and o_proj — neither for the latent weight
// nor through the fake quantizer's STE or its LSQ step. Counted at the kernel: every matmul call
// of one student forward + backward is recorded by its GEMM signature; a Linear y = x·Wᵀ
// (W (out, in), x (N, in)) has its dW GEMM as matmul(gY, X, dW, 1, out, N, in, transA, ¬transB).
// The model's shapes are chosen so that v_proj and o_proj have signatures no other Linear has.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Tensor, backward, intTensor, noGrad } from '../../src/tensor/index.js';
import { kernelOf, registerKernels } from '../../src/tensor/registry.js';
import type { Kernels } from '../../src/tensor/kernels.js';
import { captureFor, distillLoss } from '../../src/distill/losses.js';
import { llamaParamSpec, type LlamaConfig } from '../../src/models/llama.js';
import { architecture } from '../../src/models/registry.js';
import type { Model } from '../../src/models/model.js';
import { initParams, type Params } from '../../src/nn/params.js';
import { prepare } from '../../src/quant/prepare.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { cacheFrozen, freeze } from '../../src/train/freeze.js';
import { BACKENDS, onBackend } from '../backends.js';

// C = 32, heads 4 × D 8 = 32 (q), kv 1 × 8 = 8 (k, v), F = 64; V = 80. o_proj (32 ← 32) shares
// q_proj's shape, so q and o are told apart by count: (out, in) = (32, 32) is q + o.
const config: LlamaConfig = {
  vocabSize: 80, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 1,
  rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 16, tieWordEmbeddings: true, initializerRange: 0.1,
};
const B = 2, T = 6, N = B * T, L = config.numHiddenLayers;

/** GEMM signature → calls, over one student forward + backward with `freezeSpec`. */
function gemmCalls(backend: 'ref' | 'native', freezeSpec: string, preset: string): Map<string, number> {
  const calls = new Map<string, number>();
  let out!: Map<string, number>;
  onBackend(backend, () => {
    const inner = kernelOf(backend, 'matmul')!;
    const counting: Kernels['matmul'] = (a, b, c, batch, m, k, n, tA, tB, sA, sB, beta, bias) => {
      const key = `${batch}:${m}:${k}:${n}:${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
      inner(a, b, c, batch, m, k, n, tA, tB, sA, sB, beta, bias);
    };
    const rec = architecture('llama');
    const tParams = initParams(llamaParamSpec(config), 3);
    for (const p of tParams.values()) p.requiresGrad = false;
    const teacher = { arch: 'llama', config, params: tParams } as Model;
    const sParams: Params = new Map([...tParams].map(([k, v]) => [k, new Tensor(v.f32.slice(), v.shape, true)]));
    const student = { arch: 'llama', config, params: sParams } as Model;
    const prepared = prepare(student, QUANT_PRESETS[preset]);
    const frozen = freeze(freezeSpec, 'llama', sParams, prepared.quantParams);
    const weight = cacheFrozen(prepared.weight, new Set(frozen.params));
    const rng = new Rng(4);
    const ids = intTensor(Int32Array.from({ length: N }, () => rng.int(config.vocabSize)), [B, T]);
    const w = { pred: 1 };
    const capture = captureFor(w, 'llama');
    const t = noGrad(() => rec.forward(teacher, { ids }, { capture }));
    registerKernels(backend, { matmul: counting });
    try {
      const s = rec.forward(student, { ids }, { capture, weight });
      backward(distillLoss(s, t, w, { arch: 'llama' }).total);
    } finally {
      registerKernels(backend, { matmul: inner });
    }
    // The frozen weights got nothing; the trained ones did.
    for (const [k, p] of [...sParams, ...prepared.quantParams]) {
      const isFrozen = frozen.params.includes(k) || frozen.quantParams.includes(k);
      assert.equal(p.grad === null, isFrozen || !p.requiresGrad, `${k}: ${isFrozen ? 'frozen, has a gradient' : 'trained, no gradient'}`);
    }
    out = calls;
  });
  return out;
}

const dW = (out: number, inF: number): string => `1:${out}:${N}:${inF}:TN`;

for (const backend of BACKENDS) {
  for (const preset of ['w4-g32', 'w4-channel-lsq']) {
    it(`--freeze ov runs no dW GEMM for v_proj / o_proj (${preset}, ${backend})`, () => {
      const none = gemmCalls(backend, '', preset);
      const ov = gemmCalls(backend, 'ov', preset);
      const C = config.hiddenSize, kv = 8, F = config.intermediateSize;
      // Without freezing: per layer q, o (32 ← 32), k, v (8 ← 32), gate, up (64 ← 32), down (32 ← 64).
      assert.equal(none.get(dW(C, C)), 2 * L, 'q and o dW GEMMs when nothing is frozen');
      assert.equal(none.get(dW(kv, C)), 2 * L, 'k and v dW GEMMs when nothing is frozen');
      assert.equal(none.get(dW(F, C)), 2 * L);
      assert.equal(none.get(dW(C, F)), 1 * L);
      // ov: exactly the v and o GEMMs are gone, every other GEMM is unchanged.
      assert.equal(ov.get(dW(C, C)), 1 * L, 'o_proj dW GEMM ran although o_proj is frozen');
      assert.equal(ov.get(dW(kv, C)), 1 * L, 'v_proj dW GEMM ran although v_proj is frozen');
      const diff = [...new Set([...none.keys(), ...ov.keys()])].filter((k) => (none.get(k) ?? 0) !== (ov.get(k) ?? 0));
      assert.deepEqual(diff.sort(), [dW(kv, C), dW(C, C)].sort(), 'only the frozen dW GEMMs differ');
    });
  }
}
