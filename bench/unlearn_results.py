#!/usr/bin/python3
"""Run every unlearning method against the oracle over several seeds and
write a results page (mean and spread, wall time, the commands).

  bench/unlearn_results.py classify [--models mlp,cnn] [--seeds 0,1,2] [--out FILE]
  bench/unlearn_results.py regress  [--seeds 0,1,2] [--out FILE]

classify: Fashion-MNIST, 10% random forgetting and whole-class forgetting
(class 0), each model kind. regress: Boston housing (forget range 30:60,
the upper price tail) and US births (forget range 11000:20000, the busiest
days). Runs go to a work directory (--work, default a temporary one) that
is kept when given, so a rerun reuses trained models.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

LETHE = os.environ.get("LETHE", "build/lethe")

# Extra runs at other settings, where a default fails: (forget-set prefix, method,
# --set values); the prefix "" matches every forget set.
VARIANTS = [("", "ga", ("lr=1e-5",))]
CLASSIFY_METRICS = ["UA", "RA", "TA", "MIA_efficacy", "avg_gap", "JS_divergence"]
REGRESS_METRICS = ["forget_L1", "retain_L1", "test_L1", "MIA", "wasserstein", "AIN",
                   "relearn_ratio"]


class Failed(Exception):
    pass


def run(args, log, may_fail=False):
    """Run lethe with args; return its stdout. Record the command. A method
    that fails (may_fail) raises Failed with its message."""
    cmd = [LETHE] + args
    log.append(" ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 and may_fail:
        raise Failed(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else
                     f"exit {p.returncode}")
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return p.stdout


def unlearn(work, tag, orig, m, forget, seed, log, failures, sets=()):
    """Run method m (with --set sets); return (out, seconds), or None
    (recorded in failures)."""
    name = " ".join([m, *sets])
    out = os.path.join(work, tag + "-" + name.replace(" ", "-"))
    if os.path.exists(out + ".json"):
        with open(out + ".json") as f:
            return out, json.load(f)["seconds"]
    try:
        res = json.loads(run(["unlearn", "--run", orig, "--method", m, "--forget", forget,
                              "--seed", str(seed), "--out", out, "--quiet", "--json"] +
                             [x for kv in sets for x in ("--set", kv)], log, may_fail=True))
    except Failed as e:
        failures.setdefault(name, []).append(f"seed {seed}: {e}")
        return None
    with open(out + ".json", "w") as f:
        json.dump(res, f)
    return out, res["seconds"]


def evaluate(kind, path, forget, oracle, orig, seed, log):
    """lethe eval kind, reusing a finished evaluation; its summary. The
    original serves several forget sets: its evaluations are kept apart."""
    ev = path + "-eval" + ("-" + forget.replace(":", "") if path == orig else "")
    summary = os.path.join(ev, kind.upper() + "_SUMMARY.json")
    if not (os.path.exists(summary) and os.path.getmtime(summary) >=
            os.path.getmtime(os.path.join(path, "model.safetensors"))):
        run(["eval", kind, "--run", path, "--forget", forget, "--oracle", oracle, "--original",
             orig, "--seed", str(seed), "--out", ev], log)
    with open(summary) as f:
        return json.load(f)


def failure_notes(failures):
    return [f"\n{m} failed on {len(v)} seed(s): " + "; ".join(v) for m, v in failures.items()]


def train(work, name, data, model, seed, exclude, log, extra=()):
    out = os.path.join(work, name)
    if os.path.exists(os.path.join(out, "model.safetensors")):
        with open(out + ".json") as f:
            return out, json.load(f)["seconds"]
    args = ["train", "--data", data, "--model", model, "--seed", str(seed), "--out", out,
            "--quiet", "--json"]
    if exclude:
        args += ["--exclude", exclude]
    res = json.loads(run(args + list(extra), log))
    with open(out + ".json", "w") as f:
        json.dump(res, f)
    return out, res["seconds"]


def rest_accuracy(path, forget, log):
    """Test accuracy on the classes a class:K[,K] forget set leaves, in %."""
    gone = {int(k) for k in forget.split(":")[1].split(",")}
    csv = path + "-test.csv"
    if not (os.path.exists(csv) and os.path.getmtime(csv) >=
            os.path.getmtime(os.path.join(path, "model.safetensors"))):
        run(["predict", "--run", path, "--split", "test", "--out", csv], log)
    hit = n = 0
    with open(csv) as f:
        for line in f.read().splitlines()[1:]:
            _, pred, truth = line.split(",")
            if int(truth) not in gone:
                n += 1
                hit += pred == truth
    return 100.0 * hit / n


def methods(task):
    """The methods of the table that apply to a task kind."""
    rows = run(["unlearn", "--list"], [])
    names = []
    for line in rows.splitlines()[1:]:
        if line and not line.startswith(" "):
            name, tasks = line.split()[:2]
            if tasks in ("both", task):
                names.append(name)
    return names


def fmt(values, digits=2):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.mean(values)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def classify(a, work, log):
    lines = []
    for model in a.models.split(","):
        for forget in ["random:0.1", "class:0"]:
            table = {}  # method -> metric -> [values]
            failures = {}
            for seed in a.seeds:
                orig, t_orig = train(work, f"fm-{model}-s{seed}", "fashion-mnist", model, seed,
                                     None, log)
                tag = forget.replace(":", "")
                oracle, t_oracle = train(work, f"fm-{model}-{tag}-s{seed}-oracle",
                                         "fashion-mnist", model, seed, forget, log)
                runs = {"original": (orig, None), "retrain (oracle)": (oracle, t_oracle)}
                todo = [(m, ()) for m in methods("classify")]
                todo += [(m, sets) for kind, m, sets in VARIANTS if forget.startswith(kind)]
                for m, sets in todo:
                    r = unlearn(work, f"fm-{model}-{tag}-s{seed}", orig, m, forget, seed, log,
                                failures, sets)
                    if r:
                        runs[" ".join([m, *sets])] = r
                for name, (path, secs) in runs.items():
                    s = evaluate("classify", path, forget, oracle, orig, seed, log)
                    row = table.setdefault(name, {k: [] for k in CLASSIFY_METRICS +
                                                  ["secs", "relearn", "share", "TA_rest"]})
                    if forget.startswith("class:"):
                        row["TA_rest"].append(rest_accuracy(path, forget, log))
                    row["share"].append(100 * secs / t_oracle if secs is not None else None)
                    for k in CLASSIFY_METRICS:
                        row[k].append(s.get(k))
                    row["relearn"].append(s.get("relearn_steps"))
                    row["secs"].append(secs)
            lines.append(f"\n### {model.upper()}, forget {forget}\n")
            rest = forget.startswith("class:")
            lines.append("| method | UA | RA | TA |" + (" TA, other classes |" if rest else "") +
                         " MIA | Avg. Gap | JS | relearn steps | seconds | % of oracle time |")
            lines.append("|---" * (10 + rest) + "|")
            for name, row in table.items():
                cols = CLASSIFY_METRICS[:3] + (["TA_rest"] if rest else []) + CLASSIFY_METRICS[3:]
                lines.append("| " + " | ".join([name] + [fmt(row[k], 4 if k == "JS_divergence"
                                                             else 2) for k in cols]
                                              + [fmt(row["relearn"], 0), fmt(row["secs"], 1),
                                                 fmt(row["share"], 1)]) + " |")
            lines += failure_notes(failures)
    if "mlp" in a.models.split(","):
        lines += iau_restriction(a, work, log)
    return lines


def iau_restriction(a, work, log, alpha=0.005, forget="random:0.1"):
    """IAU from models trained with and without its gradient restriction
    (alpha * ||grad loss|| added at training time), each against the oracle
    trained the same way."""
    table = {}
    for seed in a.seeds:
        for label, extra in [("without restriction", ()),
                             (f"with restriction (alpha {alpha})",
                              ("--grad-penalty", str(alpha)))]:
            tag = "" if not extra else "-gr"
            orig, t_orig = train(work, f"fm-mlp{tag}-s{seed}", "fashion-mnist", "mlp", seed,
                                 None, log, extra)
            oracle, _ = train(work, f"fm-mlp{tag}-random0.1-s{seed}-oracle", "fashion-mnist",
                              "mlp", seed, forget, log, extra)
            r = unlearn(work, f"fm-mlp{tag}-random0.1-s{seed}", orig, "iau", forget, seed, log,
                        {})
            if not r:
                continue
            s = evaluate("classify", r[0], forget, oracle, orig, seed, log)
            row = table.setdefault(label, {k: [] for k in CLASSIFY_METRICS + ["train"]})
            for k in CLASSIFY_METRICS:
                row[k].append(s.get(k))
            row["train"].append(t_orig)
    lines = ["\n### IAU with and without the gradient restriction (MLP, forget random:0.1)\n",
             "| original trained | UA | RA | TA | MIA | Avg. Gap | JS | training seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        lines.append("| " + " | ".join([name] + [fmt(row[k], 4 if k == "JS_divergence" else 2)
                                                 for k in CLASSIFY_METRICS] +
                                        [fmt(row["train"], 1)]) + " |")
    return lines


def regress(a, work, log):
    lines = []
    for data, forget in [("boston", "range:30:60"), ("us-births", "range:11000:20000")]:
        table = {}
        failures = {}
        for seed in a.seeds:
            orig, _ = train(work, f"{data}-s{seed}", data, "mlp", seed, None, log)
            oracle, t_oracle = train(work, f"{data}-s{seed}-oracle", data, "mlp", seed, forget,
                                     log)
            runs = {"original": (orig, None), "retrain (oracle)": (oracle, t_oracle)}
            for m in methods("regress"):
                r = unlearn(work, f"{data}-s{seed}", orig, m, forget, seed, log, failures)
                if r:
                    runs[m] = r
            for name, (path, secs) in runs.items():
                s = evaluate("regress", path, forget, oracle, orig, seed, log)
                row = table.setdefault(name, {k: [] for k in REGRESS_METRICS + ["secs"]})
                for k in REGRESS_METRICS:
                    row[k].append(s.get(k))
                row["secs"].append(secs)
        lines.append(f"\n### {data}, forget {forget}\n")
        lines.append("| method | " + " | ".join(REGRESS_METRICS) + " | seconds |")
        lines.append("|---" * (len(REGRESS_METRICS) + 2) + "|")
        for name, row in table.items():
            lines.append("| " + " | ".join([name] + [fmt(row[k]) for k in REGRESS_METRICS] +
                                            [fmt(row["secs"], 3)]) + " |")
        lines += failure_notes(failures)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=["classify", "regress"])
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--work")
    p.add_argument("--out")
    a = p.parse_args()
    a.seeds = [int(s) for s in a.seeds.split(",")]
    work = a.work or tempfile.mkdtemp(prefix="lethe-results-")
    os.makedirs(work, exist_ok=True)
    log = []
    t0 = time.time()
    lines = classify(a, work, log) if a.suite == "classify" else regress(a, work, log)
    text = "\n".join(lines) + f"\n\nTotal wall time {time.time() - t0:.0f} s.\n"
    text += "\nCommands, in order:\n\n```\n" + "\n".join(log) + "\n```\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
