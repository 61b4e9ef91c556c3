// The kernel contract: every backend ('ref' in TypeScript, 'native' in C++) implements these
// functions with exactly these semantics. Kernels work on raw contiguous buffers (row-major),
// never allocate their outputs and never see a Tensor; ops (src/tensor/ops) own shapes,
// allocation and autograd. Integer arguments are element counts, not bytes.
//
// Conventions:
// - `out` buffers are fully overwritten unless the kernel says it accumulates.
// - Shape and stride arrays are Int32Array, outermost dimension first.
// - A kernel throws a RangeError (never reads out of bounds) when an index input is out of range.
// - Dimension letters: B batch, T sequence, H heads, Hkv key/value heads, D head dim,
//   C channels, V vocabulary, N rows, M/K/N GEMM sizes.

type F = Float32Array;
type I = Int32Array;

export const BinOp = { add: 0, sub: 1, mul: 2, div: 3 } as const;
export type BinOpCode = (typeof BinOp)[keyof typeof BinOp];

// Unary ops: forward y = f(x); backward gx = gy * f'(x) (may use x or y).
export const UnOp = {
  exp: 0, log: 1, sqrt: 2, rsqrt: 3, tanh: 4,
  gelu: 5, // erf form: x/2 (1 + erf(x/√2))            (Hendrycks & Gimpel 2016)
  geluTanh: 6, // x/2 (1 + tanh(√(2/π)(x + 0.044715x³)))
  silu: 7, // x·σ(x)
  neg: 8, abs: 9, sigmoid: 10, relu: 11, square: 12,
} as const;
export type UnOpCode = (typeof UnOp)[keyof typeof UnOp];

export const ReduceOp = { sum: 0, max: 1 } as const;
export type ReduceOpCode = (typeof ReduceOp)[keyof typeof ReduceOp];

// Weight quantization rules (METHODS.md §2; src/quant/rules.ts maps the config onto these).
export const QuantRule = {
  sym: 0, asym: 1, twn: 2, q4_0: 3, q8_0: 4, tq2_0: 5, q2_k: 6, q3_k: 7, q4_k: 8, q5_k: 9, q6_k: 10,
} as const;
export type QuantRuleCode = (typeof QuantRule)[keyof typeof QuantRule];

export interface Kernels {
  // ---- GEMM ----------------------------------------------------------------------------------
  /** Batched GEMM: for i in [0,batch): C_i = op(A_i)·op(B_i) + beta·C_i.
   *  op(A_i) is (m,k): A_i = a[i*strideA ...] stored (m,k) row-major, or (k,m) if transA.
   *  op(B_i) is (k,n): B_i = b[i*strideB ...] stored (k,n), or (n,k) if transB.
   *  C_i = c[i*m*n ...] is (m,n). strideA/strideB may be 0 (broadcast one matrix to all i).
   *  beta is 0 (overwrite, C's old contents ignored even if NaN) or 1 (accumulate).
   *  bias (optional, n floats, only with beta 0): C_i = op(A_i)·op(B_i) + bias in every row,
   *  formed exactly as if C_i held bias in every row and beta were 1 (a Linear's y = x·Wᵀ + b
   *  in one pass over y).
   *  b may also be a Uint16Array of bf16 bit patterns (a frozen weight stored narrow: Tensor
   *  dtype 'bf16'), read as the float32 values with those high 16 bits — exactly, so C is bit
   *  for bit the one of the float32 copy of b. */
  matmul(a: F, b: F | Uint16Array, c: F, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, strideA: number, strideB: number, beta: number, bias?: F | null): void;
  /** matmul with bf16 inputs and float32 accumulation (arguments, beta and bias as matmul; the
   *  bias is not rounded): every
   *  element of A and B is first rounded to bf16 by bf16Round (src/backend/ref/gemm.ts: round to
   *  nearest even on 8 significant bits, zero and float32-subnormal values to a signed zero,
   *  NaN stays NaN, overflow to ±Inf), then C_i = Ã_i·B̃_i + beta·C_i is formed as matmul does
   *  (the products of two bf16 values are exact in float32; the sums are float32, in any
   *  order, with subnormal partial sums possibly flushed to zero). Relative to matmul on the
   *  unrounded inputs the error is ≤ (2u + u² + γ)·Σ|a||b| with u = 2^-8 (bf16's unit roundoff)
   *  and γ matmul's float32 summation term. The native kernel needs AVX512_BF16 and throws
   *  (naming what is missing) on other CPUs or when KDQAT_ISA caps the level below avx512. */
  matmulBf16(a: F, b: F, c: F, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, strideA: number, strideB: number, beta: number, bias?: F | null): void;
  /** The forward of a Linear whose input and weight lie on integer grids, as an integer GEMM:
   *  a (m, k) row-major is x̂ = qa·sa (fakeQuantInput's output and scale), b (n, k) row-major
   *  (a weight, used transposed) is ŵ = qb·sb_j with sb one scale (length 1) or one per row j
   *  (length n). The codes are read back from the values: q = roundHalfEven(clamp(fl(x·fl(1/s)),
   *  −L, L)) with L = 127 for a and 64 for b (a NaN reads as −L; s = 0 takes 1/s as 0), so for
   *  x̂ = fl(q·s) with |q| ≤ L they are exactly q (|fl(q·s)·fl(1/s) − q| ≤ 3u·|q| < ½). Then
   *  c_ij = fl(fl(sa·sb_j)·fl(Σ_k qa_ik·qb_jk)) (+ bias_j: one more float32 rounding), the sum
   *  exact in int32 (k ≤ 131072): within ((1 + u)³ − 1)·|T| of T = sa·sb_j·Σ qa·qb, the codes'
   *  exact product times the scales (+ u·|c_ij| with a bias), the same bits on every ISA, tiling
   *  and thread count (test/backend/gemm-q8.test.ts bounds it against Σ x̂ŵ too). sa and sb are
   *  finite and ≥ 0 (sa is rounded to float32). Its codes cover fakeQuantInput of ≤ 8 bits
   *  (whose codes never reach −128: |x| ≤ max|x| gives |x/s| ≤ Qp·(1 + 2u)) and TWN or sym
   *  weights of ≤ 7 bits (|q| ≤ 64), per tensor or per row. Returns whether every element of a
   *  and b is on its grid, fl(q·s) = x exactly (a NaN never is); when false, c is unspecified
   *  (the caller computes in float32). With m or n = 0 nothing is read: true. */
  matmulQ8(a: F, sa: number, b: F, sb: F, c: F, m: number, k: number, n: number, bias?: F | null): boolean;
  /** dX = dY·Ŵ, a Linear's input gradient where its weight lies on an integer grid, as an integer
   *  GEMM with dY rounded to 8 bits per row: an approximation the float32 GEMM does not make
   *  (opt-in: compute.ts withInt8Grad; Banner et al. 2018 propagate errors at 8 bits). a (m, k)
   *  row-major is dY, any float32; b (k, n) row-major is Ŵ, its row p on the grid of step sb_p (sb:
   *  one step, or one per row: length k), |q| ≤ 64, the codes read back as matmulQ8 reads them.
   *  Each row of a'_ip = fl(a_ip·sb_p) is rounded on its own step: r_i = max_p |a'_ip|, sa_i =
   *  fl(r_i/127), qa_ip = roundHalfEven(clamp(fl(a'_ip·fl(127/r_i)), −127, 127)) (a row with
   *  r_i < 2^-100 is taken as zeros: sa_i = 0). Then c_ij = fl(fl(Σ_p qa_ip·qb_pj)·sa_i), the sum
   *  exact in int32 (k ≤ 131072): the same bits on every ISA, tiling and thread count. Against
   *  the exact product, |c_ij − Σ_p a_ip·Ŵ_pj| ≤ (½ + 2^-13)·sa_i·Σ_p |qb_pj| + 4u·Σ_p |a_ip·Ŵ_pj|
   *  (+ 2^-100·Σ_p |qb_pj| for a zeroed row), u = 2^-24: half a step per code (|a' − qa·sa| ≤
   *  sa·(½ + 382u)), a' one rounding, and the sum's and the scale's two. Returns false when b is
   *  off its grid or some a'_ip is not finite (c is then unspecified: the caller computes in
   *  float32). With m or n = 0 nothing is read: true. */
  matmulQ8Grad(a: F, b: F, sb: F, c: F, m: number, k: number, n: number): boolean;
  /** C = op(A)·op(B) (+ bias) where B lies on an integer grid — a Linear's GEMMs with a weight or
   *  input on its grid (src/tensor/ops/matmul.ts: y = x·Ŵᵀ, dX = dY·Ŵ, dW = dYᵀ·x̂) — to float32
   *  accuracy. op(A) (m, k): a stored (m, k) row-major, or (k, m) with transA; any float32. b is
   *  stored (k, n) row-major, or (n, k) with transB, and every stored row r is on the grid of step
   *  sb_r: sb holds one step (length 1) or one per stored row (k, or n with transB), finite and
   *  ≥ 0. The codes are read back as matmulQ8 reads them, q = roundHalfEven(clamp(fl(x·fl(1/s)),
   *  −256, 256)) (a NaN reads as −256, s = 0 takes 1/s as 0), and B is on its grid when every
   *  value is exactly fl(q·s). Then c (m, n) is overwritten with, without transB,
   *  c_ij = Σ_p fl(a_ip·sb_p)·q_pj, and with it c_ij = fl(sb_j·Σ_p a_ip·q_jp); the sums in float32
   *  in any order, each a (or fl(a·s)) entering as up to three terms that sum to it exactly; a
   *  bias (n floats, optional) adds bias_j with one more rounding. Against the exact product of
   *  the values, |c_ij − Σ_p op(A)_ip·op(B)_pj| ≤ (2u + 1.01·γ_3k)·Σ_p |op(A)_ip·op(B)_pj| +
   *  k·2^-116 (+ u·|c_ij| with a bias), u = 2^-24, γ_n = nu/(1 − nu), 3ku < 1 (2u: the scale and
   *  the value fl(q·s), one rounding each; γ_3k: the float32 sum of 3k exact terms, whose
   *  magnitudes add up to at most 1.008 times the term's; the k·2^-116: parts below 2^-126 may be
   *  lost, as subnormals are flushed) — a float32 GEMM's kind of bound, over 3k terms instead of
   *  k. A non-finite term (or a value of magnitude ≥ 2^128·(1 − 2^-9), which reads as ±Inf)
   *  gives C what float32 arithmetic gives (Inf, NaN). Returns whether B was on its grid; when
   *  false, c is unspecified (the caller computes in float32). With m or n = 0 nothing is read:
   *  true. The native kernel runs on AMX's bf16 tiles (native/gemm_grid.cc) and is registered
   *  only where it runs. */
  matmulOnGrid(a: F, b: F, sb: F, c: F, m: number, k: number, n: number, transA: boolean, transB: boolean,
    bias?: F | null): boolean;

  // ---- elementwise ---------------------------------------------------------------------------
  /** out[idx] = a[idx·aStrides] op b[idx·bStrides] over the multi-index idx of `shape`;
   *  a stride of 0 broadcasts. out is contiguous of `shape`. */
  binary(op: BinOpCode, a: F, b: F, out: F, shape: I, aStrides: I, bStrides: I): void;
  /** out = f(x), elementwise, same length. */
  unary(op: UnOpCode, x: F, out: F): void;
  /** gx = gy · f'(x); y = f(x) is given too (some derivatives are cheaper from y). */
  unaryBackward(op: UnOpCode, x: F, y: F, gy: F, gx: F): void;
  /** A gated activation (SwiGLU's silu(gate)·up): out = f(g)·u, elementwise, same lengths —
   *  bit for bit what unary(op, g) then binary mul with u give on the same backend, without
   *  keeping f(g). */
  gatedUnary(op: UnOpCode, g: F, u: F, out: F): void;
  /** Its backward: gu = gy·f(g), gg = unaryBackward(op, g, f(g), gy·u) — bit for bit the
   *  product's backward then unaryBackward on the same backend, f(g) recomputed. */
  gatedUnaryBackward(op: UnOpCode, g: F, u: F, gy: F, gg: F, gu: F): void;
  /** out = alpha·x + beta (elementwise affine; also scalar multiply and fill-like uses). */
  affine(x: F, out: F, alpha: number, beta: number): void;
  /** y += alpha·x, in place. */
  axpy(alpha: number, x: F, y: F): void;
  /** x viewed as (outer, n, inner): out(outer, inner) = reduce over the middle axis. */
  reduce(op: ReduceOpCode, x: F, out: F, outer: number, n: number, inner: number): void;
  /** Backward of reduce max: gx(outer,n,inner) = gy(outer,inner) at the first index attaining
   *  the max along n, 0 elsewhere. */
  reduceMaxBackward(x: F, gy: F, gx: F, outer: number, n: number, inner: number): void;
  /** General strided copy over the multi-index idx of `shape`:
   *  dst[dstOffset + idx·dstStrides] (=|+=) src[srcOffset + idx·srcStrides].
   *  With accumulate, dst strides may be 0 (this is how broadcast gradients are summed). */
  stridedCopy(src: F, srcOffset: number, srcStrides: I, dst: F, dstOffset: number,
    dstStrides: I, shape: I, accumulate: boolean): void;
  /** x viewed as (outer, n, inner); out(outer, idx.length, inner) = x[:, idx[j], :].
   *  Throws RangeError if any idx is outside [0, n). Embedding lookup is outer = 1. */
  gather(x: F, idx: I, out: F, outer: number, n: number, inner: number): void;
  /** Backward of gather: gx(outer, n, inner) += gy(outer, idx.length, inner) scattered to
   *  rows idx[j] (repeated indices add up). Accumulates into gx. */
  scatterAdd(gy: F, idx: I, gx: F, outer: number, n: number, inner: number): void;
  /** Inverted dropout: mask[i] = u(seed, i) < p ? 0 : 1/(1-p); out = x·mask, where
   *  u(seed, i) = hash32(seed, i) / 2^32 with hash32 as in src/tensor/rng.ts (bit-exact on
   *  every backend, independent of thread count). */
  dropout(x: F, out: F, mask: F, p: number, seed: number): void;

  // ---- normalization, softmax, position --------------------------------------------------------
  /** Row-wise over x (rows, n): out = softmax(x). */
  softmax(x: F, out: F, rows: number, n: number): void;
  /** gx = y ⊙ (gy − Σ_j gy_j y_j) row-wise, y = softmax output. */
  softmaxBackward(y: F, gy: F, gx: F, rows: number, n: number): void;
  /** out = x − logsumexp(x) row-wise. */
  logSoftmax(x: F, out: F, rows: number, n: number): void;
  /** gx = gy − exp(y)·Σ_j gy_j row-wise, y = log-softmax output. */
  logSoftmaxBackward(y: F, gy: F, gx: F, rows: number, n: number): void;
  /** LayerNorm over the last axis (biased variance, as PyTorch): out = (x−μ)·rstd·w + b.
   *  w and b may be null (no affine). Saves mean and rstd per row (length rows). */
  layerNorm(x: F, w: F | null, b: F | null, out: F, mean: F, rstd: F, rows: number, n: number,
    eps: number): void;
  /** Writes gx; accumulates gw and gb (+=) when non-null. */
  layerNormBackward(x: F, w: F | null, mean: F, rstd: F, gy: F, gx: F, gw: F | null,
    gb: F | null, rows: number, n: number): void;
  /** RMSNorm (LLaMA): out = x·rsqrt(mean(x²)+eps)·w. Saves rstd per row. */
  rmsNorm(x: F, w: F, out: F, rstd: F, rows: number, n: number, eps: number): void;
  /** Writes gx; accumulates gw (+=). */
  rmsNormBackward(x: F, w: F, rstd: F, gy: F, gx: F, gw: F, rows: number, n: number): void;
  /** Rotary embedding, Hugging Face rotate_half convention, on x laid out (B, T, H, D):
   *  out = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] (halves of D),
   *  cos/sin (T, D) tables (row t is for position t). inverse=true applies the transpose
   *  (sin → −sin), which is the backward. */
  rope(x: F, out: F, cos: F, sin: F, B: number, T: number, H: number, D: number,
    inverse: boolean): void;

  // ---- losses --------------------------------------------------------------------------------
  /** Cross-entropy per row of logits (rows, V) with integer targets: loss[r] =
   *  logsumexp(z_r) − z_r[t_r]; rows whose target equals ignoreIndex get loss 0.
   *  Saves lse[r]. Throws RangeError for a target outside [0, V) that is not ignoreIndex. */
  crossEntropy(logits: F, targets: I, loss: F, lse: F, rows: number, V: number,
    ignoreIndex: number): void;
  /** glogits[r] = gloss[r]·(softmax(z_r) − onehot(t_r)); 0 for ignored rows. */
  crossEntropyBackward(logits: F, targets: I, lse: F, gloss: F, glogits: F, rows: number,
    V: number, ignoreIndex: number): void;
  /** Per-row KL(softmax(t/τ) ‖ softmax(s/τ)) for teacher logits t and student logits s,
   *  both (rows, V): loss[r] = Σ_j p_j (log p_j − log q_j). */
  klDiv(t: F, s: F, loss: F, rows: number, V: number, tau: number): void;
  /** Gradients of loss[r]·gloss[r] w.r.t. s (and t when gt is non-null):
   *  gs = gloss·(q − p)/τ;  gt = gloss·p⊙(log p − log q − KL)/τ. */
  klDivBackward(t: F, s: F, gloss: F, gs: F, gt: F | null, rows: number, V: number,
    tau: number): void;
  /** KL(p̃_T ‖ q_S) per row against a teacher kept as its top K logits (teacher cache
   *  --cache-teacher-topk; docs/distillation.md): s (rows, V) student logits, q = softmax(s/τ);
   *  ids (rows, K) distinct token ids in [0, V) with the teacher's logits tz (rows, K) there,
   *  tlse[r] = logsumexp of the teacher's full row /τ, ttail[r] = log of the teacher's mass
   *  outside ids, log(1 − Σ_i p_i) (−Infinity: none). p_i = exp(tz_i/τ − tlse); the teacher's
   *  tail mass R = exp(ttail) is spread over the other tokens as the student spreads its own,
   *  p̃_j = R·q_j/Q with Q = Σ_{j ∉ ids} q_j, so
   *    loss[r] = Σ_i p_i (log p_i − log q_{ids_i}) + R (log R − log Q)   (0·log 0 = 0),
   *  i.e. the exact KL between the (K+1)-bucket coarsenings of p_T and q_S. When gs is
   *  non-null: gs = gloss[r]·(q − p̃)/τ. Throws RangeError for an id outside [0, V). */
  topkKl(s: F, ids: I, tz: F, tlse: F, ttail: F, loss: F, gloss: F | null, gs: F | null,
    rows: number, V: number, K: number, tau: number): void;
  /** The top-K form of dense teacher logits z (rows, V) at temperature τ (the teacher cache's
   *  --cache-teacher-topk; the input of topkKl). Per row r:
   *  - ids (rows, K): the ids of the K largest logits in descending order. The order is total:
   *    NaN ranks above +Infinity (torch.topk's rule), +0 and −0 are equal, and equal values
   *    (NaNs among themselves too) come lower id first; vals (rows, K) = z at ids (the bits).
   *  - lse[r] = m + log Σ_j e^{z_j/τ − m} with m = max_j z_j/τ, and logTail[r] =
   *    log Σ_{j ∉ ids} e^{z_j/τ − m} − log Σ_j e^{z_j/τ − m} (−Infinity when K = V or the tail
   *    underflows), computed in float64 (z_j/τ a float64 division; sums in index order) and
   *    rounded once.
   *  - A row whose logits define no distribution (it holds a NaN or +Infinity, or is all
   *    −Infinity) gets lse = logTail = NaN; its ids and vals follow the order above.
   *  Throws RangeError unless 1 ≤ K ≤ V and τ is positive and finite. */
  topkLogits(z: F, ids: I, vals: F, lse: F, logTail: F, rows: number, V: number, K: number,
    tau: number): void;
  /** Σ_i (a_i − b_i)², accumulated in double precision. */
  sumSquaredDiff(a: F, b: F): number;
  /** Number of indices i with a_i ≠ b_i (a NaN entry counts as different). Signal analysis:
   *  how many fake-quantized weights moved to another grid point. */
  countNotEqual(a: F, b: F): number;
  /** Weighted KL between rows of probability distributions p (target) and q (model), both
   *  (rows, n), each clamped at eps inside the logs (Kim et al. 2022's attention-map loss):
   *  returns Σ_r w_r Σ_j p_j (log max(p_j, eps) − log max(q_j, eps)), accumulated in double
   *  in row order. Rows with w_r = 0 are skipped (not read: padding rows may hold anything);
   *  entries with p_j = 0 add exactly 0 (masked attention entries are 0 in p). */
  probKl(p: F, q: F, w: F, rows: number, n: number, eps: number): number;
  /** Gradient of g·probKl w.r.t. q: gq = −g·w_r·p_j/q_j where q_j ≥ eps, else 0 (PyTorch's
   *  clamp_min passes the gradient where q ≥ eps); rows with w_r = 0 get 0. */
  probKlBackward(p: F, q: F, w: F, g: number, gq: F, rows: number, n: number, eps: number): void;

  // ---- attention -----------------------------------------------------------------------------
  /** Fused scaled dot-product attention on the (B, T, H, D) layout that q/k/v projections give
   *  directly: q (B,T,H,D), k and v (B,T,Hkv,D) with H % Hkv == 0 (grouped-query: head h uses
   *  kv head floor(h / (H/Hkv))). out (B,T,H,D) = softmax(scale·q·kᵀ + mask)·v.
   *  Mask: causal (key j > query i excluded) and/or keyMask (B,T), 1 = attend, 0 = padding
   *  key excluded; window w > 0 (sliding-window attention, Mistral / Phi-3) also excludes keys
   *  j ≤ i − w, so query i sees keys i − w < j ≤ i. A row with every key excluded gets all-zero
   *  probabilities and output.
   *  probs (B,H,T,T), if non-null, receives the probabilities (excluded entries 0).
   *  scores (B,H,T,T), if non-null, receives scale·q·kᵀ with excluded entries set to 0. */
  attention(q: F, k: F, v: F, out: F, probs: F | null, scores: F | null, B: number, T: number,
    H: number, Hkv: number, D: number, scale: number, causal: boolean, keyMask: I | null, window?: number): void;
  /** Backward of attention given the saved probs. gout (B,T,H,D) is the output gradient;
   *  gProbs / gScores (B,H,T,T), if non-null, are extra upstream gradients with respect to the
   *  probabilities and the (unmasked) scaled scores (from distillation losses).
   *  Writes gq, gk, gv (same layouts as q, k, v). */
  attentionBackward(q: F, k: F, v: F, probs: F, gout: F, gProbs: F | null, gScores: F | null,
    gq: F, gk: F, gv: F, B: number, T: number, H: number, Hkv: number, D: number,
    scale: number, causal: boolean, keyMask: I | null, window?: number): void;

  // ---- quantization (METHODS.md §2) ---------------------------------------------------------
  // Weights w are (rows, cols) = (out, in) row-major. A granule shares one scale; `group` is its
  // extent along a row: 0 = the whole tensor (one granule), cols = one per row (output channel),
  // g (dividing cols) = rows·cols/g granules, numbered row-major (granule r·cols/g + j holds
  // columns [j·g, (j+1)·g) of row r). llama.cpp rules need group = their block (32, 32, 256).
  // Arithmetic is float32 with every step rounded (as C `float`); round(x) is C roundf (halves
  // away from zero). Codes are integers; ŵ = float(integer) · float scale, so ŵ is never −0
  // unless the scale is (q4_0's scale −0 of an all-zero block). Sums (TWN means, LSQ step
  // gradient) have a fixed order so every backend and thread count gives the same bits: within
  // each granule segment (one row's part of the granule) element j is added in double to lane
  // j mod 16, the 16 lanes are then added in order 0..15, and the segment sums are added in row
  // order. A clip bound is rounded to float32 first. Non-finite weights throw a RangeError naming the row and column.
  //   sym   (bits b): Qp = 2^(b−1)−1, Qn = −2^(b−1); s = max|w|/Qp (or the LSQ step);
  //         code = clamp(round(w/s), Qn, Qp); ŵ = code·s.
  //   asym  (bits b): Qmax = 2^b−1; mn = min(min w, 0), mx = max(max w, 0) (0 is kept on the
  //         grid, as PyTorch's observers and GPTQ do); s = (mx−mn)/Qmax (or the LSQ step);
  //         z = clamp(round(−mn/s), 0, Qmax); code = clamp(round(w/s) + z, 0, Qmax);
  //         ŵ = (code − z)·s. With an LSQ step, z comes from the current min and that step.
  //   twn:  N = granule size; Δ = float(0.7)·float(Σ|w| / N); α = float(Σ_{|w|>Δ}|w| / count)
  //         (0 if none); code = sign(w)·[|w| > Δ] ∈ {−1, 0, 1}; ŵ = code·α (scale α).
  //   q4_0, q8_0, tq2_0: exactly quantize_row_*_ref + dequantize_row_* of ggml-quants.c
  //         (src/quant/formats.ts): q4_0 code ∈ 0..15, ŵ = (code−8)·fp16(d); q8_0 code ∈
  //         −127..127, ŵ = code·fp16(d); tq2_0 code ∈ 0..2, ŵ = (code−1)·fp16(d). Scale = fp16(d).
  //   s = 0 (an all-zero granule, or a zero LSQ step): code 0 (asym: z = 0), ŵ = 0.
  /** Forward fake quantization. step (length granules, each finite and ≥ 0) is the learned LSQ
   *  step (sym/asym only; null: min-max). Writes ŵ to out and integer codes to codes when
   *  non-null, the per-granule scale to scales (= step under LSQ) and, for asym, the zero
   *  points to zeros (null for other rules). */
  fakeQuant(w: F, out: F | null, codes: I | null, scales: F, zeros: I | null, step: F | null,
    rows: number, cols: number, rule: QuantRuleCode, bits: number, group: number): void;
  /** Backward of fakeQuant. Without step (straight-through): gw = gy·[|w| ≤ clip] (clip may be
   *  Infinity). With step (LSQ, Esser et al. 2020, sym/asym): v = w/s, [Qn, Qp] = sym's, or
   *  [−z, Qmax−z] for asym (z from the forward's zeros); inside = Qn ≤ v ≤ Qp (inclusive, as
   *  the clamp-and-detach formulation differentiates); gw = gy·inside·[|w| ≤ clip];
   *  gstep[g] = float(gscale · Σ gy·t) over the granule, t = round(v) − v inside, Qn below,
   *  Qp above; gscale = 1/sqrt(N·Qp) (asym: N·Qmax), N = granule size. A zero step: every
   *  element inside, t = 0. */
  fakeQuantBackward(w: F, gy: F, gw: F, step: F | null, zeros: I | null, gstep: F | null,
    rows: number, cols: number, rule: QuantRuleCode, bits: number, group: number,
    clip: number): void;
  /** llama.cpp K-quant fake quantization (rules q2_k … q6_k; fakeQuant serves the others). Each
   *  row is super-blocks of 256 (cols a multiple of 256) and each super-block becomes the fixed
   *  point of dequantize_row_*∘quantize_row_*_ref of ggml-quants.c reached by repeating it from
   *  w (src/quant/formats.ts gridQuantRef, which also says how a rare oscillating block is
   *  settled), so quantize_row_*_ref of ŵ dequantizes to ŵ bit for bit. Writes ŵ to out when
   *  non-null; when codes is non-null, the deployable form of ŵ per sub-block of 16 (q2_k, q3_k,
   *  q6_k) or 32 (q4_k, q5_k) elements: codes (q2_k/q4_k/q5_k: q ∈ 0..3/15/31; q3_k, q6_k: q + 4
   *  ∈ 0..7, q + 32 ∈ 0..63), scales = float(fp16(d)·sc) and, for q2_k/q4_k/q5_k, mins =
   *  float(fp16(dmin)·m), so that ŵ = float(float(code·scale) − min) or (code − offset)·scale
   *  exactly as dequantize_row_* computes it. Weights past the fp16 range of d throw. */
  fakeQuantGrid(w: F, out: F | null, codes: I | null, scales: F | null, mins: F | null,
    rows: number, cols: number, rule: QuantRuleCode): void;
  /** Dynamic per-tensor symmetric activation quantization (TernaryBERT's SymQuantizer, paper
   *  B): xc = clamp(x, −clip, clip) (clip may be Infinity); Qp = 2^(b−1)−1; s = max|xc|/Qp;
   *  out = clamp(round(xc/s), −Qp−1, Qp)·s (0 when s = 0). Returns s. Non-finite x throws. */
  fakeQuantInput(x: F, out: F, bits: number, clip: number): number;
  /** gx = gy·[|x| < clip] (TernaryBERT zeroes the gradient where x ≥ clip or x ≤ −clip). */
  fakeQuantInputBackward(x: F, gy: F, gx: F, clip: number): void;

  // ---- optimizer and checks ------------------------------------------------------------------
  /** AdamW step in place (Loshchilov & Hutter 2019; PyTorch's AdamW):
   *  p ← p − lr·wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
   *  p ← p − lr·(m/bc1)/(sqrt(v/bc2) + eps), bc1 = 1−β1^t, bc2 = 1−β2^t. */
  adamw(p: F, g: F, m: F, v: F, lr: number, beta1: number, beta2: number, eps: number,
    wd: number, bc1: number, bc2: number): void;
  /** SGD with optional momentum buffer (PyTorch semantics, dampening 0, wd added to g):
   *  g' = g + wd·p; buf ← momentum·buf + g'; p ← p − lr·buf (or lr·g' without buf). */
  sgd(p: F, g: F, buf: F | null, lr: number, momentum: number, wd: number): void;
  /** Σ x_i², accumulated in double precision. */
  sumSquares(x: F): number;
  /** Number of NaN or ±Inf entries. */
  countNonFinite(x: F): number;

  // ---- storage -------------------------------------------------------------------------------
  /** Frees x's storage now (detaches its ArrayBuffer: x and every view of that buffer have
   *  length 0 afterwards, so a later use fails a length check instead of reading stale data).
   *  For buffers nothing else holds (src/tensor/storage.ts). */
  release(x: F): void;
}

export type KernelName = keyof Kernels;
