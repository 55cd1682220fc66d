#!/usr/bin/python3
"""PyTorch twins of lethe's feed-forward networks on tiny configs.

Writes tests/ref/fixtures/twin_<name>.safetensors holding the model spec (in
the metadata), the initial parameters under lethe's names (layers.I.weight,
layers.I.bias, PyTorch's layouts), a batch (x, y), and what PyTorch computes
from them: logits, mean cross-entropy, every parameter's gradient, and the
parameters after 10 AdamW steps and after 10 SGD-with-momentum steps on the
same batch. The file is written with struct + json, not lethe's writer.

Run with Debian's python3-torch: /usr/bin/python3 tests/ref/make_torch_twin.py
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "fixtures")

TWINS = {
    "mlp_relu": "in=12;linear=16;relu;linear=16;relu;linear=4",
    "mlp_gelu_tanh": "in=10;linear=9;gelu;linear=7;tanh;linear=3",
    "cnn": "in=2x8x8;conv=4;relu;pool;conv=6;gelu;pool;linear=10;relu;linear=3",
}


class Twin(torch.nn.Module):
    def __init__(self, spec):
        super().__init__()
        parts = spec.split(";")
        shape = [int(v) for v in parts[0][3:].split("x")]
        layers = []
        for tok in parts[1:]:
            name, _, arg = tok.partition("=")
            if name == "linear":
                fan_in = int(np.prod(shape))
                layers.append(torch.nn.Linear(fan_in, int(arg)))
                shape = [int(arg)]
            elif name == "conv":
                layers.append(torch.nn.Conv2d(shape[0], int(arg), 3, padding=1))
                shape = [int(arg)] + shape[1:]
            elif name == "pool":
                layers.append(torch.nn.MaxPool2d(2))
                shape = [shape[0], shape[1] // 2, shape[2] // 2]
            elif name == "relu":
                layers.append(torch.nn.ReLU())
            elif name == "gelu":
                layers.append(torch.nn.GELU())
            elif name == "tanh":
                layers.append(torch.nn.Tanh())
            else:
                raise ValueError(tok)
        self.in_shape = [int(v) for v in parts[0][3:].split("x")]
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x):
        x = x.reshape([x.shape[0]] + self.in_shape)
        for layer in self.layers:
            if isinstance(layer, torch.nn.Linear) and x.dim() > 2:
                x = x.flatten(1)
            x = layer(x)
        return x


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


def steps(model, x, y, opt, n=10):
    for _ in range(n):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def make(name, spec, batch=5):
    torch.manual_seed(sum(map(ord, name)))
    model = Twin(spec)
    init = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    n_in = int(np.prod(model.in_shape))
    x = torch.randn(batch, n_in)
    n_out = model.layers[-1].out_features
    y = torch.randint(0, n_out, (batch,))
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    out = {"x": x.numpy(), "y": y.numpy().astype(np.float32),
           "logits": logits.detach().numpy()}
    for k, v in init.items():
        out["init." + k] = v
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad.numpy().copy()
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    adamw = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                              weight_decay=0.01)
    for k, v in steps(model, x, y, adamw).items():
        out["adamw10." + k] = v
    model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for k, v in steps(model, x, y, sgd).items():
        out["sgd10." + k] = v
    meta = {"spec": spec, "loss": repr(float(loss)), "torch": torch.__version__}
    write_safetensors(os.path.join(OUT, "twin_%s.safetensors" % name), out, meta)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, spec in TWINS.items():
        make(name, spec)
