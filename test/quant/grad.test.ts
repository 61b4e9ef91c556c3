// Fake-quantization gradients against PyTorch (test/fixtures/quant.safetensors, made by
// scripts/make_quant_fixtures.py): plain STE, clipped STE, LSQ step and weight gradients with
// the gradient scale, and the activation quantizer's STE; on every backend, to 1e-5 relative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Tensor, backward } from '../../src/tensor/index.js';
import { fakeQuantWeight, fakeQuantInput } from '../../src/quant/ops.js';
import type { WeightQuant } from '../../src/quant/rules.js';
import { BACKENDS, onBackend } from '../backends.js';
import { expectClose } from '../util.js';

const file = fileURLToPath(new URL('../fixtures/quant.safetensors', import.meta.url));
const { tensors, metadata } = readSafetensors(file);
const get = (n: string): Tensor => {
  const t = tensors.get(n);
  assert.ok(t, `quant.safetensors lacks ${n} (run /usr/bin/python3 scripts/make_quant_fixtures.py)`);
  return new Tensor(new Float32Array(t.data as Float32Array), t.shape);
};
const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

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
        expectClose(y.f32, yRef, 1e-5, 1e-6 * maxAbs(yRef), `${name} ŵ`);
        expectClose(g[0], get(`${name}.gw`).f32, 1e-5, 1e-7, `${name} ∂w`);
        if (lsq) {
          const gs = get(`${name}.gstep`).f32;
          expectClose(g[1], gs, 1e-5, 1e-5 * maxAbs(gs), `${name} ∂step`);
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
        expectClose(y.f32, yRef, 1e-5, 1e-6 * maxAbs(yRef), `${name} y`);
        expectClose(g[0], get(`${name}.gx`).f32, 0, 0, `${name} ∂x`);
      }
    });
  });
}
