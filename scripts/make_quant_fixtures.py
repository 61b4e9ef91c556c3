#!/usr/bin/python3
"""Generates test/fixtures/quant.safetensors: fake quantizers and their gradients in PyTorch
(see test/fixtures/README.md, section quant.safetensors).

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/make_quant_fixtures.py

Each case is a float32 weight (or activation), an upstream gradient gy and, for LSQ, a float32
step; the quantizer is then evaluated in float64 on those exact values, with autograd doing the
backward: the straight-through estimator as `w + (q(w) - w).detach()`, clipped STE and the
activation quantizer as custom autograd Functions, LSQ with the usual detach tricks of Esser et
al. 2020 (grad_scale and round_pass). Rounding is C roundf (halves away from zero), as kdqat
does; torch.round would round halves to even. Deterministic: identical bytes on every run.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import ROOT, F64, f32, write_safetensors  # noqa: E402


def randn(*shape, scale=1.0):
    """float32 draw, returned as float64 holding exactly those values."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(F64)


def round_away(x):
    t = torch.trunc(x)
    return t + torch.where((x - t).abs() >= 0.5, torch.sign(x), torch.zeros_like(x))


def round_pass(x):
    return (round_away(x) - x).detach() + x


def grad_scale(s, g):
    return (s - s * g).detach() + s * g


def granules(w, kind, size=None):
    """w (rows, cols) → (G, N) view, one row per granule (row-major granule order)."""
    if kind == "tensor":
        return w.reshape(1, -1)
    if kind == "channel":
        return w
    return w.reshape(-1, size)


def sym_minmax(w, bits, kind, size=None):
    """Uniform symmetric min-max fake quantization (METHODS.md §2), scale in float32."""
    wg = granules(w, kind, size)
    qp = 2 ** (bits - 1) - 1
    s = (wg.abs().amax(1, keepdim=True).to(torch.float32) / qp).to(F64)
    q = torch.clamp(round_away(wg / s), -qp - 1, qp)
    return (q * s).reshape(w.shape)


def lsq(w, step, bits, kind, size=None, asym=False):
    """LSQ (Esser et al. 2020): ŵ = round_pass(clamp(w/s, Qn, Qp))·s with grad_scale(s, g)."""
    wg = granules(w, kind, size)
    n = wg.shape[1]
    s32 = step.detach().to(torch.float32).reshape(-1, 1)
    if asym:
        qmax = 2 ** bits - 1
        mn = torch.clamp(wg.detach().to(torch.float32).amin(1, keepdim=True), max=0)
        z = torch.clamp(round_away(-mn / s32), 0, qmax).to(F64)  # zero point, not learned
        qn, qp, levels = -z, qmax - z, qmax
    else:
        qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        levels = qp
    s = grad_scale(step.reshape(-1, 1), 1.0 / math.sqrt(n * levels))
    v = torch.max(torch.min(wg / s, torch.as_tensor(qp, dtype=F64)), torch.as_tensor(qn, dtype=F64))
    return (round_pass(v) * s).reshape(w.shape)


class ClippedSte(torch.autograd.Function):
    """Forward: a given quantizer; backward: gy·[|w| ≤ clip] (TernaryBERT's clipped STE)."""

    @staticmethod
    def forward(ctx, w, wq, clip):
        ctx.save_for_backward(w)
        ctx.clip = clip
        return wq

    @staticmethod
    def backward(ctx, gy):
        (w,) = ctx.saved_tensors
        return gy * (w.abs() <= ctx.clip), None, None


def twn(w, kind):
    """TWN: Δ = 0.7·mean|W|, α = mean{|w| : |w| > Δ}, ŵ = α·sign(w)·[|w| > Δ]."""
    wg = granules(w, kind)
    delta = 0.7 * wg.abs().mean(1, keepdim=True)
    mask = (wg.abs() > delta).to(F64)
    alpha = (wg.abs() * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    return (alpha * torch.sign(wg) * mask).reshape(w.shape)


class ActQuant(torch.autograd.Function):
    """TernaryBERT's SymQuantizer (layerwise): clamp to ±clip, s = max|x|/Qp, STE zero where
    |x| ≥ clip."""

    @staticmethod
    def forward(ctx, x, bits, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        qp = 2 ** (bits - 1) - 1
        xc = torch.clamp(x, -clip, clip)
        s = (xc.abs().max().to(torch.float32) / qp).to(F64)
        return torch.clamp(round_away(xc / s), -qp - 1, qp) * s

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * (x.abs() < ctx.clip), None, None


def main():
    torch.set_num_threads(1)
    torch.manual_seed(11)
    out, meta = {}, {"generator": "scripts/make_quant_fixtures.py", "format": "pt"}

    def put(name, q, w, y, gy, gw, step=None, gstep=None):
        out[f"{name}.w"], out[f"{name}.y"], out[f"{name}.gy"], out[f"{name}.gw"] = w, y, gy, gw
        if step is not None:
            out[f"{name}.step"], out[f"{name}.gstep"] = step, gstep
        meta[name] = q

    # Plain STE: sym 4-bit per channel, gradient passes unchanged.
    w, gy = randn(5, 48, scale=0.5).requires_grad_(True), randn(5, 48)
    y = w + (sym_minmax(w.detach(), 4, "channel") - w).detach()
    put("ste_sym4_channel", '{"rule":{"kind":"sym","bits":4},"granule":{"kind":"channel"}}',
        w, y, gy, torch.autograd.grad((y * gy).sum(), [w])[0])

    # Clipped STE (±2.5): TWN per tensor on weights with some |w| > 2.5.
    w, gy = randn(6, 40, scale=1.6).requires_grad_(True), randn(6, 40)
    y = ClippedSte.apply(w, twn(w.detach(), "tensor"), 2.5)
    put("clip_twn_tensor", '{"rule":{"kind":"twn"},"granule":{"kind":"tensor"},"clip":2.5}',
        w, y, gy, torch.autograd.grad((y * gy).sum(), [w])[0])

    # LSQ: steps = min-max init × [0.6, 1.4) so that some values clamp.
    for name, bits, kind, size, asym, shape in [
        ("lsq_sym3_group16", 3, "group", 16, False, (5, 48)),
        ("lsq_sym4_tensor", 4, "tensor", None, False, (7, 24)),
        ("lsq_asym4_channel", 4, "channel", None, True, (6, 40)),
        ("lsq_asym2_group8", 2, "group", 8, True, (3, 24)),
    ]:
        w, gy = randn(*shape, scale=0.3).requires_grad_(True), randn(*shape)
        wg = granules(w.detach().to(torch.float32), kind, size)
        if asym:
            init = (wg.amax(1).clamp(min=0) - wg.amin(1).clamp(max=0)) / (2 ** bits - 1)
        else:
            init = wg.abs().amax(1) / (2 ** (bits - 1) - 1)
        step = (init * (0.6 + 0.8 * torch.rand(init.shape))).to(torch.float32).to(F64).requires_grad_(True)
        y = lsq(w, step, bits, kind, size, asym)
        gw, gs = torch.autograd.grad((y * gy).sum(), [w, step])
        g = f'{{"kind":"group","size":{size}}}' if kind == "group" else f'{{"kind":"{kind}"}}'
        put(name, f'{{"rule":{{"kind":"{"asym" if asym else "sym"}","bits":{bits}}},"granule":{g},"lsq":true}}',
            w, y, gy, gw, step, gs)

    # Activations: 8-bit with clip 2.5 (TernaryBERT) and 4-bit without clip.
    for name, bits, clip in [("act8_clip", 8, 2.5), ("act4", 4, math.inf)]:
        x, gy = randn(3, 7, 16, scale=1.5).requires_grad_(True), randn(3, 7, 16)
        y = ActQuant.apply(x, bits, clip)
        out[f"{name}.x"], out[f"{name}.y"], out[f"{name}.gy"] = x, y, gy
        out[f"{name}.gx"] = torch.autograd.grad((y * gy).sum(), [x])[0]
        meta[name] = json.dumps({"bits": bits, **({} if clip == math.inf else {"clip": clip})})

    write_safetensors(os.path.join(ROOT, "quant.safetensors"), {k: f32(v) for k, v in out.items()}, meta)


if __name__ == "__main__":
    sys.exit(main())
