#!/usr/bin/python3
"""Generates the PyTorch reference fixtures under test/fixtures/ (see test/fixtures/README.md).

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/make_fixtures.py

Everything is deterministic (fixed seeds, one thread): running it twice gives identical files.
Inputs and parameters are drawn in float32; the math is then done in float64 on those exact
float32 values and every result is rounded once to float32 when stored. So the fixtures are the
exact answers for their float32 inputs; a float32 implementation should match to ~1e-5 relative.

The `safetensors` and `transformers` packages are not needed: the file writer below is a few lines
of the format spec (huggingface/safetensors README), and the layers are written out in torch,
following Hugging Face's LlamaDecoderLayer and BertLayer (eval mode: no dropout).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")
F64 = torch.float64
DTYPES = {torch.float32: ("F32", "<f4"), torch.int32: ("I32", "<i4")}


def write_safetensors(path, tensors, metadata):
    """Spec: u64 LE header length N, N bytes of JSON (space-padded to 8-byte alignment), buffer.

    tensors: {name: float32 or int32 tensor}; metadata: {str: str}. Tensors are laid out in name
    order (all 4-byte dtypes, so all aligned). Written to a temp file, then renamed.
    """
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, np_dtype = DTYPES[t.dtype]
        blob = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)
    size = os.path.getsize(path)
    assert size < 200_000, f"{path} is {size} bytes; fixtures must stay under 200 KB"
    print(f"wrote {os.path.relpath(path)} ({len(tensors)} tensors, {size} bytes)")


def f32(t):
    """Rounds a (float64) result to float32 for storage."""
    return t.detach().to(torch.float32)


def randn(*shape, scale=1.0, shift=0.0):
    """float32 draw, returned as float64 holding exactly those float32 values."""
    return (torch.randn(*shape, dtype=torch.float32) * scale + shift).to(torch.float32).to(F64)


def grads(out, gy, wrt):
    """d(sum(out * gy)) / d(each of wrt)."""
    return torch.autograd.grad((out * gy).sum(), wrt)


def meta(config):
    """Config as __metadata__: every field JSON-encoded, plus the whole dict under "config"."""
    m = {k: json.dumps(v) for k, v in config.items()}
    m["config"] = json.dumps(config, sort_keys=True)
    m["generator"] = "scripts/make_fixtures.py"
    m["format"] = "pt"
    return m


# ---- LLaMA decoder layer (HF LlamaDecoderLayer) ----------------------------------------------

def rms_norm(x, w, eps):
    # HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w   (variance over the last dim)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope_cos_sin(T, D, theta):
    # HF LlamaRotaryEmbedding: inv_freq = 1/theta^(arange(0,D,2)/D); emb = cat(freqs, freqs)
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=F64) / D))  # (D/2,)
    freqs = torch.outer(torch.arange(T, dtype=F64), inv_freq)  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
    return emb.cos(), emb.sin()


def llama_block():
    torch.manual_seed(1)
    cfg = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
               intermediate_size=96, rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu",
               attention_bias=False, mlp_bias=False, causal=True, batch=2, seq_len=7,
               position_ids="arange(seq_len) for every batch row")
    C, H, Hkv, D, Fi = 64, 4, 2, 16, 96
    B, T, eps, theta = 2, 7, cfg["rms_norm_eps"], cfg["rope_theta"]
    shapes = {  # nn.Linear weights are (out, in)
        "self_attn.q_proj.weight": (H * D, C), "self_attn.k_proj.weight": (Hkv * D, C),
        "self_attn.v_proj.weight": (Hkv * D, C), "self_attn.o_proj.weight": (C, H * D),
        "mlp.gate_proj.weight": (Fi, C), "mlp.up_proj.weight": (Fi, C), "mlp.down_proj.weight": (C, Fi),
    }
    p = {n: randn(*s, scale=1 / math.sqrt(s[1])) for n, s in shapes.items()}
    p["input_layernorm.weight"] = randn(C, scale=0.1, shift=1.0)
    p["post_attention_layernorm.weight"] = randn(C, scale=0.1, shift=1.0)
    x, gy = randn(B, T, C), randn(B, T, C)
    for t in [x, *p.values()]:
        t.requires_grad_(True)

    cos, sin = rope_cos_sin(T, D, theta)  # (T, D) each
    h = rms_norm(x, p["input_layernorm.weight"], eps)  # (B,T,C)
    q = (h @ p["self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)  # (B,H,T,D)
    k = (h @ p["self_attn.k_proj.weight"].T).view(B, T, Hkv, D).transpose(1, 2)  # (B,Hkv,T,D)
    v = (h @ p["self_attn.v_proj.weight"].T).view(B, T, Hkv, D).transpose(1, 2)  # (B,Hkv,T,D)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    # GQA (HF repeat_kv): query head i uses key/value head i // (H / Hkv).
    k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)  # (B,H,T,D)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # (B,H,T,T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i is masked
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # (B,H,T,T)
    ctx = (probs @ v).transpose(1, 2).reshape(B, T, H * D)  # (B,T,H*D)
    h1 = x + ctx @ p["self_attn.o_proj.weight"].T  # residual stream after attention (B,T,C)
    n2 = rms_norm(h1, p["post_attention_layernorm.weight"], eps)
    mlp = (F.silu(n2 @ p["mlp.gate_proj.weight"].T) * (n2 @ p["mlp.up_proj.weight"].T)) @ p["mlp.down_proj.weight"].T
    y = h1 + mlp  # (B,T,C)

    names = list(p)
    g = grads(y, gy, [x] + [p[n] for n in names])
    main = {n: f32(t) for n, t in p.items()}
    main.update(x=f32(x), y=f32(y), gy=f32(gy), gx=f32(g[0]), h=f32(h1),
                attn_probs=f32(probs), attn_scores=f32(scores.masked_fill(future, 0.0)),
                rope_cos=f32(cos), rope_sin=f32(sin))
    m = meta(cfg)
    write_safetensors(os.path.join(ROOT, "llama_block.safetensors"), main, m)
    write_safetensors(os.path.join(ROOT, "llama_block_grads.safetensors"),
                      {"grad." + n: f32(gn) for n, gn in zip(names, g[1:])}, m)


# ---- BERT encoder layer (HF BertLayer, post-LN, eval mode) -----------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def bert_block():
    torch.manual_seed(2)
    cfg = dict(hidden_size=64, num_attention_heads=4, head_dim=16, intermediate_size=128,
               layer_norm_eps=1e-12, hidden_act="gelu", batch=2, seq_len=7,
               attention_mask="mask[b,t]=1 keep, 0 pad; batch row 1 pads its last 3 positions",
               mask_fill="additive (1-mask)*finfo(float32).min on padded keys")
    C, H, D, Fi, B, T, eps = 64, 4, 16, 128, 2, 7, cfg["layer_norm_eps"]
    shapes = {
        "attention.self.query": (C, C), "attention.self.key": (C, C), "attention.self.value": (C, C),
        "attention.output.dense": (C, C), "intermediate.dense": (Fi, C), "output.dense": (C, Fi),
    }
    p = {}
    for n, s in shapes.items():
        p[n + ".weight"] = randn(*s, scale=1 / math.sqrt(s[1]))  # (out, in)
        p[n + ".bias"] = randn(s[0], scale=0.1)
    for n in ("attention.output.LayerNorm", "output.LayerNorm"):
        p[n + ".weight"] = randn(C, scale=0.1, shift=1.0)
        p[n + ".bias"] = randn(C, scale=0.1)
    x, gy = randn(B, T, C), randn(B, T, C)
    mask = torch.ones(B, T, dtype=torch.int32)
    mask[1, T - 3:] = 0
    for t in [x, *p.values()]:
        t.requires_grad_(True)
    lin = lambda n, a: a @ p[n + ".weight"].T + p[n + ".bias"]  # noqa: E731

    heads = lambda a: a.view(B, T, H, D).transpose(1, 2)  # noqa: E731  (B,T,C) -> (B,H,T,D)
    q, k, v = (heads(lin("attention.self." + n, x)) for n in ("query", "key", "value"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # (B,H,T,T)
    padded = (mask == 0)[:, None, None, :]  # (B,1,1,T): padded keys
    ext = (1.0 - mask.to(F64))[:, None, None, :] * torch.finfo(torch.float32).min
    probs = torch.softmax(scores + ext, dim=-1)  # padded keys get probability exactly 0
    context = (probs @ v).transpose(1, 2).reshape(B, T, C)  # (B,T,C)
    sa_out = lin("attention.output.dense", context)
    attn_out = layer_norm(sa_out + x, p["attention.output.LayerNorm.weight"],
                          p["attention.output.LayerNorm.bias"], eps)
    inter = F.gelu(lin("intermediate.dense", attn_out))  # erf GELU, (B,T,Fi)
    y = layer_norm(lin("output.dense", inter) + attn_out, p["output.LayerNorm.weight"],
                   p["output.LayerNorm.bias"], eps)  # (B,T,C)

    names = list(p)
    g = grads(y, gy, [x] + [p[n] for n in names])
    main = {n: f32(t) for n, t in p.items()}
    main.update(x=f32(x), mask=mask, y=f32(y), gy=f32(gy), gx=f32(g[0]), context=f32(context),
                sa_out=f32(sa_out), attn_out=f32(attn_out), attn_probs=f32(probs),
                attn_scores=f32(scores.masked_fill(padded, 0.0)))
    m = meta(cfg)
    write_safetensors(os.path.join(ROOT, "bert_block.safetensors"), main, m)
    write_safetensors(os.path.join(ROOT, "bert_block_grads.safetensors"),
                      {"grad." + n: f32(gn) for n, gn in zip(names, g[1:])}, m)


# ---- elementwise / loss semantics --------------------------------------------------------------

def ops():
    torch.manual_seed(3)
    out = {}

    def put(prefix, **ts):
        for k, t in ts.items():
            out[f"{prefix}.{k}"] = t if t.dtype == torch.int32 else f32(t)

    special = torch.tensor([0.0, 1e-4, -1e-4, 3.0, -3.0, 10.0, -10.0, 20.0], dtype=F64)
    for name, fn in (("gelu", F.gelu), ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh")),
                     ("silu", F.silu)):
        x = torch.cat([randn(56, scale=3.0), special]).requires_grad_(True)  # (64,)
        gy = randn(64)
        y = fn(x)
        put(name, x=x, y=y, gy=gy, gx=grads(y, gy, [x])[0])

    x, w, b, gy = randn(5, 16, scale=2.0, shift=0.5), randn(16, shift=1.0), randn(16), randn(5, 16)
    for t in (x, w, b):
        t.requires_grad_(True)
    y = F.layer_norm(x, (16,), w, b, eps=1e-5)
    gx, gw, gb = grads(y, gy, [x, w, b])
    put("layernorm", x=x, w=w, b=b, y=y, gy=gy, gx=gx, gw=gw, gb=gb)

    x, w, gy = randn(5, 16, scale=2.0), randn(16, shift=1.0), randn(5, 16)
    x.requires_grad_(True), w.requires_grad_(True)
    y = rms_norm(x, w, 1e-6)
    gx, gw = grads(y, gy, [x, w])
    put("rmsnorm", x=x, w=w, y=y, gy=gy, gx=gx, gw=gw)

    for name, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        x = randn(5, 11, scale=3.0)
        x[4] += 100.0  # a large row: needs the max-subtraction
        x = x.to(torch.float32).to(F64).requires_grad_(True)
        gy = randn(5, 11)
        y = fn(x, dim=-1)
        put(name, x=x, y=y, gy=gy, gx=grads(y, gy, [x])[0])

    logits = randn(6, 10, scale=2.0).requires_grad_(True)
    target = torch.randint(0, 10, (6,), dtype=torch.int64)
    target[[1, 4]] = -100
    loss = F.cross_entropy(logits, target, ignore_index=-100)  # mean over the 4 kept rows
    put("cross_entropy", logits=logits, target=target.to(torch.int32), loss=loss,
        glogits=torch.autograd.grad(loss, [logits])[0])

    tau = 2.0
    t, s = randn(5, 12, scale=2.0), randn(5, 12, scale=2.0).requires_grad_(True)
    pt = torch.softmax(t / tau, -1)
    kl = (pt * (torch.log_softmax(t / tau, -1) - torch.log_softmax(s / tau, -1))).sum(-1).mean() * tau**2
    put("kl", t=t, s=s, loss=kl, gs=torch.autograd.grad(kl, [s])[0])

    m = {"layernorm.eps": "1e-05", "rmsnorm.eps": "1e-06", "softmax.dim": "-1",
         "cross_entropy.ignore_index": "-100", "cross_entropy.reduction": json.dumps("mean"),
         "kl.tau": json.dumps(tau), "kl.formula": json.dumps(
             "tau^2 * mean_rows sum_j softmax(t/tau)_j (log softmax(t/tau)_j - log softmax(s/tau)_j)"),
         "generator": "scripts/make_fixtures.py", "format": "pt"}
    write_safetensors(os.path.join(ROOT, "ops.safetensors"), out, m)


def main():
    torch.set_num_threads(1)
    os.makedirs(ROOT, exist_ok=True)
    llama_block()
    bert_block()
    ops()


if __name__ == "__main__":
    sys.exit(main())
