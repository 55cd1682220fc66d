#!/usr/bin/python3
"""bench_gpt's PyTorch twin: the same GPT-2 step and generation, in torch.

    torch_gpt.py step --preset P --batch B --seq T [--steps N] [--threads N]
    torch_gpt.py gen  --preset P [--tokens N] [--steps N] [--threads N] [--quant 8]

The model is GPT-2 as PyTorch users write it (nanoGPT's shape): nn.Linear
projections, a fused qkv, causal attention by masked softmax (torch 1.13 has
no fused attention on the CPU), GELU in its tanh form, the head tied to the
token embedding, GPT-2's initialisation. step: forward, the mean token loss,
backward, the global gradient norm, AdamW (lr 1e-4, weight decay 0.1) and
zeroed gradients, on random tokens; the first step is a warm-up, the next N
are timed. gen: greedy generation with a key/value cache from a one-token
prompt; --quant 8 runs it through PyTorch's dynamic int8 quantization
(quantize_dynamic: every nn.Linear, the head included as a Linear tied to
the token embedding, with int8 weights and activations quantized per
call), lethe's --quant 8 counterpart. Prints one JSON line in bench_gpt's
form.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "tiny": (2048, 256, 128, 4, 4),
    "small": (8192, 512, 256, 10, 8),
    "gpt2": (50257, 1024, 768, 12, 12),
}


class Block(nn.Module):
    def __init__(self, C, NH, T):
        super().__init__()
        self.nh = NH
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def attend(self, x, cache=None):
        b, t, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (z.view(b, t, self.nh, C // self.nh).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        n = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        att = att.masked_fill(~self.mask[n - t:n, :n], float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, C))

    def forward(self, x, cache=None):
        x = x + self.attend(self.ln_1(x), cache)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, T, C, L, NH):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList([Block(C, NH, T) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if "proj" in name else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, pos0=0, caches=None):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(pos0, pos0 + t))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i])
        x = self.ln_f(x)
        return self.lm_head(x) if hasattr(self, "lm_head") else x @ self.wte.weight.t()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def bench_step(model, V, B, T, steps):
    g = torch.Generator().manual_seed(1)
    stream = torch.randint(0, V, (B * T + 1,), generator=g)
    x, y = stream[:-1].view(B, T), stream[1:].view(B, T)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    times, first = [], None
    for s in range(steps + 1):
        t0 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=False)
        times.append(time.perf_counter() - t0)
        if s == 0:
            first = loss.item()
    return {"kind": "step", "batch": B, "seq": T, "median_s": median(times[1:]),
            "first_loss": round(first, 5), "times": times[1:]}


@torch.no_grad()
def bench_gen(model, n_new, reps):
    times, made = [], 0
    for r in range(reps + 1):
        t0 = time.perf_counter()
        caches = [dict() for _ in model.h]
        tok = torch.zeros(1, 1, dtype=torch.long)
        out = []
        for pos in range(n_new):
            logits = model(tok, pos0=pos, caches=caches)
            tok = logits[:, -1, :].argmax(dim=-1, keepdim=True)
            out.append(tok.item())
        times.append(time.perf_counter() - t0)
        made = len(out)
    med = median(times[1:])
    return {"kind": "gen", "tokens": made, "median_s": med, "tokens_per_s": made / med,
            "times": times[1:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["step", "gen"])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quant", type=int, default=0, choices=[0, 8])
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    V, T, C, L, NH = PRESETS[a.preset]
    model = GPT(V, T, C, L, NH)
    if a.kind == "step":
        r = bench_step(model, V, a.batch, a.seq, a.steps)
    else:
        model.eval()
        if a.quant:
            model.lm_head = nn.Linear(C, V, bias=False)
            model.lm_head.weight = model.wte.weight
            model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        r = bench_gen(model, min(a.tokens, T), a.steps)
    r.update({"side": "torch", "threads": torch.get_num_threads(), "bits": a.quant or 32,
              "params": sum(p.numel() for p in model.parameters()),
              "peak_rss_mb": round(peak_rss_mb(), 1)})
    print(json.dumps(r))


if __name__ == "__main__":
    main()
