#!/usr/bin/env bash
# lethe fit and lethe forget: ridge on boston and diabetes (exact removal,
# agreeing with a fit that excludes the same ids), logistic on breast-cancer
# (certified removal, a retrain when the budget is spent), refusals that
# leave the run untouched, and runs of other kinds refused.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

# theta FILE: the double-precision parameters of a linear model, one per line.
theta() {
    $PY - "$1" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def tensor(name):
    t = head[name]; b, e = t["data_offsets"]
    return struct.unpack("<%df" % ((e - b) // 4), raw[8 + n + b:8 + n + e])
for hi, lo in zip(tensor("linear.theta.hi"), tensor("linear.theta.lo")):
    print(repr(hi + lo))
PY
}
# close A B TOL: two theta listings agree to TOL (relative, in norm)
close() {
    $PY - "$1" "$2" "$3" <<'PY'
import sys
a = [float(v) for v in open(sys.argv[1])]
b = [float(v) for v in open(sys.argv[2])]
num = sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5
den = sum(y * y for y in b) ** 0.5
assert len(a) == len(b) and num <= float(sys.argv[3]) * den, (num / den, len(a), len(b))
PY
}
# jq-like check: jcheck FILE 'python expression over d'
jcheck() {
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert eval(sys.argv[2]), d' "$1" "$2"
}

expect 0 "$LETHE" fit --help
contains "$OUT" "Usage: lethe fit"
expect 0 "$LETHE" forget --help
contains "$OUT" "Usage: lethe forget"
expect 0 "$LETHE" help forget
expect 0 "$LETHE" --help
contains "$OUT" "forget"

# Usage errors: 2.
expect 2 "$LETHE" fit --data boston
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --model mlp
contains "$ERR" "lethe train"
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --lambda -1
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --sigma abc
expect 2 "$LETHE" forget --ids f
expect 2 "$LETHE" forget --run "$TMP/x" --ids f --frobnicate
one_line "$ERR"; contains "$ERR" "lethe forget: unknown option '--frobnicate'"
expect 2 "$LETHE" forget --run "$TMP/x" --ids f --split-seed -1
one_line "$ERR"; contains "$ERR" "lethe forget: --split-seed -1 is out of range: it takes 0 to 2^53"
expect 2 "$LETHE" forget --run "$TMP/x" --ids
one_line "$ERR"; contains "$ERR" "lethe forget: option '--ids' needs a value"
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --frobnicate
one_line "$ERR"; contains "$ERR" "lethe fit: unknown option '--frobnicate'"
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --window 400
one_line "$ERR"; contains "$ERR" "lethe fit: --window 400 is out of range: it takes 0 to 365"
expect 2 "$LETHE" fit --data boston --out "$TMP/x" --lambda abc
one_line "$ERR"; contains "$ERR" "lethe fit: --lambda needs a number from 0 to"
# Bad input: 3, one line.
expect 3 "$LETHE" fit --data boston --model logistic --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "two-class"
expect 3 "$LETHE" fit --data breast-cancer --model ridge --out "$TMP/x"
contains "$ERR" "regression task"
expect 3 "$LETHE" fit --data digits --out "$TMP/x"
contains "$ERR" "more than two classes"
expect 3 "$LETHE" fit --data breast-cancer --out "$TMP/x" --delta 2
expect 3 "$LETHE" fit --data no-such-set --out "$TMP/x"
[ ! -e "$TMP/x/model.safetensors" ] && pass || fail "a failed fit left a model behind"
expect 3 "$LETHE" forget --run "$TMP/nope" --ids "$TMP/ids"
one_line "$ERR"; contains "$ERR" "no such run directory"

# ---- ridge on boston ----
expect 0 "$LETHE" fit --data boston --out "$TMP/b1"
contains "$OUT" "fit ridge on boston: 394 samples"
expect 0 "$LETHE" fit --data boston --out "$TMP/b2" --quiet
[ ! -s "$OUT" ] && pass || fail "fit --quiet printed"
for f in model.safetensors config.json log.jsonl; do
    cmp -s "$TMP/b1/$f" "$TMP/b2/$f" && pass || fail "$f differs between identical fits"
done
# 'lethe train --model ridge|logistic' is 'lethe fit'
expect 0 "$LETHE" train --data boston --model ridge --out "$TMP/tr1"
cmp -s "$TMP/b1/model.safetensors" "$TMP/tr1/model.safetensors" && pass ||
    fail "train --model ridge differs from fit"
expect 0 "$LETHE" train --data breast-cancer --model=logistic --out "$TMP/tr2"
contains "$OUT" "certified"
expect 0 "$LETHE" inspect "$TMP/b1/model.safetensors"
contains "$OUT" "kind: ridge"
contains "$OUT" "spec: in=13;linear=1"
contains "$OUT" "linear.chol.hi"

printf '3\n10\n# a comment\n27\n' >"$TMP/ids1"
expect 0 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids1" --check --json
one_line "$OUT"
jcheck "$OUT" 'd["removed"] == 3 and d["n"] == 391 and d["downdates"] == 3 and not d["refactored"]' \
    && pass || fail "boston removal summary"
jcheck "$OUT" 'd["check"]["rel_diff"] < 1e-9' && pass || fail "boston removal differs from a refit"
expect 0 "$LETHE" inspect "$TMP/b1/model.safetensors"
contains "$OUT" "removed: 3,10,27"
contains "$OUT" "method: forget"
contains "$OUT" "n: 391"
[ "$(wc -l <"$TMP/b1/log.jsonl")" -eq 2 ] && pass || fail "log.jsonl lacks the forget line"
grep -q '"event":"forget","request":1,"ids":\[3,10,27\]' "$TMP/b1/log.jsonl" && pass \
    || fail "log.jsonl forget line"

# The same parameters as a fit that never saw those ids.
expect 0 "$LETHE" fit --data boston --out "$TMP/b3" --exclude "$TMP/ids1"
theta "$TMP/b1/model.safetensors" >"$TMP/t1"
theta "$TMP/b3/model.safetensors" >"$TMP/t3"
close "$TMP/t1" "$TMP/t3" 1e-9 && pass || fail "forget differs from fit --exclude"
theta "$TMP/b2/model.safetensors" >"$TMP/t2"
close "$TMP/t2" "$TMP/t3" 1e-3 2>/dev/null && fail "removing 3 samples changed nothing" || pass

# Refusals leave the run exactly as it was.
cp "$TMP/b1/model.safetensors" "$TMP/before"
cp "$TMP/b1/log.jsonl" "$TMP/before.log"
expect 3 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids1"
one_line "$ERR"; contains "$ERR" "id 3 was already removed"
printf '12\n10\n' >"$TMP/ids2"
expect 3 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids2"
contains "$ERR" "id 10 was already removed"
printf '99999\n' >"$TMP/ids3"
expect 3 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids3"
one_line "$ERR"; contains "$ERR" "id 99999 is not in the boston training set"
printf '4\n' >"$TMP/ids4" # a test-split sample
expect 3 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids4"
printf '1\n' >"$TMP/ids5"
expect 3 "$LETHE" forget --run "$TMP/b3" --ids "$TMP/ids1"
contains "$ERR" "left out when the model was fitted"
printf 'abc\n' >"$TMP/ids6"
expect 3 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids6"
cmp -s "$TMP/before" "$TMP/b1/model.safetensors" && pass || fail "a refused forget changed the model"
cmp -s "$TMP/before.log" "$TMP/b1/log.jsonl" && pass || fail "a refused forget changed the log"
ls "$TMP/b1" | grep -q tmp && fail "a temporary file was left in the run" || pass

# A second request: still exact, request 2.
expect 0 "$LETHE" forget --run "$TMP/b1" --ids "$TMP/ids5"
contains "$OUT" "request 2"
contains "$OUT" "1 rank-1 downdate"
cat "$TMP/ids1" "$TMP/ids5" >"$TMP/ids15"
expect 0 "$LETHE" fit --data boston --out "$TMP/b4" --exclude "$TMP/ids15"
theta "$TMP/b1/model.safetensors" >"$TMP/t1"
theta "$TMP/b4/model.safetensors" >"$TMP/t4"
close "$TMP/t1" "$TMP/t4" 1e-9 && pass || fail "two requests differ from fit --exclude"

# The ledger holds every request. A crash between recording a request and
# writing the model leaves it pending: the next forget applies it (alone,
# or with a new request). A crash after the model was written leaves the
# record unapplied: the next forget marks it, removing nothing twice.
expect 0 "$LETHE" ledger verify "$TMP/b1"
contains "$OUT" "2 requests (2 applied, 0 pending)"
expect 0 "$LETHE" fit --data boston --out "$TMP/lg1"
cp -r "$TMP/lg1" "$TMP/lg3"
head -n 1 "$TMP/b1/ledger.log" >"$TMP/lg1/ledger.log" # request 1, received
cp "$TMP/lg1/ledger.log" "$TMP/lg3/ledger.log"
expect 0 "$LETHE" ledger verify "$TMP/lg1"
contains "$OUT" "(0 applied, 1 pending)"
expect 0 "$LETHE" forget --run "$TMP/lg1"
contains "$OUT" "applied 1 pending request from the ledger"
theta "$TMP/lg1/model.safetensors" >"$TMP/tlg1"
close "$TMP/tlg1" "$TMP/t3" 1e-9 && pass || fail "a pending request was not applied exactly"
expect 0 "$LETHE" ledger verify "$TMP/lg1"
contains "$OUT" "(1 applied, 0 pending)"
expect 0 "$LETHE" forget --run "$TMP/lg1"
contains "$OUT" "no pending requests"
cp -r "$TMP/lg1" "$TMP/lg2"
head -n 1 "$TMP/b1/ledger.log" >"$TMP/lg2/ledger.log"
expect 0 "$LETHE" forget --run "$TMP/lg2"
cmp -s "$TMP/lg1/model.safetensors" "$TMP/lg2/model.safetensors" && pass ||
    fail "a request already in the model file was applied twice"
expect 0 "$LETHE" ledger verify "$TMP/lg2"
contains "$OUT" "(1 applied, 0 pending)"
expect 0 "$LETHE" forget --run "$TMP/lg3" --ids "$TMP/ids5"
contains "$OUT" "request 2 recorded"
contains "$OUT" "applied 1 pending request"
theta "$TMP/lg3/model.safetensors" >"$TMP/tlg3"
close "$TMP/tlg3" "$TMP/t4" 1e-9 && pass || fail "pending + new request differ from fit --exclude"
expect 3 "$LETHE" forget --run "$TMP/lg3" --ids "$TMP/ids5"
contains "$ERR" "id 1 was already removed (ledger request 2)"
printf 'garbage\n' >>"$TMP/lg3/ledger.log"
cp "$TMP/lg3/model.safetensors" "$TMP/lg3.before"
expect 3 "$LETHE" forget --run "$TMP/lg3" --ids "$TMP/ids2"
one_line "$ERR"; contains "$ERR" "ledger.log"
cmp -s "$TMP/lg3.before" "$TMP/lg3/model.safetensors" && pass ||
    fail "a damaged ledger did not stop the forget"

# Two requests at once: the run directory's lock serialises them, so
# neither is lost.
expect 0 "$LETHE" fit --data boston --out "$TMP/b5"
printf '0\n' >"$TMP/ida"; printf '2\n6\n' >"$TMP/idb"
"$LETHE" forget --run "$TMP/b5" --ids "$TMP/ida" >/dev/null 2>&1 & pa=$!
"$LETHE" forget --run "$TMP/b5" --ids "$TMP/idb" >/dev/null 2>&1 & pb=$!
wait "$pa" && wait "$pb" && pass || fail "concurrent forgets failed"
expect 0 "$LETHE" inspect "$TMP/b5/model.safetensors"
contains "$OUT" "removed: 0,2,6"
contains "$OUT" "requests: 2"
[ "$(wc -l <"$TMP/b5/log.jsonl")" -eq 3 ] && pass || fail "a concurrent forget lost its log line"

# ---- ridge on diabetes: a batch from a split spec ----
expect 0 "$LETHE" fit --data diabetes --out "$TMP/d1" --lambda 0.5
expect 0 "$LETHE" forget --run "$TMP/d1" --ids random:0.1 --split-seed 3 --check --json
jcheck "$OUT" 'd["removed"] > 20 and d["check"]["rel_diff"] < 1e-9 and d["model"] == "ridge"' \
    && pass || fail "diabetes batch removal"
expect 0 "$LETHE" fit --data diabetes --out "$TMP/d2" --lambda 0.5 --exclude random:0.1 --split-seed 3
theta "$TMP/d1/model.safetensors" >"$TMP/td1"
theta "$TMP/d2/model.safetensors" >"$TMP/td2"
close "$TMP/td1" "$TMP/td2" 1e-9 && pass || fail "diabetes forget differs from fit --exclude"
# A split that overlaps what was removed is refused as a whole ...
expect 3 "$LETHE" forget --run "$TMP/d1" --ids range:300:400
contains "$ERR" "was already removed"
# ... and is fine on a fresh run.
expect 0 "$LETHE" fit --data diabetes --out "$TMP/d3"
expect 0 "$LETHE" forget --run "$TMP/d3" --ids range:300:400 --check
contains "$OUT" "check: a refit took"

# ---- logistic on breast-cancer ----
expect 0 "$LETHE" fit --data breast-cancer --out "$TMP/c1" --seed 5 --json
jcheck "$OUT" 'd["model"] == "logistic" and d["certified"] and d["test"]["accuracy"] > 93' \
    && pass || fail "breast-cancer logistic fit"
$PY - "$TMP/c1/model.safetensors" <<'PY' && pass || fail "the noise seed is in the model file"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert "seed" not in meta and "seed" not in json.loads(meta["config"]), meta
PY
grep -qE '"seed":[[:space:]]*5' "$TMP/c1/config.json" && pass || fail "config.json lacks the seed"
printf '0\n' >"$TMP/one"
expect 0 "$LETHE" forget --run "$TMP/c1" --ids "$TMP/one" --check --json
jcheck "$OUT" 'd["steps"] == 1 and not d["retrained"] and d["certified"] and 0 < d["beta"] <= d["budget"]' \
    && pass || fail "one certified removal"
jcheck "$OUT" 'd["check"]["grad_norm"] <= d["beta"] and d["check"]["rel_diff"] < 1e-2' \
    && pass || fail "the bound does not hold the gradient"
expect 3 "$LETHE" forget --run "$TMP/c1" --ids "$TMP/one"
contains "$ERR" "already removed"
expect 0 "$LETHE" inspect "$TMP/c1/model.safetensors"
contains "$OUT" "kind: logistic"
contains "$OUT" "spec: in=30;linear=2"

# A small budget runs out: the run retrains from scratch and says so.
expect 0 "$LETHE" fit --data breast-cancer --out "$TMP/c2" --sigma 0.2
retrained=0
for id in 1 2 3 6 8 10 11 12 13 14 15 16; do
    printf '%s\n' "$id" >"$TMP/one"
    "$LETHE" forget --run "$TMP/c2" --ids "$TMP/one" --json >"$OUT" 2>"$ERR" || continue
    if jcheck "$OUT" 'd["retrained"]' 2>/dev/null; then
        retrained=1
        jcheck "$OUT" 'd["retrains"] == 1 and d["beta"] < 1e-6 and d["certified"]' && pass \
            || fail "state after the retrain"
        break
    fi
done
[ "$retrained" -eq 1 ] && pass || fail "the budget never ran out"
printf '100\n201\n' >"$TMP/ids7"
"$LETHE" forget --run "$TMP/c2" --ids "$TMP/ids7" >"$OUT" 2>&1 && pass || fail "forget after a retrain"
contains "$OUT" "certified (eps 1, delta 0.0001)"
grep -q '"retrained":true' "$TMP/c2/log.jsonl" && pass || fail "the log does not record the retrain"

# sigma 0: every removal is an exact retrain.
expect 0 "$LETHE" fit --data breast-cancer --out "$TMP/c3" --sigma 0
contains "$OUT" "not certified"
expect 0 "$LETHE" forget --run "$TMP/c3" --ids "$TMP/ids1" --check --json
jcheck "$OUT" 'd["retrained"] and d["check"]["rel_diff"] == 0' && pass || fail "sigma 0 retrain"

# ---- runs of other kinds ----
expect 0 "$LETHE" train --data iris --model linear --epochs 1 --out "$TMP/m1" --quiet
cp "$TMP/m1/model.safetensors" "$TMP/m1.before"
expect 3 "$LETHE" forget --run "$TMP/m1" --ids "$TMP/ids1"
one_line "$ERR"; contains "$ERR" "a 'linear' run"; contains "$ERR" "lethe fit"
cmp -s "$TMP/m1.before" "$TMP/m1/model.safetensors" && pass || fail "forget touched an mlp run"
mkdir -p "$TMP/m2" && echo '{"data":"boston","model":"ridge"}' >"$TMP/m2/config.json"
cp "$TMP/m1/model.safetensors" "$TMP/m2/"
expect 3 "$LETHE" forget --run "$TMP/m2" --ids "$TMP/ids1"
contains "$ERR" "not a ridge or logistic model"

finish
