// Hutchinson's trace estimator with finite-difference Hessian-vector products
// (src/analysis/hutchinson.ts) against exact Hessians: per fixed probe vector v the sample must
// equal the exact v_mᵀ(H D v)_m / ε_m within the stated error bound (rounding of the float32
// gradients, O(u/ε); truncation O(ε²), zero for a quadratic); over many vectors the mean must
// be within 4 standard deviations of the exact trace, with the variance computed exactly from H.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { EPS_REL, hutchinson, rademacher, type HutchBlock } from '../../src/analysis/hutchinson.js';
import { Rng } from '../../src/tensor/rng.js';
import { gamma, U32, U64 } from '../bounds.js';

/** A random symmetric n×n matrix (float64), and a vector. */
function symmetric(n: number, seed: number, diag = 0): number[][] {
  const r = new Rng(seed);
  const a = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i][j] = a[j][i] = r.uniform() * 2 - 1 + (i === j ? diag : 0);
  return a;
}
const vec = (n: number, seed: number, scale: number): number[] => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => scale * (r.uniform() * 2 - 1));
};

/** Blocks of sizes `sizes` over one vector: [start, end) each. */
const spans = (sizes: number[]): [number, number][] => sizes.map((s, i) => {
  const a = sizes.slice(0, i).reduce((x, y) => x + y, 0);
  return [a, a + s];
});

/** gradAt for a loss whose float64 gradient is `grad(x)`, rounded to float32 per block as the
 *  trainer's gradients are; x = w + delta. Records the gradients it returned. */
function gradFn(w: number[], blocks: HutchBlock[], grad: (x: number[]) => number[], seen: Float32Array[][]) {
  const sp = spans(blocks.map((b) => b.size));
  return (delta: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> => {
    const x = w.slice();
    blocks.forEach((b, m) => delta.get(b.name)!.forEach((d, i) => { x[sp[m][0] + i] += d; }));
    const g = grad(x);
    const out = blocks.map((_, m) => Float32Array.from(g.slice(sp[m][0], sp[m][1])));
    seen.push(out);
    return new Map(blocks.map((b, m) => [b.name, out[m]]));
  };
}

const rms = (x: number[]): number => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);

it('quadratic: each sample equals v_mᵀ(A δ)_m / ε_m exactly up to the float32 rounding of the gradients', () => {
  const sizes = [6, 10], n = 16, A = symmetric(n, 3), b = vec(n, 4, 1);
  const w = [...vec(6, 5, 0.1), ...vec(10, 6, 2)]; // different scales → different ε per block
  const sp = spans(sizes);
  const blocks = sizes.map((s, m) => ({ name: `b${m}`, size: s, scale: rms(w.slice(sp[m][0], sp[m][1])) }));
  const seen: Float32Array[][] = [];
  const grad = (x: number[]): number[] => A.map((row, i) => row.reduce((s, a, j) => s + a * x[j], b[i]));
  const seed = 11, K = 3;
  const res = hutchinson(blocks, gradFn(w, blocks, grad, seen), { vectors: K, seed });
  const eps = blocks.map((bl) => EPS_REL * bl.scale);
  for (let k = 0; k < K; k++) {
    const v = blocks.map((bl, m) => rademacher(seed, k, m, bl.size));
    // δ as the estimator stores it: float32(ε_m · v_i).
    const delta = new Array<number>(n).fill(0);
    blocks.forEach((_, m) => v[m].forEach((s, i) => { delta[sp[m][0] + i] = Math.fround(eps[m] * s); }));
    const Ad = A.map((row) => row.reduce((s, a, j) => s + a * delta[j], 0));
    const [gp, gm] = [seen[2 * k], seen[2 * k + 1]];
    blocks.forEach((bl, m) => {
      let want = 0, bound = 0;
      for (let i = 0; i < bl.size; i++) {
        want += v[m][i] * Ad[sp[m][0] + i];
        // Each stored gradient is within u32·|g| of the float64 one, which is within γ_{n+1}(u64)
        // of exact; the float64 dot and division add γ_{2n}(u64) relative.
        bound += (U32 + gamma(n + 1, U64)) * (Math.abs(gp[m][i]) + Math.abs(gm[m][i]));
      }
      want /= eps[m];
      bound = bound / (2 * eps[m]) * (1 + gamma(2 * n, U64));
      const got = res.get(bl.name)!.samples[k];
      assert.ok(Math.abs(got - want) <= bound, `block ${m} vector ${k}: ${got} vs exact ${want}, bound ${bound}`);
      // The bound has teeth: far below the curvature it measures.
      assert.ok(bound < 1e-3 * Math.abs(want) || bound < 1e-3, `block ${m} vector ${k}: bound ${bound} vs ${want}`);
    });
  }
});

it('logistic loss: each sample equals vᵀHv within the O(ε²) truncation bound plus the O(u/ε) rounding bound', () => {
  // L(w) = Σ_j softplus(c_j·w) + ½λ‖w‖²:  ∇L = Σ σ(z_j) c_j + λw,  H = Σ σ'(z_j) c_j c_jᵀ + λI,
  // and along v, ψ(t) = L(w + t v) has ψ'''' = Σ σ'''(z_j(t)) (c_j·v)⁴ with |σ'''| ≤ 1/8.
  const n = 8, J = 20, lambda = 0.3;
  const C = Array.from({ length: J }, (_, j) => vec(n, 100 + j, 1.5));
  const w = vec(n, 7, 0.8);
  const sig = (z: number): number => 1 / (1 + Math.exp(-z));
  const grad = (x: number[]): number[] => {
    const g = x.map((xi) => lambda * xi);
    for (const c of C) {
      const s = sig(c.reduce((a, ci, i) => a + ci * x[i], 0));
      c.forEach((ci, i) => { g[i] += s * ci; });
    }
    return g;
  };
  const blocks = [{ name: 'w', size: n, scale: rms(w) }];
  const seen: Float32Array[][] = [];
  const seed = 21, K = 4;
  const res = hutchinson(blocks, gradFn(w, blocks, grad, seen), { vectors: K, seed });
  const eps = EPS_REL * blocks[0].scale, t = Math.fround(eps);
  for (let k = 0; k < K; k++) {
    const v = rademacher(seed, k, 0, n);
    let vHv = lambda * n, quart = 0;
    for (const c of C) {
      const z = c.reduce((a, ci, i) => a + ci * w[i], 0), cv = c.reduce((a, ci, i) => a + ci * v[i], 0);
      vHv += sig(z) * (1 - sig(z)) * cv * cv;
      quart += cv ** 4;
    }
    const [gp, gm] = [seen[2 * k][0], seen[2 * k + 1][0]];
    let round = 0;
    for (let i = 0; i < n; i++) round += (U32 + gamma(J + 2, U64)) * (Math.abs(gp[i]) + Math.abs(gm[i]));
    // The sample is (t/ε)·[vᵀHv + R] + rounding, |R| ≤ t²/6 · (1/8) Σ (c_j·v)⁴.
    const trunc = (t * t / 6) * quart / 8;
    const bound = Math.abs(t / eps - 1) * vHv + (t / eps) * trunc + round / (2 * eps) + gamma(4 * n, U64) * vHv;
    const got = res.get('w')!.samples[k];
    assert.ok(Math.abs(got - vHv) <= bound, `vector ${k}: ${got} vs exact vᵀHv ${vHv}, bound ${bound} (truncation ${trunc}, rounding ${round / (2 * eps)})`);
    assert.ok(bound < 1e-3 * vHv, `vector ${k}: the bound ${bound} is a small fraction of vᵀHv ${vHv}`);
  }
});

it('trace: with a diagonal Hessian every sample is the trace; otherwise the mean is within 4σ of the exact trace (σ from H)', () => {
  // Diagonal: vᵀ diag(a) v = Σ a_i for every Rademacher v.
  const n = 12, a = vec(n, 8, 3), w = vec(n, 9, 1);
  const blocksD = [{ name: 'd', size: n, scale: rms(w) }];
  const seen: Float32Array[][] = [];
  const rd = hutchinson(blocksD, gradFn(w, blocksD, (x) => x.map((xi, i) => a[i] * xi), seen), { vectors: 5, seed: 1 });
  const tr = a.reduce((s, x) => s + x, 0);
  const eps = EPS_REL * blocksD[0].scale;
  const roundD = Math.max(...seen.map((g) => g[0].reduce((s, x) => s + Math.abs(x), 0))) * 2 * (U32 + gamma(2, U64)) / (2 * eps);
  const absA = a.reduce((s, x) => s + Math.abs(x), 0);
  for (const s of rd.get('d')!.samples) assert.ok(Math.abs(s - tr) <= roundD + U32 * absA, `sample ${s} vs trace ${tr}`);
  assert.ok(rd.get('d')!.se! <= roundD + U32 * absA, `no spread: se ${rd.get('d')!.se}`);

  // General symmetric A over two blocks of different scales.
  const sizes = [5, 9], N = 14, A = symmetric(N, 12, 2), sp = spans(sizes);
  const x0 = [...vec(5, 13, 0.5), ...vec(9, 14, 4)];
  const blocks = sizes.map((s, m) => ({ name: `b${m}`, size: s, scale: rms(x0.slice(sp[m][0], sp[m][1])) }));
  const K = 400;
  const res = hutchinson(blocks, gradFn(x0, blocks, (x) => A.map((row) => row.reduce((s, aij, j) => s + aij * x[j], 0)), []), { vectors: K, seed: 5 });
  const epsOf = (j: number): number => Math.fround(EPS_REL * blocks[sp.findIndex(([lo, hi]) => j >= lo && j < hi)].scale);
  blocks.forEach((bl, m) => {
    const [lo, hi] = sp[m];
    let trace = 0, variance = 0;
    for (let i = lo; i < hi; i++) {
      trace += A[i][i];
      for (let j = 0; j < N; j++) {
        if (j === i) continue;
        // Rademacher: Var(Σ_{i≠j∈m} v_i A_ij v_j) = 2 Σ_{i≠j∈m} A_ij²; cross-block terms
        // v_i A_ij (ε_j/ε_m) v_j add Σ A_ij² (ε_j/ε_m)².
        variance += j >= lo && j < hi ? A[i][j] ** 2 : (A[i][j] * epsOf(j) / epsOf(i)) ** 2;
      }
    }
    const sd = Math.sqrt(variance / K);
    const r = res.get(bl.name)!;
    assert.ok(Math.abs(r.trace - trace) <= 4 * sd, `block ${m}: estimate ${r.trace} vs exact trace ${trace}, 4σ = ${4 * sd}`);
    // The reported standard error estimates σ (K = 400: its own relative error is ~5%).
    assert.ok(r.se! > sd / 1.5 && r.se! < 1.5 * sd, `block ${m}: standard error ${r.se} vs exact ${sd}`);
  });
});

it('rejects a vector count that is not a positive integer', () => {
  assert.throws(() => hutchinson([], () => new Map(), { vectors: 0, seed: 0 }), /vectors must be a positive integer, got 0/);
});
