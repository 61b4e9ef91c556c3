"""PyTorch side of bench/qat_step.ts: one KD-QAT step of the bench/torch_step.py model, timed the
same way: teacher forward (full precision, torch.no_grad), student forward with 4-bit symmetric
per-output-channel fake quantization of the 7 projection weights of every layer (straight-
through estimator: w + (q(w) − w).detach()), logits KL at τ = 1 (mean over tokens), backward,
AdamW over every student parameter (the latent weights). Prints one JSON record.

Usage: torch_qat_step.py [steps] [shape JSON] [warmup]: the shape (keys of bench/step.ts's
STEP_SHAPE) replaces torch_step.py's default, as bench/qat_step_worker.ts does (bench/scaling.ts).
Run with Debian's /usr/bin/python3 (torch 1.13); threads from OMP_NUM_THREADS.
"""
import json, os, resource, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_step as base  # the model (LM, Block), shapes, thread setting, update, time_steps

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
if len(sys.argv) > 2 and sys.argv[2]:
    base.set_shape(json.loads(sys.argv[2]))
warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 2
BITS = 4
QMAX = 2 ** (BITS - 1) - 1  # 7; codes in [-8, 7] (METHODS.md §2, uniform symmetric)


def fake_quant(w):
    """Per output channel (row): s = max|w| / 7, q = clamp(round(w / s), -8, 7), ŵ = q·s; STE."""
    s = w.detach().abs().amax(dim=1, keepdim=True) / QMAX
    s = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.clamp(torch.round(w.detach() / s), -QMAX - 1, QMAX) * s
    return w + (q - w).detach()


class QLinear(torch.nn.Linear):
    def forward(self, x):
        return F.linear(x, fake_quant(self.weight))


def quantize_blocks(model):
    for b in model.blocks:
        for name in ("q", "k", "v", "o", "gate", "up", "down"):
            lin = getattr(b, name)
            ql = QLinear(lin.in_features, lin.out_features, bias=False)
            ql.weight = lin.weight
            setattr(b, name, ql)
    return model


torch.manual_seed(3)
teacher = base.LM().eval()
for p in teacher.parameters():
    p.requires_grad_(False)
student = base.LM()
student.load_state_dict(teacher.state_dict())  # KD-QAT starts from an exact copy
for p in student.parameters():
    p.requires_grad_(True)
student = quantize_blocks(student)
opt = torch.optim.AdamW(student.parameters(), lr=1e-5, weight_decay=0.0)
ids = torch.randint(0, base.VOCAB, (base.BATCH, base.SEQ))


def step():
    with torch.no_grad():
        t = teacher(ids).view(-1, base.VOCAB)
    s = student(ids).view(-1, base.VOCAB)
    # τ = 1: KL(softmax(t) ‖ softmax(s)), mean over the B·T tokens
    return base.update(F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean"), opt)


first, last, ms, best = base.time_steps(step, steps, warmup)
print(json.dumps({
    "bench": "qat_step", "impl": "torch", "threads": base.threads,
    "tokens_per_s": base.BATCH * base.SEQ / (ms / 1000), "step_ms": ms,
    "best_tokens_per_s": base.BATCH * base.SEQ / (best / 1000), "best_step_ms": best,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "loss_first": first, "loss_last": last,
}))
