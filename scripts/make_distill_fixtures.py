#!/usr/bin/python3
"""Generates test/fixtures/distill_losses.safetensors: the distillation losses of METHODS.md §3
(values and gradients w.r.t. the student tensors), made in PyTorch (see test/fixtures/README.md).

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/make_distill_fixtures.py

Deterministic (fixed seed): running it twice gives identical files. Inputs are float32 draws; the
math is float64 on those exact values, each result rounded once to float32 when stored.

Each loss is written here from its definition, one example at a time on the slice of its real
tokens (x[b, :n_b]), not with the masking tricks the TypeScript code uses, so the two are
independent. Two cases: a causal decoder ("dec": token logits (B, T, V)) and an encoder
("enc": classifier logits (B, K)); both pad some examples on the right.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import F64, ROOT, f32, randn, write_safetensors  # noqa: E402

EPS = 1e-8  # Kim et al.'s probability clamp


def attn_probs_scores(B, H, T, lengths, causal, scale=1.0):
    """Random attention as the model's kernel hands it back: probabilities over the visible keys
    (real, and not in the future when causal), 0 elsewhere; scores with excluded entries 0.
    Padded query rows still attend to the real keys (as in the models)."""
    raw = randn(B, H, T, T, scale=scale)
    vis = torch.zeros(B, 1, T, T, dtype=torch.bool)
    for b, n in enumerate(lengths):
        vis[b, 0, :, :n] = True
    if causal:
        vis &= torch.ones(T, T, dtype=torch.bool).tril()
    probs = torch.softmax(raw.masked_fill(~vis, float("-inf")), dim=-1)
    return probs, raw.masked_fill(~vis, 0.0), vis


def kl_rows(pt, ps, cols):
    """Σ over the visible columns of p_T (log clamp p_T − log clamp p_S), per row."""
    pt_c, ps_c = pt.clamp_min(EPS), ps.clamp_min(EPS)
    return (pt * (pt_c.log() - ps_c.log()) * cols).sum(-1)


def losses(case, s, t, lengths, vis, tau, labels, K_logits):
    """Every term from its definition; returns {name: scalar}."""
    B, L = len(lengths), len(s["probs"])
    C = s["hidden"][0].shape[-1]
    H = s["probs"][0].shape[1]
    ntok = sum(lengths)
    out = {}
    # pred: τ²·KL(softmax(z_T/τ) ‖ softmax(z_S/τ)), mean over real tokens / examples.
    if not K_logits:
        zs = torch.cat([s["logits"][b, :n] for b, n in enumerate(lengths)])  # (N, V)
        zt = torch.cat([t["logits"][b, :n] for b, n in enumerate(lengths)])
    else:
        zs, zt = s["logits"], t["logits"]  # (B, K)
    lp, lq = F.log_softmax(zt / tau, -1), F.log_softmax(zs / tau, -1)
    out["pred"] = tau * tau * (lp.exp() * (lp - lq)).sum(-1).mean()
    # ce: cross-entropy with the labels on real tokens (ignore -100), or per example.
    if not K_logits:
        ys = torch.cat([labels[b, :n] for b, n in enumerate(lengths)]).long()
        out["ce"] = F.cross_entropy(zs, ys, ignore_index=-100)
    else:
        out["ce"] = F.cross_entropy(zs, labels.long())

    def token_mse(xs, ys):
        total = 0.0
        for x, y in zip(xs, ys):
            sq = sum(((x[b, :n] - y[b, :n]) ** 2).sum() for b, n in enumerate(lengths))
            total = total + sq / (ntok * C)  # mean over the real tokens' elements
        return total

    out["rep"] = token_mse(s["hidden"], t["hidden"])
    # attn_score: over real (query, key) pairs; normalizer H·Σ n_b² (future entries are 0 in both).
    sc = 0.0
    for x, y in zip(s["scores"], t["scores"]):
        sq = sum(((x[b, :, :n, :n] - y[b, :, :n, :n]) ** 2).sum() for b, n in enumerate(lengths))
        sc = sc + sq / (H * sum(n * n for n in lengths))
    out["attn_score"] = sc
    # attn_map: Σ_l mean over examples and heads of (1/n)·Σ_{i<n} KL(p_T[i,:] ‖ p_S[i,:]),
    # columns restricted to the visible keys explicitly.
    am = 0.0
    for x, y in zip(s["probs"], t["probs"]):
        per = []
        for b, n in enumerate(lengths):
            cols = vis[b, 0, :n, :n].to(F64)  # (n, n)
            kl = kl_rows(y[b, :, :n, :n], x[b, :, :n, :n], cols)  # (H, n)
            per.append(kl.sum(-1) / n)  # (H,)
        am = am + torch.stack(per).mean()
    out["attn_map"] = am
    out["attn_out"] = token_mse(s["attn_out"], t["attn_out"])
    out["context"] = token_mse(s["context"], t["context"])
    out["sa_out"] = token_mse(s["sa_out"], t["sa_out"])
    return out


def make_case(case, B, T, H, C, L, V, lengths, causal, tau, K_logits):
    mask = torch.zeros(B, T, dtype=torch.int32)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    outs = {}
    vis = None
    for who in ("t", "s"):
        o = {"logits": randn(B, V, scale=2.0) if K_logits else randn(B, T, V, scale=2.0)}
        o["hidden"] = [randn(B, T, C) for _ in range(L + 1)]
        o["probs"], o["scores"] = [], []
        for _ in range(L):
            p, sc, vis = attn_probs_scores(B, H, T, lengths, causal, scale=1.5)
            o["probs"].append(p)
            o["scores"].append(sc)
        for k in ("context", "sa_out", "attn_out"):
            o[k] = [randn(B, T, C) for _ in range(L)]
        outs[who] = o
    if causal:
        # A decoder's attn_out is its sa_out (o_proj output before the residual).
        for o in outs.values():
            o["attn_out"] = o["sa_out"]
    if K_logits:
        labels = torch.randint(0, V, (B,), dtype=torch.int32)
    else:
        labels = torch.randint(0, V, (B, T), dtype=torch.int32)
        labels[0, 2] = -100  # an ignored position
    s, t = outs["s"], outs["t"]
    leaves = [s["logits"], *s["hidden"], *s["probs"], *s["scores"], *s["context"], *s["sa_out"]]
    if not causal:
        leaves += s["attn_out"]
    for x in leaves:
        x.requires_grad_(True)
    vals = losses(case, s, t, lengths, vis, tau, labels, K_logits)

    tensors = {f"{case}.mask": mask, f"{case}.labels": labels}
    for who, o in outs.items():
        tensors[f"{case}.{who}.logits"] = f32(o["logits"])
        for k in ("hidden", "probs", "scores", "context", "sa_out", "attn_out"):
            if causal and k == "attn_out":
                continue
            for l, x in enumerate(o[k]):
                tensors[f"{case}.{who}.{k}.{l}"] = f32(x)
    reads = {"pred": ["logits"], "ce": ["logits"], "rep": ["hidden"], "attn_score": ["scores"],
             "attn_map": ["probs"], "attn_out": ["sa_out" if causal else "attn_out"],
             "context": ["context"], "sa_out": ["sa_out"]}
    for name, v in vals.items():
        tensors[f"{case}.loss.{name}"] = f32(v.reshape(()))
        for k in reads[name]:
            xs = [s[k]] if k == "logits" else s[k]
            gs = torch.autograd.grad(v, xs)
            for l, g in enumerate(gs):
                key = f"{case}.grad.{name}.logits" if k == "logits" else f"{case}.grad.{name}.{l}"
                tensors[key] = f32(g)
    meta = {f"{case}.config": json.dumps(dict(
        B=B, T=T, H=H, C=C, L=L, V=V, lengths=lengths, causal=causal, tau=tau, classifier=K_logits,
        eps=EPS, attn_out="sa_out" if causal else "attn_out"))}
    return tensors, meta


def main():
    torch.manual_seed(7)
    torch.set_num_threads(1)
    tensors, meta = {}, {}
    for args in (
        dict(case="dec", B=2, T=6, H=2, C=8, L=2, V=11, lengths=[6, 4], causal=True, tau=2.0, K_logits=False),
        dict(case="enc", B=3, T=5, H=2, C=8, L=2, V=3, lengths=[5, 3, 4], causal=False, tau=1.0, K_logits=True),
    ):
        t, m = make_case(**args)
        tensors.update(t)
        meta.update(m)
    meta["generator"] = "scripts/make_distill_fixtures.py"
    meta["format"] = "pt"
    write_safetensors(os.path.join(ROOT, "distill_losses.safetensors"), tensors, meta)


if __name__ == "__main__":
    main()
