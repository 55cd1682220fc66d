#!/usr/bin/python3
"""A tiny Hugging Face GPT-2 directory and its PyTorch twin's reference scores.

Writes tests/ref/fixtures/gpt_hf_tiny/ in the layout of a Hugging Face GPT-2
checkpoint, by hand (transformers is not needed):

  model.safetensors  F32 tensors named "transformer.wte.weight", ...,
                     "transformer.h.I.attn.c_attn.weight" (Conv1D: (in, out)),
                     plus "lm_head.weight", a copy of wte (tied); metadata
                     {"format": "pt"} only, as save_pretrained writes
  config.json        GPT2LMHeadModel's config (vocab_size 264, n_positions 32,
                     n_embd 32, n_layer 2, n_head 2)
  vocab.json, merges.txt
                     a byte-level BPE vocabulary: the 256 bytes in GPT-2's
                     order (ids 0..255 as in GPT-2's own vocab.json), 7 merges
                     and "<|endoftext|>" (id 263)
  reference.json     the twin's per-token log-probabilities for a few id
                     sequences and two texts (with their ids, encoded here
                     by GPT-2's algorithm), and a greedy continuation

The twin is GPT-2 in plain torch (the same as tests/ref/make_gpt_fixtures.py,
which transformers' GPT2LMHeadModel computes too: pre-LayerNorm blocks, eps
1e-5, causal attention scaled by 1/sqrt(head_dim), GELU's tanh form, tied
head). Parameters come from a fixed seed with larger scales than GPT-2's, so
the distributions are far from uniform.

Run with Debian's python3-torch: /usr/bin/python3 tests/ref/make_gpt_hf_fixture.py
"""
import json
import os
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gpt_fixtures import forward, init_params, write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "gpt_hf_tiny")
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("Ġ", "a"), ("o", "n")]
EOT = "<|endoftext|>"
CFG = {"vocab_size": 256 + len(MERGES) + 1, "n_positions": 32, "n_embd": 32, "n_layer": 2,
       "n_head": 2}
TEXTS = ["the winter in the north", "Another line: on and on, there."]


def bytes_to_unicode():
    """GPT-2's byte alphabet, byte -> character, in GPT-2's id order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def make_vocab():
    b2u = bytes_to_unicode()
    vocab = {}
    for b in b2u:  # insertion order: GPT-2's id order
        vocab[b2u[b]] = len(vocab)
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    assert len(vocab) == CFG["vocab_size"]
    return b2u, vocab


def encode(text, b2u, vocab):
    """GPT-2's BPE (the ASCII part of its pattern is enough for TEXTS)."""
    ranks = {pair: i for i, pair in enumerate(MERGES)}
    pat = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
    ids = []
    for word in pat.findall(text):
        parts = [b2u[b] for b in word.encode()]
        while len(parts) > 1:
            pairs = [(ranks.get((parts[i], parts[i + 1]), 1 << 30), i)
                     for i in range(len(parts) - 1)]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids += [vocab[p] for p in parts]
    return ids


def token_logprobs(p, ids):
    """log p(ids[t+1] | ids[..t]) for t < len - 1, in float64 from float32 logits."""
    with torch.no_grad():
        logits = forward(p, CFG, torch.tensor([ids]))[0][0].double()
    lp = F.log_softmax(logits, dim=-1)
    return [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]


def greedy(p, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = forward(p, CFG, torch.tensor([ids]))[0][0, -1]
            ids.append(int(torch.argmax(logits)))  # the first (lowest id) of equal maxima
    return ids[len(prompt):]


def hf_config(cfg, eot):
    return {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": eot, "embd_pdrop": 0.1, "eos_token_id": eot,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": cfg["n_positions"], "n_embd": cfg["n_embd"], "n_head": cfg["n_head"],
        "n_inner": None, "n_layer": cfg["n_layer"], "n_positions": cfg["n_positions"],
        "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True,
        "vocab_size": cfg["vocab_size"],
    }


def main():
    torch.set_num_threads(1)
    torch.manual_seed(20240917)
    os.makedirs(OUT, exist_ok=True)
    b2u, vocab = make_vocab()
    p = init_params(CFG)
    V, T = CFG["vocab_size"], CFG["n_positions"]

    tensors = {"transformer." + k: v.detach().numpy() for k, v in p.items()}
    tensors["lm_head.weight"] = p["wte.weight"].detach().numpy()
    write_safetensors(os.path.join(OUT, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(hf_config(CFG, vocab[EOT]), f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(OUT, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in MERGES:
            f.write("%s %s\n" % (a, b))

    g = torch.Generator().manual_seed(7)
    seqs = [torch.randint(0, V, (n,), generator=g).tolist() for n in (2, 9, 17, T)]
    seqs.append([vocab[EOT]] + encode(TEXTS[0], b2u, vocab))
    text_ids = [encode(t, b2u, vocab) for t in TEXTS]
    prompt = text_ids[0][:4]
    ref = {
        "config": CFG,
        "torch": torch.__version__,
        "sequences": seqs,
        "logprobs": [token_logprobs(p, s) for s in seqs],
        "texts": TEXTS,
        "text_ids": text_ids,
        "text_logprobs": [token_logprobs(p, s) for s in text_ids],
        "greedy_prompt": prompt,
        "greedy_tokens": greedy(p, prompt, 10),
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f)
        f.write("\n")


if __name__ == "__main__":
    main()
