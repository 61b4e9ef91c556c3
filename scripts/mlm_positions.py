#!/usr/bin/env python3
"""Does the way an encoder sees positions decide how soon masked-LM training reads context?

Trains the same small post-LN BERT encoder (HF BertModel's equations: embeddings LayerNorm,
self-attention, GELU FFN, LayerNorm after each residual, MLM head dense+GELU+LayerNorm and a
decoder tied to the word embeddings) on the same masked-LM batches with three ways of seeing
positions:
  absolute      learned position embeddings added to the input (BERT, RoBERTa, DistilBERT)
  relative_key  HF BertSelfAttention's position_embedding_type "relative_key" (Shaw et al. 2018
                as in Huang et al. 2020): scores += q · E[l - r], E one (2P-1, d_head) table per layer
  rope          rotary embeddings on q and k (Su et al. 2021; RoFormer, ModernBERT), no input positions
and prints the validation MLM loss against the unigram entropy of the masked targets.

Windows come from scripts/export-windows.ts (kdqat's packing of the corpus). Usage:
  OMP_NUM_THREADS=1 /usr/bin/python3 scripts/mlm_positions.py WINDOWS.safetensors \
      [--pos absolute,relative_key,rope] [--hidden 128 --layers 2 --heads 2 --inter 512]
      [--steps 1500 --batch 16 --lr 1e-3 --warmup 100 --eval-every 250 --seed 0]
"""
import argparse, json, math, struct, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_windows(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = json.loads(h['__metadata__']['specials'])
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.int32).reshape(v['shape']).astype(np.int64))
    return out['train'], out['valid'], meta


def mask_batch(x, sp, V, g, prob=0.15):
    """BERT's 80/10/10 corruption of 15 % of the non-special positions; labels -100 elsewhere."""
    special = torch.zeros(V, dtype=torch.bool)
    special[sp['special']] = True
    eligible = ~special[x]
    chosen = (torch.rand(x.shape, generator=g) < prob) & eligible
    labels = torch.where(chosen, x, torch.full_like(x, -100))
    r = torch.rand(x.shape, generator=g)
    inp = x.clone()
    inp[chosen & (r < 0.8)] = sp['mask']
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    inp[rnd] = torch.randint(0, V, (int(rnd.sum()),), generator=g)
    return inp, labels


def rope_tables(T, d, base=10000.0):
    inv = 1.0 / base ** (torch.arange(0, d, 2).float() / d)
    a = torch.arange(T).float()[:, None] * inv[None, :]
    return torch.cos(a), torch.sin(a)


def apply_rope(x, cos, sin):  # x (B, H, T, d), rotate-half convention (HF LLaMA / RoFormer-style pairs)
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    c, s = cos[None, None], sin[None, None]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Layer(nn.Module):
    def __init__(s, C, H, I, P, pos, p):
        super().__init__()
        s.H, s.d, s.pos, s.P, s.p = H, C // H, pos, P, p
        s.q, s.k, s.v, s.o = (nn.Linear(C, C) for _ in range(4))
        s.ln1, s.ln2 = nn.LayerNorm(C, eps=1e-12), nn.LayerNorm(C, eps=1e-12)
        s.f1, s.f2 = nn.Linear(C, I), nn.Linear(I, C)
        if pos == 'relative_key':
            s.dist = nn.Embedding(2 * P - 1, s.d)

    def forward(s, x, rope):
        B, T, C = x.shape
        sh = lambda t: t.view(B, T, s.H, s.d).transpose(1, 2)
        q, k, v = sh(s.q(x)), sh(s.k(x)), sh(s.v(x))
        if s.pos == 'rope':
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        sc = q @ k.transpose(-1, -2)
        if s.pos == 'relative_key':
            l = torch.arange(T)[:, None]
            r = torch.arange(T)[None, :]
            e = s.dist(l - r + s.P - 1)  # (T, T, d)
            sc = sc + torch.einsum('bhld,lrd->bhlr', q, e)
        pr = F.dropout(torch.softmax(sc / math.sqrt(s.d), -1), s.p, s.training)
        a = (pr @ v).transpose(1, 2).reshape(B, T, C)
        x = s.ln1(x + F.dropout(s.o(a), s.p, s.training))
        return s.ln2(x + F.dropout(s.f2(F.gelu(s.f1(x))), s.p, s.training))


class Encoder(nn.Module):
    def __init__(s, V, C, L, H, I, P, pos, p=0.1):
        super().__init__()
        s.pos, s.p = pos, p
        s.tok = nn.Embedding(V, C)
        s.posemb = nn.Embedding(P, C) if pos == 'absolute' else None
        s.typ = nn.Embedding(2, C)
        s.ln = nn.LayerNorm(C, eps=1e-12)
        s.layers = nn.ModuleList(Layer(C, H, I, P, pos, p) for _ in range(L))
        s.hd, s.hln = nn.Linear(C, C), nn.LayerNorm(C, eps=1e-12)
        s.bias = nn.Parameter(torch.zeros(V))
        s.rope = rope_tables(P, C // H)
        for m in s.modules():  # BERT's initializer: N(0, 0.02), zero biases, unit LayerNorm
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(s, x, labels):
        B, T = x.shape
        h = s.tok(x) + s.typ(torch.zeros_like(x))
        if s.posemb is not None:
            h = h + s.posemb(torch.arange(T))[None]
        h = F.dropout(s.ln(h), s.p, s.training)
        rope = (s.rope[0][:T], s.rope[1][:T])
        for layer in s.layers:
            h = layer(h, rope)
        sel = labels.view(-1) != -100
        z = s.hln(F.gelu(s.hd(h.view(B * T, -1)[sel])))
        logits = z @ s.tok.weight.T + s.bias
        return F.cross_entropy(logits, labels.view(-1)[sel])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('windows')
    ap.add_argument('--pos', default='absolute,relative_key,rope')
    ap.add_argument('--hidden', type=int, default=128)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--heads', type=int, default=2)
    ap.add_argument('--inter', type=int, default=512)
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--eval-windows', type=int, default=256)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    train, valid, sp = read_windows(a.windows)
    V, T = sp['vocab'], train.shape[1]
    # Fixed validation masks; the unigram entropy of their targets (train counts, add-one).
    gv = torch.Generator().manual_seed(12345)
    vin, vlab = mask_batch(valid[:a.eval_windows], sp, V, gv)
    counts = torch.bincount(train.view(-1), minlength=V).double() + 1
    logp = torch.log(counts / counts.sum())
    t = vlab[vlab != -100]
    print(json.dumps({'windows': a.windows, 'train_windows': train.shape[0], 'T': T, 'vocab': V,
                      'unigram_nll_of_valid_targets': round(float(-logp[t].mean()), 4), 'targets': int(t.numel()),
                      'settings': vars(a)}), flush=True)
    for pos in a.pos.split(','):
        torch.manual_seed(a.seed)
        m = Encoder(V, a.hidden, a.layers, a.heads, a.inter, T, pos)
        decay = [p for n, p in m.named_parameters() if p.ndim >= 2]
        nodecay = [p for n, p in m.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': nodecay, 'weight_decay': 0.0}], lr=a.lr)
        sched = lambda s: (s + 1) / a.warmup if s < a.warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - a.warmup) / max(1, a.steps - a.warmup)))
        g = torch.Generator().manual_seed(a.seed)
        t0, run = time.time(), 0.0
        for step in range(1, a.steps + 1):
            for pg in opt.param_groups:
                pg['lr'] = a.lr * sched(step - 1)
            idx = torch.randint(0, train.shape[0], (a.batch,), generator=g)
            inp, lab = mask_batch(train[idx], sp, V, g)
            m.train()
            loss = m(inp, lab)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            run += float(loss)
            if step % a.eval_every == 0:
                m.eval()
                with torch.no_grad():
                    vl = sum(float(m(vin[i:i + 32], vlab[i:i + 32])) * int((vlab[i:i + 32] != -100).sum())
                             for i in range(0, vin.shape[0], 32)) / int((vlab != -100).sum())
                print(json.dumps({'pos': pos, 'step': step, 'train_loss': round(run / a.eval_every, 4), 'valid_mlm_loss': round(vl, 4),
                                  'seconds': round(time.time() - t0, 1)}), flush=True)
                run = 0.0


if __name__ == '__main__':
    main()
