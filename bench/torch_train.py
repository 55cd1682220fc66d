#!/usr/bin/python3
"""PyTorch's side of the training benchmark (bench/run.sh).

The twin of bench_train: the same Fashion-MNIST data (inputs scaled to
[0, 1]), the same model (MLP 784-256-256-10 with ReLU, or the CNN
in=1x28x28;conv=16;relu;pool;conv=32;relu;pool;linear=128;relu;linear=10),
the same optimizer (AdamW, lr 1e-3, weight decay 0.01), batch size, epoch
count and per-epoch shuffling without replacement. The data sit in memory as
tensors before the clock starts; the clock covers the training loop only
(shuffle, batch gather, forward, loss, backward, optimizer step). Prints one
JSON object like bench_train's.

Run with Debian's python3-torch: /usr/bin/python3 bench/torch_train.py --help
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """The array in an IDX file (gzip or plain): ubyte data only."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not a ubyte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data, split, limit):
    x = read_idx(os.path.join(data, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data, f"{split}-labels-idx1-ubyte.gz"))
    if limit > 0:
        x, y = x[:limit], y[:limit]
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0))
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


def make_model(kind):
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="first N training samples; 0: all")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test samples; 0: all")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads(N); 0 keeps PyTorch's default")
    ap.add_argument("--foreach", action="store_true",
                    help="AdamW's multi-tensor (foreach) implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load_split(args.data, "train", args.limit)
    xte, yte = load_split(args.data, "t10k", args.test_limit)
    model = make_model(args.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01,
                            foreach=args.foreach)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, B = len(xtr), args.batch
    gen = torch.Generator().manual_seed(args.seed)

    model.train()
    t0 = time.perf_counter()
    steps = 0
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for b in range(0, n, B):
            idx = perm[b:b + B]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
        last_loss = total / n
    seconds = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum())
                      for i in range(0, len(xte), 500))
    print(json.dumps({
        "side": "pytorch", "model": args.model, "batch": B, "epochs": args.epochs,
        "n_train": n, "n_test": len(xte), "threads": torch.get_num_threads(),
        "foreach": args.foreach, "torch": torch.__version__, "steps": steps,
        "train_seconds": round(seconds, 4), "samples_per_s": round(n * args.epochs / seconds, 1),
        "final_loss": round(last_loss, 5), "test_accuracy": round(correct / len(xte), 4),
    }))


if __name__ == "__main__":
    main()
