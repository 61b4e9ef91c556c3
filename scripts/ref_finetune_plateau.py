#!/usr/bin/python3
"""Is it the recipe or the engine? A PyTorch replica of test/train/finetune.test.ts's setup:
a 2-layer, 32-wide post-LN BERT-style encoder initialized as BERT is (normal std 0.02, zero
biases), a fresh tanh pooler + linear classifier on [CLS], trained on a task one keyword decides
(6-15 filler words, "apple" -> yes, "pear" -> no, 2048 training examples) with kdqat's finetune
recipe: AdamW (weight decay 0.01 except biases/LayerNorms), batch 32, 3 epochs, 10% linear
warmup then linear decay, gradient clipping at 1.0, dropout 0.1. Prints dev accuracy per epoch
for each learning rate. Measured (torch 1.13, AMD EPYC): lr 2e-5 and 1e-4 stay at the prior
(~50%); 1e-3 (kdqat's default for this width is 1.2e-3) reaches 100% in the first epoch, as
kdqat does on the same kind of data.

torch.nn.TransformerEncoderLayer is BERT's layer up to where dropout sits (it also drops inside
the FFN and on attention probabilities); the data is drawn with Python's RNG, not kdqat's.

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/ref_finetune_plateau.py [lr ...]
"""
import math
import random
import sys

import torch
import torch.nn as nn

FILLER = ("the river flows to sea and sings back quick brown fox jumps over lazy dog near old mill in morning "
          "farmers walk fields with their tools ships sail across ocean when wind is strong steady").split()
VOCAB = {w: i + 3 for i, w in enumerate(FILLER + ["apple", "pear"])}  # 0 pad, 1 [CLS], 2 [SEP]
C, L, H, F, STD, B, EPOCHS = 32, 2, 4, 64, 0.02, 32, 3


def task(n, rng):
    out = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(6 + rng.randrange(10))]
        label = rng.random() < 0.5
        words.insert(rng.randrange(len(words) + 1), "apple" if label else "pear")
        out.append(([1] + [VOCAB[w] for w in words] + [2], int(label)))
    return out


def batch(items):
    T = max(len(ids) for ids, _ in items)
    x = torch.zeros(len(items), T, dtype=torch.long)
    mask = torch.zeros(len(items), T, dtype=torch.bool)
    for i, (ids, _) in enumerate(items):
        x[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = True
    return x, mask, torch.tensor([y for _, y in items])


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(len(VOCAB) + 3, C), nn.Embedding(64, C)
        self.ln = nn.LayerNorm(C, eps=1e-12)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(C, H, F, 0.1, activation="gelu", batch_first=True,
                                                                layer_norm_eps=1e-12) for _ in range(L)])
        self.pool, self.cls, self.drop = nn.Linear(C, C), nn.Linear(C, 2), nn.Dropout(0.1)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, STD)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.MultiheadAttention):
                nn.init.normal_(m.in_proj_weight, 0, STD)
                nn.init.zeros_(m.in_proj_bias)

    def forward(self, x, mask):
        h = self.drop(self.ln(self.tok(x) + self.pos(torch.arange(x.shape[1]))))
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~mask)
        return self.cls(self.drop(torch.tanh(self.pool(h[:, 0]))))  # [CLS] -> pooler -> classifier


def run(lr, seed=0):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train, dev = task(2048, rng), task(256, rng)
    model = Classifier()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps = EPOCHS * math.ceil(len(train) / B)
    warm = math.ceil(0.1 * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / (steps - warm)))
    xd, md, yd = batch(dev)
    accs = []
    for _ in range(EPOCHS):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        for i in range(0, len(order), B):
            x, m, y = batch([train[j] for j in order[i:i + B]])
            loss = nn.functional.cross_entropy(model(x, m), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            accs.append((model(xd, md).argmax(-1) == yd).float().mean().item())
    prior = max(yd.float().mean().item(), 1 - yd.float().mean().item())
    print(f"lr {lr:g}: dev accuracy after each epoch {' '.join(f'{a:.3f}' for a in accs)} (prior {prior:.3f}, {steps} updates)")


if __name__ == "__main__":
    for lr in [float(a) for a in sys.argv[1:]] or [2e-5, 1e-4, 1e-3]:
        run(lr)
