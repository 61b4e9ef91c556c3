// Shared fixtures for the GGUF / model directory tests: a minimal byte-level BPE tokenizer.json
// and a naive float64 LLaMA forward (Hugging Face semantics) that needs no compute kernels.
import type { LlamaConfig } from '../../src/models/llama.js';
import type { Params } from '../../src/nn/params.js';
import { readF16 } from '../../src/quant/blocks.js';

/** GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): printable bytes map to themselves, the
 *  others to U+0100 + k in byte order. Returns the symbol of each byte 0..255. */
export function byteSymbols(): string[] {
  const keep = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let k = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + k++));
  return out;
}

/** tokenizer.json of a byte-level BPE with the 256 byte symbols (id = byte), no merges, and
 *  `special` added tokens from id 256 ("<s>", "</s>" by default). */
export function byteLevelTokenizer(special = ['<s>', '</s>'], merges: string[] = []): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteSymbols().forEach((s, i) => { vocab[s] = i; });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content, i) => ({
      id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

/** Naive LlamaForCausalLM forward in float64 (HF modeling_llama: RMSNorm, rotate_half RoPE,
 *  causal GQA softmax attention, SwiGLU). ids (T) → logits (T, V) as one row per position. */
export function referenceLlama(params: Params, cfg: LlamaConfig, ids: readonly number[]): Float64Array[] {
  const C = cfg.hiddenSize, H = cfg.numAttentionHeads, Hkv = cfg.numKeyValueHeads, D = C / H, T = ids.length;
  const W = (n: string): Float32Array => {
    const p = params.get(n);
    if (!p) throw new Error(`missing ${n}`);
    return p.f32;
  };
  // y (T, out) = x (T, in) · Wᵀ with W (out, in)
  const lin = (x: Float64Array[], w: Float32Array): Float64Array[] => x.map((row) => {
    const out = new Float64Array(w.length / row.length);
    for (let o = 0; o < out.length; o++) {
      let s = 0;
      for (let i = 0; i < row.length; i++) s += row[i] * w[o * row.length + i];
      out[o] = s;
    }
    return out;
  });
  const norm = (x: Float64Array[], w: Float32Array): Float64Array[] => x.map((row) => {
    let ms = 0;
    for (const v of row) ms += v * v;
    const r = 1 / Math.sqrt(ms / row.length + cfg.rmsNormEps);
    return row.map((v, i) => v * r * w[i]);
  });
  const rope = (x: Float64Array[], heads: number): void => x.forEach((row, t) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < D / 2; i++) {
        const f = t / cfg.ropeTheta ** ((2 * i) / D), c = Math.cos(f), s = Math.sin(f);
        const a = row[h * D + i], b = row[h * D + i + D / 2];
        row[h * D + i] = a * c - b * s;
        row[h * D + i + D / 2] = b * c + a * s;
      }
    }
  });
  const emb = W('model.embed_tokens.weight');
  let x: Float64Array[] = ids.map((id) => Float64Array.from(emb.subarray(id * C, (id + 1) * C)));
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    const h = norm(x, W(`${p}input_layernorm.weight`));
    const q = lin(h, W(`${p}self_attn.q_proj.weight`)), k = lin(h, W(`${p}self_attn.k_proj.weight`));
    const v = lin(h, W(`${p}self_attn.v_proj.weight`));
    rope(q, H);
    rope(k, Hkv);
    const ctx = ids.map(() => new Float64Array(C));
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / (H / Hkv)); // kv head shared by this query head
      for (let t = 0; t < T; t++) {
        const sc = new Float64Array(t + 1);
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[t][hh * D + d] * k[u][g * D + d];
          sc[u] = s / Math.sqrt(D);
        }
        const m = Math.max(...sc);
        let z = 0;
        for (let u = 0; u <= t; u++) z += (sc[u] = Math.exp(sc[u] - m));
        for (let u = 0; u <= t; u++) for (let d = 0; d < D; d++) ctx[t][hh * D + d] += (sc[u] / z) * v[u][g * D + d];
      }
    }
    const o = lin(ctx, W(`${p}self_attn.o_proj.weight`));
    x = x.map((row, t) => row.map((val, i) => val + o[t][i]));
    const h2 = norm(x, W(`${p}post_attention_layernorm.weight`));
    const gate = lin(h2, W(`${p}mlp.gate_proj.weight`)), up = lin(h2, W(`${p}mlp.up_proj.weight`));
    const act = gate.map((row, t) => row.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[t][i]));
    const down = lin(act, W(`${p}mlp.down_proj.weight`));
    x = x.map((row, t) => row.map((val, i) => val + down[t][i]));
  }
  x = norm(x, W('model.norm.weight'));
  return lin(x, W(cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'));
}

/** log-softmax of one row. */
export function logSoftmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(z as ArrayLike<number>, (v) => v - lse);
}

/** Index of the first maximum. */
export function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}

/** A wrong reading of Q4_0 blocks, for tests that must reject it: nibbles as interleaved pairs
 *  (byte j = elements 2j, 2j+1) instead of elements j and j + 16. */
export function dequantQ4_0Interleaved(b: Uint8Array): Float32Array {
  const y = new Float32Array((b.length / 18) * 32);
  for (let i = 0; i < b.length / 18; i++) {
    const d = readF16(b, i * 18);
    for (let j = 0; j < 16; j++) {
      y[i * 32 + 2 * j] = ((b[i * 18 + 2 + j] & 15) - 8) * d;
      y[i * 32 + 2 * j + 1] = ((b[i * 18 + 2 + j] >>> 4) - 8) * d;
    }
  }
  return y;
}
