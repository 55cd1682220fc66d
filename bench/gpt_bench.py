#!/usr/bin/python3
"""GPT-2 training steps and generation, lethe (bench_gpt) against its
PyTorch twin (torch_gpt.py), side by side in one run:

  step tiny  batch 16 x 128 tokens   one training step (forward, backward,
  step gpt2  batch 4 x 64 tokens     gradient norm, AdamW)
  gen  tiny  200 tokens              greedy, with the key/value cache
  gen  gpt2  64 tokens
  gen  gpt2  64 tokens from int8 weights (lethe: per-group round-to-nearest,
             dequantized in the product; PyTorch: quantize_dynamic)

each at 1 and 2 threads per side, the two sides alternating (which goes first
alternates between repetitions). Every run is its own process: it reports the
median of its timed steps and its peak resident memory. The table gives, per
configuration and thread count, the median over repetitions, each side's best
thread setting, and the ratios best against best and one thread against one.

  bench/gpt_bench.py [--reps N] [--out FILE]
                     [--only step-tiny,step-gpt2,gen-tiny,gen-gpt2,gen-gpt2-int8]

Environment: BUILD (the build directory holding bench/bench_gpt, default
build), PYTHON (a Python with torch, default /usr/bin/python3).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

BUILD = os.environ.get("BUILD", "build")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    "step-tiny": ["step", "--preset", "tiny", "--batch", "16", "--seq", "128", "--steps", "10"],
    "step-gpt2": ["step", "--preset", "gpt2", "--batch", "4", "--seq", "64", "--steps", "4"],
    "gen-tiny": ["gen", "--preset", "tiny", "--tokens", "200", "--steps", "5"],
    "gen-gpt2": ["gen", "--preset", "gpt2", "--tokens", "64", "--steps", "3"],
    "gen-gpt2-int8": ["gen", "--preset", "gpt2", "--tokens", "64", "--steps", "3", "--quant", "8"],
}
THREADS = [1, 2]


def run_side(side, args, threads):
    if side == "lethe":
        cmd = [os.path.join(BUILD, "bench", "bench_gpt")] + args
    else:
        cmd = [PYTHON, os.path.join(HERE, "torch_gpt.py")] + args
    cmd += ["--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description="GPT benchmark, lethe against PyTorch")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--only", default=",".join(CONFIGS))
    a = ap.parse_args()
    names = a.only.split(",")
    runs = []
    for rep in range(a.reps):
        for name in names:
            for th in THREADS:
                sides = ["lethe", "torch"] if rep % 2 == 0 else ["torch", "lethe"]
                for side in sides:
                    r = run_side(side, CONFIGS[name], th)
                    r.update({"config": name, "rep": rep})
                    runs.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
    lines = ["| work | threads | lethe | PyTorch | PyTorch / lethe | peak memory lethe / PyTorch |",
             "|---|---|---|---|---|---|"]
    for name in names:
        gen = name.startswith("gen")
        best = {}
        for th in THREADS:
            med, mem = {}, {}
            for side in ("lethe", "torch"):
                rs = [r for r in runs if r["config"] == name and r["side"] == side and
                      r["threads"] == th]
                med[side] = statistics.median(r["median_s"] for r in rs)
                mem[side] = max(r["peak_rss_mb"] for r in rs)
                if side not in best or med[side] < best[side][0]:
                    best[side] = (med[side], th, mem[side])
            lines.append(row(name, str(th), med, mem, gen, CONFIGS[name]))
        lines.append(row(name, "best (lethe %d, PyTorch %d)" % (best["lethe"][1], best["torch"][1]),
                         {s: best[s][0] for s in best}, {s: best[s][2] for s in best}, gen,
                         CONFIGS[name]))
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")


def row(name, threads, med, mem, gen, args):
    if gen:
        n = int(args[args.index("--tokens") + 1])
        cell = {s: "%.0f tokens/s" % (n / med[s]) for s in med}
    else:
        cell = {s: "%.1f ms" % (1e3 * med[s]) for s in med}
    return "| %s | %s | %s | %s | %.2fx | %.0f MB / %.0f MB |" % (
        name, threads, cell["lethe"], cell["torch"], med["torch"] / med["lethe"], mem["lethe"],
        mem["torch"])


if __name__ == "__main__":
    main()
