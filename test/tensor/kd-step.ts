// A KD-QAT step on a tiny teacher/student pair of any registered family, for tests that compare
// two ways of running it (recomputed layers, released storage) gradient by gradient.
import assert from 'node:assert/strict';
import { Tensor, backward, noGrad, withRecompute, type RecomputeMode } from '../../src/tensor/index.js';
import type { Params } from '../../src/nn/params.js';
import { ARCHITECTURES, modelOf } from '../../src/models/registry.js';
import type { Architecture, ModelSizes } from '../../src/models/architecture.js';
import type { Model } from '../../src/models/model.js';
import { prepare } from '../../src/quant/prepare.js';
import { QUANT_PRESETS } from '../../src/quant/config.js';
import { captureFor, distillLoss } from '../../src/distill/losses.js';
import type { LossWeights } from '../../src/distill/losses.js';
import { familyModel, randomIds } from '../quant/models.js';
import { withMatmulMagnitudes } from '../tolerance.js';

export function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
}

export const SIZES: ModelSizes = { vocab: 64, hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 64, seq: 16, dropout: 0.1 };
export const B = 2, T = 6;

export function tinyPair(name: string): { teacher: Model; student: Model } {
  const { model: teacher, hf } = familyModel(name, SIZES);
  for (const p of teacher.params.values()) p.requiresGrad = false;
  const sParams: Params = new Map([...teacher.params].map(([k, v]) => [k, new Tensor(v.f32.map((x, i) => x + 0.01 * Math.sin(i)), v.shape, true)]));
  return { teacher, student: modelOf(hf, sParams) };
}

export interface Step { loss: number; grads: Map<string, Float32Array>; kappa: number }

/** One KD-QAT step (fake-quantized student: LSQ 4-bit for decoders, ternary + 8-bit activations
 *  for encoders, dropout on): the loss and every gradient. recompute: the student's layers
 *  recomputed in backward ('all', or 'selective': all but the GEMMs); release: backward gives
 *  the graph's storage back as the training loop does. */
export function kdStep(teacher: Model, student: Model, w: LossWeights, opts: { recompute?: RecomputeMode; release?: boolean; preset?: string } = {}): Step {
  const rec = ARCHITECTURES[teacher.arch as keyof typeof ARCHITECTURES] as Architecture;
  for (const p of student.params.values()) p.grad = null;
  const prepared = prepare(student, QUANT_PRESETS[opts.preset ?? (rec.kind === 'encoder' ? 'twn-a8' : 'w4-channel-lsq')]);
  const capture = captureFor(w, teacher.arch);
  const x = { ids: randomIds(B, T, SIZES.vocab) };
  const t = noGrad(() => rec.forward(teacher, x, { capture }));
  const { result: loss, kappa } = withMatmulMagnitudes(() => {
    const s = withRecompute(opts.recompute ?? 'off', () => rec.forward(student, x, { capture, weight: prepared.weight, dropoutSeed: rec.kind === 'encoder' ? 11 : undefined }));
    const { total } = distillLoss(s, t, w, { arch: teacher.arch });
    backward(total, null, { release: opts.release });
    return total.item();
  });
  const grads = new Map<string, Float32Array>();
  for (const [k, p] of [...student.params, ...prepared.quantParams]) if (p.grad) grads.set(k, p.grad.f32);
  return { loss, grads, kappa };
}
