"""PyTorch side of bench/real_size.ts: the same real-size checkpoint (bench/configs/<name>.json,
weights in <dir>/model.safetensors), loaded, run forward without gradients and through KD-QAT
steps, timed as the kdqat worker does. The models are written out here from the families'
equations (no transformers dependency): LLaMA/Qwen2 (RMSNorm, RoPE rotate_half, grouped-query
attention, q/k/v biases for Qwen2, SwiGLU, tied head) and BERT (post-LN, GELU, pooler, classifier).
The KD-QAT settings are bench/real_size_shapes.ts's: decoders W4 symmetric per group of 32 (STE)
on the 7 projections with the logits KL; BERT TWN per matrix (STE clipped at ±2.5) on its 6
Linears with 8-bit dynamic per-tensor inputs clipped at ±2.5, loss pred + rep + attn_map.

Run with Debian's /usr/bin/python3 (torch 1.13); threads from OMP_NUM_THREADS. Prints one JSON
record. usage: torch_real_size.py <name> <dir> [<steps> [<warmup>]]: <warmup> untimed KD-QAT steps
(default 2, as the kdqat worker) before <steps> timed ones (default 2).
"""
import json, math, os, resource, struct, sys, time
import torch
import torch.nn.functional as F

name, mdir = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 2
if steps < 1 or warmup < 1:
    sys.exit(f"torch_real_size.py: <steps> and <warmup> must be at least 1, got {steps} and {warmup}")
threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
torch.set_num_threads(threads)
here = os.path.dirname(os.path.abspath(__file__))
cfg = json.load(open(os.path.join(here, "configs", name + ".json")))
SHAPES = {  # keep in step with bench/real_size_shapes.ts
    "smollm2-135m": (4, 256), "qwen2.5-0.5b": (2, 256), "bert-base": (16, 128),
}
B, T = SHAPES[name]
DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_safetensors(path):
    """What safetensors' load_file does: the header, then each tensor copied out as float32."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = DT[v["dtype"]]
        t = torch.frombuffer(data, dtype=dt, count=(b - a) // torch.empty(0, dtype=dt).element_size(), offset=8 + n + a)
        out[k] = t.reshape(v["shape"]).float()
    return out


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def attention(q, k, v, mask_add, want_probs):
    """q (B, H, T, D), k/v (B, H, T, D); mask_add broadcast (…, T, T) of 0 / -inf."""
    if not want_probs and hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_add), None
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask_add, dim=-1)
    return p @ v, p


def decoder(P, wq, ids):
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim", C // H)
    eps = cfg["rms_norm_eps"]
    Bq, Tq = ids.shape
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, D, 2).float() / D))
    f = torch.outer(torch.arange(Tq).float(), inv)
    cos, sin = torch.cat((f, f), -1).cos(), torch.cat((f, f), -1).sin()
    causal = torch.full((Tq, Tq), float("-inf")).triu(1)
    x = P["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        lin = lambda h, n: F.linear(h, wq(p + n + ".weight"), P.get(p + n + ".bias"))
        h = rms(x, P[p + "input_layernorm.weight"], eps)
        q = lin(h, "self_attn.q_proj").view(Bq, Tq, H, D).transpose(1, 2)
        k = lin(h, "self_attn.k_proj").view(Bq, Tq, Hkv, D).transpose(1, 2)
        v = lin(h, "self_attn.v_proj").view(Bq, Tq, Hkv, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
        a, _ = attention(q, k, v, causal, False)
        x = x + lin(a.transpose(1, 2).reshape(Bq, Tq, H * D), "self_attn.o_proj")
        h = rms(x, P[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(F.silu(lin(h, "mlp.gate_proj")) * lin(h, "mlp.up_proj"), "mlp.down_proj")
    x = rms(x, P["model.norm.weight"], eps)
    head = P.get("lm_head.weight", P["model.embed_tokens.weight"])
    return {"logits": F.linear(x, head)}


def encoder(P, wq, ids, aq):
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D, eps = C // H, cfg["layer_norm_eps"]
    Bq, Tq = ids.shape
    ln = lambda x, n: F.layer_norm(x, (C,), P[n + ".weight"], P[n + ".bias"], eps)
    x = P["bert.embeddings.word_embeddings.weight"][ids] + P["bert.embeddings.position_embeddings.weight"][:Tq] \
        + P["bert.embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "bert.embeddings.LayerNorm")
    hidden, probs, zero = [x], [], torch.zeros(Tq, Tq)
    for l in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        lin = lambda h, n: F.linear(aq(h), wq(p + n + ".weight"), P[p + n + ".bias"])
        split = lambda t: t.view(Bq, Tq, H, D).transpose(1, 2)
        q, k, v = split(lin(x, "attention.self.query")), split(lin(x, "attention.self.key")), split(lin(x, "attention.self.value"))
        a, pr = attention(q, k, v, zero, True)
        probs.append(pr)
        x = ln(x + lin(a.transpose(1, 2).reshape(Bq, Tq, C), "attention.output.dense"), p + "attention.output.LayerNorm")
        x = ln(x + lin(F.gelu(lin(x, "intermediate.dense")), "output.dense"), p + "output.LayerNorm")
        hidden.append(x)
    pooled = torch.tanh(F.linear(x[:, 0], P["bert.pooler.dense.weight"], P["bert.pooler.dense.bias"]))
    return {"logits": F.linear(pooled, P["classifier.weight"], P["classifier.bias"]), "hidden": hidden, "probs": probs}


def w4_g32(w):
    """Symmetric 4-bit per group of 32 inputs, STE: s = max|w|/7, q = clamp(round(w/s), -8, 7)."""
    g = w.detach().reshape(w.shape[0], -1, 32)
    s = g.abs().amax(-1, keepdim=True) / 7
    s = torch.where(s > 0, s, torch.ones_like(s))
    q = (torch.clamp(torch.round(g / s), -8, 7) * s).reshape(w.shape)
    return w + (q - w).detach()


class ClippedSte(torch.autograd.Function):
    """TWN per matrix (Δ = 0.7·mean|w|, α = mean |w| over |w| > Δ); gradient zero outside ±2.5."""
    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        d = 0.7 * w.abs().mean()
        m = (w.abs() > d).float()
        return (w * m).abs().sum() / m.sum() * torch.sign(w) * m

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * (w.abs() <= 2.5).float()


def a8(x):
    """8-bit dynamic per-tensor symmetric input quantization, clipped at ±2.5, STE inside the clip."""
    c = torch.clamp(x, -2.5, 2.5)
    s = c.detach().abs().max() / 127
    return c + (torch.round(c.detach() / s) * s - c.detach())


decoder_family = cfg["model_type"] != "bert"
t0 = time.perf_counter()
P = load_safetensors(os.path.join(mdir, "model.safetensors"))
load_ms = (time.perf_counter() - t0) * 1000
torch.manual_seed(2)
ids = torch.randint(0, cfg["vocab_size"], (B, T))
fp = lambda n: P[n]
ident = lambda x: x
run = (lambda Q, wq, aq: decoder(Q, wq, ids)) if decoder_family else (lambda Q, wq, aq: encoder(Q, wq, ids, aq))

best_fwd = float("inf")
with torch.no_grad():
    for _ in range(2):
        s0 = time.perf_counter()
        run(P, fp, ident)
        best_fwd = min(best_fwd, time.perf_counter() - s0)

S = {k: v.clone().requires_grad_(True) for k, v in P.items()}
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj") if decoder_family else \
    ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense")
quantized = {k for k in S if k.endswith(".weight") and any("." + m + "." in k for m in PROJ)}
if decoder_family:
    wq, aq = (lambda n: w4_g32(S[n]) if n in quantized else S[n]), ident
else:
    wq, aq = (lambda n: ClippedSte.apply(S[n]) if n in quantized else S[n]), a8
opt = torch.optim.AdamW(S.values(), lr=1e-5, weight_decay=0.0)


def kl(t, s):
    return F.kl_div(F.log_softmax(s.reshape(-1, s.shape[-1]), -1), F.log_softmax(t.reshape(-1, t.shape[-1]), -1), log_target=True, reduction="batchmean")


def step():
    with torch.no_grad():
        t = run(P, fp, ident)
    s = run(S, wq, aq)
    loss = kl(t["logits"], s["logits"])
    if not decoder_family:
        loss = loss + sum(F.mse_loss(a, b) for a, b in zip(s["hidden"], t["hidden"]))
        loss = loss + sum((tp * (tp.clamp_min(1e-8).log() - sp.clamp_min(1e-8).log())).sum(-1).mean() for sp, tp in zip(s["probs"], t["probs"]))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


s0 = time.perf_counter()
first = step()
first_ms = (time.perf_counter() - s0) * 1000
for _ in range(warmup - 1):
    step()
last, best = first, float("inf")
t0 = time.perf_counter()
for _ in range(steps):
    s0 = time.perf_counter()
    last = step()
    best = min(best, time.perf_counter() - s0)
ms = (time.perf_counter() - t0) / steps * 1000
print(json.dumps({
    "bench": "real_size", "impl": "torch", "model": name, "threads": threads, "batch": B, "seq": T,
    "load_ms": load_ms, "forward_tokens_per_s": B * T / best_fwd,
    "qat_tokens_per_s": B * T / (ms / 1000), "qat_best_tokens_per_s": B * T / best,
    "warmup_steps": warmup, "first_step_ms": first_ms,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "loss_first": first, "loss_last": last,
}))
