// Data-parallel KD-QAT of an encoder (src/train/qat.ts rankBatches, qat-data.ts termShares,
// distillLoss's termScale): each rank's terms, weighted by the rank's share of each term's
// normalizer, must add up to the one-process loss of the whole padded batch and give every row
// the gradient the whole batch gives it. Checked here on random outputs (no model, so no
// forward-pass rounding): the reference is the unchanged one-process distillLoss on the whole
// batch. The bounds: a rank's gradient of a row is the whole batch's made of the same float32
// factors (a difference, 1/count, the term's weight) grouped differently, at most 32 roundings:
// 32u relative. The loss sums the same per-element terms split in two: γ_n·Σ|terms| with n the
// elements of the largest term (B·H·T²), relative to each term's value as a mean of squares.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, Tensor, backward, intTensor } from '../../src/tensor/index.js';
import { distillLoss, LOSS_NAMES, type LossName, type LossWeights } from '../../src/distill/losses.js';
import type { DistillOutputs } from '../../src/distill/losses.js';
import { sliceRows, termShares, type QatBatch } from '../../src/train/qat-data.js';
import { rankRows } from '../../src/train/distributed.js';
import { U32, expectWithin, gamma } from '../bounds.js';

const B = 5, T = 7, C = 6, H = 2, K = 3, L = 2;
const lengths = [7, 3, 5, 1, 6]; // every row a different real length: ranks hold different token counts
const TAPS = ['hidden', 'context', 'saOut', 'attnOut'] as const;

/** (B, H, T, T) attention probabilities: softmax over the real keys, exactly 0 on padding. */
function probs(rng: Rng, n: number[]): Float32Array {
  const p = new Float32Array(B * H * T * T);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    const row = (((b * H) + h) * T + i) * T;
    let z = 0;
    for (let j = 0; j < n[b]; j++) z += (p[row + j] = Math.exp(2 * rng.uniform()));
    for (let j = 0; j < n[b]; j++) p[row + j] /= z;
  }
  return p;
}

/** Random outputs of a "forward pass" (student tensors are leaves that get gradients). */
function outputs(seed: number, student: boolean): DistillOutputs {
  const rng = new Rng(seed);
  const t = (shape: number[], data?: Float32Array): Tensor =>
    new Tensor(data ?? Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform() * 2 - 1), shape, student);
  const o: Record<string, unknown> = { logits: t([B, K]) };
  for (const k of TAPS) o[k] = Array.from({ length: L }, () => t([B, T, C]));
  o.probs = Array.from({ length: L }, () => t([B, H, T, T], probs(rng, lengths)));
  // Scores: 0 on pairs touching padding, as the attention kernel writes them.
  o.scores = Array.from({ length: L }, () => {
    const s = t([B, H, T, T]);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      if (i >= lengths[b] || j >= lengths[b]) s.f32[(((b * H) + h) * T + i) * T + j] = 0;
    }
    return s;
  });
  return o as unknown as DistillOutputs;
}

/** Rows [lo, hi) of every tensor of `o` (new leaves, so each slice has its own gradients). */
function sliceOutputs(o: DistillOutputs, lo: number, hi: number): DistillOutputs {
  const part = (x: Tensor): Tensor => {
    const per = x.size / x.shape[0];
    return new Tensor(x.f32.slice(lo * per, hi * per), [hi - lo, ...x.shape.slice(1)], x.requiresGrad);
  };
  const r: Record<string, unknown> = { logits: part(o.logits) };
  for (const k of [...TAPS, 'probs', 'scores'] as const) r[k] = (o[k] as Tensor[]).map(part);
  return r as unknown as DistillOutputs;
}

const leaves = (o: DistillOutputs): Tensor[] => [o.logits, ...[...TAPS, 'probs', 'scores'].flatMap((k) => o[k as 'hidden'])];

it('termShares + termScale: 2 and 3 ranks\' weighted terms add up to the whole padded batch\'s loss and gradient, term by term', () => {
  const mask = intTensor(Array.from({ length: B * T }, (_, i) => (i % T < lengths[Math.floor(i / T)] ? 1 : 0)), [B, T]);
  const batch: QatBatch = { ids: intTensor(new Array(B * T).fill(5), [B, T]), mask, typeIds: null, labels: intTensor([0, 2, 1, 1, 0], [B]), tokens: 22 };
  const terms: LossName[] = ['pred', 'ce', 'rep', 'attn_score', 'attn_map', 'attn_out', 'context', 'sa_out'];
  assert.deepEqual([...terms].sort(), [...LOSS_NAMES].sort(), 'every loss term is covered');
  for (const name of terms) {
    const w: LossWeights = { [name]: 1.5 };
    const teacher = outputs(1, false);
    const whole = outputs(2, true);
    const ref = distillLoss(whole, teacher, w, { arch: 'bert', mask, labels: batch.labels, tau: 2 });
    backward(ref.total);
    for (const size of [2, 3]) {
      let total = 0;
      const grads: Float32Array[] = leaves(whole).map((x) => new Float32Array(x.size));
      for (let r = 0; r < size; r++) {
        const { lo, hi } = rankRows(B, r, size);
        const slice = sliceRows(batch, lo, hi);
        const shares = termShares(batch, lo, hi);
        const scale = Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, v / slice.share]));
        const s = sliceOutputs(whole, lo, hi);
        const loss = distillLoss(s, sliceOutputs(teacher, lo, hi), w, { arch: 'bert', mask: slice.mask, labels: slice.labels, tau: 2, termScale: scale });
        // The training loop scales a rank's loss by its rows' share (loop.ts), as here.
        const scaled = new Tensor(Float32Array.of(slice.share), loss.total.shape);
        backward(loss.total, scaled);
        total += loss.total.item() * slice.share;
        leaves(s).forEach((x, i) => {
          if (x.grad) grads[i].set(x.grad.f32, (lo * x.size) / x.shape[0]);
        });
      }
      const want = ref.total.item();
      assert.ok(Math.abs(total - want) <= 4 * gamma(B * H * T * T) * Math.abs(want) + 1e-12, `${name} on ${size} ranks: loss ${total} vs ${want}`);
      const used = leaves(whole).filter((x) => x.grad);
      assert.ok(used.length > 0, `${name}: some output gets a gradient`);
      leaves(whole).forEach((x, i) => {
        if (!x.grad) return; // an output this term does not read
        const g = x.grad.f32;
        expectWithin(grads[i], g, Float64Array.from(g, (v) => 32 * U32 * Math.abs(v) + 1e-30), `${name} on ${size} ranks: gradient of leaf ${i}`);
      });
    }
  }
});
