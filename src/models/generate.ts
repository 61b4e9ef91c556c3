// Autoregressive sampling from a causal LM.
//
// With the KV cache (default) the prompt goes through in one pass and each new token then costs
// one single-position pass: the keys and values of earlier positions are kept per layer. The step mirrors llamaBlock op for op (same primitives, same
// weights through the same WeightFn), and a test checks that it generates what the full
// forward generates. Without the cache (cache: false) every step re-runs the full forward
// over the context: the plain reference.
// Contexts longer than max_position_embeddings keep their last max_position_embeddings tokens
// (a sliding window); the cached positions would then all shift, so from there on each step
// is a full forward.
// (Through tensor/index.js, which also sets up the kernel backends.)
import {
  Rng, Tensor, add, embedding, intTensor, linear, noGrad, rmsNorm, siluGate,
} from '../tensor/index.js';
import { unscoped } from '../tensor/storage.js';
import { identityWeight, linearInput, param, type WeightFn } from '../nn/params.js';
import { checkPositions, headDimOf, layerUsesRope, projectQkv, ropeTablesOf, type LlamaConfig } from './llama.js';
import { archOf, lmLogits, type Model } from './model.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default) = greedy: the most likely token (the lowest id on ties). */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 or undefined = all). */
  topK?: number;
  seed?: number;
  /** Generation stops after producing any of these (the token is included in the output). */
  eosIds?: number[];
  weight?: WeightFn;
  /** Keep keys/values between steps (default true); false re-runs the full forward each step. */
  cache?: boolean;
  /** Called with each new token as it is produced. */
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  /** The new tokens only (the prompt excluded), EOS included when it stopped there. */
  tokens: number[];
  stoppedAtEos: boolean;
}

export function generate(model: Model, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  const rec = archOf(model);
  if (rec.kind !== 'decoder') throw new Error(`generation needs a causal LM (a decoder); this is ${rec.describe(rec.modelHeads(model as never))})`);
  if (prompt.length === 0) throw new RangeError('generate: the prompt must have at least one token');
  const { maxNewTokens = 64, temperature = 0, topK = 0, seed = 0, eosIds = [] } = opts;
  if (!(temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
  const cfg = model.config as LlamaConfig, V = cfg.vocabSize, maxLen = cfg.maxPositionEmbeddings;
  const rng = new Rng(seed);
  const ctx = [...prompt];
  const tokens: number[] = [];
  let stoppedAtEos = false;
  noGrad(() => {
    const kv = opts.cache === false ? null : new KvDecoder(model as Model & { config: LlamaConfig }, opts.weight);
    const full = (): Float32Array => {
      const window = ctx.length > maxLen ? ctx.slice(ctx.length - maxLen) : ctx;
      const T = window.length;
      return lmLogits(model, intTensor(window, [1, T]), { weight: opts.weight }).f32.slice((T - 1) * V, T * V); // (V)
    };
    const cached = (): Float32Array => kv!.step(ctx.slice(kv!.length)); // the prompt, then one token
    while (tokens.length < maxNewTokens) {
      const logits = kv && ctx.length <= maxLen ? cached() : full();
      const next = temperature === 0 ? argmax(logits) : sample(logits, temperature, topK, rng);
      tokens.push(next);
      ctx.push(next);
      opts.onToken?.(next);
      if (eosIds.includes(next)) {
        stoppedAtEos = true;
        break;
      }
    }
  });
  return { tokens, stoppedAtEos };
}

/** Decoding (any LLaMA-family decoder, llama.ts) with per-layer key/value caches (see top). */
export class KvDecoder {
  length = 0; // positions cached
  private readonly cfg: LlamaConfig;
  private readonly keys: Float32Array[]; // per layer (maxLen, Hkv, D)
  private readonly values: Float32Array[];
  private readonly weights = new Map<string, Tensor>();

  constructor(private readonly model: Model & { config: LlamaConfig }, private readonly weightFn: WeightFn = identityWeight) {
    this.cfg = model.config;
    this.cachedWeight = Object.assign((name: string): Tensor => this.w(name), { input: weightFn.input });
    const { numHiddenLayers: L, numKeyValueHeads: Hkv } = this.cfg;
    const n = this.cfg.maxPositionEmbeddings * Hkv * headDimOf(this.cfg);
    this.keys = Array.from({ length: L }, () => new Float32Array(n));
    this.values = Array.from({ length: L }, () => new Float32Array(n));
  }

  /** The weight as the forward pass sees it, computed once (fake quantization is not free). */
  private w(name: string): Tensor {
    let t = this.weights.get(name);
    if (!t) {
      t = unscoped(() => this.weightFn(name, param(this.model.params, name))); // kept across calls
      this.weights.set(name, t);
    }
    return t;
  }

  /** The WeightFn projectQkv calls: the cached weight, the input hook passed through. */
  private readonly cachedWeight: WeightFn;

  /** Linear `name` (weight name) with the input hook (activation quantization) applied. */
  private lin(x: Tensor, name: string): Tensor {
    return linear(linearInput(this.weightFn, name, x), this.w(name));
  }

  /** Feeds tokens `ids` at positions length … length + n - 1 (the prompt in one pass, then one
   *  token per step); returns the next-token logits (V) after the last of them. */
  step(ids: number | readonly number[]): Float32Array {
    const list = typeof ids === 'number' ? [ids] : ids;
    const cfg = this.cfg, p = this.length, n = list.length, params = this.model.params;
    const C = cfg.hiddenSize, H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads, D = headDimOf(cfg), HD = H * D;
    if (n === 0) throw new RangeError('KvDecoder.step: no tokens');
    checkPositions(cfg, p + n, 'KvDecoder');
    const { cos, sin } = ropeTablesOf(cfg, n, p);
    let x = embedding(param(params, 'model.embed_tokens.weight'), intTensor(list, [1, n])); // (1, n, C)
    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      const pre = `model.layers.${l}.`;
      const h = rmsNorm(x, param(params, `${pre}input_layernorm.weight`), cfg.rmsNormEps);
      const rope = layerUsesRope(cfg, l);
      const qkv = projectQkv(params, pre, cfg, h, rope ? cos : null, rope ? sin : null, this.cachedWeight);
      const q = qkv.q.f32, k = qkv.k.f32, v = qkv.v.f32; // (n, H, D), (n, Hkv, D), (n, Hkv, D)
      this.keys[l].set(k, p * Hkv * D);
      this.values[l].set(v, p * Hkv * D);
      const context = new Float32Array(n * HD); // (n, H·D)
      // Causal: the query at position p + i sees the keys of positions 0 … p + i.
      for (let i = 0; i < n; i++) this.attend(q.subarray(i * HD, (i + 1) * HD), l, p + i + 1, context.subarray(i * HD, (i + 1) * HD));
      const x1 = add(x, this.lin(new Tensor(context, [1, n, HD]), `${pre}self_attn.o_proj.weight`));
      const h2 = rmsNorm(x1, param(params, `${pre}post_attention_layernorm.weight`), cfg.rmsNormEps);
      const gate = this.lin(h2, `${pre}mlp.gate_proj.weight`);
      const up = this.lin(h2, `${pre}mlp.up_proj.weight`);
      x = add(x1, this.lin(siluGate(gate, up), `${pre}mlp.down_proj.weight`));
    }
    this.length += n;
    const last = new Tensor(x.f32.slice((n - 1) * C), [1, C]); // only the last position is needed
    const y = rmsNorm(last, param(params, 'model.norm.weight'), cfg.rmsNormEps);
    return this.lin(y, cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight').f32;
  }

  /** softmax(q·Kᵀ/√D)·V for one query over the first n cached positions (the last
   *  sliding_window of them for a windowed model); head h reads key/value head h / (H / Hkv), as
   *  grouped-query attention shares them. */
  private attend(q: Float32Array, layer: number, n: number, out: Float32Array): void {
    const { numAttentionHeads: H, numKeyValueHeads: Hkv } = this.cfg;
    const D = headDimOf(this.cfg), group = H / Hkv, scale = 1 / Math.sqrt(D);
    const lo = this.cfg.slidingWindow ? Math.max(0, n - this.cfg.slidingWindow) : 0; // query n − 1 sees keys > n − 1 − window
    const K = this.keys[layer], Vc = this.values[layer];
    const s = new Float64Array(n);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group), qo = h * D;
      let max = -Infinity;
      for (let t = lo; t < n; t++) {
        const ko = (t * Hkv + g) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * K[ko + d];
        s[t] = dot * scale;
        if (s[t] > max) max = s[t];
      }
      let sum = 0;
      for (let t = lo; t < n; t++) sum += (s[t] = Math.exp(s[t] - max));
      for (let t = lo; t < n; t++) {
        const wt = s[t] / sum, vo = (t * Hkv + g) * D;
        for (let d = 0; d < D; d++) out[qo + d] += wt * Vc[vo + d];
      }
    }
  }
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Softmax(logits / temperature) restricted to the top k, sampled by inverse CDF. */
function sample(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let ids = Array.from(logits.keys());
  if (topK > 0 && topK < ids.length) {
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    ids = ids.slice(0, topK);
  }
  let max = -Infinity;
  for (const i of ids) max = Math.max(max, logits[i]);
  const w = ids.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * total;
  for (let j = 0; j < ids.length; j++) {
    u -= w[j];
    if (u < 0) return ids[j];
  }
  return ids[ids.length - 1];
}
