#!/usr/bin/env bash
# Runs the unit runner and every integration script; ends with one line
# "N passed, N failed" and exits non-zero on any failure.
#
# The integration scripts run LETHE_TEST_JOBS at a time (default: one per
# CPU), each with its output kept back and shown whole, in order. With more
# than one at a time, each runs one OpenMP thread unless OMP_NUM_THREADS is
# set: lethe's threads of two scripts on the same cores would spin against
# each other. LETHE_TEST_SKIP names scripts not to run ("tofu_run muse_run"),
# each reported as skipped.
set -u
BUILD=${1:-build}
export LETHE="$BUILD/lethe"
JOBS=${LETHE_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $JOBS in '' | *[!0-9]* | 0) echo "LETHE_TEST_JOBS must be a positive integer"; exit 2 ;; esac
total_pass=0 total_fail=0
count() { # parse the last "N passed, N failed" line of a log
    local line
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$2: no result line (crashed?)"; tail -n 20 "$1"
        total_fail=$((total_fail + 1)); return
    fi
    local p f
    p=$(sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
    f=$(sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\3/' <<<"$line")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

"$BUILD/test_unit" >"$logs/unit" 2>&1; rc=$?
cat "$logs/unit"
count "$logs/unit" unit
[ $rc -eq 0 ] || grep -qE ' [1-9][0-9]* failed' "$logs/unit" || total_fail=$((total_fail + 1))

[ "$JOBS" -gt 1 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# run_one SCRIPT: run it into $logs/NAME.log, its exit status and seconds beside.
run_one() {
    local name t0=$SECONDS
    name=$(basename "$1" .sh)
    bash "$1" >"$logs/$name.log" 2>&1
    echo "$? $((SECONDS - t0))" >"$logs/$name.rc"
}
scripts=()
for t in tests/integ/test_*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    case " ${LETHE_TEST_SKIP:-} " in
        *" ${name#test_} "*) echo "  ($name: skipped, LETHE_TEST_SKIP)" ;;
        *) scripts+=("$t") ;;
    esac
done
# The longest scripts start first, so that no long one is left running alone
# at the end; the others follow in name order. Results print in name order.
first=" tofu_run muse_run eval_tofu unlearn_matrix unlearn_lm guard "
order=()
for f in $first; do
    case " ${scripts[*]} " in *" tests/integ/test_$f.sh "*) order+=("tests/integ/test_$f.sh") ;; esac
done
for t in "${scripts[@]}"; do
    name=$(basename "$t" .sh)
    case $first in *" ${name#test_} "*) ;; *) order+=("$t") ;; esac
done
running=0
for t in "${order[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
for t in "${scripts[@]}"; do
    name=$(basename "$t" .sh)
    read -r rc secs <"$logs/$name.rc" || { rc=1 secs=?; }
    cat "$logs/$name.log"
    echo "  ($name: $secs s)"
    count "$logs/$name.log" "$t"
    [ "$rc" -eq 0 ] || grep -qE ' [1-9][0-9]* failed' "$logs/$name.log" || total_fail=$((total_fail + 1))
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
