#!/usr/bin/python3
"""A PyTorch reference for lethe's LoRA adapters (src/nn/lora.c).

The base is the GPT-2 twin of make_gpt_fixtures.py (same plain-torch model,
same config, its own seed). The adapter is written the way PEFT computes a
LoRA layer over a Hugging Face Conv1D with fan_in_fan_out: for each targeted
weight W (in, out), with lora_A (r, in) and lora_B (out, r),

    W_eff = W + (lora_B @ lora_A).T * (lora_alpha / r)

on c_attn, c_proj (both) and c_fc of every block, r 2, lora_alpha 3; lora_A
and lora_B are random (B nonzero, so the adapter matters). Writes

  fixtures/lora_twin/adapter_model.safetensors   PEFT's names and shapes
  fixtures/lora_twin/adapter_config.json         PEFT's keys only (no lethe_*)
  fixtures/lora_twin.safetensors                 base.NAME (the base model),
      tokens, targets (B, T) as floats, logits (B, T, V), and grad.PEFTNAME
      (the mean loss's gradient for each lora_A / lora_B, PEFT's layout);
      the loss in the metadata.

Run with Debian's python3-torch: /usr/bin/python3 tests/ref/make_lora_fixture.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gpt_fixtures import CFG, forward, init_params, mean_loss, write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
B, T, R, ALPHA = 2, 7, 2, 3.0
MODULES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(20250101)
    base = {k: v.detach() for k, v in init_params(CFG).items()}
    V = CFG["vocab_size"]
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[1, 3] = -1
    lora = {}
    for i in range(CFG["n_layer"]):
        for m in MODULES:
            nin, nout = base["h.%d.%s.weight" % (i, m)].shape
            pre = "base_model.model.transformer.h.%d.%s." % (i, m)
            lora[pre + "lora_A.weight"] = (0.3 * torch.randn(R, nin)).requires_grad_(True)
            lora[pre + "lora_B.weight"] = (0.3 * torch.randn(nout, R)).requires_grad_(True)
    p = dict(base)
    for i in range(CFG["n_layer"]):
        for m in MODULES:
            pre = "base_model.model.transformer.h.%d.%s." % (i, m)
            a, b = lora[pre + "lora_A.weight"], lora[pre + "lora_B.weight"]
            name = "h.%d.%s.weight" % (i, m)
            p[name] = base[name] + (b @ a).T * (ALPHA / R)
    logits, _ = forward(p, CFG, tokens)
    loss = mean_loss(logits, targets)
    loss.backward()

    os.makedirs(os.path.join(OUT, "lora_twin"), exist_ok=True)
    write_safetensors(os.path.join(OUT, "lora_twin", "adapter_model.safetensors"),
                      {k: v.detach().numpy() for k, v in lora.items()}, {"format": "pt"})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": None,
              "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0, "bias": "none",
              "fan_in_fan_out": True, "target_modules": ["c_attn", "c_proj", "c_fc"],
              "layers_to_transform": None, "use_rslora": False}
    with open(os.path.join(OUT, "lora_twin", "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    out = {"tokens": tokens.numpy().astype(np.float32),
           "targets": targets.numpy().astype(np.float32),
           "logits": logits.detach().numpy()}
    for k, v in base.items():
        out["base." + k] = v.numpy()
    for k, v in lora.items():
        out["grad." + k] = v.grad.numpy()
    meta = {k: str(v) for k, v in CFG.items()}
    meta["loss"] = repr(float(loss))
    meta["torch"] = torch.__version__
    write_safetensors(os.path.join(OUT, "lora_twin.safetensors"), out, meta)


if __name__ == "__main__":
    main()
