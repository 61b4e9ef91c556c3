#!/usr/bin/python3
"""PyTorch references for the encoder families, written from their published equations, and the
fixtures under test/fixtures/encoders/<family>/ that kdqat's records are tested against
(test/models/encoders.test.ts).

Run with Debian's Python, which has torch:   /usr/bin/python3 scripts/ref_encoders.py

The transformers library is not used: each family is a small function below, following the
paper and the Hugging Face modeling file it names (eval mode: no dropout).
  - RoBERTa (Liu et al. 2019; transformers models/roberta/modeling_roberta.py): BERT's encoder;
    position ids = cumsum(ids != pad) * (ids != pad) + pad (fairseq make_positions), so a table
    of max_position_embeddings = positions + pad + 1 rows; classifier = out_proj(tanh(dense(h[:, 0])));
    MLM head = layer_norm(gelu(dense(h))) @ word_embeddings^T + lm_head.bias.
  - XLM-RoBERTa (Conneau et al. 2020; modeling_xlm_roberta.py): RoBERTa's equations and names.
  - BERT (Devlin et al. 2019; modeling_bert.py), the family kdqat started with, as a whole model:
    word + position + token-type embeddings; classifier = classifier(tanh(pooler.dense(h[:, 0])));
    MLM head = LayerNorm(gelu(transform.dense(h))) @ word_embeddings^T + cls.predictions.bias.
  - RoFormer (Su et al. 2021; modeling_roformer.py): word + token-type embeddings (no position
    vector); in every layer each interleaved pair (q_2i, q_2i+1), and of k, is rotated by the angle
    t * 10000^(-2i/D) of its position t, with the sines and cosines read from the stored table
    roformer.encoder.embed_positions.weight (P, D: sin in the first D/2 columns, cos in the last,
    RoFormerSinusoidalPositionalEmbedding); classifier = out_proj(gelu(dense(h[:, 0]))); MLM
    head = BERT's under cls.predictions.
  - DistilBERT (Sanh et al. 2019; modeling_distilbert.py): word + position embeddings,
    LayerNorm eps 1e-12, layers with q_lin/k_lin/v_lin/out_lin, sa_layer_norm, ffn.lin1/lin2,
    output_layer_norm; classifier = classifier(relu(pre_classifier(h[:, 0]))); MLM head =
    vocab_layer_norm(act(vocab_transform(h))) @ word_embeddings^T + vocab_projector.bias.

Per family, a small random checkpoint whose config.json has every key of the real model's
config.json (roberta-base, xlm-roberta-base, distilbert-base-uncased, bert-base-uncased: sizes shrunk, the special
settings kept: RoBERTa's pad 1 / 514-style position table / type_vocab_size 1 / eps 1e-5), in two
heads:
  cls/config.json, cls/model.safetensors   ...ForSequenceClassification (3 labels)
  mlm/config.json, mlm/model.safetensors   ...ForMaskedLM (tied decoder not stored)
and reference.safetensors: ids (B, T) and attention mask (B, T) with right padding (row 1) and
left padding (row 2), for BERT type_ids (a second segment in row 0, classifier only); cls.logits (B, K), cls.g (B, K) and cls.grad.<param> = d sum(logits * g) /
d param; mlm.logits (B, T, V), mlm.g, mlm.grad.<param> = d sum(logits * g * mask) / d param.

Parameters are drawn in float32; the math is done in float64 on those exact values and every
result is rounded once to float32 when stored. The checkpoints are written exactly as kdqat's
saveModelDir writes them (config.json: sorted keys, 2-space indent, JavaScript number spelling;
model.safetensors: {"format": "pt"}, tensors sorted by name), so loading and saving one must give
the same bytes. Deterministic: running it twice gives identical files.
"""
import decimal
import json
import math
import os
import struct

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "encoders")
F64 = torch.float64
DTYPES = {torch.float32: ("F32", "<f4"), torch.int32: ("I32", "<i4")}
MAX_BYTES = 300_000


def write_safetensors(path, tensors, metadata):
    """u64 LE header length N, N bytes of JSON (space-padded to 8 bytes), the data in name order."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, np_dtype = DTYPES[t.dtype]
        blob = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    size = os.path.getsize(path)
    assert size < MAX_BYTES, f"{path} is {size} bytes; fixtures must stay under {MAX_BYTES}"
    print(f"wrote {os.path.relpath(path)} ({len(tensors)} tensors, {size} bytes)")


def js_number(x):
    """A number as JavaScript's Number.prototype.toString spells it (ECMA-262 Number::toString):
    the shortest round-trip digits, exponent form only below 1e-6 or from 1e21."""
    if isinstance(x, bool):
        raise TypeError(x)
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    sign, digits, exp = decimal.Decimal(repr(float(x))).as_tuple()
    s = "".join(map(str, digits)).rstrip("0") or "0"
    k = len(s)
    n = exp + len(digits)  # value = 0.s × 10^n
    out = ""
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        out = s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return ("-" if sign else "") + out


def js_json(v, indent=0):
    """JSON.stringify(v, null, 2) for sorted-key objects (kdqat's formatHfJson)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {js_json(v[k], indent + 1)}" for k in sorted(v)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(inner + js_json(x, indent + 1) for x in v) + "\n" + pad + "]"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    return json.dumps(v, ensure_ascii=False)


def write_model(dirname, config, params):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "config.json"), "w", encoding="utf-8") as f:
        f.write(js_json(config) + "\n")
    write_safetensors(os.path.join(dirname, "model.safetensors"), {n: p.to(torch.float32) for n, p in params.items()}, {"format": "pt"})


# ---- the equations ---------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):  # HF "gelu": the exact erf form (Hendrycks & Gimpel 2016)
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


ACT = {"gelu": gelu, "relu": torch.relu}


def linear(p, name, x):
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def rotate_pairs(t, sin, cos):
    """RoFormer's apply_rotary_position_embeddings: t (B, H, T, D); sin, cos (T, D/2). Pair i of
    each head, (t_2i, t_2i+1), becomes (t_2i cos - t_2i+1 sin, t_2i+1 cos + t_2i sin)."""
    even, odd = t[..., 0::2], t[..., 1::2]
    return torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).reshape(t.shape)


def encoder_layer(p, pre, names, x, mask, heads, eps, act, rel=None, rotary=None):
    """Post-LN Transformer layer (Vaswani et al. 2017; BERT): masked keys get probability 0.
    rel = (position_embedding_type, max_position_embeddings) adds BertSelfAttention's relative
    scores: E = distance_embedding(l - r + P - 1) (T, T, D); "relative_key" adds
    einsum("bhld,lrd->bhlr", q, E), "relative_key_query" also einsum("bhrd,lrd->bhlr", k, E),
    before the division by sqrt(D)."""
    B, T, C = x.shape
    D = C // heads
    split = lambda t: t.view(B, T, heads, D).transpose(1, 2)  # (B, H, T, D)
    q, k, v = (split(linear(p, pre + names[i], x)) for i in ("q", "k", "v"))
    if rotary is not None:  # RoFormer: (sin, cos), each (T, D/2)
        q, k = rotate_pairs(q, *rotary), rotate_pairs(k, *rotary)
    if rel is None:
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # (B, H, T, T)
    else:
        kind, P = rel
        scores = q @ k.transpose(-1, -2)
        dist = torch.arange(T)[:, None] - torch.arange(T)[None, :]
        E = p[pre + "attention.self.distance_embedding.weight"][dist + P - 1]  # (T, T, D)
        scores = scores + torch.einsum("bhld,lrd->bhlr", q, E)
        if kind == "relative_key_query":
            scores = scores + torch.einsum("bhrd,lrd->bhlr", k, E)
        scores = scores / math.sqrt(D)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    ctx = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, T, C)
    a = layer_norm(linear(p, pre + names["o"], ctx) + x, p[pre + names["ln1"] + ".weight"], p[pre + names["ln1"] + ".bias"], eps)
    h = linear(p, pre + names["ffn2"], ACT[act](linear(p, pre + names["ffn1"], a)))
    return layer_norm(h + a, p[pre + names["ln2"] + ".weight"], p[pre + names["ln2"] + ".bias"], eps)


BERT_NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
              "ffn1": "intermediate.dense", "ffn2": "output.dense", "ln2": "output.LayerNorm"}
DISTIL_NAMES = {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin", "o": "attention.out_lin",
                "ln1": "sa_layer_norm", "ffn1": "ffn.lin1", "ffn2": "ffn.lin2", "ln2": "output_layer_norm"}


def roberta_positions(ids, pad):
    """fairseq make_positions / HF create_position_ids_from_input_ids."""
    m = (ids != pad).long()
    return torch.cumsum(m, 1) * m + pad


def roberta(p, cfg, ids, mask, head, types=None):
    eps, pad = cfg["layer_norm_eps"], cfg["pad_token_id"]
    e = "roberta.embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "token_type_embeddings.weight"][torch.zeros_like(ids)]
    x = x + p[e + "position_embeddings.weight"][roberta_positions(ids, pad)]
    x = layer_norm(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
    for l in range(cfg["num_hidden_layers"]):
        x = encoder_layer(p, f"roberta.encoder.layer.{l}.", BERT_NAMES, x, mask, cfg["num_attention_heads"], eps, cfg["hidden_act"])
    if head == "cls":
        return linear(p, "classifier.out_proj", torch.tanh(linear(p, "classifier.dense", x[:, 0])))
    h = layer_norm(gelu(linear(p, "lm_head.dense", x)), p["lm_head.layer_norm.weight"], p["lm_head.layer_norm.bias"], eps)
    return h @ p[e + "word_embeddings.weight"].T + p["lm_head.bias"]


def bert(p, cfg, ids, mask, head, types):
    """BERT (Devlin et al. 2019; modeling_bert.py): word + position + token-type embeddings."""
    eps, T = cfg["layer_norm_eps"], ids.shape[1]
    e = "bert.embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "token_type_embeddings.weight"][types]
    kind = cfg["position_embedding_type"]
    if kind == "absolute":  # BertEmbeddings adds the position table only then; it stays in the checkpoint
        x = x + p[e + "position_embeddings.weight"][:T]
    rel = None if kind == "absolute" else (kind, cfg["max_position_embeddings"])
    x = layer_norm(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
    for l in range(cfg["num_hidden_layers"]):
        x = encoder_layer(p, f"bert.encoder.layer.{l}.", BERT_NAMES, x, mask, cfg["num_attention_heads"], eps, cfg["hidden_act"], rel)
    if head == "cls":
        return linear(p, "classifier", torch.tanh(linear(p, "bert.pooler.dense", x[:, 0])))
    t = "cls.predictions.transform."
    h = layer_norm(gelu(linear(p, t + "dense", x)), p[t + "LayerNorm.weight"], p[t + "LayerNorm.bias"], eps)
    return h @ p[e + "word_embeddings.weight"].T + p["cls.predictions.bias"]


def roformer(p, cfg, ids, mask, head, types):
    """RoFormer (Su et al. 2021; modeling_roformer.py): rotary positions from the stored sinusoids."""
    eps, T = cfg["layer_norm_eps"], ids.shape[1]
    e = "roformer.embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "token_type_embeddings.weight"][types]
    x = layer_norm(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
    table = p["roformer.encoder.embed_positions.weight"].detach()[:T]  # frozen (_freeze=True, read under no_grad): no gradient
    half = table.shape[1] // 2
    rotary = (table[:, :half], table[:, half:])
    for l in range(cfg["num_hidden_layers"]):
        x = encoder_layer(p, f"roformer.encoder.layer.{l}.", BERT_NAMES, x, mask, cfg["num_attention_heads"], eps, cfg["hidden_act"],
                          rotary=rotary)
    if head == "cls":
        return linear(p, "classifier.out_proj", ACT[cfg["hidden_act"]](linear(p, "classifier.dense", x[:, 0])))
    t = "cls.predictions.transform."
    h = layer_norm(ACT[cfg["hidden_act"]](linear(p, t + "dense", x)), p[t + "LayerNorm.weight"], p[t + "LayerNorm.bias"], eps)
    return h @ p[e + "word_embeddings.weight"].T + p["cls.predictions.bias"]


def distilbert(p, cfg, ids, mask, head, types=None):
    eps, T = 1e-12, ids.shape[1]
    e = "distilbert.embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "position_embeddings.weight"][:T]
    x = layer_norm(x, p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"], eps)
    for l in range(cfg["n_layers"]):
        x = encoder_layer(p, f"distilbert.transformer.layer.{l}.", DISTIL_NAMES, x, mask, cfg["n_heads"], eps, cfg["activation"])
    if head == "cls":
        return linear(p, "classifier", torch.relu(linear(p, "pre_classifier", x[:, 0])))
    h = layer_norm(ACT[cfg["activation"]](linear(p, "vocab_transform", x)), p["vocab_layer_norm.weight"], p["vocab_layer_norm.bias"], eps)
    return h @ p[e + "word_embeddings.weight"].T + p["vocab_projector.bias"]


# ---- random checkpoints ----------------------------------------------------------------------------

C, H, L, F, V, K = 32, 4, 2, 64, 96, 3
POSITIONS = 40  # tokens the model embeds
B, T = 3, 8


def draw(shape, kind):
    """float32 draws (as float64 holding those values): matrices and biases N(0, 0.15²), norms
    around 1, embeddings N(0, 0.5²)."""
    t = torch.randn(*shape, dtype=torch.float32)
    t = {"w": t * 0.15, "emb": t * 0.5, "gain": 1 + 0.1 * t, "shift": 0.1 * t}[kind]
    return t.to(torch.float32).to(F64)


def layer_params(prefix, names):
    p = {}
    for key, (o, i) in {"q": (C, C), "k": (C, C), "v": (C, C), "o": (C, C), "ffn1": (F, C), "ffn2": (C, F)}.items():
        p[f"{prefix}{names[key]}.weight"] = draw((o, i), "w")
        p[f"{prefix}{names[key]}.bias"] = draw((o,), "w")
    for key in ("ln1", "ln2"):
        p[f"{prefix}{names[key]}.weight"] = draw((C,), "gain")
        p[f"{prefix}{names[key]}.bias"] = draw((C,), "shift")
    return p


def roberta_params(cfg):
    e = "roberta.embeddings."
    p = {e + "word_embeddings.weight": draw((V, C), "emb"),
         e + "position_embeddings.weight": draw((cfg["max_position_embeddings"], C), "emb"),
         e + "token_type_embeddings.weight": draw((cfg["type_vocab_size"], C), "emb"),
         e + "LayerNorm.weight": draw((C,), "gain"), e + "LayerNorm.bias": draw((C,), "shift")}
    for l in range(L):
        p.update(layer_params(f"roberta.encoder.layer.{l}.", BERT_NAMES))
    cls = {"classifier.dense.weight": draw((C, C), "w"), "classifier.dense.bias": draw((C,), "w"),
           "classifier.out_proj.weight": draw((K, C), "w"), "classifier.out_proj.bias": draw((K,), "w")}
    mlm = {"lm_head.dense.weight": draw((C, C), "w"), "lm_head.dense.bias": draw((C,), "w"),
           "lm_head.layer_norm.weight": draw((C,), "gain"), "lm_head.layer_norm.bias": draw((C,), "shift"),
           "lm_head.bias": draw((V,), "w")}
    return p, cls, mlm


def bert_params(cfg):
    e = "bert.embeddings."
    p = {e + "word_embeddings.weight": draw((V, C), "emb"),
         e + "position_embeddings.weight": draw((cfg["max_position_embeddings"], C), "emb"),
         e + "token_type_embeddings.weight": draw((cfg["type_vocab_size"], C), "emb"),
         e + "LayerNorm.weight": draw((C,), "gain"), e + "LayerNorm.bias": draw((C,), "shift")}
    for l in range(L):
        p.update(layer_params(f"bert.encoder.layer.{l}.", BERT_NAMES))
        if cfg["position_embedding_type"] != "absolute":
            P = cfg["max_position_embeddings"]
            p[f"bert.encoder.layer.{l}.attention.self.distance_embedding.weight"] = draw((2 * P - 1, C // H), "emb")
    cls = {"bert.pooler.dense.weight": draw((C, C), "w"), "bert.pooler.dense.bias": draw((C,), "w"),
           "classifier.weight": draw((K, C), "w"), "classifier.bias": draw((K,), "w")}
    t = "cls.predictions."
    mlm = {t + "transform.dense.weight": draw((C, C), "w"), t + "transform.dense.bias": draw((C,), "w"),
           t + "transform.LayerNorm.weight": draw((C,), "gain"), t + "transform.LayerNorm.bias": draw((C,), "shift"),
           t + "bias": draw((V,), "w")}
    return p, cls, mlm


def roformer_sinusoids(n_pos, dim):
    """RoFormerSinusoidalPositionalEmbedding.create_weight: angle pos / 10000^(2(j//2)/dim) in
    float64; sin of the even j in the first half, cos of the odd j in the second."""
    j = torch.arange(dim, dtype=F64)
    enc = torch.arange(n_pos, dtype=F64)[:, None] / torch.pow(torch.tensor(10000.0, dtype=F64), 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    return torch.cat([torch.sin(enc[:, 0::2]), torch.cos(enc[:, 1::2])], dim=1).to(torch.float32).to(F64)


def roformer_params(cfg):
    e = "roformer.embeddings."
    p = {e + "word_embeddings.weight": draw((V, C), "emb"),
         e + "token_type_embeddings.weight": draw((cfg["type_vocab_size"], C), "emb"),
         e + "LayerNorm.weight": draw((C,), "gain"), e + "LayerNorm.bias": draw((C,), "shift"),
         "roformer.encoder.embed_positions.weight": roformer_sinusoids(cfg["max_position_embeddings"], C // H)}
    for l in range(L):
        p.update(layer_params(f"roformer.encoder.layer.{l}.", BERT_NAMES))
    cls = {"classifier.dense.weight": draw((C, C), "w"), "classifier.dense.bias": draw((C,), "w"),
           "classifier.out_proj.weight": draw((K, C), "w"), "classifier.out_proj.bias": draw((K,), "w")}
    t = "cls.predictions."
    mlm = {t + "transform.dense.weight": draw((C, C), "w"), t + "transform.dense.bias": draw((C,), "w"),
           t + "transform.LayerNorm.weight": draw((C,), "gain"), t + "transform.LayerNorm.bias": draw((C,), "shift"),
           t + "bias": draw((V,), "w")}
    return p, cls, mlm


def distilbert_params(cfg):
    e = "distilbert.embeddings."
    p = {e + "word_embeddings.weight": draw((V, C), "emb"),
         e + "position_embeddings.weight": draw((cfg["max_position_embeddings"], C), "emb"),
         e + "LayerNorm.weight": draw((C,), "gain"), e + "LayerNorm.bias": draw((C,), "shift")}
    for l in range(L):
        p.update(layer_params(f"distilbert.transformer.layer.{l}.", DISTIL_NAMES))
    cls = {"pre_classifier.weight": draw((C, C), "w"), "pre_classifier.bias": draw((C,), "w"),
           "classifier.weight": draw((K, C), "w"), "classifier.bias": draw((K,), "w")}
    mlm = {"vocab_transform.weight": draw((C, C), "w"), "vocab_transform.bias": draw((C,), "w"),
           "vocab_layer_norm.weight": draw((C,), "gain"), "vocab_layer_norm.bias": draw((C,), "shift"),
           "vocab_projector.bias": draw((V,), "w")}
    return p, cls, mlm


LABELS = {"id2label": {"0": "negative", "1": "neutral", "2": "positive"}, "label2id": {"negative": 0, "neutral": 1, "positive": 2}}


def roberta_config(model_type, cls_prefix, extra):
    """roberta-base's / xlm-roberta-base's config.json keys (plus what save_pretrained adds:
    classifier_dropout, torch_dtype, ...), sizes shrunk, RoBERTa's settings kept."""
    return {"architectures": [f"{cls_prefix}ForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
            "classifier_dropout": None, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "hidden_size": C, "initializer_range": 0.02, "intermediate_size": F, "layer_norm_eps": 1e-05,
            "max_position_embeddings": POSITIONS + 2, "model_type": model_type, "num_attention_heads": H,
            "num_hidden_layers": L, "pad_token_id": 1, "position_embedding_type": "absolute", "torch_dtype": "float32",
            "type_vocab_size": 1, "use_cache": True, "vocab_size": V, **extra}


def bert_config(position_embedding_type="absolute"):
    """bert-base-uncased's config.json keys (plus classifier_dropout, torch_dtype), sizes shrunk;
    the relative variants as zhiheng-huang/bert-base-uncased-embedding-relative-key(-query)."""
    return {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "classifier_dropout": None,
            "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": C,
            "initializer_range": 0.02, "intermediate_size": F, "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS,
            "model_type": "bert", "num_attention_heads": H, "num_hidden_layers": L, "pad_token_id": 0,
            "position_embedding_type": position_embedding_type, "torch_dtype": "float32", "transformers_version": "4.6.0.dev0",
            "type_vocab_size": 2, "use_cache": True, "vocab_size": V}


def roformer_config():
    """RoFormerConfig's keys as save_pretrained writes them (junnyu/roformer_chinese_base's
    settings: embedding_size = hidden_size, rotary_value false), sizes shrunk."""
    return {"architectures": ["RoFormerForMaskedLM"], "attention_probs_dropout_prob": 0.1, "embedding_size": C,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": C, "initializer_range": 0.02,
            "intermediate_size": F, "layer_norm_eps": 1e-12, "max_position_embeddings": POSITIONS, "model_type": "roformer",
            "num_attention_heads": H, "num_hidden_layers": L, "pad_token_id": 0, "rotary_value": False, "torch_dtype": "float32",
            "transformers_version": "4.8.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": V}


def distilbert_config():
    """distilbert-base-uncased's config.json keys (plus torch_dtype), sizes shrunk."""
    return {"activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1, "dim": C,
            "dropout": 0.1, "hidden_dim": F, "initializer_range": 0.02, "max_position_embeddings": POSITIONS,
            "model_type": "distilbert", "n_heads": H, "n_layers": L, "pad_token_id": 0, "qa_dropout": 0.1,
            "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "tie_weights_": True, "torch_dtype": "float32",
            "transformers_version": "4.10.0.dev0", "vocab_size": V}


def batch(pad):
    """Row 0 full, row 1 right-padded (5 tokens), row 2 left-padded (2 pads, then 6 tokens)."""
    ids = torch.randint(5, V, (B, T))
    ids[1, 5:] = pad
    ids[2, :2] = pad
    return ids, (ids != pad).to(torch.int32)


def family(name, forward, params, config, cls_class, mlm_class):
    torch.manual_seed({"roberta": 1, "xlm-roberta": 2, "distilbert": 3, "bert": 4, "bert-relative-key": 5, "bert-relative-key-query": 6,
                       "roformer": 7}[name])
    enc, cls, mlm = params(config)
    pad = config["pad_token_id"]
    ids, mask = batch(pad)
    out = {"ids": ids.to(torch.int32), "mask": mask}
    types = torch.zeros_like(ids)
    if config.get("type_vocab_size", 1) > 1:  # BERT: a second segment in row 0
        types[0, 4:] = 1
        out["type_ids"] = types.to(torch.int32)
    for head, extra, cls_name in (("cls", cls, cls_class), ("mlm", mlm, mlm_class)):
        p = {n: t.clone().requires_grad_(True) for n, t in {**enc, **extra}.items()}
        # Token types reach the classifier (the record's forward takes them); the masked-LM path
        # (pretraining, lmLogits) reads single segments.
        logits = forward(p, config, ids, mask, head, types if head == "cls" else torch.zeros_like(ids))
        g = draw(tuple(logits.shape), "gain") - 1  # ~N(0, 0.1²) cotangent
        w = g if head == "cls" else g * mask[:, :, None].to(F64)  # MLM: real tokens only
        # allow_unused: a relative-position BERT keeps position_embeddings unread (gradient 0).
        grads = torch.autograd.grad((logits * w).sum(), list(p.values()), allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(p.values(), grads)]
        out[f"{head}.logits"] = logits.detach().to(torch.float32)
        out[f"{head}.g"] = w.to(torch.float32)
        for n, gr in zip(p, grads):
            out[f"{head}.grad.{n}"] = gr.to(torch.float32)
        cfg = {**config, "architectures": [cls_name], **(LABELS if head == "cls" else {})}
        write_model(os.path.join(ROOT, name, head), cfg, {n: t.detach() for n, t in p.items()})
    write_safetensors(os.path.join(ROOT, name, "reference.safetensors"), out,
                      {"generator": "scripts/ref_encoders.py", "format": "pt"})


def main(only=None):
    """Every family's fixtures, or only those named (regenerating one leaves the others' bytes as committed)."""
    torch.set_num_threads(1)
    if only:
        for name in only:
            run = {"roformer": lambda: family("roformer", roformer, roformer_params, roformer_config(),
                                              "RoFormerForSequenceClassification", "RoFormerForMaskedLM")}
            if name not in run:
                raise SystemExit(f"ref_encoders.py: {name}: no such fixture to regenerate alone (known: {', '.join(run)})")
            run[name]()
        return
    family("roberta", roberta, roberta_params, roberta_config("roberta", "Roberta", {}),
           "RobertaForSequenceClassification", "RobertaForMaskedLM")
    family("xlm-roberta", roberta, roberta_params,
           roberta_config("xlm-roberta", "XLMRoberta", {"output_past": True, "transformers_version": "4.17.0.dev0"}),
           "XLMRobertaForSequenceClassification", "XLMRobertaForMaskedLM")
    family("distilbert", distilbert, distilbert_params, distilbert_config(),
           "DistilBertForSequenceClassification", "DistilBertForMaskedLM")
    family("bert", bert, bert_params, bert_config(), "BertForSequenceClassification", "BertForMaskedLM")
    for kind in ("relative_key", "relative_key_query"):
        family("bert-" + kind.replace("_", "-"), bert, bert_params, bert_config(kind), "BertForSequenceClassification", "BertForMaskedLM")
    family("roformer", roformer, roformer_params, roformer_config(), "RoFormerForSequenceClassification", "RoFormerForMaskedLM")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
