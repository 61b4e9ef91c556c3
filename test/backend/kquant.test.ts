// The native fakeQuantGrid (native/kquant_impl.inc) equals the TypeScript reference
// (src/backend/ref/kquant.ts = src/quant/formats.ts gridQuantRef + kunpack.ts) bit for bit — ŵ,
// codes, scales, mins — for every K-quant on normal, heavy-tailed, sparse (the oscillating
// blocks) and awkward weights, with 1 and 2 threads; error messages identical. And against
// llama.cpp itself (test/fixtures/ggml_blocks.safetensors): wherever llama.cpp's dequantized
// block is a fixed point, the native ŵ is llama.cpp's output and its codes/scales/mins
// dequantize to it. scripts/test.mjs reruns this file under every KDQAT_ISA level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { kernelOf } from '../../src/tensor/registry.js';
import { nativeAvailable, nativeIsa, setThreads, getThreads } from '../../src/tensor/index.js';
import { QuantRule } from '../../src/tensor/kernels.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { FORMATS, fakeQuantRef } from '../../src/quant/formats.js';
import { dequantizeUnpackedK, K_LAYOUT, type KFormatName } from '../../src/quant/kunpack.js';
import { Rng } from '../../src/tensor/rng.js';
import { awkwardWeights } from '../quant/cases.js';

const K: KFormatName[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
const ruleOf = (name: KFormatName) => QuantRule[name.toLowerCase() as 'q2_k'];
const ref = kernelOf('ref', 'fakeQuantGrid')!;
function nat() {
  assert.ok(nativeAvailable(), 'the native addon did not load: run `npm run build:native`');
  const f = kernelOf('native', 'fakeQuantGrid');
  assert.ok(f, 'native kernel fakeQuantGrid missing');
  return f;
}

/** First index where a and b differ bitwise (−0 ≠ +0), or −1. */
function firstBitDiff(a: Float32Array | Int32Array, b: Float32Array | Int32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

interface Outs { out: Float32Array; codes: Int32Array; scales: Float32Array; mins: Float32Array | null }
function run(k: typeof ref, name: KFormatName, w: Float32Array, rows: number, cols: number): Outs {
  const n = rows * cols, G = n / K_LAYOUT[name].sub;
  const o: Outs = { out: new Float32Array(n), codes: new Int32Array(n), scales: new Float32Array(G), mins: K_LAYOUT[name].mins ? new Float32Array(G) : null };
  k(w, o.out, o.codes, o.scales, o.mins, rows, cols, ruleOf(name));
  return o;
}
function same(a: Outs, b: Outs, what: string): void {
  for (const key of ['out', 'codes', 'scales', 'mins'] as const) {
    const x = a[key], y = b[key];
    if (x === null || y === null) { assert.equal(x, y, `${what} ${key}`); continue; }
    const i = firstBitDiff(x, y);
    assert.equal(i, -1, `${what}: ${key}[${i}] native ${x[i]} vs ref ${y[i]}`);
  }
}

function weights(seed: number): Record<string, { w: Float32Array; rows: number; cols: number }> {
  const r = new Rng(seed);
  const rows = 5, cols = 768, n = rows * cols;
  return {
    normal: { w: Float32Array.from({ length: n }, () => 0.02 * r.normal()), rows, cols },
    heavy: { w: Float32Array.from({ length: n }, () => (0.02 * r.normal()) / Math.max(0.05, r.uniform())), rows, cols },
    sparse: { w: Float32Array.from({ length: n }, () => (r.uniform() < 0.1 ? r.normal() : 0)), rows, cols },
    awkward: { w: awkwardWeights(6, 512, seed), rows: 6, cols: 512 },
  };
}

test(`native fakeQuantGrid ≡ ref bitwise: ŵ, codes, scales, mins (${nativeIsa()})`, () => {
  const k = nat();
  const before = getThreads();
  try {
    for (const seed of [1, 2]) {
      for (const [kind, { w, rows, cols }] of Object.entries(weights(seed))) {
        for (const name of K) {
          const want = run(ref, name, w, rows, cols);
          for (const threads of [1, 2]) {
            setThreads(threads);
            same(run(k, name, w, rows, cols), want, `${name} ${kind} seed ${seed}, ${threads} thread(s)`);
          }
          // ŵ alone (codes null) is the same ŵ.
          const out = new Float32Array(rows * cols);
          k(w, out, null, null, null, rows, cols, ruleOf(name));
          assert.equal(firstBitDiff(out, want.out), -1, `${name} ${kind}: out without codes`);
        }
      }
    }
  } finally {
    setThreads(before);
  }
});

test('native fakeQuantGrid reproduces llama.cpp where its dequantized block is a fixed point', () => {
  const k = nat();
  const FILE = fileURLToPath(new URL('../fixtures/ggml_blocks.safetensors', import.meta.url));
  const { tensors, metadata } = readSafetensors(FILE);
  for (const name of K) {
    const f = FORMATS[name];
    let checked = 0;
    for (const c of metadata[`${name}.cases`].split(',')) {
      const x = tensors.get(`${name}.${c}.x`)!, q = tensors.get(`${name}.${c}.q`)!.data as Uint8Array;
      const y = tensors.get(`${name}.${c}.y`)!.data as Float32Array;
      const xs = x.data as Float32Array, nb = xs.length / 256;
      for (let b = 0; b < nb; b++) {
        const xb = xs.slice(b * 256, (b + 1) * 256), yb = y.slice(b * 256, (b + 1) * 256);
        const qb = q.slice(b * f.bytes, (b + 1) * f.bytes);
        if (!yb.every(Number.isFinite)) {
          // The scale overflows fp16: both refuse the block, with the same message.
          let msg = '';
          assert.throws(() => ref(xb, new Float32Array(256), null, null, null, 1, 256, ruleOf(name)), (e: Error) => { msg = e.message; return true; });
          assert.throws(() => k(xb, new Float32Array(256), null, null, null, 1, 256, ruleOf(name)), (e: Error) => e.message === msg);
          continue;
        }
        if (firstBitDiff(fakeQuantRef(f, yb), yb) !== -1) continue; // llama.cpp's output is not a fixed point
        const got = run(k, name, xb, 1, 256);
        assert.equal(firstBitDiff(got.out, yb), -1, `${name} ${c} block ${b}: ŵ ≠ llama.cpp's dequantized block`);
        // Its deployable form dequantizes, by dequantize_row_q*_K's arithmetic, to llama.cpp's block
        // (codes of a sub-block whose scale is 0 are free, so they are not compared with qb's).
        const deq = dequantizeUnpackedK(name, { codes: Uint8Array.from(got.codes), scales: got.scales, mins: got.mins });
        assert.equal(firstBitDiff(deq, yb), -1, `${name} ${c} block ${b}: codes·scales − mins`);
        assert.equal(firstBitDiff(f.dequantizeRef(qb), yb), -1, `${name} ${c} block ${b}: the fixture's bytes`);
        checked++;
      }
    }
    assert.ok(checked >= 8, `${name}: only ${checked} llama.cpp blocks were fixed points`);
  }
});

test('native fakeQuantGrid errors equal the reference\'s', () => {
  const k = nat();
  const msg = (f: () => void): string => { try { f(); } catch (e) { return (e as Error).message; } return 'no error'; };
  const huge = new Float32Array(512).fill(0.01);
  huge.fill(3e9, 256, 512);
  huge[300] = -1.2345e12;
  const nan = new Float32Array(512);
  nan[300] = NaN;
  const cases: [string, (kk: typeof ref) => void][] = [
    ['overflow', (kk) => kk(huge, new Float32Array(512), null, null, null, 2, 256, QuantRule.q4_k)],
    ['non-finite', (kk) => kk(nan, null, null, null, null, 1, 512, QuantRule.q6_k)],
    ['not a K-quant', (kk) => kk(nan, null, null, null, null, 1, 512, QuantRule.q4_0)],
    ['cols', (kk) => kk(new Float32Array(384), null, null, null, null, 1, 384, QuantRule.q2_k)],
    ['no mins', (kk) => kk(new Float32Array(256), null, new Int32Array(256), new Float32Array(8), null, 1, 256, QuantRule.q5_k)],
    ['no scales', (kk) => kk(new Float32Array(256), null, new Int32Array(256), null, null, 1, 256, QuantRule.q3_k)],
  ];
  for (const [what, f] of cases) {
    const want = msg(() => f(ref));
    assert.notEqual(want, 'no error', what);
    assert.equal(msg(() => f(k)), want, what);
  }
});
