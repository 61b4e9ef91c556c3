"""PyTorch side of bench/step.ts: the same LLaMA-style training step, timed the same way.

Run with Debian's /usr/bin/python3 (torch with OpenBLAS); threads from OMP_NUM_THREADS.
Prints one JSON record. The model is written out here (no transformers dependency) and matches
src/models/llama.ts: RMSNorm, RoPE (rotate_half), causal attention, SwiGLU, untied lm_head.
"""
import json, math, os, resource, sys, time
import torch
import torch.nn.functional as F

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
torch.set_num_threads(threads)
torch.manual_seed(1)
DIM, LAYERS, HEADS, HIDDEN, VOCAB, SEQ, BATCH = 256, 4, 4, 688, 4096, 256, 8
HD = DIM // HEADS


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.q, self.k, self.v, self.o = lin(DIM, DIM), lin(DIM, DIM), lin(DIM, DIM), lin(DIM, DIM)
        self.gate, self.up, self.down = lin(DIM, HIDDEN), lin(DIM, HIDDEN), lin(HIDDEN, DIM)
        self.n1, self.n2 = RMSNorm(DIM), RMSNorm(DIM)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, HEADS, HD).transpose(1, 2)
        k = self.k(h).view(B, T, HEADS, HD).transpose(1, 2)
        v = self.v(h).view(B, T, HEADS, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else \
            torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(HD) + torch.full((T, T), float("-inf")).triu(1), -1) @ v
        x = x + self.o(att.transpose(1, 2).reshape(B, T, C))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, DIM)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(LAYERS)])
        self.norm = RMSNorm(DIM)
        self.head = torch.nn.Linear(DIM, VOCAB, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
        f = torch.outer(torch.arange(SEQ).float(), inv)
        emb = torch.cat((f, f), -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())

    def forward(self, ids):
        x = self.emb(ids)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        return self.head(self.norm(x))


def update(loss, opt):
    """Backward, optimizer step, gradients cleared; returns the loss as a float."""
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def set_shape(shape):
    """Replaces the model shape (the names above) before a model is built; keys as bench/step.ts's
    STEP_SHAPE: dim, layers, heads, hidden, vocab, seq, batch (bench/scaling.ts)."""
    global DIM, LAYERS, HEADS, HIDDEN, VOCAB, SEQ, BATCH, HD
    DIM, LAYERS, HEADS = shape.get("dim", DIM), shape.get("layers", LAYERS), shape.get("heads", HEADS)
    HIDDEN, VOCAB = shape.get("hidden", HIDDEN), shape.get("vocab", VOCAB)
    SEQ, BATCH = shape.get("seq", SEQ), shape.get("batch", BATCH)
    HD = DIM // HEADS


def time_steps(step, n, warmup=2):
    """`warmup` (≥ 1) warm-up calls of step(), then n timed ones.
    Returns (first loss, last loss, mean ms per step, best ms per step)."""
    first = step()
    for _ in range(warmup - 1):
        step()
    t0 = time.perf_counter()
    best = float("inf")
    for _ in range(n):
        s0 = time.perf_counter()
        last = step()
        best = min(best, (time.perf_counter() - s0) * 1000)
    ms = (time.perf_counter() - t0) / n * 1000
    return first, last, ms, best


def main():
    model = LM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    tgt = torch.cat((ids[:, 1:], torch.full((BATCH, 1), -100)), 1)

    def step():
        logits = model(ids)
        return update(F.cross_entropy(logits.view(-1, VOCAB), tgt.reshape(-1), ignore_index=-100), opt)

    first, last, ms, _ = time_steps(step, steps)
    print(json.dumps({
        "bench": "train_step", "impl": "torch", "threads": threads,
        "tokens_per_s": BATCH * SEQ / (ms / 1000), "step_ms": ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss_first": first, "loss_last": last,
    }))


if __name__ == "__main__":
    main()
