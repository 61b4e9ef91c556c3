// --freeze auto (src/train/freeze-auto.ts): the rule on given signals (paper A's ov-freeze as
// one instance), the spec's parsing, and `qat --freeze auto` end to end on tiny random teachers:
// the probe's record is written and obeyed, it leaves the run's student untouched (the run equals
// one given the chosen patterns by hand), and --resume neither probes again nor differs.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { matchesPattern } from '../../src/nn/modules.js';
import { architecture } from '../../src/models/registry.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readTrainLog } from '../../src/train/train-log.js';
import { runQat, STUDENT_DIR } from '../../src/train/qat.js';
import { QAT_DEFAULTS } from '../../src/train/qat-config.js';
import type { Reporter } from '../../src/train/loop.js';
import {
  AUTO_RATIO, FREEZE_AUTO_FILE, chooseFreeze, gradWrtHat, parseFreezeAuto, presetOf, type FreezeAutoRecord, type ModuleSignals,
} from '../../src/train/freeze-auto.js';
import { Tensor, intTensor } from '../../src/tensor/tensor.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { withGridGemm } from '../../src/tensor/compute.js';
import type { WeightFn } from '../../src/nn/params.js';
import { asModel, loadModelDir } from '../../src/io/model-dir.js';
import { archOf } from '../../src/models/model.js';
import { prepare } from '../../src/quant/prepare.js';
import { loadQuantConfig } from '../../src/quant/config.js';
import { captureFor, distillLoss } from '../../src/distill/losses.js';
import { bertTeacher, decoderConfig, llamaTeacher, silentReporter, tmpDir } from './qat-fixture.js';

const LLAMA = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const KIND = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' } as Record<string, string>;
const sub = (m: string): string => (['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn');

/** Signals of a 4-layer LLaMA where every module has the values `base` except those `over` sets. */
function signals(over: (layer: number, kind: string) => Partial<ModuleSignals> = () => ({})): ModuleSignals[] {
  return [0, 1, 2, 3].flatMap((layer) => LLAMA.map((m, i) => ({
    name: `model.layers.${layer}.${sub(m)}.${m}.weight`, layer, kind: KIND[m],
    // Spread around 1 so the median is a real order statistic.
    grad_rel: 1 + 0.01 * i, update_ratio: 1e-3, cross_rate: 0.01, dhat_ms: 1e-4, hess_mean: 0.1 * (1 + 0.02 * i), hess_se: 0.01,
    ...over(layer, KIND[m]),
  })));
}

it('the rule: ratios to the median of the layer, flagged when either is ≥ R, a kind frozen when flagged in more than half of the layers', () => {
  // Paper A's instance: v and o push R× harder than the rest in 3 of 4 layers → exactly `ov`.
  const r = chooseFreeze(signals((l, k) => ((k === 'v' || k === 'o') && l !== 2 ? { grad_rel: 3 } : {})), AUTO_RATIO);
  assert.deepEqual(r.patterns, ['self_attn.v_proj', 'self_attn.o_proj']);
  assert.equal(presetOf(r.patterns, 'llama'), 'ov');
  assert.deepEqual(r.patterns, [...architecture('llama').modules.freezePresets.ov]);
  const v = r.kinds.find((k) => k.kind === 'v')!;
  assert.deepEqual(v.flagged_layers, [0, 1, 3]);
  // The medians: per layer, the 4th of its 7 kinds' values in order.
  for (const l of [0, 1, 2, 3]) {
    const g = r.modules.filter((m) => m.layer === l).map((m) => m.grad_rel!).sort((a, b) => a - b);
    assert.equal(r.medians.grad_rel[l], g[3], `layer ${l}`);
  }
  for (const m of r.modules) assert.equal(m.r_grad, m.grad_rel! / r.medians.grad_rel[m.layer]!);
  // A layer that is larger as a whole (every kind 10×) flags nothing: kinds are compared within a layer.
  assert.deepEqual(chooseFreeze(signals((l) => (l === 0 ? { grad_rel: 10, hess_mean: 10 } : {})), AUTO_RATIO).modules.filter((m) => m.flagged), []);
  // Flagged in exactly half the layers (2 of 4) is not enough.
  const half = chooseFreeze(signals((l, k) => (k === 'gate' && l < 2 ? { grad_rel: 5 } : {})), AUTO_RATIO);
  assert.deepEqual(half.patterns, []);
  assert.deepEqual(half.kinds.find((k) => k.kind === 'gate')!.flagged_layers, [0, 1]);
  // The curvature route: cost ½·hess_mean·dhat_ms an outlier for `down` (grad_rel typical).
  const curv = chooseFreeze(signals((_, k) => (k === 'down' ? { hess_mean: 1 } : {})), AUTO_RATIO);
  assert.deepEqual(curv.patterns, ['mlp.down_proj']);
  const d = curv.modules.find((m) => m.kind === 'down')!;
  assert.equal(d.curv_cost, 0.5 * 1 * 1e-4);
  assert.ok(d.r_curv! >= AUTO_RATIO && d.r_grad! < AUTO_RATIO);
  // R is the threshold: the same signals at a higher R freeze nothing.
  assert.deepEqual(chooseFreeze(signals((l, k) => (k === 'v' ? { grad_rel: 3 } : {})), 4).patterns, []);
  // Nothing stands out: nothing is frozen; unmeasured signals never flag.
  assert.deepEqual(chooseFreeze(signals(), AUTO_RATIO).patterns, []);
  assert.deepEqual(chooseFreeze(signals(() => ({ hess_mean: null, grad_rel: null })), AUTO_RATIO).patterns, []);
});

it('--freeze auto / auto:R parse; a bad ratio or auto mixed with patterns is an error naming the flag', () => {
  assert.deepEqual(parseFreezeAuto('auto'), { ratio: AUTO_RATIO });
  assert.deepEqual(parseFreezeAuto('auto:3.5'), { ratio: 3.5 });
  assert.equal(parseFreezeAuto('ov'), null);
  assert.equal(parseFreezeAuto(''), null);
  assert.throws(() => parseFreezeAuto('auto:1'), /--freeze auto:1: the ratio in auto:R must be a number > 1/);
  assert.throws(() => parseFreezeAuto('auto:x'), /--freeze auto:x: the ratio/);
  assert.throws(() => parseFreezeAuto('ov,auto'), /--freeze ov,auto: 'auto' chooses the whole freeze set/);
});

it('the curvature passes differentiate w.r.t. ŵ: at δ = 0 the leaves get exactly the straight-through gradient of the latent weights, and nothing else keeps a gradient', () => {
  // w4-channel (absmax, no clipping): the straight-through estimator passes ∂L/∂ŵ to W unchanged,
  // so the gradient w.r.t. the fake-quantized values equals W.grad bit for bit (same forward,
  // same backward kernels: the leaves ŵ + δ carry no integer grid, so both run with the grid
  // backward off — on AMX, ŵ's grid would otherwise send W's path through matmulOnGrid).
  const root = tmpDir('fauto-grad');
  const teacher = llamaTeacher(root);
  const loaded = loadModelDir(teacher.dir);
  for (const p of loaded.params.values()) p.requiresGrad = false;
  const params = new Map([...loaded.params].map(([n, p]) => [n, Object.assign(new Tensor(p.f32.slice(), p.shape, true), { name: n })]));
  const model = asModel(loaded, params);
  const tmodel = asModel(loaded);
  const prep = prepare(model, loadQuantConfig('w4-channel').config);
  const names = [...prep.quantized.keys()].filter((n) => n.includes('.layers.'));
  const ids = intTensor(Array.from({ length: 2 * 12 }, (_, i) => (7 * i + 3) % 200), [2, 12]);
  const capture = captureFor({ pred: 1 }, 'llama');
  const fwd = (m: typeof model, w?: WeightFn) => archOf(m).forward(m, { ids }, { weight: w, capture });
  const t = noGrad(() => fwd(tmodel));
  const loss = (w: WeightFn) => distillLoss(fwd(model, w), t, { pred: 1 }, { arch: 'llama', tau: 1 }).total;
  const hat = new Map(names.map((n) => [n, noGrad(() => prep.weight(n, params.get(n)!))]));
  const zero = new Map(names.map((n) => [n, new Float32Array(params.get(n)!.size)]));
  const g = withGridGemm(false, () => gradWrtHat(params, prep.weight, hat, zero, loss));
  assert.deepEqual([...g.keys()], names);
  for (const p of params.values()) {
    assert.equal(p.grad, null, `${p.name}: no gradient left behind`);
    assert.equal(p.requiresGrad, true, `${p.name}: requiresGrad restored`);
  }
  backward(withGridGemm(false, () => loss(prep.weight)));
  for (const n of names) assert.ok(same(g.get(n)!, params.get(n)!.grad!.f32), `${n}: ∇_ŵ L = straight-through ∇_W L`);
  // A shift changes the gradient (the leaves really hold ŵ + δ).
  const shifted = gradWrtHat(params, prep.weight, hat, new Map(names.map((n) => [n, new Float32Array(params.get(n)!.size).fill(0.05)])), loss);
  assert.ok(names.some((n) => !same(shifted.get(n)!, g.get(n)!)));
  fs.rmSync(root, { recursive: true });
});

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const readLog = (out: string): Record<string, unknown>[] =>
  readTrainLog(path.join(out, 'qat_log.jsonl')).map((l) => { const { tokens_per_s: _t, ...r } = l as Record<string, unknown>; return r; });

it('qat --freeze auto (decoder): writes freeze_auto.json, freezes what it chose, leaves the student untouched, and resumes bitwise', () => {
  const root = tmpDir('fauto-dec');
  const teacher = llamaTeacher(root);
  const config = decoderConfig(teacher, { quant: 'w4-channel-lsq', freeze: 'auto:1.5', freezeProbeSteps: 6, steps: 8, saveEvery: 4, logEvery: 2, evalEvery: 0 });
  const ref = path.join(root, 'ref');
  const messages: string[] = [];
  const s = runQat({ out: ref, config, reporter: { ...silentReporter, message: (m) => messages.push(m) } });
  const rec = JSON.parse(fs.readFileSync(path.join(ref, FREEZE_AUTO_FILE), 'utf8')) as FreezeAutoRecord;
  assert.deepEqual(s.freeze_auto, rec);
  // The evidence: one row per layer × kind, every signal measured and finite.
  assert.equal(rec.modules.length, 2 * 7);
  for (const m of rec.modules) {
    for (const k of ['grad_rel', 'update_ratio', 'cross_rate', 'dhat_ms', 'hess_mean', 'hess_se', 'curv_cost'] as const) {
      assert.ok(Number.isFinite(m[k]), `${m.name} ${k} = ${m[k]}`);
    }
  }
  assert.equal(rec.probe.steps, 6);
  assert.equal(rec.probe.student_passes, 6 + 2 * rec.probe.vectors);
  // The record follows from its own evidence by the rule.
  assert.deepEqual(chooseFreeze(rec.modules, rec.ratio).patterns, rec.patterns);
  // (On this teacher v_proj stands out at R = 1.5, so the freezing below is exercised.)
  assert.ok(rec.patterns.length > 0, `the probe chose nothing: ${JSON.stringify(rec.kinds)}`);
  assert.ok(messages.some((m) => m.startsWith('--freeze auto: probed 14 modules') && m.includes(rec.patterns.join(', '))), messages.join('\n'));
  assert.equal(s.config.freeze, rec.patterns.join(','));
  assert.equal(s.config.freezeAuto, 'auto:1.5');
  // Frozen: exactly the parameters the patterns match (latent weights unchanged, LSQ steps with
  // them), with no optimizer state; the other quantized weights moved.
  const t = loadModelDir(teacher.dir).params;
  const ck = readCheckpoint(path.join(ref, 'checkpoint'));
  const isFrozen = (n: string): boolean => rec.patterns.some((p) => matchesPattern(n, p));
  for (const n of [...t.keys()].filter((x) => /_proj\.weight$/.test(x))) {
    assert.equal(same(ck.params.get(n)!, t.get(n)!.f32), isFrozen(n), `${n} ${isFrozen(n) ? 'unchanged' : 'moved'}`);
    assert.equal(ck.optimizer.buffers.has(`${n}.exp_avg`), !isFrozen(n), `${n}.exp_avg`);
    assert.equal(s.frozen.includes(`${n}.step`), isFrozen(n), `${n}.step frozen with its weight`);
  }
  assert.deepEqual(s.frozen.filter((n) => !n.endsWith('.step')).sort(), [...t.keys()].filter(isFrozen).sort());

  // The probe works on a copy: the run equals one given the chosen patterns by hand.
  const hand = path.join(root, 'hand');
  runQat({ out: hand, config: { ...config, freeze: rec.patterns.join(',') }, reporter: silentReporter });
  assert.deepEqual(readLog(hand), readLog(ref));
  for (const f of fs.readdirSync(path.join(ref, STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(hand, STUDENT_DIR, f)), fs.readFileSync(path.join(ref, STUDENT_DIR, f)), `student/${f}`);
  }

  // Crash after step 5, resume: no second probe, the same log and student, the record kept.
  const out = path.join(root, 'crashed');
  const crashing: Reporter = { ...silentReporter, step: (x) => { if (x.step === 5) throw new Error('simulated crash'); } };
  assert.throws(() => runQat({ out, config, reporter: crashing }), /simulated crash/);
  const resumedMessages: string[] = [];
  const r = runQat({ out, config, resume: true, reporter: { ...silentReporter, message: (m) => resumedMessages.push(m) } });
  assert.ok(!resumedMessages.some((m) => m.startsWith('--freeze auto: probed')), 'a resumed run does not probe again');
  assert.deepEqual(readLog(out), readLog(ref));
  for (const f of fs.readdirSync(path.join(ref, STUDENT_DIR))) {
    assert.deepEqual(fs.readFileSync(path.join(out, STUDENT_DIR, f)), fs.readFileSync(path.join(ref, STUDENT_DIR, f)), `resumed student/${f}`);
  }
  assert.equal(r.freeze_auto!.patterns.join(), rec.patterns.join());
  // freezeAuto is the run's record, never an input.
  assert.throws(() => runQat({ out: path.join(root, 'bad'), config: { ...config, freeze: 'ov', freezeAuto: 'auto:1.5' }, reporter: silentReporter }),
    /freezeAuto "auto:1.5": is written by the run, not given; use --freeze auto/);
  fs.rmSync(root, { recursive: true });
});

it('qat --freeze auto (encoder): the module kinds are the encoder\'s and the chosen patterns select them', () => {
  const root = tmpDir('fauto-enc');
  const { dir, train, dev } = bertTeacher(root);
  const out = path.join(root, 'out');
  const s = runQat({
    out, reporter: silentReporter, evaluate: false,
    config: { ...QAT_DEFAULTS, teacher: dir, task: train, dev, quant: 'w4-channel', freeze: 'auto:1.5', freezeProbeSteps: 4, steps: 2, batch: 4, lr: 1e-3, warmup: 0, evalEvery: 0, saveEvery: 0, logEvery: 1 },
  });
  const rec = s.freeze_auto!;
  assert.equal(rec.ratio, 1.5);
  assert.deepEqual(rec.kinds.map((k) => k.kind), ['query', 'key', 'value', 'attn-out', 'ffn-in', 'ffn-out']);
  for (const k of rec.kinds) {
    assert.equal(k.layers, 2);
    const names = rec.modules.filter((m) => m.kind === k.kind).map((m) => m.name);
    for (const n of names) assert.ok(k.pattern.split(',').some((p) => matchesPattern(n, p)), `${k.kind}: ${k.pattern} selects ${n}`);
  }
  for (const m of rec.modules) assert.ok(Number.isFinite(m.hess_mean) && Number.isFinite(m.grad_rel), `${m.name}: measured`);
  assert.deepEqual(chooseFreeze(rec.modules, rec.ratio).patterns, rec.patterns);
  assert.equal(s.config.freeze, rec.patterns.join(','));
  assert.ok(fs.existsSync(path.join(out, FREEZE_AUTO_FILE)));
  fs.rmSync(root, { recursive: true });
});
