// SignalMonitor on a tiny LLaMA with a fake-quantized WeightFn of the test's own (rounding to a
// fixed grid, straight-through): every metric against a direct computation — grad norms from
// .grad, signal norms from an explicit tape (retained gradients of an identity) and from finite
// differences, act RMS, update ratios, the SQNR formula, crossings on a hand-made change — plus
// gradient-accumulation pooling, composition with an input transform, and "inactive costs
// nothing" (no op on the tape, same loss and gradients).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardDepth, KAPPA_MATMUL, reorderBound } from '../tolerance.js';
import { U64, gamma } from '../bounds.js';
import { Tensor, backward, noGrad, add, affine, crossEntropy, mean, mul, reshape } from '../../src/tensor/index.js';
import { llamaForward } from '../../src/models/llama.js';
import { bertEncode } from '../../src/models/bert.js';
import { moduleOf } from '../../src/models/registry.js';
import type { Params, WeightFn } from '../../src/nn/params.js';
import { AdamW } from '../../src/train/optim.js';
import { Rng } from '../../src/tensor/rng.js';
import { BACKENDS, onBackend } from '../backends.js';
import { SignalMonitor, SIGNAL_METRICS, type SignalRecord } from '../../src/analysis/signal.js';
import { bertCfg, freshParams, llamaCfg, V } from '../train/helpers.js';

const STEP = 0.02; // fixed weight grid: init std is 0.02, so ŵ ∈ {…, −0.04, −0.02, 0, 0.02, …}
const B = 2, T = 8;

/** round(w/STEP)·STEP forward, identity backward (STE): ŵ = w + Δ with Δ a constant. */
function roundTo(x: Tensor, step: number): Tensor {
  const d = new Float32Array(x.size);
  const v = x.f32;
  for (let i = 0; i < d.length; i++) d[i] = Math.round(v[i] / step) * step - v[i];
  return add(x, new Tensor(d, x.shape));
}

const fakeQuant: WeightFn = (name, p) => (/_proj\.weight$|encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$/.test(name) ? roundTo(p, STEP) : p);

function setup(): { params: Params; quantized: string[]; trainable: Set<string> } {
  const params = freshParams('llama', 5);
  const quantized = [...params.keys()].filter((n) => /_proj\.weight$/.test(n));
  const trainable = new Set<string>();
  for (const [n, p] of params) {
    if (/v_proj|o_proj/.test(n)) p.requiresGrad = false; // ov-freeze
    else trainable.add(n);
  }
  return { params, quantized, trainable };
}

function batch(seed: number): { ids: Tensor; targets: Tensor } {
  const rng = new Rng(seed);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(V));
  return { ids: new Tensor(ids, [B, T]), targets: new Tensor(targets, [B * T]) };
}

function lossOf(params: Params, w: WeightFn, b: { ids: Tensor; targets: Tensor }): Tensor {
  const { logits } = llamaForward(params, llamaCfg, b.ids, { weight: w }); // (B, T, V)
  return crossEntropy(reshape(logits, [B * T, V]), b.targets);
}

const norm = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
};
const at = (r: SignalRecord, metric: keyof SignalRecord, name: string): number | null => {
  const { layer, kind } = moduleOf(name);
  return r[metric]![kind][layer ?? 0];
};
function close(got: number | null, want: number, rtol: number, what: string): void {
  assert.ok(got !== null, `${what}: null`);
  assert.ok(Math.abs(got - want) <= rtol * Math.abs(want), `${what}: got ${got}, want ${want} (rtol ${rtol.toExponential(2)})`);
}

// Norms of the same float32 data, here and in the monitor's kernels (sumSquares /
// sumSquaredDiff accumulate in double): each square of a float32 is exact in double, so the two
// sums of n squares differ only by their float64 rounding in different orders, γ64(n) each; a
// square root halves a relative error and rounds once more. Hence 2·γ64(n) + 2⁻⁵³ per norm.
const normRtol = (n: number): number => 2 * gamma(n, U64) + U64;

/**
 * The explicit tape: a WeightFn whose input passes x through affine(x, 1, 0) with the result's
 * gradient retained; returns each input's values and, after backward, its gradient.
 */
function explicitTape(base: WeightFn): { w: WeightFn; seen: Map<string, Tensor[]> } {
  const seen = new Map<string, Tensor[]>();
  const w = ((n: string, p: Tensor) => base(n, p)) as WeightFn;
  w.input = (n, x) => {
    const y = affine(base.input ? base.input(n, x) : x, 1, 0).retainGrad();
    seen.set(n, [...(seen.get(n) ?? []), y]);
    return y;
  };
  return { w, seen };
}

for (const be of BACKENDS) test(`every metric matches a direct computation (two micro-batches, ov frozen; ${be})`, () => onBackend(be, () => {
  const { params, quantized, trainable } = setup();
  const batches = [batch(1), batch(2)];
  // Reference pass: explicit tape, same parameters.
  const ref = explicitTape(fakeQuant);
  for (const b of batches) backward(lossOf(params, ref.w, b));
  const wantGrad = new Map(quantized.map((n) => [n, params.get(n)!.grad ? norm(params.get(n)!.grad!.f32) : null]));
  for (const p of params.values()) p.grad = null;

  const monitor = new SignalMonitor({ params, quantized, trainable });
  const w = monitor.instrument(fakeQuant);
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  monitor.active = true;
  for (const b of batches) backward(lossOf(params, w, b));
  monitor.afterBackward();
  const before = new Map(quantized.map((n) => [n, params.get(n)!.f32.slice()]));
  const hatBefore = new Map(quantized.map((n) => [n, noGrad(() => fakeQuant(n, params.get(n)!)).f32.slice()]));
  monitor.beforeUpdate();
  opt.step(1e-2);
  monitor.afterUpdate(fakeQuant);
  monitor.active = false;
  const r = monitor.take();
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'JSON round trip');
  assert.deepEqual(Object.keys(r), [...SIGNAL_METRICS]);
  assert.deepEqual(Object.keys(r.grad_norm!), ['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
  for (const kind of Object.keys(r.grad_norm!)) assert.equal(r.grad_norm![kind].length, llamaCfg.numHiddenLayers);

  for (const n of quantized) {
    const p = params.get(n)!;
    // grad_norm: the norm of .grad; frozen weights have none.
    if (trainable.has(n)) close(at(r, 'grad_norm', n), norm(p.grad!.f32), normRtol(p.size), `grad_norm ${n}`);
    else assert.equal(at(r, 'grad_norm', n), null, `grad_norm ${n} (frozen)`);
    assert.equal(wantGrad.get(n) === null, !trainable.has(n));
    // The same math as the reference pass, its gradients accumulated in another order: each
    // within the float32 bound of a backward pass (3× the forward depth) of the exact value.
    if (trainable.has(n)) close(at(r, 'grad_norm', n), wantGrad.get(n)!, reorderBound(3 * forwardDepth(llamaCfg.numHiddenLayers), V, KAPPA_MATMUL), `grad_norm ${n} vs reference pass`);
    // act_norm: RMS over both micro-batches; signal_norm: norm of the retained gradients.
    const xs = ref.seen.get(n)!;
    assert.equal(xs.length, 2);
    let ss = 0, count = 0, gs = 0;
    for (const x of xs) {
      ss += norm(x.f32) ** 2;
      count += x.size;
      gs += norm(x.grad!.f32) ** 2;
    }
    close(at(r, 'act_norm', n), Math.sqrt(ss / count), 2 * normRtol(count), `act_norm ${n}`); // two norms combined
    close(at(r, 'signal_norm', n), Math.sqrt(gs), 2 * normRtol(count), `signal_norm ${n}`);
    // update_ratio: frozen ones measured 0.
    const dw = norm(Array.from(p.f32, (v, i) => v - before.get(n)![i])) / norm(before.get(n)!);
    close(at(r, 'update_ratio', n), dw, 2 * normRtol(p.size) + 2 ** -53, `update_ratio ${n}`); // a ratio of two norms
    if (!trainable.has(n)) assert.equal(at(r, 'update_ratio', n), 0);
    else assert.ok(dw > 0, `${n} moved`);
    // sqnr_db = 10·log10(‖w‖²/‖w − ŵ‖²).
    const hat = fakeQuant(n, p).f32;
    const err = norm(Array.from(p.f32, (v, i) => v - hat[i]));
    // 10·log10(a/b) moves by (10/ln 10)·(δa + δb) for relative errors δ of a and b (squared norms: 2·normRtol each).
    const sqnr = 10 * Math.log10(norm(p.f32) ** 2 / err ** 2);
    close(at(r, 'sqnr_db', n), sqnr, ((10 / Math.LN10) * 4 * normRtol(p.size) + 2 ** -50) / Math.abs(sqnr), `sqnr ${n}`);
    // First logged step: no previous ŵ; step_cross_rate compares with the forward's ŵ.
    assert.equal(at(r, 'cross_rate', n), null);
    const changed = hat.filter((v, i) => v !== hatBefore.get(n)![i]).length;
    close(at(r, 'step_cross_rate', n), changed / p.size, 1e-12, `step_cross_rate ${n}`);
    if (!trainable.has(n)) assert.equal(changed, 0);
  }
  // lr 1e-2 on a 0.02 grid: some trainable weights did cross.
  assert.ok(quantized.some((n) => (at(r, 'step_cross_rate', n) ?? 0) > 0), 'some weight crossed');

  // take() reset the step: a record with nothing measured is all null (cross state is kept).
  const empty = monitor.take();
  for (const m of SIGNAL_METRICS) for (const v of Object.values(empty[m]!)) assert.ok(v.every((x) => x === null), m);
}));

test('signal_norm agrees with finite differences of the loss along the gradient', () => {
  const { params, quantized, trainable } = setup();
  const b = batch(3);
  const monitor = new SignalMonitor({ params, quantized, trainable });
  monitor.active = true;
  const ref = explicitTape(fakeQuant);
  backward(lossOf(params, ref.w, b));
  backward(lossOf(params, monitor.instrument(fakeQuant), b));
  const r = monitor.take();
  for (const n of ['model.layers.1.mlp.down_proj.weight', 'model.layers.0.self_attn.v_proj.weight']) {
    // Direction u = g/‖g‖: d/dε L(x + εu) at 0 = ‖g‖.
    const g = ref.seen.get(n)![0].grad!.f32;
    const gn = norm(g);
    const u = new Tensor(g.map((v) => v / gn), ref.seen.get(n)![0].shape);
    const shifted = (eps: number): number => noGrad(() => {
      const w = ((m: string, p: Tensor) => fakeQuant(m, p)) as WeightFn;
      w.input = (m, x) => (m === n ? add(x, affine(u, eps, 0)) : x);
      return lossOf(params, w, b).item();
    });
    // Central difference D(h) = ‖g‖ + c·h² + r with |r| ≤ ε/h, ε the float32 rounding of one
    // loss evaluation (reorderBound of the forward, relative to |L|); D(2h) − D(h) = 3c·h² + …
    // estimates the truncation (Richardson), as in test/gradcheck.ts.
    const D = (h: number): number => (shifted(h) - shifted(-h)) / (2 * h);
    const h = 0.05, d1 = D(h), d2 = D(2 * h);
    const eps = reorderBound(forwardDepth(llamaCfg.numHiddenLayers), V, KAPPA_MATMUL) * Math.max(1, Math.abs(shifted(0)));
    const tol = Math.abs(d2 - d1) + 2 * (eps / h + eps / (2 * h));
    close(at(r, 'signal_norm', n), d1, tol / Math.abs(d1), `signal_norm ${n} vs finite differences`);
  }
});

test('the probe sits after an existing input transform (what the Linear actually sees)', () => {
  const { params, quantized, trainable } = setup();
  const actQuant = ((n: string, p: Tensor) => fakeQuant(n, p)) as WeightFn;
  actQuant.input = (_n, x) => roundTo(x, 0.25); // coarse activation grid, STE
  const b = batch(4);
  const ref = explicitTape(actQuant);
  backward(lossOf(params, ref.w, b));
  const monitor = new SignalMonitor({ params, quantized, trainable });
  monitor.active = true;
  backward(lossOf(params, monitor.instrument(actQuant), b));
  const r = monitor.take();
  for (const n of quantized) {
    const x = ref.seen.get(n)![0];
    assert.ok(x.f32.every((v) => Math.abs(v / 0.25 - Math.round(v / 0.25)) < 1e-4), 'reference saw rounded inputs');
    close(at(r, 'act_norm', n), norm(x.f32) / Math.sqrt(x.size), 2 * normRtol(x.size), `act_norm ${n}`);
    close(at(r, 'signal_norm', n), norm(x.grad!.f32), normRtol(x.size), `signal_norm ${n}`);
  }
});

test('cross_rate counts ŵ entries that moved to another grid point since the last logged step', () => {
  const { params, quantized, trainable } = setup();
  const monitor = new SignalMonitor({ params, quantized, trainable });
  monitor.beforeUpdate();
  monitor.afterUpdate(fakeQuant);
  const first = monitor.take();
  assert.ok(quantized.every((n) => at(first, 'cross_rate', n) === null), 'first cross_rate is null');
  assert.ok(quantized.every((n) => at(first, 'update_ratio', n) === 0), 'no update: ratio 0');
  monitor.beforeUpdate();
  // A hand-made change (between the snapshot and afterUpdate, as an optimizer step would be): 10 entries of one weight move up by a whole grid step (so their ŵ
  // changes), 7 entries of another move a tenth of a step towards their grid point (ŵ stays).
  const q = 'model.layers.1.self_attn.q_proj.weight', up = 'model.layers.0.mlp.up_proj.weight';
  const wq = params.get(q)!.f32, wu = params.get(up)!.f32;
  for (let i = 0; i < 10; i++) wq[3 * i] += STEP;
  let moved = 0;
  for (let i = 0; moved < 7; i++) {
    const frac = wu[i] / STEP - Math.round(wu[i] / STEP);
    if (Math.abs(frac) < 0.3) {
      wu[i] += 0.1 * STEP * Math.sign(-frac || 1);
      moved++;
    }
  }
  monitor.afterUpdate(fakeQuant);
  const r = monitor.take();
  for (const n of quantized) {
    const want = n === q ? 10 / wq.length : 0;
    assert.equal(at(r, 'cross_rate', n), want, n);
    assert.equal(at(r, 'step_cross_rate', n), null, `${n}: no forward ran`);
  }
  assert.ok(at(r, 'update_ratio', up)! > 0, 'update_ratio of the moved weight');
});

test('an inactive monitor adds nothing to the tape and changes no value', () => {
  const { params, quantized, trainable } = setup();
  const b = batch(5);
  const monitor = new SignalMonitor({ params, quantized, trainable });
  const w = monitor.instrument(fakeQuant);
  const x = new Tensor(new Float32Array(4), [1, 4]);
  assert.equal(w.input!(quantized[0], x), x, 'inactive input hook is the identity on the same tensor');
  const ops = (root: Tensor): string[] => {
    const out: string[] = [];
    const seen = new Set<Tensor>();
    const stack = [root];
    while (stack.length) {
      const t = stack.pop()!;
      if (seen.has(t) || !t.node) continue;
      seen.add(t);
      out.push(t.node.op);
      stack.push(...t.node.inputs);
    }
    return out.sort();
  };
  const plain = lossOf(params, fakeQuant, b);
  const inst = lossOf(params, w, b);
  assert.deepEqual(ops(inst), ops(plain));
  assert.ok(!ops(inst).includes('signalProbe'), 'no probe on the tape');
  assert.equal(inst.item(), plain.item());
  backward(plain);
  const g1 = new Map(quantized.filter((n) => trainable.has(n)).map((n) => [n, params.get(n)!.grad!.f32.slice()]));
  for (const p of params.values()) p.grad = null;
  backward(inst);
  for (const [n, g] of g1) assert.deepEqual(params.get(n)!.grad!.f32, g, n);
  const idle = monitor.take(); // the inactive passes measured nothing
  for (const m of SIGNAL_METRICS) for (const v of Object.values(idle[m]!)) assert.ok(v.every((y) => y === null), m);
  // Active: one probe per quantized Linear, and still the same loss and gradients.
  for (const p of params.values()) p.grad = null;
  monitor.active = true;
  const probed = lossOf(params, w, b);
  assert.equal(ops(probed).filter((o) => o === 'signalProbe').length, quantized.length);
  assert.equal(probed.item(), plain.item());
  backward(probed);
  for (const [n, g] of g1) assert.deepEqual(params.get(n)!.grad!.f32, g, n);
  monitor.active = false;
  const r = monitor.take();
  assert.ok(quantized.every((n) => at(r, 'act_norm', n)! > 0 && at(r, 'signal_norm', n)! > 0), 'active pass measured');
});

test('a quantized name that is not a parameter is an error naming it', () => {
  const { params, trainable } = setup();
  assert.throws(() => new SignalMonitor({ params, quantized: ['model.layers.9.mlp.up_proj.weight'], trainable }),
    /'model\.layers\.9\.mlp\.up_proj\.weight' is not a parameter/);
});

test('BERT: the six encoder kinds, per layer, in METHODS.md order', () => {
  const params = freshParams('bert', 3);
  const quantized = [...params.keys()].filter((n) => /encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$/.test(n));
  assert.equal(quantized.length, 6 * 2);
  const monitor = new SignalMonitor({ params, quantized, trainable: new Set(params.keys()) });
  monitor.active = true;
  const ids = new Tensor(Int32Array.from({ length: B * T }, (_, i) => 4 + (i % (V - 4))), [B, T]);
  const enc = bertEncode(params, bertCfg, ids, { weight: monitor.instrument(fakeQuant) });
  backward(mean(mul(enc.last, enc.last)));
  monitor.afterBackward();
  const r = monitor.take();
  assert.deepEqual(Object.keys(r.act_norm!), ['query', 'key', 'value', 'attn-out', 'ffn-in', 'ffn-out']);
  for (const m of ['grad_norm', 'act_norm', 'signal_norm'] as const) {
    for (const [kind, v] of Object.entries(r[m]!)) assert.ok(v.length === 2 && v.every((x) => x !== null && x > 0), `${m} ${kind}: ${v}`);
  }
  for (const n of quantized) close(at(r, 'grad_norm', n), norm(params.get(n)!.grad!.f32), normRtol(params.get(n)!.size), n);
});

test('with the quantizer\'s codes, crossings count code changes, not scale moves', () => {
  // Per-tensor absmax 4-bit: s = max|w| / 7, code = round(w / s) — the scale follows the weights.
  const scaleOf = (w: Float32Array): number => w.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 7;
  const codesOf = (w: Float32Array): Int8Array => {
    const s = scaleOf(w);
    return Int8Array.from(w, (v) => Math.round(v / s));
  };
  const absmax: WeightFn = (_n, p) => {
    const s = scaleOf(p.f32);
    return add(p, new Tensor(p.f32.map((v) => Math.round(v / s) * s - v), p.shape));
  };
  const { params, quantized, trainable } = setup();
  const byCodes = new SignalMonitor({ params, quantized, trainable, codes: (_n, w) => codesOf(w.f32) });
  const byValues = new SignalMonitor({ params, quantized, trainable });
  for (const m of [byCodes, byValues]) {
    m.beforeUpdate();
    m.afterUpdate(absmax);
    m.take();
  }
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const w = params.get(q)!.f32;
  const c0 = codesOf(w);
  for (const m of [byCodes, byValues]) m.beforeUpdate();
  // The update: the largest entry grows by 3% (every ŵ of the tensor rescales) and 5 small
  // entries move by a whole step (their codes change).
  let imax = 0;
  for (let i = 0; i < w.length; i++) if (Math.abs(w[i]) > Math.abs(w[imax])) imax = i;
  const s0 = scaleOf(w);
  w[imax] *= 1.03;
  for (let i = 0, moved = 0; moved < 5; i++) if (i !== imax && Math.abs(c0[i]) <= 4) { w[i] += s0; moved++; }
  for (const m of [byCodes, byValues]) m.afterUpdate(absmax);
  const c1 = codesOf(w);
  const changed = c1.filter((v, i) => v !== c0[i]).length;
  const nonzero = c1.filter((v) => v !== 0).length;
  assert.ok(changed >= 5 && changed < nonzero / 2, `changed ${changed}, nonzero ${nonzero}`);
  const rc = byCodes.take(), rv = byValues.take();
  assert.equal(at(rc, 'cross_rate', q), changed / w.length);
  assert.equal(at(rc, 'step_cross_rate', q), changed / w.length);
  assert.ok(at(rv, 'cross_rate', q)! >= nonzero / w.length, 'ŵ comparison counts every rescaled entry');
  for (const n of quantized.filter((n) => n !== q)) assert.equal(at(rc, 'cross_rate', n), 0, n);
  assert.throws(() => new SignalMonitor({ params, quantized, trainable, codes: () => new Int8Array(3) }).beforeUpdate(),
    /codes of '.*' have 3 entries/);
});
