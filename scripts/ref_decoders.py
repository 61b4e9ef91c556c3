#!/usr/bin/python3
"""PyTorch reference for kdqat's decoder families (test/models/decoders.test.ts).

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/ref_decoders.py

For each family a small random checkpoint, as Hugging Face's save_pretrained lays it out, under
test/fixtures/decoders/<name>/:
  config.json        every key of the real model's config.json (the model named in FAMILIES),
                     sizes shrunk, the family's special settings kept (RoPE scaling, biases, tied
                     embeddings, window, eps, head_dim != hidden/heads, partial rotary where the
                     family has it);
  model.safetensors  the parameters in HF names and stored layout (Phi-3: fused qkv_proj and
                     gate_up_proj), F32, {"format": "pt"}, in the byte layout kdqat's writer uses
                     (names sorted, header space-padded to 8), so load -> save can be compared
                     byte for byte;
  reference.safetensors  input_ids (1, T), logits (1, T, V), gy (1, T, V);
  grads.safetensors  grad.<name> = d sum(logits * gy) / d <stored parameter>.

The forward is written from the families' published equations (transformers' modeling_llama /
modeling_mistral / modeling_qwen2 / modeling_qwen3 / modeling_phi3 and modeling_rope_utils, read
for the facts; the transformers package is not used): parameters are drawn in float32, the math
is done in float64 on those values, results are rounded once to float32 when stored. Deterministic
(fixed seeds): running it twice gives identical files.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402  (same writer, same byte layout)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "decoders")
F64 = torch.float64
T = 32          # sequence length: long enough that RoPE scaling changes the low frequencies
VOCAB = 264     # the byte-level test tokenizer's size (256 bytes + specials), for the GGUF tests


# ---- configs: key sets of the real config.json files, sizes shrunk ------------------------------

SIZES = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=256)

FAMILIES = {
    # HuggingFaceTB/SmolLM2-135M: LLaMA with tied embeddings, rope_theta 100000.
    "smollm2": dict(
        architectures=["LlamaForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=0,
        eos_token_id=0, head_dim=8, hidden_act="silu", initializer_range=0.041, is_llama_config=True,
        mlp_bias=False, model_type="llama", pretraining_tp=1, rms_norm_eps=1e-05, rope_interleaved=False,
        rope_scaling=None, rope_theta=100000, tie_word_embeddings=True, torch_dtype="bfloat16",
        transformers_version="4.40.1", use_cache=True),
    # meta-llama/Llama-3.2-1B: llama3 RoPE scaling, tied; head_dim given (here != hidden/heads).
    "llama3": dict(
        architectures=["LlamaForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=128000,
        eos_token_id=128001, head_dim=16, hidden_act="silu", initializer_range=0.02, mlp_bias=False,
        model_type="llama", pretraining_tp=1, rms_norm_eps=1e-05,
        rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        rope_theta=500000.0, tie_word_embeddings=True, torch_dtype="bfloat16", transformers_version="4.45.0.dev0",
        use_cache=True),
    # A LLaMA with linear RoPE scaling (e.g. lmsys/vicuna-7b-v1.5-16k's {"factor": 4.0, "type": "linear"}).
    "llama-linear": dict(
        architectures=["LlamaForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=1,
        eos_token_id=2, head_dim=8, hidden_act="silu", initializer_range=0.02, mlp_bias=False, model_type="llama",
        pretraining_tp=1, rms_norm_eps=1e-05, rope_scaling={"factor": 4.0, "type": "linear"}, rope_theta=10000.0,
        tie_word_embeddings=False, torch_dtype="float16", transformers_version="4.31.0", use_cache=True),
    # A LLaMA with YaRN (NousResearch/Yarn-Llama-2-7b-64k style; factor = max / original).
    "llama-yarn": dict(
        architectures=["LlamaForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=1,
        eos_token_id=2, head_dim=8, hidden_act="silu", initializer_range=0.02, mlp_bias=False, model_type="llama",
        pretraining_tp=1, rms_norm_eps=1e-05,
        rope_scaling={"factor": 16.0, "original_max_position_embeddings": 16, "rope_type": "yarn"},
        rope_theta=10000.0, tie_word_embeddings=False, torch_dtype="bfloat16", transformers_version="4.45.0",
        use_cache=True),
    # mistralai/Mistral-7B-v0.1: sliding_window 4096 (kept; T is shorter), untied.
    "mistral": dict(
        architectures=["MistralForCausalLM"], bos_token_id=1, eos_token_id=2, hidden_act="silu",
        initializer_range=0.02, model_type="mistral", rms_norm_eps=1e-05, rope_theta=10000.0,
        sliding_window=4096, tie_word_embeddings=False, torch_dtype="bfloat16", transformers_version="4.34.0.dev0",
        use_cache=True),
    # Qwen/Qwen2.5-0.5B: q/k/v biases, tied, rope_theta 1e6, window off.
    "qwen2": dict(
        architectures=["Qwen2ForCausalLM"], attention_dropout=0.0, bos_token_id=151643, eos_token_id=151643,
        hidden_act="silu", initializer_range=0.02, max_window_layers=24, model_type="qwen2", rms_norm_eps=1e-06,
        rope_theta=1000000.0, sliding_window=32768, tie_word_embeddings=True, torch_dtype="bfloat16",
        transformers_version="4.40.1", use_cache=True, use_sliding_window=False),
    # Qwen/Qwen3-0.6B: q_norm/k_norm, head_dim 128 != 1024/16 (here 16 != 32/4), tied.
    "qwen3": dict(
        architectures=["Qwen3ForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=151643,
        eos_token_id=151645, head_dim=16, hidden_act="silu", initializer_range=0.02, max_window_layers=28,
        model_type="qwen3", rms_norm_eps=1e-06, rope_scaling=None, rope_theta=1000000, sliding_window=None,
        tie_word_embeddings=True, torch_dtype="bfloat16", transformers_version="4.51.0", use_cache=True,
        use_sliding_window=False),
    # microsoft/Phi-3-mini-4k-instruct: fused qkv_proj / gate_up_proj, sliding_window 2047, untied.
    "phi3": dict(
        _name_or_path="Phi-3-mini-4k-instruct", architectures=["Phi3ForCausalLM"], attention_bias=False,
        attention_dropout=0.0,
        auto_map={"AutoConfig": "configuration_phi3.Phi3Config", "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"},
        bos_token_id=1, embd_pdrop=0.0, eos_token_id=32000, hidden_act="silu", initializer_range=0.02,
        model_type="phi3", original_max_position_embeddings=4096, pad_token_id=32000, resid_pdrop=0.0,
        rms_norm_eps=1e-05, rope_scaling=None, rope_theta=10000.0, sliding_window=2047, tie_word_embeddings=False,
        torch_dtype="bfloat16", transformers_version="4.40.2", use_cache=True),
    # Mistral-7B-v0.1's keys with a window (8) shorter than the sequence (32): the mask matters.
    "mistral-swa": dict(
        architectures=["MistralForCausalLM"], bos_token_id=1, eos_token_id=2, hidden_act="silu",
        initializer_range=0.02, model_type="mistral", rms_norm_eps=1e-05, rope_theta=10000.0,
        sliding_window=8, tie_word_embeddings=False, torch_dtype="bfloat16", transformers_version="4.34.0.dev0",
        use_cache=True),
    # ByteDance-Seed/Seed-OSS-36B-Base: q/k/v biases (attention_bias), head_dim != hidden/heads.
    "seed-oss": dict(
        architectures=["SeedOssForCausalLM"], attention_bias=True, attention_dropout=0.1, attention_out_bias=False,
        bos_token_id=0, eos_token_id=2, head_dim=16, hidden_act="silu", initializer_range=0.02, mlp_bias=False,
        model_type="seed_oss", pad_token_id=1, pretraining_tp=1, residual_dropout=0.1, rms_norm_eps=1e-06,
        rope_scaling={"rope_type": "default"}, rope_theta=10000000.0, tie_word_embeddings=False,
        torch_dtype="bfloat16", transformers_version="4.55.0", use_cache=True),
}
# microsoft/Phi-3.5-mini-instruct: Phi-3-mini's keys with LongRoPE (long/short factors per rotated
# pair, original context 4096 of 131072) and sliding_window 262144. Shrunk: original context 16 <
# T = 32, so the long factors and attention factor sqrt(1 + ln 16 / ln 16) apply.
FAMILIES["phi3-longrope"] = dict(
    FAMILIES["phi3"], _name_or_path="Phi-3.5-mini-instruct", original_max_position_embeddings=16,
    rope_scaling={"long_factor": [1.0, 1.9, 4.7, 11.3], "short_factor": [1.0, 1.05, 1.2, 1.6], "type": "longrope"},
    sliding_window=262144, transformers_version="4.43.3")
# The same with an original context of 256 > T = 32 (of 1024): the short factors apply. (256: llama.cpp
# rounds its context up to a multiple of 256 and takes the long factors above the original one.)
FAMILIES["phi3-longrope-short"] = dict(FAMILIES["phi3-longrope"], original_max_position_embeddings=256)
# microsoft/Phi-4-mini-instruct: model_type phi3 with partial_rotary_factor 0.75 (RoPE on the first
# 96 of 128 entries of a head; here 6 of 8, so 3 LongRoPE factors), LongRoPE, tied embeddings, and
# keys transformers' Phi3 does not read (full_attn_mod, interpolate_factor, lm_head_bias: kept).
FAMILIES["phi4-mini"] = dict(
    architectures=["Phi3ForCausalLM"], attention_bias=False, attention_dropout=0.0,
    auto_map={"AutoConfig": "configuration_phi3.Phi3Config", "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
              "AutoTokenizer": "Xenova/gpt-4o"},
    bos_token_id=199999, embd_pdrop=0.0, eos_token_id=199999, full_attn_mod=1, hidden_act="silu",
    initializer_range=0.02, interpolate_factor=1, lm_head_bias=False, mlp_bias=False, model_type="phi3",
    original_max_position_embeddings=16, pad_token_id=199999, partial_rotary_factor=0.75, resid_pdrop=0.0,
    rms_norm_eps=1e-05,
    rope_scaling={"long_factor": [1.0, 2.6, 9.1], "short_factor": [1.0, 1.1, 1.4], "type": "longrope"},
    rope_theta=10000.0, sliding_window=262144, tie_word_embeddings=True, torch_dtype="bfloat16",
    transformers_version="4.45.0", use_cache=True)
# HuggingFaceTB/SmolLM3-3B: LLaMA with RoPE left out of every 4th layer (no_rope_layers 0 there:
# here 4 layers, the last without), tied, rope_theta 5e6, pretraining_tp 2 (SmolLM3's modelling
# never reads it), layer_types and the window settings (off) as the real file has them.
FAMILIES["smollm3"] = dict(
    architectures=["SmolLM3ForCausalLM"], attention_bias=False, attention_dropout=0.0, bos_token_id=None,
    eos_token_id=128012, hidden_act="silu", initializer_range=0.02,
    layer_types=["full_attention"] * 4, max_window_layers=28, mlp_bias=False, model_type="smollm3",
    no_rope_layer_interval=4, no_rope_layers=[1, 1, 1, 0], pad_token_id=128004, pretraining_tp=2,
    rms_norm_eps=1e-06, rope_scaling=None, rope_theta=5000000.0, sliding_window=None, tie_word_embeddings=True,
    torch_dtype="bfloat16", transformers_version="4.54.0.dev0", use_cache=False, use_sliding_window=False)
# The special ids of the real models are outside the shrunk vocabulary: map them into it.
SPECIAL_IDS = {"bos_token_id": 256, "eos_token_id": 257, "pad_token_id": 257}


def config_of(name):
    c = dict(FAMILIES[name])
    c.update(SIZES)
    if name == "llama-yarn":
        c["max_position_embeddings"] = 256  # = factor 16 x original 16: every transformers reading agrees
    if name == "phi3-longrope-short":
        c["max_position_embeddings"] = 1024  # factor 4 over the original 256
    if name == "smollm3":
        c["num_hidden_layers"] = 4  # llama.cpp's NoPE step: the 4th layer has no RoPE
    for k, v in SPECIAL_IDS.items():
        if k in c:
            c[k] = v
    return c


# ---- the equations ----------------------------------------------------------------------------

def rms_norm(x, w, eps):
    # LlamaRMSNorm (and Mistral/Qwen2/Qwen3/Phi3RMSNorm): x * rsqrt(mean(x^2) + eps) * w
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def inv_freq_and_scale(c, D, seq_len):
    """modeling_rope_utils: (inv_freq (D/2,), attention_factor) for rope_scaling, in a forward
    over seq_len positions (LongRoPE's dynamic update picks its factors by it)."""
    theta = float(c["rope_theta"])
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=F64) / D))
    rs = c.get("rope_scaling")
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return inv, 1.0
    if kind in ("longrope", "su"):  # _compute_longrope_parameters (Phi3Config: original_max_position_embeddings)
        orig = c["original_max_position_embeddings"]
        factor = c["max_position_embeddings"] / orig
        scale = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=F64)
        return inv / ext, rs.get("attention_factor", scale)
    factor = float(rs["factor"])
    if kind == "linear":
        return inv / factor, 1.0
    if kind == "llama3":
        L, lo, hi = rs["original_max_position_embeddings"], rs["low_freq_factor"], rs["high_freq_factor"]
        wave = 2 * math.pi / inv
        scaled = torch.where(wave > L / lo, inv / factor, inv)
        smooth = (L / wave - lo) / (hi - lo)
        mixed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wave >= L / hi) & (wave <= L / lo)
        return torch.where(medium, mixed, scaled), 1.0
    if kind == "yarn":
        L = rs.get("original_max_position_embeddings", c["max_position_embeddings"])
        beta_fast, beta_slow = rs.get("beta_fast", 32), rs.get("beta_slow", 1)

        def corr(rot):
            return D * math.log(L / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), D - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(D // 2, dtype=F64) - low) / (high - low)).clamp(0, 1)
        extrap = 1 - ramp
        inv = (inv / factor) * (1 - extrap) + inv * extrap
        return inv, rs.get("attention_factor", 0.1 * math.log(factor) + 1.0)
    raise ValueError(kind)


def attention(c, p, pre, h, fam):
    """Self-attention of one layer on the normed input h (1, T, C)."""
    B, Tn, C = h.shape
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    D = c.get("head_dim") or C // H
    if fam == "phi3":  # Phi3Attention: qkv = qkv_proj(h); q, k, v = the first H*D, next Hkv*D, last Hkv*D
        qkv = h @ p[pre + "self_attn.qkv_proj.weight"].T
        q, k, v = qkv[..., :H * D], qkv[..., H * D:(H + Hkv) * D], qkv[..., (H + Hkv) * D:]
    else:
        q, k, v = (h @ p[pre + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        if fam in ("qwen2", "seed_oss"):  # Qwen2Attention, SeedOssAttention (attention_bias): bias on q/k/v only
            q, k, v = (t + p[pre + f"self_attn.{n}_proj.bias"] for t, n in zip((q, k, v), "qkv"))
    q, k, v = q.view(B, Tn, H, D), k.view(B, Tn, Hkv, D), v.view(B, Tn, Hkv, D)
    if fam == "qwen3":  # Qwen3Attention: RMSNorm over each head, before RoPE
        q = rms_norm(q, p[pre + "self_attn.q_norm.weight"], c["rms_norm_eps"])
        k = rms_norm(k, p[pre + "self_attn.k_norm.weight"], c["rms_norm_eps"])
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
    rot = int(D * c.get("partial_rotary_factor", 1.0))  # Phi3Attention: q_rot, q_pass = q[..., :rot], q[..., rot:]
    if fam == "smollm3" and not c["no_rope_layers"][int(pre.split(".")[2])]:  # SmolLM3Attention: use_rope 0
        rot = 0
    if rot:
        inv, scale = inv_freq_and_scale(c, rot, Tn)
        ang = torch.outer(torch.arange(Tn, dtype=F64), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos() * scale, emb.sin() * scale
        q = torch.cat((q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]), dim=-1)
        k = torch.cat((k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]), dim=-1)
    k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)  # repeat_kv
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    i, j = torch.arange(Tn).view(-1, 1), torch.arange(Tn).view(1, -1)
    masked = j > i
    w = c.get("sliding_window") if fam in ("mistral", "phi3") else None
    if w is not None:  # sliding window: key j visible to query i iff i - window < j <= i
        masked = masked | (j <= i - w)
    probs = torch.softmax(s.masked_fill(masked, float("-inf")), dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(B, Tn, H * D)
    return ctx @ p[pre + "self_attn.o_proj.weight"].T


def mlp(c, p, pre, h, fam):
    if fam == "phi3":  # Phi3MLP: gate, up = gate_up_proj(h).chunk(2); down(up * silu(gate))
        gate, up = (h @ p[pre + "mlp.gate_up_proj.weight"].T).chunk(2, dim=-1)
    else:
        gate, up = h @ p[pre + "mlp.gate_proj.weight"].T, h @ p[pre + "mlp.up_proj.weight"].T
    return (F.silu(gate) * up) @ p[pre + "mlp.down_proj.weight"].T


def forward(c, p, ids, fam):
    x = p["model.embed_tokens.weight"][ids]  # (1, T, C)
    for layer in range(c["num_hidden_layers"]):
        pre = f"model.layers.{layer}."
        x = x + attention(c, p, pre, rms_norm(x, p[pre + "input_layernorm.weight"], c["rms_norm_eps"]), fam)
        x = x + mlp(c, p, pre, rms_norm(x, p[pre + "post_attention_layernorm.weight"], c["rms_norm_eps"]), fam)
    x = rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.T  # (1, T, V)


# ---- parameters -------------------------------------------------------------------------------

def family_of(name):
    return {"smollm2": "llama", "llama3": "llama", "llama-linear": "llama", "llama-yarn": "llama",
            "mistral-swa": "mistral", "seed-oss": "seed_oss", "phi3-longrope": "phi3",
            "phi3-longrope-short": "phi3", "phi4-mini": "phi3"}.get(name, name)


def shapes(c, fam):
    C, Fi, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    D = c.get("head_dim") or C // H
    s = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
    if not c["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, C)
    for layer in range(c["num_hidden_layers"]):
        pre = f"model.layers.{layer}."
        s[pre + "input_layernorm.weight"] = (C,)
        s[pre + "post_attention_layernorm.weight"] = (C,)
        s[pre + "self_attn.o_proj.weight"] = (C, H * D)
        s[pre + "mlp.down_proj.weight"] = (C, Fi)
        if fam == "phi3":
            s[pre + "self_attn.qkv_proj.weight"] = ((H + 2 * Hkv) * D, C)
            s[pre + "mlp.gate_up_proj.weight"] = (2 * Fi, C)
            continue
        s[pre + "self_attn.q_proj.weight"] = (H * D, C)
        s[pre + "self_attn.k_proj.weight"] = (Hkv * D, C)
        s[pre + "self_attn.v_proj.weight"] = (Hkv * D, C)
        s[pre + "mlp.gate_proj.weight"] = (Fi, C)
        s[pre + "mlp.up_proj.weight"] = (Fi, C)
        if fam in ("qwen2", "seed_oss"):
            s[pre + "self_attn.q_proj.bias"] = (H * D,)
            s[pre + "self_attn.k_proj.bias"] = (Hkv * D,)
            s[pre + "self_attn.v_proj.bias"] = (Hkv * D,)
        if fam == "qwen3":
            s[pre + "self_attn.q_norm.weight"] = (D,)
            s[pre + "self_attn.k_norm.weight"] = (D,)
    return s


def draw(name, shape):
    """float32 draw held in float64: norms 1 + 0.1 N, biases 0.3 N, embeddings N, Linears N / sqrt(in)."""
    x = torch.randn(*shape, dtype=torch.float32)
    if name.endswith("norm.weight"):
        x = 1 + 0.1 * x
    elif name.endswith(".bias"):
        x = 0.3 * x
    elif name != "model.embed_tokens.weight":
        x = x / math.sqrt(shape[1])
    return x.to(torch.float32).to(F64)


def make(name, seed):
    torch.manual_seed(seed)
    c = config_of(name)
    fam = family_of(name)
    p = {n: draw(n, s).requires_grad_(True) for n, s in sorted(shapes(c, fam).items())}
    ids = torch.randint(0, 256, (1, T))
    gy = torch.randn(1, T, c["vocab_size"], dtype=torch.float32).to(F64)
    logits = forward(c, p, ids, fam)
    names = list(p)
    g = torch.autograd.grad((logits * gy).sum(), [p[n] for n in names])
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(c, indent=2, sort_keys=True) + "\n")
    write_safetensors(os.path.join(d, "model.safetensors"), {n: t.detach().float() for n, t in p.items()}, {"format": "pt"})
    ref = {"input_ids": ids.to(torch.int32), "logits": logits.detach().float(), "gy": gy.float()}
    m = {"generator": "scripts/ref_decoders.py", "family": fam, "format": "pt"}
    write_safetensors(os.path.join(d, "reference.safetensors"), ref, m)
    write_safetensors(os.path.join(d, "grads.safetensors"), {"grad." + n: gn.float() for n, gn in zip(names, g)}, m)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for i, n in enumerate(FAMILIES):
        make(n, 100 + i)
