#!/usr/bin/python3
"""A PyTorch replica of kdqat's masked-LM pre-training step, to tell an engine bug from a recipe
limit (issue 14). Run with Debian's Python, which has torch (no transformers):

  /usr/bin/python3 scripts/ref_mlm.py DUMP.safetensors [--trained MODEL.safetensors]
                   [--dtype float64|float32] [--steps N] [--fixture OUT.safetensors] [--json]

DUMP is written by scripts/dump-mlm-batches.ts (src/train/pretrain-dump.ts) from a finished
`kdqat pretrain --arch bert --dropout 0 --log-every 1` run: the initial parameters, the first
steps' masked inputs and labels, the validation batches, the run's settings and its losses.

The replica, written from the published definitions rather than from kdqat's code:
  - model: BERT (Devlin et al. 2019; transformers models/bert/modeling_bert.py) from
    scripts/ref_encoders.py's equations, as its `bert` writes them (post-LN layers, exact-erf GELU, LayerNorm eps from the
    config, MLM head LayerNorm(gelu(transform.dense(h))) @ word_embeddings^T + cls.predictions.bias:
    the decoder tied to the word embeddings, so their gradients add); no dropout, all-ones
    attention mask (pre-training windows are full), token types 0;
  - loss: torch.nn.functional.cross_entropy over all positions with ignore_index=-100 (mean over
    the masked positions), as BertForMaskedLM computes it;
  - optimizer: torch.optim.AdamW (decoupled decay, betas 0.9/0.999, eps 1e-8) with the usual
    transformers grouping: no decay for names containing "bias" or "LayerNorm.weight";
    torch.nn.utils.clip_grad_norm_ before each update;
  - schedule: kdqat's documented one (src/train/schedule.ts): lr·(s+1)/warmup for 0-based step
    s < warmup, then cosine from lr down to min_ratio·lr at the last step.

Prints per-step losses (and the trained model's validation loss); --json prints one JSON object
instead. --fixture writes a self-contained test fixture (the dump's tensors plus ref.loss,
ref.grad0.<param>: step 1's gradients, ref.step1.<param> and ref.final.<param>: the parameters
after step 1 and after the last step), computed in float64 and rounded once to float32.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_encoders import BERT_NAMES, encoder_layer, gelu, layer_norm, linear  # noqa: E402  (the BERT equations)

NP = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=NP[h["dtype"]]).reshape(h["shape"]).copy())
    return out, meta


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    kinds = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4")}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, np_dtype = kinds[t.dtype]
        blob = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(path + ".tmp", path)


def learning_rate(o, s):
    """src/train/schedule.ts: linear warmup from lr/warmup, then cosine to min_ratio·lr."""
    lr, warm = o["lr"], o["warmup"]
    if s < warm:
        return lr * (s + 1) / warm
    frac = min(1.0, (s - warm) / max(1, o["total_steps"] - warm))
    return lr * (o["min_ratio"] + (1 - o["min_ratio"]) * 0.5 * (1 + math.cos(math.pi * frac)))


class Replica:
    def __init__(self, tensors, meta, dtype):
        m = json.loads(meta["model"])
        self.cfg = {"layer_norm_eps": m["layerNormEps"], "num_hidden_layers": m["numHiddenLayers"],
                    "num_attention_heads": m["numAttentionHeads"], "hidden_act": m["hiddenAct"]}
        self.vocab = m["vocabSize"]
        self.dtype = dtype
        self.params = {n[5:]: t.to(dtype).clone().requires_grad_(True) for n, t in tensors.items() if n.startswith("init.")}

    def loss(self, p, inputs, labels, reduction="mean"):
        """BertForMaskedLM's loss, F.cross_entropy(logits, labels, ignore_index=-100); the head is
        applied to the masked positions only, which gives the same values (the head is per
        position) without the (B·T, V) logits."""
        cfg, ids = self.cfg, inputs.long()
        eps, T = cfg["layer_norm_eps"], ids.shape[1]
        e = "bert.embeddings."
        # scripts/ref_encoders.py bert(): word + position + token-type (0) embeddings, LayerNorm.
        x = p[e + "word_embeddings.weight"][ids] + p[e + "token_type_embeddings.weight"][torch.zeros_like(ids)] + p[e + "position_embeddings.weight"][:T]
        x = layer_norm(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
        ones = torch.ones_like(ids)
        for l in range(cfg["num_hidden_layers"]):
            x = encoder_layer(p, f"bert.encoder.layer.{l}.", BERT_NAMES, x, ones, cfg["num_attention_heads"], eps, cfg["hidden_act"])
        lab = labels.reshape(-1).long()
        rows = (lab != -100).nonzero().squeeze(1)
        h = x.reshape(-1, x.shape[-1])[rows]  # (N, C)
        t = "cls.predictions.transform."
        h = layer_norm(gelu(linear(p, t + "dense", h)), p[t + "LayerNorm.weight"], p[t + "LayerNorm.bias"], eps)
        logits = h @ p[e + "word_embeddings.weight"].T + p["cls.predictions.bias"]  # (N, V)
        return torch.nn.functional.cross_entropy(logits, lab[rows], reduction=reduction)


def mask_stats(tensors, meta, steps):
    """BERT's corruption (Devlin et al. 2019 §3.1), checked on the dumped batches: 15% of the
    non-special tokens chosen, of which 80% become [MASK], 10% a random token, 10% unchanged."""
    sp = json.loads(meta["specials"])
    special = torch.tensor(sp["special"])
    eligible = chosen = as_mask = same = chosen_special = 0
    for s in range(steps):
        inp, lab = tensors[f"step.{s}.inputs"].long(), tensors[f"step.{s}.labels"].long()
        sel = lab != -100
        original = torch.where(sel, lab, inp)
        ok = ~torch.isin(original, special)
        eligible += ok.sum().item()
        chosen += sel.sum().item()
        chosen_special += (sel & ~ok).sum().item()
        as_mask += (inp[sel] == sp["mask"]).sum().item()
        same += (inp[sel] == lab[sel]).sum().item()
    n = max(chosen, 1)
    return {"chosen_fraction": chosen / max(eligible, 1), "mask": as_mask / n, "unchanged": same / n,
            "random": (chosen - as_mask - same) / n, "chosen": chosen, "chosen_special": chosen_special}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--trained", help="a model.safetensors to score on the dumped validation batches")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--steps", type=int, default=0, help="steps to replay (default: all dumped)")
    ap.add_argument("--fixture", help="write a test fixture here")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    tensors, meta = read_safetensors(a.dump)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    o = json.loads(meta["optimizer"])
    arch = json.loads(meta["config"])["arch"]
    if arch != "bert":
        sys.exit(f"{a.dump}: a --arch {arch} run; this replica implements BERT's equations only")
    r = Replica(tensors, meta, dtype)
    p = r.params
    dumped = sum(1 for n in tensors if n.startswith("step.") and n.endswith(".inputs"))
    steps = a.steps or dumped
    if steps > dumped:
        sys.exit(f"{a.dump}: has {dumped} steps of batches; --steps {steps} is more")

    no_decay = sorted(n for n in p if "bias" in n or "LayerNorm.weight" in n)
    kd_no_decay = sorted(json.loads(meta["no_decay"]))
    if no_decay != kd_no_decay:
        print(f"NOTE: weight-decay groups differ: replica no-decay {no_decay}, kdqat {kd_no_decay}", file=sys.stderr)
    groups = [{"params": [p[n] for n in p if n not in no_decay], "weight_decay": o["weight_decay"]},
              {"params": [p[n] for n in no_decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], foreach=False)

    losses, norms, out = [], [], {}
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = learning_rate(o, s)
        opt.zero_grad(set_to_none=True)
        loss = r.loss(p, tensors[f"step.{s}.inputs"], tensors[f"step.{s}.labels"])
        loss.backward()
        if s == 0:
            for n, t in p.items():
                out[f"ref.grad0.{n}"] = (t.grad if t.grad is not None else torch.zeros_like(t)).to(torch.float32)
        norm = torch.sqrt(sum((t.grad.double() ** 2).sum() for t in p.values() if t.grad is not None)).item()
        if o["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(p.values()), o["clip"])
        opt.step()
        if s == 0:
            for n, t in p.items():
                out[f"ref.step1.{n}"] = t.detach().to(torch.float32)
        losses.append(loss.item())
        norms.append(norm)
    for n, t in p.items():
        out[f"ref.final.{n}"] = t.detach().to(torch.float32)

    valid = None
    if a.trained and "valid.inputs" in tensors:
        trained, _ = read_safetensors(a.trained)
        tp = {n: t.to(dtype) for n, t in trained.items()}
        vi, vl = tensors["valid.inputs"], tensors["valid.labels"]
        total, count = 0.0, 0
        with torch.no_grad():
            for at in range(0, vi.shape[0], 32):
                total += r.loss(tp, vi[at:at + 32], vl[at:at + 32], reduction="sum").item()
                count += (vl[at:at + 32] != -100).sum().item()
        valid = total / max(count, 1)

    kd = json.loads(meta.get("kdqat_losses", "[]"))
    kd_valid = json.loads(meta.get("kdqat_valid_mlm_loss", "null"))
    stats = mask_stats(tensors, meta, steps)
    result = {"mask_stats": stats, "dtype": a.dtype, "losses": losses, "grad_norms": norms, "valid_mlm_loss": valid,
              "kdqat_losses": kd[:steps], "kdqat_valid_mlm_loss": kd_valid}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"{'step':>5} {'torch':>12} {'kdqat':>12} {'|delta|':>10}")
        for s, l in enumerate(losses):
            k = kd[s] if s < len(kd) else float("nan")
            print(f"{s + 1:>5} {l:12.7f} {k:12.7f} {abs(l - k):10.3e}")
        print("masks: {chosen} chosen = {chosen_fraction:.2%} of the non-special tokens ({chosen_special} special); "
              "[MASK] {mask:.1%}, random {random:.1%}, unchanged {unchanged:.1%}".format(**stats))
        if valid is not None:
            print(f"validation MLM loss of the trained model: torch {valid:.7f}, kdqat {kd_valid}")

    if a.fixture:
        keep = {n: t for n, t in tensors.items() if not n.startswith("valid.")}
        keep.update(out)
        keep["ref.loss"] = torch.tensor(losses, dtype=torch.float64)
        write_safetensors(a.fixture, keep, {k: v for k, v in meta.items()})
        print(f"wrote {a.fixture} ({os.path.getsize(a.fixture)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
