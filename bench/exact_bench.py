#!/usr/bin/python3
"""Exact unlearning on Fashion-MNIST (MLP, the task's default recipe):

  SISA   S in {1, 4, 8, 16} shards x R in {1, 4} slices: accuracy of the
         aggregate, training time, time to serve one deletion (median over
         --reps ids, each on a fresh copy of the trained directory) and a
         batch of 100, against retraining the monolithic model;
  S3T    time to compliance per deletion (no gradient step) and accuracy, and
         the simulated deletion capacity against SISA's at the same shards;
  ridge  removal against refitting at d = 100, n = 100,000 (bench_ridge).

  bench/exact_bench.py [--work DIR] [--reps N] [--sisa 1x1,4x1,...] [--lr X]
                       [--s3t 8x2,8x4] [--out FILE]

Prints a markdown report (and writes it to --out). Runs go to --work
(default a temporary directory); a rerun with the same --work reuses the
trained directories.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LETHE = os.environ.get("LETHE", "build/lethe")
BUILD = os.environ.get("BUILD", "build")
DATA = "fashion-mnist"


def run(args, log=None):
    cmd = [LETHE] + args
    if log is not None:
        log.append(" ".join(cmd))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return p.stdout, wall


def jrun(args, log=None):
    out, wall = run(args + ["--json"], log)
    return json.loads(out.strip().splitlines()[-1]), wall


def train_ids(work, log):
    """Training ids of Fashion-MNIST, from a prediction dump of the train split."""
    mono = os.path.join(work, "mono")
    if not os.path.exists(os.path.join(mono, "model.safetensors")):
        res, _ = jrun(["train", "--data", DATA, "--model", "mlp", "--seed", "0", "--out", mono,
                       "--quiet"], log)
        with open(mono + ".json", "w") as f:
            json.dump(res, f)
    with open(mono + ".json") as f:
        secs = json.load(f)["seconds"]
    acc, _ = jrun(["predict", "--run", mono, "--data", DATA, "--split", "test"], log)
    csv = os.path.join(work, "train-pred.csv")
    run(["predict", "--run", mono, "--data", DATA, "--split", "train", "--out", csv])
    with open(csv) as f:
        ids = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    return secs, acc["accuracy"], ids


def retrain_secs(work, ids, reps, log):
    """Median time of retraining the monolithic model without one id."""
    times = []
    for r in range(reps):
        f = os.path.join(work, "del1")
        with open(f, "w") as fh:
            fh.write(ids[(7919 * (r + 1)) % len(ids)] + "\n")
        out = os.path.join(work, "mono-retrain")
        shutil.rmtree(out, ignore_errors=True)
        res, _ = jrun(["train", "--data", DATA, "--model", "mlp", "--seed", "0", "--exclude", f,
                       "--out", out, "--quiet"], log if r == 0 else None)
        times.append(res["seconds"])
    return statistics.median(times)


def sisa(work, shards, slices, ids, reps, lr, log):
    d = os.path.join(work, f"sisa-{shards}x{slices}-lr{lr}")
    if not os.path.exists(os.path.join(d, "done.json")):
        shutil.rmtree(d, ignore_errors=True)
        res, _ = jrun(["sisa", "train", "--data", DATA, "--model", "mlp", "--shards",
                       str(shards), "--slices", str(slices), "--lr", str(lr), "--seed", "0",
                       "--out", d], log)
        with open(os.path.join(d, "done.json"), "w") as f:
            json.dump(res, f)
    with open(os.path.join(d, "done.json")) as f:
        train_secs = json.load(f)["seconds"]
    ev, _ = jrun(["sisa", "eval", d], log)
    one = []
    for r in range(reps):
        c = d + "-copy"
        shutil.rmtree(c, ignore_errors=True)
        shutil.copytree(d, c)
        f = os.path.join(work, "del1")
        with open(f, "w") as fh:
            fh.write(ids[(7919 * (r + 1)) % len(ids)] + "\n")
        res, _ = jrun(["sisa", "forget", c, "--ids", f], log if r == 0 else None)
        one.append(res["seconds"])
    c = d + "-copy"
    shutil.rmtree(c, ignore_errors=True)
    shutil.copytree(d, c)
    f = os.path.join(work, "del100")
    with open(f, "w") as fh:
        fh.write("\n".join(ids[(104729 * (i + 1)) % len(ids)] for i in range(100)) + "\n")
    res, _ = jrun(["sisa", "forget", c, "--ids", f], log)
    shutil.rmtree(c, ignore_errors=True)
    return {"acc": ev["accuracy"], "train": train_secs, "one": statistics.median(one),
            "one_all": one, "batch": res["seconds"]}


def s3t(work, shards, slices, ids, reps, log):
    d = os.path.join(work, f"s3t-{shards}x{slices}")
    if not os.path.exists(os.path.join(d, "done.json")):
        shutil.rmtree(d, ignore_errors=True)
        widths = "-".join(["256"] * max(slices, 2))
        res, _ = jrun(["s3t", "train", "--data", DATA, "--model", "mlp", "--widths", widths,
                       "--shards", str(shards), "--slices", str(slices), "--seed", "0",
                       "--out", d], log)
        with open(os.path.join(d, "done.json"), "w") as f:
            json.dump(res, f)
    with open(os.path.join(d, "done.json")) as f:
        train_secs = json.load(f)["seconds"]
    ev, _ = jrun(["s3t", "eval", d], log)
    c = d + "-copy"
    shutil.rmtree(c, ignore_errors=True)
    shutil.copytree(d, c)
    serve, total, live = [], [], []
    for r in range(reps):
        f = os.path.join(work, "del1")
        with open(f, "w") as fh:
            fh.write(ids[(7919 * (r + 1)) % len(ids)] + "\n")
        res, _ = jrun(["s3t", "forget", c, "--ids", f], log if r == 0 else None)
        assert res["gradient_steps"] == 0
        serve.append(res["serve_seconds"])
        total.append(res["seconds"])
        live.append(res["live"])
    after, _ = jrun(["s3t", "eval", c], log)
    shutil.rmtree(c, ignore_errors=True)
    return {"acc": ev["accuracy"], "train": train_secs, "serve": statistics.median(serve),
            "total": statistics.median(total), "live": live[-1], "acc_after": after["accuracy"]}


def simulate(shards, slices, log):
    out, _ = run(["s3t", "simulate", "--shards", str(shards), "--slices", str(slices),
                  "--budget", str(slices), "--runs", "200"], log)
    sisa_dies = s3t_dies = None
    for line in out.splitlines():
        if line.startswith("SISA  the model dies"):
            sisa_dies = float(line.split()[4])
        if line.startswith("S3T   the model dies"):
            s3t_dies = float(line.split()[4])
    return sisa_dies, s3t_dies


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sisa", default="1x1,1x4,4x1,4x4,8x1,8x4,16x1,16x4")
    p.add_argument("--lr", type=float, default=3e-3,
                   help="SISA's constant learning rate (default 3e-3)")
    p.add_argument("--s3t", default="8x2,8x4")
    p.add_argument("--out")
    a = p.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="lethe-exact-")
    os.makedirs(work, exist_ok=True)
    log, lines = [], []
    t0 = time.time()

    _, mono_acc, ids = train_ids(work, log)
    mono_secs = retrain_secs(work, ids, a.reps, log)
    lines += ["## SISA on Fashion-MNIST (MLP)", "",
              f"Monolithic model: {mono_acc:.2f}% test accuracy; retraining it without one "
              f"sample takes {mono_secs:.1f} s (median of {a.reps}). SISA shards: the same recipe at a "
              f"constant learning rate of {a.lr:g}.", "",
              "| shards S | slices R | accuracy | train s | one deletion s (median) | "
              "speed-up vs retrain | batch of 100 s | speed-up |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cfg in a.sisa.split(","):
        s, r = (int(v) for v in cfg.split("x"))
        res = sisa(work, s, r, ids, a.reps, a.lr, log)
        lines.append(f"| {s} | {r} | {res['acc']:.2f} | {res['train']:.1f} | {res['one']:.2f} | "
                     f"{mono_secs / res['one']:.1f}x | {res['batch']:.1f} | "
                     f"{mono_secs / res['batch']:.1f}x |")
        print(lines[-1], file=sys.stderr)

    lines += ["", "## S3T on Fashion-MNIST (MLP)", "",
              "| shards | slices = layer groups | accuracy | train s | time to compliance "
              "(median) | applied in (median) | live shards after | accuracy after |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cfg in a.s3t.split(","):
        m, L = (int(v) for v in cfg.split("x"))
        res = s3t(work, m, L, ids, a.reps, log)
        lines.append(f"| {m} | {L} | {res['acc']:.2f} | {res['train']:.1f} | "
                     f"{1e3 * res['serve']:.2f} ms | {1e3 * res['total']:.2f} ms | "
                     f"{res['live']} of {m} | {res['acc_after']:.2f} |")
    lines += ["", "Deletion capacity (mean deletions until the whole model dies, 200 simulated "
              "streams of uniform deletions, budget B = L):", "",
              "| shards | slices | SISA | S3T | ratio |", "|---:|---:|---:|---:|---:|"]
    for m in (4, 8, 16):
        for L in (2, 4):
            sd, td = simulate(m, L, log)
            lines.append(f"| {m} | {L} | {sd:.1f} | {td:.1f} | {td / sd:.2f}x |")

    lines += ["", "## Ridge removal (d = 100, n = 100,000)", ""]
    bench = os.path.join(BUILD, "bench", "bench_ridge")
    log.append(bench)
    r = json.loads(subprocess.run([bench], capture_output=True, text=True,
                                  check=True).stdout)
    lines += ["| fit | one removal (median of 7) | batch of 100 | refit (median of 3) | "
              "speed-up, one | speed-up, 100 | relative difference from the refit |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {1e3 * r['fit_s']:.1f} ms | {1e6 * r['remove_one_s']:.1f} us | "
              f"{1e3 * r['remove_100_s']:.2f} ms | {1e3 * r['refit_s']:.1f} ms | "
              f"{r['speedup_one']:.0f}x | {r['speedup_100']:.0f}x | {r['rel_diff']:.2g} |"]

    text = "\n".join(lines) + f"\n\nTotal wall time {time.time() - t0:.0f} s.\n"
    text += "\nCommands (the first of each repeated deletion):\n\n```\n" + "\n".join(log) + \
        "\n```\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
