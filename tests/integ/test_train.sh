#!/usr/bin/env bash
# lethe train and predict on small tasks: byte-identical reruns, the oracle
# with --exclude, predictions, and bad input exiting 2 or 3.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

expect 0 "$LETHE" train --help
contains "$OUT" "Usage: lethe train"
contains "$OUT" "fashion-mnist"
expect 0 "$LETHE" predict --help
contains "$OUT" "Usage: lethe predict"

# Usage errors: 2.
expect 2 "$LETHE" train --data digits
contains "$ERR" "--out"
expect 2 "$LETHE" train --data digits --out "$TMP/x" --epochs 0
expect 2 "$LETHE" train --data digits --out "$TMP/x" --lr abc
expect 2 "$LETHE" train --data digits --out "$TMP/x" --frobnicate
expect 2 "$LETHE" predict
# Bad input: 3, one line naming the problem.
expect 3 "$LETHE" train --data no-such-set --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "unknown data set 'no-such-set'"
expect 3 "$LETHE" train --data iris --model cnn --out "$TMP/x"
contains "$ERR" "a cnn needs images"
expect 3 "$LETHE" train --data digits --model transformer --out "$TMP/x"
expect 3 "$LETHE" train --data digits --exclude class:10 --out "$TMP/x"
contains "$ERR" "class:K"
expect 3 "$LETHE" train --data boston --exclude class:1 --out "$TMP/x"
LETHE_DATA_DIR="$TMP/empty" expect 3 "$LETHE" train --data boston-prices --out "$TMP/x"
LETHE_DATA_DIR="$TMP/empty" expect 3 "$LETHE" train --data cps-wages --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "not installed"
[ ! -e "$TMP/x/model.safetensors" ] && pass || fail "a failed train left a model behind"

# The same recipe twice: byte-identical files.
expect 0 "$LETHE" train --data digits --out "$TMP/a" --epochs 5 --seed 3 --quiet
contains "$OUT" "accuracy"
expect 0 "$LETHE" train --data digits --out "$TMP/b" --epochs 5 --seed 3 --quiet
for f in model.safetensors config.json log.jsonl; do
    cmp -s "$TMP/a/$f" "$TMP/b/$f" && pass || fail "$f differs between identical runs"
done
expect 0 "$LETHE" train --data digits --out "$TMP/c" --epochs 5 --seed 4 --quiet
cmp -s "$TMP/a/model.safetensors" "$TMP/c/model.safetensors" && fail "seed has no effect" || pass

# The model file names its architecture and provenance.
expect 0 "$LETHE" inspect "$TMP/a/model.safetensors"
contains "$OUT" "spec: in=64;linear=64;relu;linear=64;relu;linear=10"
contains "$OUT" "data: digits"
contains "$OUT" "method: train"

# The default digits recipe learns: test accuracy well above chance.
expect 0 "$LETHE" train --data digits --out "$TMP/d" --quiet --json
one_line "$OUT"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["test"]["accuracy"] > 93, d' \
    "$OUT" && pass || fail "digits test accuracy below 93%"

# The oracle of a whole class never predicts it.
expect 0 "$LETHE" train --data digits --out "$TMP/o" --exclude class:3 --quiet --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["excluded"] > 100, d' \
    "$OUT" && pass || fail "class 3 not excluded"
expect 0 "$LETHE" predict --run "$TMP/o" --split class:3 --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["accuracy"] < 5, d' \
    "$OUT" && pass || fail "the oracle still predicts the excluded class"
expect 0 "$LETHE" predict --run "$TMP/d" --split class:3 --json
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["accuracy"] > 90, d' \
    "$OUT" && pass || fail "the full model does not predict class 3"
expect 0 "$LETHE" inspect "$TMP/o/model.safetensors"
contains "$OUT" "method: retrain"

# Predictions: --out writes one CSV line per sample; accuracy recomputed
# from it matches the reported one.
expect 0 "$LETHE" predict --run "$TMP/d" --split test --out "$TMP/pred.csv" --json
$PY - "$OUT" "$TMP/pred.csv" <<'PY' && pass || fail "predictions CSV disagrees with the accuracy"
import csv, json, sys
acc = json.load(open(sys.argv[1]))["accuracy"]
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 381, len(rows)
mine = 100 * sum(r["prediction"] == r["truth"] for r in rows) / len(rows)
assert abs(mine - acc) < 1e-9, (mine, acc)
PY
# Id files: ids of training samples (test ids are not in the training set).
expect 0 "$LETHE" predict --run "$TMP/d" --split train --out "$TMP/tr.csv"
sed -n '2,4p' "$TMP/tr.csv" | cut -d, -f1 >"$TMP/three"
first=$(head -n 1 "$TMP/three")
test_id=$(sed -n 2p "$TMP/pred.csv" | cut -d, -f1)
printf '%s\n%s\n' "$first" "$test_id" >"$TMP/ids"
expect 3 "$LETHE" train --data digits --exclude "$TMP/ids" --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "id $test_id is not in the digits training set"
printf '%s\nfive\n' "$first" >"$TMP/ids"
expect 3 "$LETHE" train --data digits --exclude "ids:$TMP/ids" --out "$TMP/x"
contains "$ERR" "'five' is not a sample id"
printf '# three training ids\n%s\n\n' "$(cat "$TMP/three")" >"$TMP/ids"
expect 0 "$LETHE" train --data digits --exclude "$TMP/ids" --out "$TMP/x" --epochs 1 --json --quiet
contains "$OUT" '"excluded":3'

expect 0 "$LETHE" predict --run "$TMP/d" --split "$TMP/three" --json
contains "$OUT" '"n":3'

# Regression: L1 and MSE in the data's units.
expect 0 "$LETHE" train --data boston --out "$TMP/r" --quiet --epochs 30
expect 0 "$LETHE" predict --run "$TMP/r" --json --out "$TMP/rp.csv"
$PY - "$OUT" "$TMP/rp.csv" <<'PY' && pass || fail "boston errors disagree with the CSV"
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
err = [float(r["prediction"]) - float(r["truth"]) for r in rows]
l1 = sum(abs(e) for e in err) / len(err)
mse = sum(e * e for e in err) / len(err)
assert abs(l1 - d["l1"]) < 1e-4 * l1 and abs(mse - d["mse"]) < 1e-4 * mse, (l1, mse, d)
assert 5 < sum(float(r["truth"]) for r in rows) / len(rows) < 50  # $1000s, not z-scores
assert l1 < 4.5, l1
PY
expect 0 "$LETHE" predict --run "$TMP/r" --split range:30:60 --json
expect 3 "$LETHE" predict --run "$TMP/r" --split range:60:30

# Bad runs: missing, not a model, another architecture.
expect 3 "$LETHE" predict --run "$TMP/missing"
one_line "$ERR"
mkdir -p "$TMP/bad" && cp "$TMP/d/config.json" "$TMP/bad/"
printf 'not a model' >"$TMP/bad/model.safetensors"
expect 3 "$LETHE" predict --run "$TMP/bad"
one_line "$ERR"
cp "$TMP/r/model.safetensors" "$TMP/bad/model.safetensors"
expect 3 "$LETHE" predict --run "$TMP/bad"
one_line "$ERR"; contains "$ERR" "features"
expect 3 "$LETHE" predict --run "$TMP/d" --data boston
finish
