#!/usr/bin/env bash
# lethe eval classify / regress on small tasks (digits, Boston): the files in
# the OpenUnlearning layout, a model as its own oracle (gap and divergence 0),
# identical reruns, and bad input exiting 2 or 3.
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" eval --help
contains "$OUT" "classify"
contains "$OUT" "regress"
expect 0 "$LETHE" eval classify --help
contains "$OUT" "Usage: lethe eval classify"
contains "$OUT" "--mia-cap N         attack samples per class, 0 for no cap (2000)"
contains "$OUT" "--relearn-steps N   relearning step cap (500)"
expect 0 "$LETHE" eval regress --help
contains "$OUT" "--ain-slack X       target forget L1 = X times the original's (1.05)"
contains "$OUT" "--ain-batch N       AIN's training and evaluation batch (256)"

# Usage errors: 2.
expect 2 "$LETHE" eval
expect 2 "$LETHE" eval cluster --run "$TMP/x" --forget random:0.1
contains "$ERR" "unknown suite 'cluster'"
expect 2 "$LETHE" eval classify --run "$TMP/x"
contains "$ERR" "--run and --forget are required"
expect 2 "$LETHE" eval classify --run "$TMP/x" --forget random:0.1 --mia-cap -3
expect 2 "$LETHE" eval classify --run "$TMP/x" --forget random:0.1 --feature l1
expect 2 "$LETHE" eval classify --run "$TMP/x" --forget random:0.1 --ain-slack 2
contains "$ERR" "belongs to the other suite"
expect 2 "$LETHE" eval regress --run "$TMP/x" --forget random:0.1 --relearn-steps 5
expect 2 "$LETHE" eval regress --run "$TMP/x" --forget random:0.1 --frobnicate

# Runs: the original on all of digits, the oracle without a random 10%.
expect 0 "$LETHE" train --data digits --out "$TMP/orig" --epochs 20 --quiet
expect 0 "$LETHE" train --data digits --out "$TMP/oracle" --epochs 20 --exclude random:0.1 --quiet

expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 --oracle "$TMP/oracle" \
    --original "$TMP/orig" --out "$TMP/e1/sub" --json
for k in UA RA TA MIA_efficacy avg_gap activation_distance JS_divergence ZRF relearn_steps \
    wall_seconds; do
    contains "$OUT" "\"$k\":"
done
contains "$OUT" '"relearn_steps":	0' # the original regains its own accuracy at once
mv "$TMP/e1/sub/"* "$TMP/e1/" # --out made both directories
[ -s "$TMP/e1/CLASSIFY_EVAL.json" ] && [ -s "$TMP/e1/CLASSIFY_SUMMARY.json" ] && pass ||
    fail "CLASSIFY_EVAL.json / CLASSIFY_SUMMARY.json missing"
# The layout: per-sample values keyed by id, one per forget sample, whose
# mean is the aggregate (one python3 run per file: it starts slowly).
check_layout() { # check_layout EVAL SUMMARY METRIC...
    python3 - "$@" <<'PY' && pass || fail "$1 is not in the OpenUnlearning layout"
import json, sys
ev, su = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n = su["n_forget"]
assert n > 50, n
for metric in sys.argv[3:]:
    m = ev[metric]
    v = m["value_by_index"]
    assert len(v) == n and all(k.isdigit() for k in v), metric
    assert abs(sum(v.values()) / n - m["agg_value"]) <= 1e-9 * max(1, abs(m["agg_value"])), metric
    assert m["agg_value"] == su[metric], metric
PY
}
check_layout "$TMP/e1/CLASSIFY_EVAL.json" "$TMP/e1/CLASSIFY_SUMMARY.json" UA MIA_efficacy \
    JS_divergence activation_distance ZRF forget_confidence
contains "$TMP/e1/CLASSIFY_EVAL.json" '"RA":'
grep -q wall_seconds "$TMP/e1/CLASSIFY_EVAL.json" && fail "wall time in CLASSIFY_EVAL.json" || pass

# The same inputs give the same EVAL file; the default output is the run dir.
expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 --oracle "$TMP/oracle" \
    --original "$TMP/orig" --out "$TMP/e1"
contains "$OUT" "wrote $TMP/e1/CLASSIFY_EVAL.json"
cp "$TMP/e1/CLASSIFY_EVAL.json" "$TMP/first.json"
expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 --oracle "$TMP/oracle" \
    --original "$TMP/orig" --out "$TMP/e1"
cmp -s "$TMP/e1/CLASSIFY_EVAL.json" "$TMP/first.json" && pass || fail "reruns differ"
grep -v wall_seconds "$OUT" >"$TMP/first.out" # the one line that varies
[ ! -s "$ERR" ] && pass || fail "a short eval classify printed: $(head -n 3 "$ERR")"
expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 --oracle "$TMP/oracle" \
    --original "$TMP/orig" --out "$TMP/e1" --quiet
[ ! -s "$ERR" ] && grep -v wall_seconds "$OUT" | cmp -s - "$TMP/first.out" && cmp -s "$TMP/e1/CLASSIFY_EVAL.json" \
    "$TMP/first.json" && pass || fail "eval classify --quiet: stderr, or another stdout or file"
# Progress, forced to a line at every update: the suite's stages on stderr,
# a final line; the same stdout and file; none with --quiet.
LETHE_PROGRESS_INTERVAL=0 expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 \
    --oracle "$TMP/oracle" --original "$TMP/orig" --out "$TMP/e1"
for k in 1 2 3 4 5; do contains "$ERR" "eval classify: $k/5 stages"; done
contains "$ERR" "eval classify: 5 stages in"
grep -v wall_seconds "$OUT" | cmp -s - "$TMP/first.out" && cmp -s "$TMP/e1/CLASSIFY_EVAL.json" \
    "$TMP/first.json" && pass || fail "eval classify with progress: another stdout or file"
LETHE_PROGRESS_INTERVAL=0 expect 0 "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 \
    --oracle "$TMP/oracle" --original "$TMP/orig" --out "$TMP/e1" --quiet
[ ! -s "$ERR" ] && pass || fail "eval classify --quiet printed: $(head -n 3 "$ERR")"

# The oracle as its own oracle: no gap, no divergence, no distance.
expect 0 "$LETHE" eval classify --run "$TMP/oracle" --forget random:0.1 --oracle "$TMP/oracle" \
    --feature entropy --relearn-steps 50 --json
contains "$OUT" '"avg_gap":	0,'
contains "$OUT" '"JS_divergence":	0,'
contains "$OUT" '"activation_distance":	0,'
contains "$OUT" '"relearn_steps":	null' # no original given
expect 0 "$LETHE" eval classify --run "$TMP/oracle" --forget random:0.1 --oracle "$TMP/oracle" \
    --js bad-teaching --out "$TMP/e3" --json
contains "$OUT" '"JS_divergence":	0,'
expect 2 "$LETHE" eval classify --run "$TMP/oracle" --forget random:0.1 --js kl
contains "$ERR" "--js is paper or bad-teaching"
expect 2 "$LETHE" eval regress --run "$TMP/oracle" --forget random:0.1 --js paper
contains "$ERR" "belongs to the other suite"
[ -s "$TMP/oracle/CLASSIFY_SUMMARY.json" ] && pass || fail "no summary in the run directory"

# Regression: Boston, forgetting the houses priced 30 to 100 (thousands).
expect 0 "$LETHE" train --data boston --out "$TMP/b0" --quiet
expect 0 "$LETHE" train --data boston --out "$TMP/br" --exclude range:30:100 --quiet
expect 0 "$LETHE" eval regress --run "$TMP/b0" --forget range:30:100 --oracle "$TMP/br" \
    --original "$TMP/b0" --out "$TMP/e2"
for k in forget_L1 retain_MSE test_L1 MIA wasserstein AIN ain_steps relearn_ratio \
    relearn_steps oracle_relearn_steps n_forget_heldout; do
    contains "$OUT" "$k "
done
# the attack trains on equal numbers of members and non-members
members=$(grep "^n_mia_member " "$OUT" | awk '{print $2}')
nonmembers=$(grep "^n_mia_nonmember " "$OUT" | awk '{print $2}')
[ -n "$members" ] && [ "$members" = "$nonmembers" ] && pass ||
    fail "attack sizes $members / $nonmembers"
grep -q "^AIN  *[0-9]" "$OUT" && pass || fail "no AIN with held-out forget rows"
# SalUn's sampling: every test sample is a non-member
expect 0 "$LETHE" eval regress --run "$TMP/b0" --forget range:30:100 --mia-sampling salun \
    --mia-cap 5 --json
contains "$OUT" '"n_mia_nonmember":	112,'
expect 2 "$LETHE" eval regress --run "$TMP/b0" --forget range:30:100 --mia-sampling random
contains "$ERR" "--mia-sampling is balanced or salun"
check_layout "$TMP/e2/REGRESS_EVAL.json" "$TMP/e2/REGRESS_SUMMARY.json" forget_L1 forget_MSE \
    MIA abs_diff_to_oracle oracle_forget_L1
expect 0 "$LETHE" eval regress --run "$TMP/br" --forget range:30:100 --oracle "$TMP/br" --json
contains "$OUT" '"wasserstein":	0,'
contains "$OUT" '"AIN":	null'
[ ! -s "$ERR" ] && pass || fail "a short eval regress printed: $(head -n 3 "$ERR")"
# forced progress: the stages (metrics of each net, relearning of each), on
# stderr only; none with --quiet
cp "$TMP/e2/REGRESS_EVAL.json" "$TMP/e2.json"
LETHE_PROGRESS_INTERVAL=0 expect 0 "$LETHE" eval regress --run "$TMP/b0" --forget range:30:100 \
    --oracle "$TMP/br" --original "$TMP/b0" --out "$TMP/e2"
contains "$ERR" "eval regress: 6/6 stages"
contains "$ERR" "eval regress: 6 stages in"
cmp -s "$TMP/e2/REGRESS_EVAL.json" "$TMP/e2.json" && pass ||
    fail "eval regress with progress: another REGRESS_EVAL.json"
LETHE_PROGRESS_INTERVAL=0 expect 0 "$LETHE" eval regress --run "$TMP/b0" --forget range:30:100 \
    --oracle "$TMP/br" --original "$TMP/b0" --out "$TMP/e2" --quiet
[ ! -s "$ERR" ] && pass || fail "eval regress --quiet printed: $(head -n 3 "$ERR")"

# Bad input: 3, one line naming the problem.
bad_input() { # bad_input TEXT-IN-MESSAGE CMD...
    local want=$1; shift
    expect 3 "$@"
    one_line "$ERR"
    contains "$ERR" "$want"
}
bad_input "missing" "$LETHE" eval classify --run "$TMP/missing" --forget random:0.1
bad_input "regression task" "$LETHE" eval classify --run "$TMP/b0" --forget random:0.1
bad_input "classification task" "$LETHE" eval regress --run "$TMP/orig" --forget random:0.1
bad_input "trained on 'boston'" \
    "$LETHE" eval classify --run "$TMP/orig" --forget random:0.1 --oracle "$TMP/b0"
bad_input "class" "$LETHE" eval classify --run "$TMP/orig" --forget class:12
printf '999999\n' >"$TMP/ids.txt"
bad_input "999999" "$LETHE" eval classify --run "$TMP/orig" --forget "ids:$TMP/ids.txt"
bad_input "nothing is left" \
    "$LETHE" eval classify --run "$TMP/orig" --forget class:0,1,2,3,4,5,6,7,8,9
finish
