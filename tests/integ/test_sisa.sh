#!/usr/bin/env bash
# lethe sisa and lethe ledger: usage, bad input, exactness through the
# command line, and `sisa forget` killed with SIGKILL at 50 random moments:
# afterwards the ledger verifies, no acknowledged request is lost, and the
# shard files equal a from-scratch retrain (or the untouched model when the
# request was never recorded).
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" sisa --help
contains "$OUT" "Usage: lethe sisa train"
expect 2 "$LETHE" sisa
expect 2 "$LETHE" sisa frobnicate
expect 2 "$LETHE" sisa train --data digits
expect 2 "$LETHE" sisa forget "$TMP/x"
expect 0 "$LETHE" ledger --help
expect 2 "$LETHE" ledger show
expect 3 "$LETHE" sisa status "$TMP/missing"
one_line "$ERR"; contains "$ERR" "not a SISA directory"
expect 3 "$LETHE" sisa train --data digits --model linear --out "$TMP/x"

T="--data digits --limit 500 --shards 4 --slices 2 --epochs 3"
expect 0 "$LETHE" sisa train $T --out "$TMP/base"
expect 3 "$LETHE" sisa train $T --out "$TMP/base"
contains "$ERR" "already exists"
expect 0 "$LETHE" sisa status "$TMP/base" --json
one_line "$OUT"
expect 0 "$LETHE" sisa eval "$TMP/base" --json
contains "$OUT" '"shards":[{"shard":0'
expect 0 "$LETHE" sisa predict "$TMP/base" --shard 2
expect 3 "$LETHE" sisa predict "$TMP/base" --shard 9

# Ids to delete: two training ids (from a prediction dump of the train split).
expect 0 "$LETHE" train --data digits --limit 500 --epochs 1 --out "$TMP/run" --quiet
expect 0 "$LETHE" predict --run "$TMP/run" --split train --out "$TMP/tr.csv"
sed -n '2,3p' "$TMP/tr.csv" | cut -d, -f1 >"$TMP/del"
printf '999999\n' >"$TMP/unknown"
expect 3 "$LETHE" sisa forget "$TMP/base" --ids "$TMP/unknown"
one_line "$ERR"; contains "$ERR" "is not in the digits training set"
expect 0 "$LETHE" ledger show "$TMP/base"
[ "$(wc -l <"$OUT")" -eq 1 ] && pass || fail "a refused request reached the ledger"

# From-scratch reference without the ids.
expect 0 "$LETHE" sisa train $T --exclude "$TMP/del" --out "$TMP/ref"
hashes() { grep -o '"sha256":"[0-9a-f]*"' "$1/state.json" | tr -d '\n'; }
grep -o '"sha256":	"[0-9a-f]*"' "$TMP/ref/state.json" >"$TMP/ref.h"
grep -o '"sha256":	"[0-9a-f]*"' "$TMP/base/state.json" >"$TMP/base.h"

cp -r "$TMP/base" "$TMP/once"
expect 0 "$LETHE" sisa forget "$TMP/once" --ids "$TMP/del"
contains "$OUT" "request 1 recorded: 2 ids"
grep -o '"sha256":	"[0-9a-f]*"' "$TMP/once/state.json" | cmp -s - "$TMP/ref.h" \
    && pass || fail "forget differs from the from-scratch retrain"
expect 3 "$LETHE" sisa forget "$TMP/once" --ids "$TMP/del"
contains "$ERR" "already deleted by request 1"
expect 0 "$LETHE" ledger verify "$TMP/once"
contains "$OUT" "1 applied, 0 pending"

# A damaged ledger is refused by every command, with a message.
cp -r "$TMP/once" "$TMP/damaged"
sed -i '1s/"req":1/"req":2/' "$TMP/damaged/ledger.log"
expect 3 "$LETHE" ledger verify "$TMP/damaged"
one_line "$ERR"; contains "$ERR" "checksum mismatch"
expect 3 "$LETHE" sisa status "$TMP/damaged"

# SIGKILL at 50 random moments.
lost=0 wrong=0 unverified=0
for i in $(seq 1 50); do
    d="$TMP/kill$i"
    cp -r "$TMP/base" "$d"
    "$LETHE" sisa forget "$d" --ids "$TMP/del" >"$d.out" 2>/dev/null &
    pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % 250)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    "$LETHE" ledger verify "$d" >/dev/null 2>&1 || unverified=$((unverified + 1))
    recorded=0
    "$LETHE" ledger show "$d" 2>/dev/null | grep -q '^1 ' && recorded=1
    grep -q "recorded" "$d.out" && [ $recorded -eq 0 ] && lost=$((lost + 1))
    "$LETHE" sisa status "$d" >/dev/null 2>&1 # applies what the kill left pending
    want="$TMP/base.h"; [ $recorded -eq 1 ] && want="$TMP/ref.h"
    grep -o '"sha256":	"[0-9a-f]*"' "$d/state.json" | cmp -s - "$want" || wrong=$((wrong + 1))
    rm -rf "$d" "$d.out"
done
[ $unverified -eq 0 ] && pass || fail "$unverified ledgers failed to verify after SIGKILL"
[ $lost -eq 0 ] && pass || fail "$lost acknowledged requests lost"
[ $wrong -eq 0 ] && pass || fail "$wrong shard sets differ from the expected model after SIGKILL"
finish
