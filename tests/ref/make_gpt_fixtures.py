#!/usr/bin/python3
"""The PyTorch twin of lethe's GPT-2 (src/nn/gpt.c) on a tiny config.

The model is written here in plain torch, block by block as GPT-2: learned
token and position embeddings, pre-LayerNorm blocks (attention with a fused
c_attn and an output c_proj, causal mask, scores scaled by 1/sqrt(head_dim);
an MLP of 4 C with GELU in its tanh form), ln_f, and the head tied to wte.
Weights use Hugging Face's Conv1D layout (in, out): y = x W + b.

The parameters are drawn from a fixed torch seed with larger scales than
GPT-2's (so attention is far from uniform and every LayerNorm parameter
matters), then the twin runs a batch with some targets set to -1 (ignored).
Writes tests/ref/fixtures/gpt_twin.safetensors with the config and the loss in
the metadata and the tensors
  tokens, targets (B, T) as floats; logits (B, T, V); logprobs (B, T)
  (0 where the target is -1); hidden.I (B, T, C) for I = 0 .. L + 1
  (embeddings, each block's output, ln_f of the last);
  init.NAME, grad.NAME (the mean loss's gradient) and adamw10.NAME (after 10
  torch.optim.AdamW steps on the batch, lr 1e-2, betas (0.9, 0.999),
  eps 1e-8, weight decay 0.01 on every parameter, as lethe's optimizer)
for every Hugging Face tensor NAME. The file is written with struct + json.

Run with Debian's python3-torch: /usr/bin/python3 tests/ref/make_gpt_fixtures.py
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "fixtures")
CFG = {"vocab_size": 37, "n_positions": 8, "n_embd": 16, "n_layer": 2, "n_head": 4}
B, T = 2, 7


def param_shapes(cfg):
    V, P, C = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"]
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C)}
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        shapes.update({
            h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
            h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
            h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
            h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
            h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
            h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,),
        })
    shapes["ln_f.weight"] = (C,)
    shapes["ln_f.bias"] = (C,)
    return shapes


def init_params(cfg):
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            v = 1.0 + 0.1 * torch.randn(shape)
        elif len(shape) == 1:
            v = 0.1 * torch.randn(shape)
        elif name in ("wte.weight", "wpe.weight"):
            v = 0.5 * torch.randn(shape)
        else:
            v = torch.randn(shape) / math.sqrt(shape[0])
        params[name] = v.float().requires_grad_(True)
    return params


def forward(p, cfg, tokens):
    """Logits (B, T, V) and hidden states [embeddings, block outputs, ln_f]."""
    C, NH = cfg["n_embd"], cfg["n_head"]
    hs = C // NH
    b, t = tokens.shape
    x = p["wte.weight"][tokens] + p["wpe.weight"][:t]
    hidden = [x]
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        h = "h.%d." % i
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps=1e-5)
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(b, t, NH, hs).transpose(1, 2)
        k = k.view(b, t, NH, hs).transpose(1, 2)
        v = v.view(b, t, NH, hs).transpose(1, 2)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        s = s.masked_fill(~mask, float("-inf"))
        y = (F.softmax(s, dim=-1) @ v).transpose(1, 2).contiguous().view(b, t, C)
        x = x + (y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"])
        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps=1e-5)
        m = F.gelu(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"], approximate="tanh")
        x = x + (m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"])
        hidden.append(x)
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    hidden.append(x)
    return x @ p["wte.weight"].t(), hidden


def mean_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-1)


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(20240611)
    p = init_params(CFG)
    V = CFG["vocab_size"]
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[0, 2] = -1
    targets[1, 0] = -1
    targets[1, 5] = -1
    out = {"tokens": tokens.numpy().astype(np.float32),
           "targets": targets.numpy().astype(np.float32)}
    for k, v in p.items():
        out["init." + k] = v.detach().numpy().copy()

    logits, hidden = forward(p, CFG, tokens)
    loss = mean_loss(logits, targets)
    loss.backward()
    logp = F.log_softmax(logits, dim=-1)
    safe = targets.clamp(min=0)
    lp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * (targets >= 0)
    out["logits"] = logits.detach().numpy()
    out["logprobs"] = lp.detach().numpy()
    for i, h in enumerate(hidden):
        out["hidden.%d" % i] = h.detach().numpy()
    for k, v in p.items():
        out["grad." + k] = v.grad.numpy().copy()

    q = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
    opt = torch.optim.AdamW(list(q.values()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01)
    for _ in range(10):
        opt.zero_grad()
        mean_loss(forward(q, CFG, tokens)[0], targets).backward()
        opt.step()
    for k, v in q.items():
        out["adamw10." + k] = v.detach().numpy().copy()

    meta = {k: str(v) for k, v in CFG.items()}
    meta["loss"] = repr(float(loss))
    meta["torch"] = torch.__version__
    write_safetensors(os.path.join(OUT, "gpt_twin.safetensors"), out, meta)


if __name__ == "__main__":
    main()
