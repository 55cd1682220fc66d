#!/usr/bin/env bash
# The runs behind docs/results-tofu.md: every LM method of lethe unlearn on
# forget01, forget05 and forget10 through `lethe tofu run` (one work
# directory, so base, knowledge, target and the oracles are made once), and
# seeds 1 and 2 of the unlearning stage on forget10; then the tables, as
# Markdown, on stdout.
#
#   scripts/tofu-results.sh [WORK]          (default tofu-work)
#
# Environment: LETHE (default build/lethe), SPLITS, METHODS, SEEDS to narrow
# the grid. Stages already in WORK are kept, so an interrupted run resumes.
set -euo pipefail
LETHE=${LETHE:-build/lethe}
WORK=${1:-tofu-work}
SPLITS=${SPLITS-forget10 forget05 forget01}
METHODS=${METHODS-ga ga_gdr ga_klr npo npo_gdr npo_klr simnpo idknll idkdpo rmu undial wga satimp ceu taskvector whp}
SEEDS=${SEEDS-1 2}

for split in $SPLITS; do
    for m in $METHODS; do
        "$LETHE" tofu run --work "$WORK" --split "$split" --method "$m" --quiet >/dev/null
        if [ "$split" = forget10 ]; then
            for s in $SEEDS; do
                "$LETHE" tofu run --work "$WORK" --split "$split" --method "$m" --name "$m-seed$s" \
                    --quiet -- --seed "$s" >/dev/null
            done
        fi
    done
done

/usr/bin/python3 - "$WORK" "$SPLITS" "$METHODS" "$SEEDS" <<'EOF'
import json, os, statistics, sys
work, splits, methods, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()

def load(split, name):
    p = os.path.join(work, split, name, "TOFU_PIPELINE.json")
    return json.load(open(p)) if os.path.exists(p) else None

def fmt(x, p=3):
    return "-" if x is None else ("%.2e" % x if 0 < abs(x) < 1e-3 else "%.*f" % (p, x))

for split in splits:
    rows = [(m, load(split, m)) for m in methods]
    rows = [(m, r) for m, r in rows if r]
    if not rows:
        continue
    print("### %s\n" % split)
    print("| model | Forget Quality | Model Utility | forget ROUGE-L | forget prob | forget truth ratio | unlearn s |")
    print("|---|---|---|---|---|---|---|")
    first = rows[0][1]
    for who in ("target", "oracle"):
        m = first["models"][who]
        print("| %s | %s | %s | %s | %s | %s | |" % (who, fmt(m["forget_quality"]), fmt(m["model_utility"]),
              fmt(m["forget_rougeL_recall"]), fmt(m["forget_prob"]), fmt(m["forget_truth_ratio"])))
    for name, r in rows:
        m = r["models"]["unlearned"]
        print("| %s | %s | %s | %s | %s | %s | %.0f |" % (name, fmt(m["forget_quality"]), fmt(m["model_utility"]),
              fmt(m["forget_rougeL_recall"]), fmt(m["forget_prob"]), fmt(m["forget_truth_ratio"]),
              r["seconds"]["%s-%s" % (split, name)]))
    print()
    s = first["seconds"]
    print("Stage times (s): " + ", ".join("%s %.0f" % (k, v) for k, v in s.items() if "eval" not in k
                                          and not k.startswith("forget") or k.endswith("oracle")) + "\n")

if "forget10" in splits and seeds:
    print("### forget10, seeds 0, %s of the unlearning stage: mean (min - max)\n" % ", ".join(seeds))
    print("| method | Forget Quality | Model Utility | forget ROUGE-L |")
    print("|---|---|---|---|")
    for m in methods:
        rs = [load("forget10", m)] + [load("forget10", "%s-seed%s" % (m, s)) for s in seeds]
        rs = [r["models"]["unlearned"] for r in rs if r]
        if not rs:
            continue
        cell = lambda k: "%s (%s - %s)" % (fmt(statistics.mean(x[k] for x in rs)),
                                           fmt(min(x[k] for x in rs)), fmt(max(x[k] for x in rs)))
        print("| %s | %s | %s | %s |" % (m, cell("forget_quality"), cell("model_utility"),
                                         cell("forget_rougeL_recall")))
EOF
