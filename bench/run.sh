#!/usr/bin/env bash
# Side-by-side training benchmark: lethe (bench/bench_train.c) against its
# PyTorch twin (bench/torch_train.py), doing the same work in one run.
#
#   bench/run.sh [-r REPS] [-o DIR]
#
# Builds the library and the driver, then runs every configuration REPS
# times (default 3), lethe and PyTorch back to back (which goes first
# alternates between repetitions), at each thread count in THREADS.
# Every run's JSON line goes to DIR/runs.jsonl (DIR defaults to $BUILD/bench);
# the table of medians and ratios is printed and written to DIR/table.md.
#
# Environment:
#   BUILD        build directory of the library (build)
#   PYTHON       a Python with PyTorch (/usr/bin/python3)
#   THREADS      thread counts to try, each side (1 2)
#   MLP_EPOCHS   MLP epochs over all 60000 samples at one thread (3)
#   CNN_EPOCHS   CNN epochs (1) ...
#   CNN_LIMIT    ... over the first CNN_LIMIT training samples (20000)
#   SWEEP_EPOCHS epochs of the multi-thread MLP runs (1) ...
#   SWEEP_LIMIT  ... over the first SWEEP_LIMIT training samples (20000); these
#                runs find each side's fastest setting, and PyTorch's are slow
#   RUN_TIMEOUT  seconds before one run is stopped and counted as too slow (300)
#   DATA         Fashion-MNIST directory (/usr/share/datasets/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-1 2}
MLP_EPOCHS=${MLP_EPOCHS:-3}
CNN_EPOCHS=${CNN_EPOCHS:-1}
CNN_LIMIT=${CNN_LIMIT:-20000}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-1}
SWEEP_LIMIT=${SWEEP_LIMIT:-20000}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
REPS=3
OUT=

while getopts "r:o:h" opt; do
    case $opt in
    r) REPS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    h) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
OUT=${OUT:-$BUILD/bench}
mkdir -p "$OUT"

# ---- build ------------------------------------------------------------------
make --no-print-directory -s BUILD="$BUILD" "$BUILD/liblethe.a"
${CC:-cc} -std=c11 -O3 -march=native -fopenmp -D_GNU_SOURCE -Iinclude -I/usr/include/cjson \
    -o "$OUT/bench_train" bench/bench_train.c "$BUILD/liblethe.a" -lopenblas -lcjson -lz -lm
"$PYTHON" -c 'import torch' 2>/dev/null ||
    { echo "run.sh: $PYTHON cannot import torch (set PYTHON)" >&2; exit 1; }

# ---- runs -------------------------------------------------------------------
RUNS=$OUT/runs.jsonl
: >"$RUNS"

# one_run SIDE THREADS ARGS...: append one JSON line (or a timeout record).
one_run() {
    local side=$1 threads=$2
    shift 2
    local line rc=0
    if [ "$side" = lethe ]; then
        line=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            timeout "$RUN_TIMEOUT" "$OUT/bench_train" --threads "$threads" --data "$DATA" "$@") || rc=$?
    else
        line=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            timeout "$RUN_TIMEOUT" "$PYTHON" bench/torch_train.py --threads "$threads" \
            --data "$DATA" "$@") || rc=$?
    fi
    if [ $rc -eq 124 ]; then
        line="{\"side\":\"$side\",\"threads\":$threads,\"timed_out\":$RUN_TIMEOUT,\"args\":\"$*\"}"
    elif [ $rc -ne 0 ]; then
        echo "run.sh: $side $* failed (exit $rc)" >&2
        exit 1
    fi
    echo "$line" >>"$RUNS"
    echo "  $line"
}

# Configurations: model, batch, then the work at one thread and at more.
CONFIGS=(
    "mlp 128"
    "mlp 16"
    "cnn 128"
    "cnn 16"
)
work_args() { # model threads -> the driver arguments that fix the work
    local model=$1 threads=$2
    if [ "$model" = mlp ]; then
        if [ "$threads" -eq 1 ]; then
            echo "--epochs $MLP_EPOCHS"
        else
            echo "--epochs $SWEEP_EPOCHS --limit $SWEEP_LIMIT"
        fi
    else
        echo "--epochs $CNN_EPOCHS --limit $CNN_LIMIT"
    fi
}

for rep in $(seq 1 "$REPS"); do
    for cfg in "${CONFIGS[@]}"; do
        read -r model batch <<<"$cfg"
        for threads in $THREADS; do
            args="--model $model --batch $batch $(work_args "$model" "$threads")"
            echo "rep $rep: $args, $threads thread(s)"
            # shellcheck disable=SC2086
            if [ $((rep % 2)) -eq 1 ]; then
                one_run lethe "$threads" $args
                one_run pytorch "$threads" $args
            else
                one_run pytorch "$threads" $args
                one_run lethe "$threads" $args
            fi
        done
    done
done

# ---- table ------------------------------------------------------------------
"$PYTHON" - "$RUNS" "$RUN_TIMEOUT" >"$OUT/table.md" <<'EOF'
import json, statistics, sys
from collections import defaultdict

timeout = float(sys.argv[2])
groups = defaultdict(list)  # (model, batch, side, threads) -> rates (0 for a timeout)
rows = defaultdict(list)    # the same key -> finished runs
pending, pairs = {}, defaultdict(list)
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    if "timed_out" in r:
        a = r["args"].split()
        key = (a[a.index("--model") + 1], int(a[a.index("--batch") + 1]), r["side"], r["threads"])
        rate = 0.0  # slower than any finished run
    else:
        key = (r["model"], r["batch"], r["side"], r["threads"])
        rate = r["samples_per_s"]
        rows[key].append(r)
    groups[key].append(rate)
    # runs come in pairs, lethe and PyTorch back to back on one configuration
    cfg = (key[0], key[1], key[3])
    other = pending.pop(cfg, None)
    if other is None:
        pending[cfg] = (key[2], rate)
    else:
        lethe = rate if key[2] == "lethe" else other[1]
        torch = other[1] if key[2] == "lethe" else rate
        if torch > 0:
            pairs[cfg].append(lethe / torch)


def med(xs):
    return statistics.median(xs) if xs else 0.0


configs = sorted({(k[0], k[1]) for k in groups}, key=lambda c: (c[0] != "mlp", -c[1]))
threads = sorted({k[3] for k in groups})
print("| model | batch | side | threads | work (epochs x samples) | samples/s (median) | runs |"
      " final loss | test acc. |")
print("|---|---:|---|---:|---|---:|---:|---:|---:|")
best = {}
for model, batch in configs:
    for side in ("lethe", "pytorch"):
        for t in threads:
            key = (model, batch, side, t)
            if key not in groups:
                continue
            sps, done = med(groups[key]), rows[key]
            work = f"{done[0]['epochs']} x {done[0]['n_train']}" if done else "-"
            shown = f"{sps:,.0f}" if sps > 0 else f"timed out ({timeout:.0f} s)"
            loss = f"{med([r['final_loss'] for r in done]):.4f}" if done else "-"
            acc = f"{med([r['test_accuracy'] for r in done]):.4f}" if done else "-"
            print(f"| {model} | {batch} | {side} | {t} | {work} | {shown} | {len(groups[key])} |"
                  f" {loss} | {acc} |")
            if sps > best.get((model, batch, side), (0, 0))[0]:
                best[(model, batch, side)] = (sps, t)

print()
print("| model | batch | lethe, 1 thread | PyTorch, 1 thread | ratio | paired ratio (min-max) |"
      " lethe, best (threads) | PyTorch, best (threads) | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for model, batch in configs:
    l1 = med(groups.get((model, batch, "lethe", 1), []))
    p1 = med(groups.get((model, batch, "pytorch", 1), []))
    pr = pairs.get((model, batch, 1), [])
    lb, lt = best.get((model, batch, "lethe"), (0, 0))
    pb, pt = best.get((model, batch, "pytorch"), (0, 0))
    r1 = f"{l1 / p1:.2f}" if p1 > 0 else "-"
    rp = f"{med(pr):.2f} ({min(pr):.2f}-{max(pr):.2f})" if pr else "-"
    rb = f"{lb / pb:.2f}" if pb > 0 else "-"
    print(f"| {model} | {batch} | {l1:,.0f} | {p1:,.0f} | {r1} | {rp} | {lb:,.0f} ({lt}) |"
          f" {pb:,.0f} ({pt}) | {rb} |")
print()
print("ratio: lethe's median over PyTorch's; paired ratio: the median (and range) of the"
      " ratios of runs made back to back.")
EOF
echo
cat "$OUT/table.md"
