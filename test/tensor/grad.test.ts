// Every primitive's gradient against central finite differences, on every backend.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.js';
import { Rng, intTensor, Tensor } from '../../src/tensor/index.js';
import { record } from '../../src/tensor/autograd.js';
import { gradCheck, param } from '../gradcheck.js';
import { BACKENDS, onBackend } from '../backends.js';

for (const be of BACKENDS) {
  describe(`gradients (${be})`, () => {
    const run = (name: string, body: (rng: Rng) => void): void => {
      it(name, () => onBackend(be, () => body(new Rng(name.length * 131 + 7))));
    };

    run('add/sub/mul/div with broadcasting', (rng) => {
      const a = param([2, 3, 5], rng), b = param([3, 1], rng), c = param([5], rng);
      const d = param([2, 3, 5], rng);
      for (let i = 0; i < d.size; i++) d.f32[i] = 1.5 + Math.abs(d.f32[i]); // keep away from 0
      gradCheck('add', T.add, [a, b]);
      gradCheck('sub', T.sub, [a, c]);
      gradCheck('mul', T.mul, [a, b]);
      gradCheck('div', T.div, [a, d]);
      gradCheck('div broadcast', T.div, [c, d]);
    });

    run('unary functions', (rng) => {
      const x = param([4, 7], rng);
      const pos = param([4, 7], rng);
      for (let i = 0; i < pos.size; i++) pos.f32[i] = 0.5 + Math.abs(pos.f32[i]);
      for (const [name, f] of Object.entries({
        exp: T.exp, tanh: T.tanh, gelu: T.gelu, geluTanh: T.geluTanh, silu: T.silu, neg: T.neg,
        sigmoid: T.sigmoid, square: T.square,
      })) gradCheck(name, f, [x]);
      for (const [name, f] of Object.entries({ log: T.log, sqrt: T.sqrt, rsqrt: T.rsqrt })) gradCheck(name, f, [pos], { eps: 1e-3 });
      gradCheck('affine', (t) => T.affine(t, -1.5, 0.25), [x]);
      gradCheck('siluGate', T.siluGate, [x, param([4, 7], rng)]);
    });

    run('reductions', (rng) => {
      const x = param([3, 4, 5], rng);
      gradCheck('sum all', (t) => T.sum(t), [x]);
      gradCheck('sum axis 1', (t) => T.sum(t, 1), [x]);
      gradCheck('sum axes 0,2 keep', (t) => T.sum(t, [0, 2], true), [x]);
      gradCheck('mean axis -1', (t) => T.mean(t, -1), [x]);
      gradCheck('max axis 1', (t) => T.max(t, 1), [x], { eps: 1e-3 });
    });

    run('layout: reshape, permute, slice, concat, gather', (rng) => {
      const x = param([2, 3, 4], rng), y = param([2, 2, 4], rng);
      gradCheck('reshape', (t) => T.reshape(t, [6, -1]), [x]);
      gradCheck('permute', (t) => T.permute(t, [2, 0, 1]), [x]);
      gradCheck('transpose', (t) => T.transpose(t), [x]);
      gradCheck('slice', (t) => T.slice(t, 1, 1, 3), [x]);
      gradCheck('concat', (a, b) => T.concat([a, b], 1), [x, y]);
      const idx = intTensor([2, 0, 2, 1], [2, 2]);
      gradCheck('gather axis 1 (repeated index)', (t) => T.gather(t, idx, 1), [x]);
      const emb = param([5, 3], rng);
      gradCheck('embedding', (w) => T.embedding(w, intTensor([4, 1, 1, 0], [2, 2])), [emb]);
    });

    run('matmul: batched, transposes, broadcast, linear', (rng) => {
      for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const a = param(tA ? [2, 4, 3] : [2, 3, 4], rng), b = param(tB ? [2, 5, 4] : [2, 4, 5], rng);
        gradCheck(`matmul ${tA} ${tB}`, (p, q) => T.matmul(p, q, { transA: tA, transB: tB }), [a, b]);
        const b2 = param(tB ? [5, 4] : [4, 5], rng);
        gradCheck(`matmul shared B ${tA} ${tB}`, (p, q) => T.matmul(p, q, { transA: tA, transB: tB }), [a, b2]);
        const a2 = param(tA ? [4, 3] : [3, 4], rng);
        gradCheck(`matmul shared A ${tA} ${tB}`, (p, q) => T.matmul(p, q, { transA: tA, transB: tB }), [a2, b]);
      }
      const x = param([2, 3, 6], rng), w = param([4, 6], rng), bias = param([4], rng);
      gradCheck('linear', (p, q, r) => T.linear(p, q, r), [x, w, bias]);
    });

    run('softmax, log-softmax, norms', (rng) => {
      const x = param([3, 7], rng), w = param([7], rng), b = param([7], rng);
      gradCheck('softmax', T.softmax, [x]);
      gradCheck('logSoftmax', T.logSoftmax, [x]);
      gradCheck('layerNorm', (p, q, r) => T.layerNorm(p, q, r, 1e-5), [x, w, b], { eps: 1e-3 });
      gradCheck('layerNorm no affine', (p) => T.layerNorm(p, null, null, 1e-5), [x], { eps: 1e-3 });
      gradCheck('rmsNorm', (p, q) => T.rmsNorm(p, q, 1e-6), [x, w], { eps: 1e-3 });
    });

    run('rope', (rng) => {
      const x = param([2, 3, 2, 8], rng);
      const { cos, sin } = T.ropeTables(3, 8, 10000);
      gradCheck('rope', (t) => T.rope(t, cos, sin), [x]);
    });

    run('dropout', (rng) => {
      const x = param([5, 9], rng);
      gradCheck('dropout', (t) => T.dropout(t, 0.3, 1234), [x]);
    });

    run('losses: cross-entropy, KL, MSE', (rng) => {
      const z = param([2, 3, 6], rng), t = param([2, 3, 6], rng);
      const targets = intTensor([1, 5, -100, 0, 2, 3], [2, 3]);
      gradCheck('crossEntropy', (p) => T.crossEntropy(p, targets), [z]);
      gradCheck('klDiv tau 2', (p, q) => T.klDiv(p, q, 2), [t, z]);
      gradCheck('klDiv masked rows', (p, q) => T.klDiv(p, q, 1, Float32Array.of(1, 0, 1, 1, 0, 1)), [t, z]);
      gradCheck('mse', T.mse, [z, t]);
    });

    run('fused attention: out, probs and scores', (rng) => {
      for (const [H, Hkv, causal, masked] of [[2, 2, true, false], [4, 2, false, true], [2, 1, true, true]] as const) {
        const B = 2, Tn = 4, D = 3;
        const q = param([B, Tn, H, D], rng), k = param([B, Tn, Hkv, D], rng), v = param([B, Tn, Hkv, D], rng);
        const keyMask = masked ? intTensor([1, 1, 1, 1, 1, 1, 0, 0], [B, Tn]) : null;
        const opts = { causal, keyMask, returnProbs: true, returnScores: true };
        gradCheck(`attention out ${H}/${Hkv}`, (a, b, c) => T.attention(a, b, c, opts).out, [q, k, v]);
        gradCheck(`attention probs ${H}/${Hkv}`, (a, b, c) => T.attention(a, b, c, opts).probs!, [q, k, v]);
        gradCheck(`attention scores ${H}/${Hkv}`, (a, b, c) => T.attention(a, b, c, opts).scores!, [q, k, v]);
        // All three outputs feeding one loss: the joint backward must sum their contributions.
        gradCheck(`attention joint ${H}/${Hkv}`, (a, b, c) => {
          const r = T.attention(a, b, c, opts);
          return T.add(T.sum(r.out), T.add(T.sum(T.square(r.probs!)), T.sum(T.square(r.scores!))));
        }, [q, k, v]);
      }
    });

    run('a composite expression reuses tensors (gradient accumulation)', (rng) => {
      const x = param([3, 4], rng);
      gradCheck('x*x + exp(x)', (t) => T.add(T.mul(t, t), T.exp(t)), [x]);
      const w = new Tensor(new Float32Array(4).fill(0.5), [4], true);
      gradCheck('shared weight', (t, u) => T.add(T.mul(t, u), T.mul(T.exp(t), u)), [x, w]);
    });

    run('the derived tolerance has teeth: a backward 1 % off fails', (rng) => {
      const x = param([3, 4], rng);
      // x² whose backward says 2.02·x: the check must catch it.
      const badSquare = (t: Tensor): Tensor =>
        record(T.noGrad(() => T.square(t)), 'badSquare', [t], (g) => [T.mul(g, T.affine(t, 2.02, 0))]);
      assert.throws(() => gradCheck('bad square', badSquare, [x]), /finite difference/);
    });
  });
}
