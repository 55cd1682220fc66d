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
expect 2 "$LETHE" ledger show "$TMP/x" --frobnicate
one_line "$ERR"; contains "$ERR" "lethe ledger: unknown option '--frobnicate'"
expect 2 "$LETHE" sisa train --data digits --out "$TMP/x" --frobnicate
one_line "$ERR"; contains "$ERR" "lethe sisa: unknown option '--frobnicate'"
expect 2 "$LETHE" sisa status "$TMP/x" --shard
one_line "$ERR"; contains "$ERR" "lethe sisa: option '--shard' needs a value"
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
[ ! -e "$TMP/base/ledger.log" ] && pass || fail "a refused request reached the ledger"
# No ledger (no request was ever recorded), or no directory: exit 3.
expect 3 "$LETHE" ledger show "$TMP/base"
one_line "$ERR"; contains "$ERR" "no deletion ledger"
expect 3 "$LETHE" ledger verify "$TMP/base"
expect 3 "$LETHE" ledger verify "$TMP/missing"
expect 3 "$LETHE" ledger show "$TMP/unknown"

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
# --quiet: nothing on stdout, the exit code tells.
expect 0 "$LETHE" ledger verify "$TMP/once" --quiet
[ ! -s "$OUT" ] && pass || fail "ledger verify --quiet printed"
expect 0 "$LETHE" ledger verify --quiet "$TMP/once"
[ ! -s "$OUT" ] && pass || fail "ledger verify --quiet DIR printed"
expect 0 "$LETHE" sisa status "$TMP/once" --quiet
[ ! -s "$OUT" ] && pass || fail "sisa status --quiet printed"

# A damaged ledger is refused by every command, with a message.
cp -r "$TMP/once" "$TMP/damaged"
sed -i '1s/"req":1/"req":2/' "$TMP/damaged/ledger.log"
expect 3 "$LETHE" ledger verify "$TMP/damaged"
one_line "$ERR"; contains "$ERR" "checksum mismatch"
expect 3 "$LETHE" sisa status "$TMP/damaged"

# A damaged or missing served checkpoint is reported, not silently
# retrained or re-hashed into state.json.
cp -r "$TMP/base" "$TMP/dmg"
ck=$(grep -o '"checkpoint":	"[0-9a-f]*"' "$TMP/dmg/state.json" | head -n 1 | cut -d'"' -f4)
f="$TMP/dmg/ckpt/$ck.safetensors" # a weight's bytes change; the file still loads
printf 'X' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") - 3)) conv=notrunc status=none
cp "$TMP/dmg/state.json" "$TMP/dmg.state"
expect 3 "$LETHE" sisa eval "$TMP/dmg"
one_line "$ERR"; contains "$ERR" "damaged"
cmp -s "$TMP/dmg/state.json" "$TMP/dmg.state" && pass || fail "state.json took the damaged hash"
rm "$TMP/dmg/ckpt/$ck.safetensors"
expect 3 "$LETHE" sisa status "$TMP/dmg"
one_line "$ERR"; contains "$ERR" "missing"
[ ! -e "$TMP/dmg/ckpt/$ck.safetensors" ] && pass || fail "a missing checkpoint was retrained"

# Every sample deleted: predict and eval say so instead of an accuracy.
expect 0 "$LETHE" sisa train --data digits --limit 40 --shards 2 --epochs 1 --out "$TMP/all"
head -n 41 "$TMP/tr.csv" | tail -n 40 | cut -d, -f1 >"$TMP/all.ids"
expect 0 "$LETHE" sisa forget "$TMP/all" --ids "$TMP/all.ids"
expect 1 "$LETHE" sisa eval "$TMP/all"
one_line "$ERR"; contains "$ERR" "every training sample"
expect 1 "$LETHE" sisa predict "$TMP/all" --json
contains "$ERR" "no model remains"
expect 1 "$LETHE" sisa predict "$TMP/all" --shard 1
contains "$ERR" "shard 1"
expect 2 "$LETHE" sisa train --data digits --shards 0 --out "$TMP/x"
contains "$ERR" "lethe sisa: --shards 0 is out of range: it takes 1 to 1024"

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
    # a kill before the first record leaves no ledger (verify exits 3 on none)
    [ ! -e "$d/ledger.log" ] || "$LETHE" ledger verify "$d" >/dev/null 2>&1 \
        || unverified=$((unverified + 1))
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
