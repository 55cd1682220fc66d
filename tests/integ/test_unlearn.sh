#!/usr/bin/env bash
# lethe unlearn: the method list, a run with provenance in its metadata,
# determinism, and bad input exiting 2 or 3.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

expect 0 "$LETHE" unlearn --help
contains "$OUT" "Usage: lethe unlearn"
expect 0 "$LETHE" unlearn --list
for m in ft ga rl l1-sparse gaussian; do contains "$OUT" "$m "; done
contains "$OUT" "suppression"
expect 2 "$LETHE" unlearn --run x --method ft
expect 2 "$LETHE" unlearn --run x --method ft --forget class:1 --out y --seed -1

expect 0 "$LETHE" train --data digits --out "$TMP/base" --epochs 10 --quiet
expect 0 "$LETHE" train --data boston --out "$TMP/reg" --epochs 10 --quiet

# Bad input: 3 with one line.
expect 3 "$LETHE" unlearn --run "$TMP/base" --method nope --forget class:1 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "unknown method 'nope'"
expect 3 "$LETHE" unlearn --run "$TMP/base" --method gaussian --forget class:1 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "regressors only"
expect 3 "$LETHE" unlearn --run "$TMP/reg" --method rl --forget range:30:60 --out "$TMP/x"
contains "$ERR" "classifiers only"
expect 3 "$LETHE" unlearn --run "$TMP/base" --method ft --forget class:1 --set speed=2 --out "$TMP/x"
contains "$ERR" "keys: lr"
expect 3 "$LETHE" unlearn --run "$TMP/missing" --method ft --forget class:1 --out "$TMP/x"
expect 3 "$LETHE" unlearn --run "$TMP/base" --method ft --forget class:12 --out "$TMP/x"
[ ! -e "$TMP/x/model.safetensors" ] && pass || fail "a failed unlearn left a model"

# A run: the new model records method, settings, forget set and parent.
expect 0 "$LETHE" unlearn --run "$TMP/base" --method ft --forget class:3 --set epochs=2 \
    --out "$TMP/ft" --quiet --json
one_line "$OUT"
$PY - "$OUT" <<'PY' && pass || fail "unlearn --json summary"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["method"] == "ft" and d["forget"] > 100 and d["steps"] > 0, d
assert d["retain"] + d["forget"] > 1400, d
PY
expect 0 "$LETHE" inspect "$TMP/ft/model.safetensors"
contains "$OUT" "method: ft"
contains "$OUT" '"epochs":2'
contains "$OUT" "forget_hash: "
contains "$OUT" "parent_hash: "
contains "$TMP/ft/config.json" '"parent_hash"'
contains "$TMP/ft/config.json" '"data":'
[ -s "$TMP/ft/log.jsonl" ] && pass || fail "no log"
# The result is a run like any other, and reruns are byte-identical.
expect 0 "$LETHE" predict --run "$TMP/ft" --split class:3 --json
expect 0 "$LETHE" unlearn --run "$TMP/base" --method ft --forget class:3 --set epochs=2 \
    --out "$TMP/ft2" --quiet
cmp -s "$TMP/ft/model.safetensors" "$TMP/ft2/model.safetensors" && pass || fail "rerun differs"

# RL on a class drives its accuracy down; GA on a regressor runs.
expect 0 "$LETHE" unlearn --run "$TMP/base" --method rl --forget class:3 --out "$TMP/rl" --quiet --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["scores"]["forget"]["accuracy"] < 20, d' \
    "$OUT" && pass || fail "rl left the class"
expect 0 "$LETHE" unlearn --run "$TMP/reg" --method ga --forget range:30:60 --out "$TMP/ga" --quiet
contains "$OUT" "L1: forget"
expect 0 "$LETHE" unlearn --run "$TMP/reg" --method gaussian --forget range:30:60 --out "$TMP/g" --quiet
finish
