#!/usr/bin/env bash
# Concurrent writers of one directory: for each engine (sisa, s3t, ridge,
# logistic), PAIRS times two forgets of different ids start together on a
# fresh copy of a small trained directory. Both must succeed, the ledger
# must verify, and it must hold both requests, applied: the directory lock
# serialises the writers, so no acknowledged request is lost or damaged.
# LETHE_CONCURRENT_PAIRS thins the pairs (default 50, the acceptance count).
. "$(dirname "$0")/lib.sh"

PAIRS=${LETHE_CONCURRENT_PAIRS:-50}

# ids FILE RUN: the training ids of RUN, one per line.
ids() {
    expect 0 "$LETHE" predict --run "$2" --split train --out "$TMP/ids.csv" --force
    tail -n +2 "$TMP/ids.csv" | cut -d, -f1 >"$1"
}

# pairs NAME BASE IDS CMD...: PAIRS pairs of `CMD DIR --ids FILE` (DIR is
# substituted for the word @) on copies of BASE.
pairs() {
    local name=$1 base=$2 idfile=$3; shift 3
    local bad=0 lost=0 unverified=0 t0=$SECONDS
    for i in $(seq 1 "$PAIRS"); do
        local d="$TMP/$name$i" pids=() rc=0
        cp -r "$base" "$d"
        for k in 1 2; do
            sed -n "$(((2 * i + k) % 100 + 1))p" "$idfile" >"$d.ids$k"
            "${@//@/$d}" --ids "$d.ids$k" >"$d.out$k" 2>&1 &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || rc=1; done
        [ $rc -eq 0 ] || { bad=$((bad + 1)); sed 's/^/    /' "$d.out1" "$d.out2" | head -n 4; }
        if "$LETHE" ledger verify "$d" >"$d.v" 2>&1; then
            grep -q "2 requests (2 applied, 0 pending)" "$d.v" || lost=$((lost + 1))
        else
            unverified=$((unverified + 1))
        fi
        "$LETHE" ledger show "$d" >"$d.show" 2>/dev/null
        for k in 1 2; do
            grep -q "recorded" "$d.out$k" || continue
            grep -qE " $(cat "$d.ids$k")( |\$)" "$d.show" || lost=$((lost + 1))
        done
        rm -rf "$d"
    done
    [ $bad -eq 0 ] && pass || fail "$name: $bad of $PAIRS pairs had a failing forget"
    [ $unverified -eq 0 ] && pass || fail "$name: $unverified of $PAIRS ledgers do not verify"
    [ $lost -eq 0 ] && pass || fail "$name: $lost acknowledged requests lost"
    echo "$name: $PAIRS concurrent pairs in $((SECONDS - t0)) s"
}

expect 0 "$LETHE" train --data digits --limit 200 --epochs 1 --out "$TMP/digits" --quiet
ids "$TMP/digits.ids" "$TMP/digits"

expect 0 "$LETHE" sisa train --data digits --limit 200 --shards 2 --slices 1 --epochs 1 \
    --out "$TMP/sisa"
pairs sisa "$TMP/sisa" "$TMP/digits.ids" "$LETHE" sisa forget @

expect 0 "$LETHE" s3t train --data digits --limit 200 --widths 8-8 --shards 3 --slices 2 \
    --epochs 1 --out "$TMP/s3t"
pairs s3t "$TMP/s3t" "$TMP/digits.ids" "$LETHE" s3t forget @

expect 0 "$LETHE" fit --data boston --out "$TMP/ridge"
ids "$TMP/ridge.ids" "$TMP/ridge"
pairs ridge "$TMP/ridge" "$TMP/ridge.ids" "$LETHE" forget --run @

expect 0 "$LETHE" fit --data breast-cancer --out "$TMP/logistic"
ids "$TMP/logistic.ids" "$TMP/logistic"
pairs logistic "$TMP/logistic" "$TMP/logistic.ids" "$LETHE" forget --run @

finish
