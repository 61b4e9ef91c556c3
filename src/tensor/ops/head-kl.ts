// The logits KL fused with the LM head and chunked over rows (issue 13): τ²·KL(p_T ‖ p_S) of
// klDiv (loss.ts), with the student's logits S = x·Wᵀ computed a chunk of rows at a time and
// never held whole. B·T·V logits (SmolLM2 at B4 T256: 1024 × 49152 floats = 200 MB per model,
// plus the gradient) become a few (rows × V) chunk buffers (CHUNK_BYTES each).
//
// Per chunk of rows (only rows with a non-zero weight are computed):
//   T_c = teacher logits of the rows (x_T·W_Tᵀ, or a slice of given dense logits)   (n, V)
//   S_c = x_S·W_Sᵀ                                                                    (n, V)
//   loss_r = KL(softmax(T_c/τ) ‖ softmax(S_c/τ))                  (the klDiv kernel)
// and, when a gradient will be needed (recording, student requires grad), in the same pass:
//   G_c = gloss·(q − p)/τ                                         (the klDivBackward kernel)
//   dx_c = G_c·W_S (n, C);   dW_S += G_cᵀ·x_c (V, C)
// so the gradient costs the two GEMMs the unfused backward costs and no recomputation; the
// backward only scales dx, dW by the upstream gradient. The teacher is a target: no gradient
// flows to it (it must not require one). Everything is the existing kernels (matmul, klDiv,
// klDivBackward): the GEMMs are ~all the time, as in the unfused path.
import { Tensor } from '../tensor.js';
import { giveBack, handOver, zerosF32 } from '../storage.js';
import { isRecording, record } from '../autograd.js';
import { kernel } from '../registry.js';
import { fmt, requireF32 } from './util.js';
import { widenBf16 } from '../bf16.js';
import { computePrecision, type ComputePrecision } from '../compute.js';

/** An LM head as applied: logits (..., V) = x (..., C) · weight (V, C)ᵀ. */
export interface HeadInput {
  x: Tensor;
  weight: Tensor;
  /** The GEMM precision the head's forward ran under (tensor/compute.ts); default: the one in
   *  force when headKlDiv is called. Each side's logits GEMMs use it. */
  compute?: ComputePrecision;
  /** The student's backward GEMMs (∂x = G·W, ∂W += Gᵀ·x); default: `compute`. */
  backward?: ComputePrecision;
}

/**
 * A teacher's token logits kept as their top K per row (the teacher cache's --cache-teacher-topk,
 * docs/distillation.md): the K largest logits and their ids, plus what defines the teacher's
 * distribution at temperature τ beyond them: lse = logsumexp(z/τ) of the full row, logTail =
 * log of the probability mass outside the K ids (−Infinity when K = V). `lead` is the rows'
 * shape (B, T); ids, logits (…, K); lse, logTail (…).
 */
export interface TopkLogits {
  lead: readonly number[];
  V: number;
  K: number;
  tau: number;
  ids: Int32Array;
  logits: Float32Array;
  lse: Float32Array;
  logTail: Float32Array;
}

/** The top-K form of dense logits (…, V) at temperature τ (the topkLogits kernel: per row the
 *  K largest logits in descending order, ties by the lower id, with the full row's lse and the
 *  tail's log-mass computed in float64 and rounded once). */
export function topkLogits(logits: Tensor, K: number, tau: number): TopkLogits {
  requireF32('topkLogits', logits);
  const V = logits.shape[logits.ndim - 1], rows = logits.size / V;
  if (!(Number.isInteger(K) && K >= 1 && K <= V)) throw new RangeError(`topkLogits: K must be an integer from 1 to V = ${V}, got ${K}`);
  if (!(tau > 0 && Number.isFinite(tau))) throw new RangeError(`topkLogits: temperature must be a positive number, got ${tau}`);
  const ids = new Int32Array(rows * K), vals = new Float32Array(rows * K);
  const lse = new Float32Array(rows), logTail = new Float32Array(rows);
  kernel('topkLogits')(logits.f32, ids, vals, lse, logTail, rows, V, K, tau);
  return { lead: logits.shape.slice(0, -1), V, K, tau, ids, logits: vals, lse, logTail };
}

/** Bytes of one (rows × V) float32 chunk buffer (three are live at a time), at least. */
export const CHUNK_BYTES = 32 << 20;
/**
 * Rows per chunk, at least. Every chunk repacks W for the two GEMMs that take it as an operand
 * and reads and writes all of ∂W (V × C) for a product only `rows` deep, so that cost per row
 * falls with the chunk's height. 32 MB alone held 55 rows at Qwen2.5's V = 151936: its KD-QAT
 * step (bench/real_size_worker.ts, Qwen2.5-0.5B, B2 T256, W4 g32; Intel Xeon, 1 thread) ran at
 * 37.6 tokens/s in float32 and 62.5 with `--bf16 layers`, against 41.9 and 75.6 with 256-row
 * chunks (2 threads: 66.8 → 75.2, 104.7 → 122.0); SmolLM2-135M (170 → 256 rows) +3% in float32.
 * The price: 3 × 1 KiB × V (466 MB at V = 151936, less than the head's own float32 weight; peak
 * RSS 12.82 → 13.18 GB there, +60 MB on SmolLM2), against the dense path's 3 × B·T·V floats.
 */
export const MIN_CHUNK_ROWS = 256;

/** Rows per chunk for vocabulary V: CHUNK_BYTES of logits, and at least MIN_CHUNK_ROWS. */
export const chunkRowsFor = (V: number): number => Math.max(MIN_CHUNK_ROWS, Math.floor(CHUNK_BYTES / 4 / V));

function checkHead(op: string, who: string, h: HeadInput): [rows: number, C: number, V: number] {
  requireF32(op, h.x);
  if (who !== 'teacher' || h.weight.dtype !== 'bf16') requireF32(op, h.weight); // the teacher's may be bf16 (tensor/bf16.ts)
  if (h.weight.ndim !== 2) throw new RangeError(`${op}: ${who} head weight must be (V, C), got ${fmt(h.weight.shape)}`);
  const [V, C] = h.weight.shape;
  if (h.x.ndim < 1 || h.x.shape[h.x.ndim - 1] !== C) {
    throw new RangeError(`${op}: ${who} head input ${fmt(h.x.shape)} does not end in the weight's C = ${C} (weight ${fmt(h.weight.shape)})`);
  }
  return [h.x.size / C, C, V];
}

/** Copies rows `idx` of a (·, n) matrix into out (idx.length, n); a contiguous run is a view. */
function rowsOf(src: Float32Array, idx: Int32Array, n: number, out: Float32Array): Float32Array {
  const r0 = idx[0], k = idx.length;
  if (idx[k - 1] - r0 === k - 1) return src.subarray(r0 * n, (r0 + k) * n);
  for (let i = 0; i < k; i++) out.set(src.subarray(idx[i] * n, (idx[i] + 1) * n), i * n);
  return out.subarray(0, k * n);
}

/**
 * τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) per row, averaged over rows whose weight is non-zero,
 * exactly klDiv(t, s, τ, rowWeights) with s = student.x·student.weightᵀ and t the teacher's
 * logits: given dense (..., V), or a head (t = teacher.x·teacher.weightᵀ). The student's
 * leading shape (...) must equal the teacher's. Gradients flow to student.x and student.weight.
 * `chunkRows` (default chunkRowsFor(V)) changes how much is held at once, and the results only
 * within float32 rounding (the GEMMs are blocked by chunk, and ∂W's sum over rows runs a chunk at
 * a time; test/distill/head-kl.test.ts states the bound). Larger chunks
 * than the default did not run faster: SmolLM2-135M (V = 49152) at 512 rows instead of 256, 1
 * thread on an AMD EPYC Zen 3, 67.3 / 65.7 against 68.8 / 66.9 tokens/s (the head's GEMMs 8.30 /
 * 8.50 s against 8.45 / 8.69 s over three steps), for 160 MB more peak RSS.
 */
export function headKlDiv(teacher: Tensor | HeadInput | TopkLogits, student: HeadInput, tau = 1, rowWeights?: Float32Array, chunkRows?: number): Tensor {
  const op = 'headKlDiv';
  const [rows, C, V] = checkHead(op, 'student', student);
  const lead = student.x.shape.slice(0, -1);
  const dense = teacher instanceof Tensor ? teacher : null;
  const topk = !dense && 'ids' in teacher ? teacher : null;
  const th = dense || topk ? null : (teacher as HeadInput);
  let Ct = 0;
  if (topk) {
    if (topk.V !== V || topk.lead.length !== lead.length || topk.lead.some((d, i) => d !== lead[i])) {
      throw new RangeError(`${op}: top-${topk.K} teacher logits of ${fmt([...topk.lead, topk.V])} do not match the student's ${fmt([...lead, V])}`);
    }
    if (topk.tau !== tau) throw new RangeError(`${op}: the top-${topk.K} teacher logits were taken at temperature ${topk.tau}, the loss asks for ${tau}`);
  } else if (dense) {
    requireF32(op, dense);
    if (dense.shape.length !== lead.length + 1 || dense.shape.some((d, i) => d !== (i < lead.length ? lead[i] : V))) {
      throw new RangeError(`${op}: teacher logits ${fmt(dense.shape)} do not match the student's ${fmt([...lead, V])}`);
    }
    if (dense.requiresGrad) throw new RangeError(`${op}: the teacher is a target and must not require a gradient (use klDiv)`);
  } else {
    const [tr, tc, tv] = checkHead(op, 'teacher', th!);
    if (tr !== rows || tv !== V || th!.x.shape.length !== student.x.shape.length || lead.some((d, i) => d !== th!.x.shape[i])) {
      throw new RangeError(`${op}: teacher head (input ${fmt(th!.x.shape)}, weight ${fmt(th!.weight.shape)}) does not match the student's (input ${fmt(student.x.shape)}, weight ${fmt(student.weight.shape)})`);
    }
    if (th!.x.requiresGrad || th!.weight.requiresGrad) throw new RangeError(`${op}: the teacher is a target and must not require a gradient (run it under noGrad)`);
    Ct = tc;
  }
  if (!(tau > 0 && Number.isFinite(tau))) throw new RangeError(`${op}: temperature must be a positive number, got ${tau}`);
  if (rowWeights && rowWeights.length !== rows) throw new RangeError(`${op}: ${rowWeights.length} row weights for ${rows} rows`);
  const n = chunkRows ?? chunkRowsFor(V);
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`${op}: chunkRows must be a positive integer, got ${n}`);

  // The rows that count (weight ≠ 0) and the normalizer, as klDiv: τ²/Σw.
  let wsum = 0;
  const active: number[] = [];
  for (let r = 0; r < rows; r++) {
    const w = rowWeights ? rowWeights[r] : 1;
    wsum += w;
    if (w !== 0) active.push(r);
  }
  const scale = wsum > 0 ? (tau * tau) / wsum : 0;
  const needX = isRecording() && student.x.requiresGrad, needW = isRecording() && student.weight.requiresGrad;
  const grad = needX || needW;
  const gx = needX ? zerosF32(rows * C) : null;
  const gw = needW ? zerosF32(V * C) : null; // stamped, and handed over to the backward pass below

  const gemmFor = (c: ComputePrecision | undefined) => kernel((c ?? computePrecision()) === 'bf16' ? 'matmulBf16' : 'matmul');
  const gemm = gemmFor(student.compute), tgemm = th ? gemmFor(th.compute) : gemm;
  // A bf16 teacher weight goes to the float32 GEMM as its bits (widened as it packs: the same
  // product); matmulBf16 takes float32, so there it is widened once for all chunks.
  const tBits = th?.weight.dtype === 'bf16' && (th.compute ?? computePrecision()) !== 'bf16' ? th.weight.bf16 : null;
  const tW = th && !tBits ? widenBf16(th.weight).f32 : null;
  const bgemm = gemmFor(student.backward ?? student.compute);
  const kl = kernel('klDiv'), klBack = kernel('klDivBackward');
  const K = topk?.K ?? 0;
  const kIds = new Int32Array(topk ? Math.min(n, rows) * K : 0), kz = new Float32Array(kIds.length);
  const kLse = new Float32Array(topk ? Math.min(n, rows) : 0), kTail = new Float32Array(kLse.length);
  const m = Math.min(n, Math.max(active.length, 1));
  // The chunk buffers (m × V each: ~13 MB at SmolLM2's vocabulary) are given back at the end.
  const tBuf = zerosF32(topk ? 0 : m * V), sBuf = zerosF32(m * V), gBuf = grad ? zerosF32(m * V) : null;
  const xBuf = new Float32Array(m * C), xtBuf = th ? new Float32Array(m * Ct) : null, gxBuf = gx ? new Float32Array(m * C) : null;
  const loss = new Float32Array(m), gloss = new Float32Array(m);
  const lossAll = new Float32Array(rows);
  let wDone = false;
  // dx_c = G_c·W (k, C) and dW += G_cᵀ·x_c (V, C) for a chunk's logit gradient G_c (k, V).
  const backProject = (G: Float32Array, xs: Float32Array, idx: Int32Array, k: number): void => {
    if (gx) {
      const out = gxBuf!.subarray(0, k * C);
      bgemm(G, student.weight.f32, out, 1, k, V, C, false, false, 0, 0, 0);
      for (let i = 0; i < k; i++) gx.set(out.subarray(i * C, (i + 1) * C), idx[i] * C);
    }
    if (gw) {
      bgemm(G, xs, gw, 1, V, k, C, true, false, 0, 0, wDone ? 1 : 0);
      wDone = true;
    }
  };
  for (let c0 = 0; c0 < active.length; c0 += n) {
    const idx = Int32Array.from(active.slice(c0, c0 + n));
    const k = idx.length;
    const xs = rowsOf(student.x.f32, idx, C, xBuf);
    const S = sBuf.subarray(0, k * V);
    gemm(xs, student.weight.f32, S, 1, k, C, V, false, true, 0, 0, 0); // (k, V)
    if (topk) {
      // The teacher's top-K rows; loss and gradient in one kernel call.
      for (let i = 0; i < k; i++) {
        const r = idx[i];
        kIds.set(topk.ids.subarray(r * K, (r + 1) * K), i * K);
        kz.set(topk.logits.subarray(r * K, (r + 1) * K), i * K);
        kLse[i] = topk.lse[r];
        kTail[i] = topk.logTail[r];
        gloss[i] = scale * (rowWeights ? rowWeights[r] : 1);
      }
      const G = grad ? gBuf!.subarray(0, k * V) : null;
      kernel('topkKl')(S, kIds.subarray(0, k * K), kz.subarray(0, k * K), kLse.subarray(0, k), kTail.subarray(0, k),
        loss.subarray(0, k), gloss.subarray(0, k), G, k, V, K, tau);
      for (let i = 0; i < k; i++) lossAll[idx[i]] = loss[i];
      if (G) backProject(G, xs, idx, k);
      continue;
    }
    let Tc: Float32Array;
    if (dense) Tc = rowsOf(dense.f32, idx, V, tBuf);
    else {
      Tc = tBuf.subarray(0, k * V);
      const xt = rowsOf(th!.x.f32, idx, Ct, xtBuf!);
      if (tBits) kernel('matmul')(xt, tBits, Tc, 1, k, Ct, V, false, true, 0, 0, 0);
      else tgemm(xt, tW!, Tc, 1, k, Ct, V, false, true, 0, 0, 0);
    }
    kl(Tc, S, loss.subarray(0, k), k, V, tau);
    for (let i = 0; i < k; i++) lossAll[idx[i]] = loss[i];
    if (!grad) continue;
    for (let i = 0; i < k; i++) gloss[i] = scale * (rowWeights ? rowWeights[idx[i]] : 1);
    const G = gBuf!.subarray(0, k * V);
    klBack(Tc, S, gloss.subarray(0, k), G, null, k, V, tau);
    backProject(G, xs, idx, k);
  }
  for (const b of [tBuf, sBuf, gBuf, th?.weight.dtype === 'bf16' ? tW : null]) if (b) giveBack(b); // tW: a widened copy
  // The mean exactly as klDiv forms it: Σ_r w_r·loss_r in row order, in double.
  let total = 0;
  for (let r = 0; r < rows; r++) total += (rowWeights ? rowWeights[r] : 1) * lossAll[r];
  const out = new Tensor(Float32Array.of(total * scale), []);
  if (!grad) return out;
  return record(out, op, [student.x, student.weight], (g) => {
    const s = g.f32[0];
    const scaled = (a: Float32Array | null, shape: readonly number[]): Tensor | null => {
      if (!a) return null;
      // The pass's own from here (storage.ts handOver): added into in place, handed to .grad
      // uncopied, given back; otherwise a tied embedding's gradient (V × C: 108 MiB at SmolLM2's
      // shape) was added into a third buffer every step and this one left to the collector.
      handOver(a);
      if (s !== 1) kernel('affine')(a, a, s, 0);
      return new Tensor(a, shape);
    };
    return [scaled(gx, student.x.shape), scaled(gw, student.weight.shape)];
  });
}
