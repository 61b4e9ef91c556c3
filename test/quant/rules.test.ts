// Quantization rules: prepare ≡ convert bitwise (fakeQuantWeight vs dequantizeCodes of
// quantizeCodes) for every rule × granule on every backend, the llama.cpp grids equal
// src/quant/formats.ts (bit-exact ggml-quants.c), the uniform rules against an independent
// float32 transcription of METHODS.md §2, code ranges and types, and error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { U32, gamma } from '../bounds.js';
import { Tensor } from '../../src/tensor/index.js';
import { fakeQuantWeight, initStep, fakeQuantInput } from '../../src/quant/ops.js';
import { quantizeCodes, dequantizeCodes, granuleCount, type WeightQuant } from '../../src/quant/rules.js';
import { Q4_0, Q8_0, TQ2_0, fakeQuantRef } from '../../src/quant/formats.js';
import { fromF16 } from '../../src/io/half.js';
import { BACKENDS, onBackend } from '../backends.js';
import { allCases, awkwardWeights, jitterStep, firstDiff } from './cases.js';

function assertBitwise(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  const i = firstDiff(a, b);
  assert.equal(i, -1, `${what}: index ${i}: ${a[i]} vs ${b[i]}`);
}

for (const backend of BACKENDS) {
  test(`prepare ≡ convert bitwise for every rule × granule (${backend})`, () => {
    onBackend(backend, () => {
      for (const c of allCases()) {
        const w = awkwardWeights(c.rows, c.cols);
        const wt = new Tensor(w, [c.rows, c.cols]);
        const step = c.q.lsq ? jitterStep(initStep(wt, c.q).f32) : undefined;
        const fake = fakeQuantWeight(wt, c.q, step && new Tensor(step, [step.length])).f32;
        const codes = quantizeCodes(w, c.rows, c.cols, c.q, step);
        assertBitwise(dequantizeCodes(codes, c.rows, c.cols, c.q), fake, c.name);
        assert.equal(codes.scales.length, granuleCount(c.rows, c.cols, c.q), c.name);
        assert.ok(fake.every(Number.isFinite), `${c.name}: finite`);
      }
    });
  });

  test(`llama.cpp rules equal formats.ts dequantizeRef(quantizeRef(row)) bitwise (${backend})`, () => {
    onBackend(backend, () => {
      for (const [kind, f] of [['q4_0', Q4_0], ['q8_0', Q8_0], ['tq2_0', TQ2_0]] as const) {
        const rows = 6, cols = 768;
        const w = awkwardWeights(rows, cols, 7);
        const q: WeightQuant = { rule: { kind }, granule: { kind: 'group', size: f.block } };
        const fake = fakeQuantWeight(new Tensor(w, [rows, cols]), q).f32;
        const codes = quantizeCodes(w, rows, cols, q);
        for (let r = 0; r < rows; r++) {
          const row = w.subarray(r * cols, (r + 1) * cols);
          assertBitwise(fake.subarray(r * cols, (r + 1) * cols), fakeQuantRef(f, row), `${kind} row ${r}`);
          // Codes equal the unpacked ggml block bytes; scales the stored fp16 d.
          const ref = f.dequantizeRef(f.quantizeRef(row));
          assertBitwise(dequantizeCodes(codes, rows, cols, q).subarray(r * cols, (r + 1) * cols), ref, kind);
        }
        const [lo, hi] = kind === 'q4_0' ? [0, 15] : kind === 'q8_0' ? [-127, 127] : [0, 2];
        assert.ok(codes.codes.every((v) => v >= lo && v <= hi), `${kind} codes in ${lo}..${hi}`);
        assert.ok(kind === 'q8_0' ? codes.codes instanceof Int8Array : codes.codes instanceof Uint8Array);
      }
    });
  });
}

/** Codes and scales unpacked from ggml block bytes (ggml-common.h layouts). */
function unpackGgml(kind: 'q4_0' | 'q8_0' | 'tq2_0', bytes: Uint8Array): { codes: number[]; d: number[] } {
  const codes: number[] = [], d: number[] = [];
  const f16 = (o: number): number => fromF16(bytes[o] | (bytes[o + 1] << 8));
  if (kind === 'q4_0') {
    for (let o = 0; o < bytes.length; o += 18) {
      d.push(f16(o));
      for (let j = 0; j < 32; j++) codes.push(j < 16 ? bytes[o + 2 + j] & 15 : bytes[o + 2 + j - 16] >> 4);
    }
  } else if (kind === 'q8_0') {
    for (let o = 0; o < bytes.length; o += 34) {
      d.push(f16(o));
      for (let j = 0; j < 32; j++) codes.push((bytes[o + 2 + j] << 24) >> 24);
    }
  } else {
    for (let o = 0; o < bytes.length; o += 66) {
      d.push(f16(o + 64));
      for (let j = 0; j < 256; j++) {
        const h = j >> 7, n = (j & 127) >> 5, m = j & 31;
        codes.push((bytes[o + h * 32 + m] >> (2 * n)) & 3);
      }
    }
  }
  return { codes, d };
}

for (const backend of BACKENDS) {
  test(`llama.cpp codes and scales equal the ggml reference quantizer's block bytes (${backend})`, () => {
    onBackend(backend, () => {
      for (const [kind, f] of [['q4_0', Q4_0], ['q8_0', Q8_0], ['tq2_0', TQ2_0]] as const) {
        const rows = 5, cols = 512;
        const w = awkwardWeights(rows, cols, 13);
        const q: WeightQuant = { rule: { kind }, granule: { kind: 'channel' } };
        const c = quantizeCodes(w, rows, cols, q);
        const nb = cols / f.block;
        for (let r = 0; r < rows; r++) {
          const ref = unpackGgml(kind, f.quantizeRef(w.subarray(r * cols, (r + 1) * cols)));
          assert.deepEqual(Array.from(c.codes.subarray(r * cols, (r + 1) * cols)), ref.codes, `${kind} row ${r} codes`);
          assertBitwise(c.scales.subarray(r * nb, (r + 1) * nb), ref.d, `${kind} row ${r} scales`);
        }
      }
    });
  });
}

const fr = Math.fround;
const roundAway = (x: number): number => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

test('sym and asym per group match a direct float32 transcription of METHODS.md §2', () => {
  const rows = 5, cols = 64, g = 16;
  const w = awkwardWeights(rows, cols, 3);
  for (const bits of [2, 4, 8]) {
    const qs: WeightQuant = { rule: { kind: 'sym', bits }, granule: { kind: 'group', size: g } };
    const qa: WeightQuant = { rule: { kind: 'asym', bits }, granule: { kind: 'group', size: g } };
    const ys = fakeQuantWeight(new Tensor(w, [rows, cols]), qs).f32;
    const ya = fakeQuantWeight(new Tensor(w, [rows, cols]), qa).f32;
    const cs = quantizeCodes(w, rows, cols, qs), ca = quantizeCodes(w, rows, cols, qa);
    for (let k = 0; k < (rows * cols) / g; k++) {
      const x = Array.from(w.subarray(k * g, (k + 1) * g));
      const qp = 2 ** (bits - 1) - 1, qmax = 2 ** bits - 1;
      const s = fr(Math.max(...x.map(Math.abs)) / qp);
      assert.equal(cs.scales[k], s);
      const mn = Math.min(0, ...x), mx = Math.max(0, ...x);
      const sa = fr(fr(mx - mn) / qmax);
      const z = sa ? roundAway(fr(-mn / sa)) : 0;
      assert.equal(ca.scales[k], sa);
      assert.equal(ca.zeros![k], z);
      for (let j = 0; j < g; j++) {
        const q = s ? Math.min(qp, Math.max(-qp - 1, roundAway(fr(x[j] / s)))) : 0;
        assert.equal(ys[k * g + j], fr(q * s) + 0, `sym ${bits} granule ${k} elem ${j}`);
        assert.equal(cs.codes[k * g + j], q + 0);
        const qa2 = sa ? Math.min(qmax, Math.max(0, roundAway(fr(x[j] / sa)) + z)) : 0;
        assert.equal(ya[k * g + j], fr((qa2 - z) * sa) + 0, `asym ${bits} granule ${k} elem ${j}`);
      }
    }
  }
});

test('rounding is half away from zero (C roundf), all-zero granules give 0 without NaN', () => {
  const w = awkwardWeights(4, 96);
  const q: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' } };
  const y = fakeQuantWeight(new Tensor(w, [4, 96]), q).f32;
  // Row 3: s = 7/7 = 1; 0.5 → 1, −0.5 → −1, 1.5 → 2, 2.5 → 3 (torch.round would give 0, −0, 2, 2).
  assert.deepEqual(Array.from(y.subarray(3 * 96, 3 * 96 + 7)), [7, 1, -1, 2, -2, 3, -3]);
  assert.ok(y.subarray(96, 192).every((v) => Object.is(v, 0)), 'all-zero row → +0');
  const codes = quantizeCodes(w, 4, 96, q);
  assert.equal(codes.scales[1], 0);
});

test('TWN matches Δ = 0.7·mean|W|, α = mean{|w| : |w| > Δ} per tensor and per row', () => {
  const rows = 6, cols = 40;
  const w = awkwardWeights(rows, cols, 5);
  for (const granule of [{ kind: 'tensor' }, { kind: 'channel' }] as const) {
    const q: WeightQuant = { rule: { kind: 'twn' }, granule };
    const y = fakeQuantWeight(new Tensor(w, [rows, cols]), q).f32;
    const n = granule.kind === 'tensor' ? rows * cols : cols;
    for (let k = 0; k < (rows * cols) / n; k++) {
      const x = Array.from(w.subarray(k * n, (k + 1) * n));
      const delta = 0.7 * x.reduce((a, v) => a + Math.abs(v), 0) / n;
      const big = x.filter((v) => Math.abs(v) > delta);
      const alpha = big.length ? big.reduce((a, v) => a + Math.abs(v), 0) / big.length : 0;
      for (let j = 0; j < n; j++) {
        const want = Math.abs(x[j]) > delta ? Math.sign(x[j]) * alpha : 0;
        // α is a float32 mean of up to n magnitudes (γ_n) stored once more in float32 (u).
        assert.ok(Math.abs(y[k * n + j] - want) <= (gamma(n) + U32) * alpha, `${granule.kind} ${k}/${j}`);
      }
      const codes = quantizeCodes(w, rows, cols, q);
      assert.ok(codes.codes instanceof Int8Array && codes.codes.every((v) => v >= -1 && v <= 1));
    }
  }
});

test('code types and ranges per rule', () => {
  const w = awkwardWeights(7, 96);
  for (const c of allCases().filter((x) => x.cols === 96 && !x.q.lsq)) {
    const { codes, zeros } = quantizeCodes(w, c.rows, c.cols, c.q);
    const r = c.q.rule;
    if (r.kind === 'sym') {
      assert.ok(codes instanceof Int8Array);
      assert.ok(codes.every((v) => v >= -(2 ** (r.bits - 1)) && v < 2 ** (r.bits - 1)), c.name);
    } else if (r.kind === 'asym') {
      assert.ok(codes instanceof Uint8Array && zeros instanceof Int32Array);
      assert.ok(codes.every((v) => v < 2 ** r.bits) && zeros.every((z) => z >= 0 && z < 2 ** r.bits), c.name);
    }
  }
});

test('error paths name the rule, the shape and the fix', () => {
  const w = new Tensor(new Float32Array(6 * 96), [6, 96]);
  const cases: [WeightQuant, RegExp][] = [
    [{ rule: { kind: 'sym', bits: 9 }, granule: { kind: 'channel' } }, /sym 9-bit per channel on a \[6, 96\] weight: bits 9 is outside 2\.\.8/],
    [{ rule: { kind: 'asym', bits: 1 }, granule: { kind: 'tensor' } }, /asym 1-bit.*bits 1 is outside 2\.\.8/],
    [{ rule: { kind: 'sym', bits: 4 }, granule: { kind: 'group', size: 64 } }, /per group of 64 on a \[6, 96\] weight: group size 64 does not divide the 96 input columns/],
    [{ rule: { kind: 'q4_0' }, granule: { kind: 'channel' } }, null as unknown as RegExp],
    [{ rule: { kind: 'tq2_0' }, granule: { kind: 'channel' } }, /tq2_0 \(blocks of 256\) on a \[6, 96\] weight: cols 96 is not a multiple of the tq2_0 block 256/],
    [{ rule: { kind: 'q8_0' }, granule: { kind: 'group', size: 48 } }, /q8_0 has fixed blocks of 32; drop the granule or use group size 32/],
    [{ rule: { kind: 'twn' }, granule: { kind: 'channel' }, lsq: true }, /LSQ \(a learned step\) applies to sym and asym only/],
  ];
  for (const [q, re] of cases) {
    if (!re) {
      assert.doesNotThrow(() => fakeQuantWeight(w, q)); // 96 = 3 blocks of 32
      continue;
    }
    assert.throws(() => fakeQuantWeight(w, q), re);
    assert.throws(() => quantizeCodes(w.f32, 6, 96, q), re);
  }
  const lsq: WeightQuant = { rule: { kind: 'sym', bits: 4 }, granule: { kind: 'channel' }, lsq: true };
  assert.throws(() => fakeQuantWeight(w, lsq), /LSQ needs its learned step \(6 values; make it with initStep\)/);
  assert.throws(() => fakeQuantWeight(w, lsq, new Tensor(new Float32Array(5), [5])), /step has 5 values, expected 6/);
  assert.throws(() => fakeQuantWeight(w, lsq, new Tensor(new Float32Array(6).fill(-1), [6])), /LSQ step -1 of granule 0 must be finite and ≥ 0/);
  const bad = new Float32Array(6 * 96);
  bad[97] = NaN;
  for (const q of allCases().map((c) => c.q).filter((q) => !q.lsq).slice(0, 6)) {
    assert.throws(() => fakeQuantWeight(new Tensor(bad, [6, 96]), q), /on a \[6, 96\] weight: fakeQuant: non-finite weight NaN at row 1, column 1/);
  }
  assert.throws(() => fakeQuantWeight(new Tensor(new Float32Array(8), [8]), lsq), /expected a 2-D float32 weight/);
  const x = new Tensor(new Float32Array([1, NaN, 2]), [3]);
  assert.throws(() => fakeQuantInput(x, 9), /fakeQuantInput: bits 9 is outside 2\.\.8 \(activations on shape \[3\]\)/);
  assert.throws(() => fakeQuantInput(x, 8, -1), /fakeQuantInput: clip -1 must be > 0/);
  assert.throws(() => fakeQuantInput(x, 8), /fakeQuantInput: 8-bit on shape \[3\]: fakeQuantInput: non-finite input NaN at index 1/);
  assert.throws(() => initStep(w, { rule: { kind: 'twn' }, granule: { kind: 'tensor' } }), /initStep: rule twn has no learnable step/);
});
