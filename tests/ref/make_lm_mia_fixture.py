#!/usr/bin/python3
"""Membership-inference scores of a few texts on the tiny GPT-2 twin, computed
directly in PyTorch as OpenUnlearning's src/evals/metrics/mia/ computes them.

The model is tests/ref/fixtures/gpt_hf_tiny (read from its model.safetensors;
written by make_gpt_hf_fixture.py); the reference model is the same with every
parameter halved (exact in float32, so lethe builds it the same way). Each text
is laid out as OpenUnlearning's pretraining data with GPT-2's BOS: the
end-of-text token, then the text's tokens, every one of them labelled. With
l_t the log-probabilities of the n labelled tokens (evaluate_probability) and
l_1 .. l_{n-1} those OpenUnlearning's tokenwise_logprobs keeps (it drops the
last labelled token):

  loss       -mean(l_1..l_n)
  zlib       loss / len(zlib.compress(text.encode()))
  min_k      -mean of the max(1, int(k (n - 1))) smallest of l_1..l_{n-1}
  min_k++    the same over (l_t - mu_t) / sqrt(max(sigma2_t, 1e-6)), mu_t and
             sigma2_t the mean and variance of log p under position t's
             distribution
  reference  loss(model) - loss(reference)
  gradnorm   mean over the parameter tensors (wte once: the head is tied) of
             ||d(-mean(l_1..l_{n-1}))/d tensor||_2; OpenUnlearning returns
             its negation, lethe this
  em, es     exact memorisation and extraction strength over the n tokens
             (argmax == label; 1 - k/n, k the start of the right suffix)

for k = 0.4 and 0.25, all in float64 from the float32 parameters. The first
half of the texts are "members": per attack the AUC (members as positives
ranked by -score: the Mann-Whitney statistic) and the TPR at 1% and 5% FPR
(numpy.interp on the ROC's points). Writes tests/ref/fixtures/lm_mia.json.

Run with Debian's python3-torch: /usr/bin/python3 tests/ref/make_lm_mia_fixture.py
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gpt_fixtures import forward  # noqa: E402
from make_gpt_hf_fixture import CFG, EOT, encode, make_vocab  # noqa: E402

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
TEXTS = [
    "the winter in the north",
    "Another line: on and on.",
    "in the heart of the river",
    "there, then, the other one",
    "a rather short one",
    "on the other hand, no",
    "The three hens ran in",
    "one two three four five",
    "xwcccccc",  # the model's own greedy continuations of "xw" and "yz":
    "yzzz$$$$",  # exact memorisation and extraction strength above 0
]
KS = (0.4, 0.25)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__" or name == "lm_head.weight":
            continue
        a, b = h["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"])
        out[name.replace("transformer.", "")] = torch.tensor(arr.astype(np.float64))
    return out


def min_k(v, k):
    m = max(1, int(len(v) * k))
    return float(-np.mean(np.sort(v)[:m]))


def scores(p, ref, ids, text):
    tokens = torch.tensor([ids])
    for t in p.values():
        t.requires_grad_(True)
        t.grad = None
    logits = forward(p, CFG, tokens)[0][0]
    logp = F.log_softmax(logits, dim=-1)[:-1]
    y = tokens[0, 1:]
    lp = logp.gather(1, y[:, None])[:, 0]
    n = len(lp)
    loss = float(-lp.sum() / n)
    with torch.no_grad():
        ref_lp = F.log_softmax(forward(ref, CFG, tokens)[0][0], dim=-1)[:-1]
        ref_loss = float(-ref_lp.gather(1, y[:, None])[:, 0].sum() / n)
    kept = lp[:-1]  # tokenwise_logprobs: the last labelled token left out
    probs = logp[:-1].exp()
    mu = (probs * logp[:-1]).sum(-1)
    sigma2 = torch.clamp((probs * logp[:-1] ** 2).sum(-1) - mu ** 2, min=1e-6)
    z = ((kept - mu) / sigma2.sqrt()).detach().numpy()
    v = kept.detach().numpy()
    (-kept.mean()).backward()
    gradnorm = float(torch.stack([t.grad.norm(p=2) for t in p.values()]).mean())
    hit = (logp.argmax(-1) == y).numpy()
    kk = n
    while kk > 0 and hit[kk - 1]:
        kk -= 1
    out = {
        "ids": ids, "n": n, "loss": loss,
        "zlib_len": len(zlib.compress(text.encode("utf-8"))),
        "reference": loss - ref_loss, "gradnorm": gradnorm,
        "em": float(hit.mean()), "es": 1.0 - kk / n,
    }
    out["zlib"] = loss / out["zlib_len"]
    for k in KS:
        out["min_k@%g" % k] = min_k(v, k)
        out["min_k_plus_plus@%g" % k] = min_k(z, k)
    return out


def roc(members, nonmembers):
    pos, neg = -np.array(members), -np.array(nonmembers)
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    s = np.concatenate([pos, neg])
    lab = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    fpr, tpr = [0.0], [0.0]
    for th in sorted(set(s), reverse=True):
        tpr.append(float(((s >= th) & (lab == 1)).sum()) / len(pos))
        fpr.append(float(((s >= th) & (lab == 0)).sum()) / len(neg))
    return {"auc": float(auc), "tpr_at_1fpr": float(np.interp(0.01, fpr, tpr)),
            "tpr_at_5fpr": float(np.interp(0.05, fpr, tpr))}


def main():
    torch.set_num_threads(1)
    b2u, vocab = make_vocab()
    p = read_safetensors(os.path.join(FIX, "gpt_hf_tiny", "model.safetensors"))
    ref = {k: v.float().mul(0.5).double() for k, v in p.items()}
    rows = [scores(p, ref, [vocab[EOT]] + encode(t, b2u, vocab), t) for t in TEXTS]
    half = len(TEXTS) // 2
    attacks = ["loss", "zlib", "reference", "gradnorm"] + \
        ["%s@%g" % (a, k) for a in ("min_k", "min_k_plus_plus") for k in KS]
    rocs = {a: roc([r[a] for r in rows[:half]], [r[a] for r in rows[half:]]) for a in attacks}
    out = {"torch": torch.__version__, "texts": TEXTS, "n_members": half, "ks": list(KS),
           "scores": rows, "roc": rocs}
    with open(os.path.join(FIX, "lm_mia.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
