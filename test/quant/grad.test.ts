// Fake-quantization gradients against PyTorch (test/fixtures/quant.safetensors, made by
// scripts/make_quant_fixtures.py): plain STE, clipped STE, LSQ step and weight gradients with
// the gradient scale, and the activation quantizer's STE; on every backend, to float32 rounding
// bounds (test/tolerance.ts) stated at each assertion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor, backward } from '../../src/tensor/index.js';
import { fakeQuantWeight, fakeQuantInput } from '../../src/quant/ops.js';
import type { WeightQuant } from '../../src/quant/rules.js';
import { BACKENDS, onBackend } from '../backends.js';
import { expectClose } from '../util.js';
import { U32, gamma } from '../bounds.js';

const file = fileURLToPath(new URL('../fixtures/quant.safetensors', import.meta.url));
const { tensors, metadata } = readSafetensors(file);
const get = (n: string): Tensor => {
  const t = tensors.get(n);
  assert.ok(t, `quant.safetensors lacks ${n} (run /usr/bin/python3 scripts/make_quant_fixtures.py)`);
  return new Tensor(new Float32Array(t.data as Float32Array), t.shape);
};

/** ∂(Σ y·gy)/∂ inputs, on fresh leaves. */
function grads(make: (leaves: Tensor[]) => Tensor, inputs: Tensor[], gy: Tensor): { y: Tensor; g: Float32Array[] } {
  const leaves = inputs.map((t) => new Tensor(t.f32.slice(), t.shape, true));
  const y = make(leaves);
  backward(y, gy);
  return { y, g: leaves.map((l) => l.grad!.f32) };
}

const WEIGHT_CASES = ['ste_sym4_channel', 'clip_twn_tensor', 'lsq_sym3_group16', 'lsq_sym4_tensor',
  'lsq_asym4_channel', 'lsq_asym2_group8'];

for (const backend of BACKENDS) {
  test(`weight quantizers and their gradients match PyTorch (${backend})`, () => {
    onBackend(backend, () => {
      for (const name of WEIGHT_CASES) {
        const q = JSON.parse(metadata[name]) as WeightQuant;
        const w = get(`${name}.w`), gy = get(`${name}.gy`);
        const lsq = q.lsq === true;
        const inputs = lsq ? [w, get(`${name}.step`)] : [w];
        const { y, g } = grads((l) => fakeQuantWeight(l[0], q, l[1]), inputs, gy);
        const yRef = get(`${name}.y`).f32;
        // ŵ = clamp(round(w/s) [− z])·s [+ z·s]: the integer level is exact (no input sits within
        // float32 rounding of a half), so ŵ carries the roundings of s = max/Qp, of the level
        // times s and of the zero-point shift, plus the fixture's own: ≤ 4u relative.
        expectClose(y.f32, yRef, 4 * U32, 0, `${name} ŵ`);
        // ∂w is gy or 0 (STE, clipped STE, LSQ): a copy, so exact.
        expectClose(g[0], get(`${name}.gw`).f32, 0, 0, `${name} ∂w`);
        if (lsq) {
          // ∂s_k = gscale·Σ_{i∈k} gy_i·(level_i − w_i/s) over a granule of N entries (granules are
          // contiguous row-major blocks for channel, group and tensor), each term at most
          // |gy_i|·2^bits, gscale ≤ 1/√N: a length-N float32 sum with a few roundings per term,
          // so |Δ| ≤ γ_{N+4}·2^bits/√N·Σ_{i∈k}|gy_i| (any order, with or without FMA), plus the
          // fixture's u·|∂s_k|.
          const gs = get(`${name}.gstep`).f32;
          const N = w.size / gs.length, bits = 'bits' in q.rule ? q.rule.bits : 8;
          gs.forEach((want, k) => {
            let absGy = 0;
            for (let i = k * N; i < (k + 1) * N; i++) absGy += Math.abs(gy.f32[i]);
            const bound = gamma(N + 4) * (2 ** bits / Math.sqrt(N)) * absGy + U32 * Math.abs(want);
            assert.ok(Math.abs(g[1][k] - want) <= bound, `${name} ∂step ${k}: got ${g[1][k]}, expected ${want} (bound ${bound})`);
          });
        }
        if (q.clip) {
          const masked = w.f32.filter((v) => Math.abs(v) > q.clip!).length;
          assert.ok(masked > 0, `${name}: some weights lie outside the clip range`);
        }
      }
    });
  });

  test(`activation quantizer and its STE match PyTorch (${backend})`, () => {
    onBackend(backend, () => {
      for (const name of ['act8_clip', 'act4']) {
        const { bits, clip } = JSON.parse(metadata[name]) as { bits: number; clip?: number };
        const x = get(`${name}.x`), gy = get(`${name}.gy`);
        const { y, g } = grads((l) => fakeQuantInput(l[0], bits, clip), [x], gy);
        const yRef = get(`${name}.y`).f32;
        // s = max|x|/Qp and level·s: two roundings, plus the fixture's own (3u relative).
        expectClose(y.f32, yRef, 3 * U32, 0, `${name} y`);
        expectClose(g[0], get(`${name}.gx`).f32, 0, 0, `${name} ∂x`);
      }
    });
  });
}

test('inputQuantizer: Linears reading one tensor share one x̂ — the values and the STE gradient of quantizing it for each', async () => {
  const { inputQuantizer } = await import('../../src/quant/ops.js');
  const { linear } = await import('../../src/tensor/ops/matmul.js');
  const { Rng } = await import('../../src/tensor/rng.js');
  const { randomF32 } = await import('../util.js');
  const { add } = await import('../../src/tensor/index.js');
  const rng = new Rng(7);
  const T = 6, I = 40, O = 9;
  const x0 = randomF32(T * I, rng, 2), ws = [0, 1, 2].map(() => new Tensor(randomF32(O * I, rng, 0.2), [O, I]));
  const gy = new Tensor(randomF32(T * O, rng), [T, O]);
  // The loss ⟨Σ_i linear(q(x), W_i), gy⟩ with q shared (memoized) or made for each Linear.
  const run = (shared: boolean): { xs: Tensor[]; gx: Float32Array } => {
    const x = new Tensor(x0.slice(), [T, I], true);
    const quant = inputQuantizer(8, 2.5);
    const xs = ws.map(() => (shared ? quant(x) : fakeQuantInput(x, 8, 2.5)));
    const y = ws.map((w, i) => linear(xs[i], w));
    backward(add(add(y[0], y[1]), y[2]), gy); // one backward, as a training step takes
    return { xs, gx: x.grad!.f32.slice() };
  };
  const a = run(true), b = run(false);
  assert.ok(a.xs[0] === a.xs[1] && a.xs[1] === a.xs[2], 'one x̂ for the three Linears');
  assert.ok(b.xs[0] !== b.xs[1]);
  assert.deepEqual(a.xs[0].f32, b.xs[0].f32, 'the same values');
  // The clipped STE multiplies by 0 or 1, so mask·Σ g_i and Σ mask·g_i differ only in the order
  // of the float32 sums of the three gradients: within γ_2 of Σ|g_i| (and equal where clipped).
  const gs = ws.map((w) => { const g = new Float32Array(T * I); for (let t = 0; t < T; t++) for (let i = 0; i < I; i++) { let s = 0; for (let o = 0; o < O; o++) s += gy.f32[t * O + o] * w.f32[o * I + i]; g[t * I + i] = s; } return g; });
  for (let e = 0; e < T * I; e++) {
    const abs = gs.reduce((s, g) => s + Math.abs(g[e]), 0);
    assert.ok(Math.abs(a.gx[e] - b.gx[e]) <= 2 * (gamma(2) + gamma(O + 1)) * abs + 1e-30, `dx[${e}]: ${a.gx[e]} vs ${b.gx[e]}`);
  }
  assert.ok(a.gx.some((v) => v === 0) && a.gx.some((v) => v !== 0), 'the clip at 2.5 masks some inputs and passes others');
  // Another tensor (even with the same values) gets its own x̂.
  const quant = inputQuantizer(8);
  const u = new Tensor(x0.slice(), [T, I]), v = new Tensor(x0.slice(), [T, I]);
  assert.ok(quant(u) !== quant(v) && quant(u) === quant(u));
});
