#!/usr/bin/env bash
# Runs the unit runner and every integration script; ends with one line
# "N passed, N failed" and exits non-zero on any failure.
set -u
BUILD=${1:-build}
export LETHE="$BUILD/lethe"
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
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$BUILD/test_unit" >"$log" 2>&1; rc=$?
cat "$log"
count "$log" unit
[ $rc -eq 0 ] || grep -qE ' [1-9][0-9]* failed' "$log" || total_fail=$((total_fail + 1))

for t in tests/integ/test_*.sh; do
    [ -e "$t" ] || continue
    t0=$SECONDS
    bash "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    echo "  ($(basename "$t" .sh): $((SECONDS - t0)) s)"
    count "$log" "$t"
    [ $rc -eq 0 ] || grep -qE ' [1-9][0-9]* failed' "$log" || total_fail=$((total_fail + 1))
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
