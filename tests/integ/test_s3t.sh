#!/usr/bin/env bash
# lethe s3t: usage, bad input, training, deletion without a gradient step
# (the served models are stored checkpoints, unchanged), the ledger, a dead
# ensemble, and the deletion-capacity simulation.
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" s3t --help
contains "$OUT" "Usage: lethe s3t train"
expect 2 "$LETHE" s3t
expect 2 "$LETHE" s3t frobnicate
expect 2 "$LETHE" s3t train --data digits
expect 2 "$LETHE" s3t train --data digits --out "$TMP/x" --order zigzag
expect 2 "$LETHE" s3t train --data digits --out "$TMP/x" --prior "$TMP/p"
expect 2 "$LETHE" s3t forget "$TMP/x"
expect 3 "$LETHE" s3t status "$TMP/missing"
one_line "$ERR"; contains "$ERR" "not an S3T directory"
expect 3 "$LETHE" s3t train --data digits --model linear --out "$TMP/x"
# The recipe's mlp for digits has two hidden layers: four slices need more.
expect 3 "$LETHE" s3t train --data digits --slices 4 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "a deeper model"
[ ! -e "$TMP/x" ] && pass || fail "a refused train left a directory"
expect 3 "$LETHE" s3t train --data digits --order bms --slices 2 --budget 3 --out "$TMP/x"
expect 2 "$LETHE" s3t train --data digits --slices 30 --out "$TMP/x"
contains "$ERR" "lethe s3t: --slices 30 is out of range: it takes 1 to 24"
expect 2 "$LETHE" s3t simulate --runs 0
contains "$ERR" "lethe s3t: --runs 0 is out of range: it takes 1 to 10000000"
expect 2 "$LETHE" s3t simulate --frobnicate
one_line "$ERR"; contains "$ERR" "lethe s3t: unknown option '--frobnicate'"
expect 2 "$LETHE" s3t train --data digits --out "$TMP/x" --frobnicate
one_line "$ERR"; contains "$ERR" "lethe s3t: unknown option '--frobnicate'"
expect 0 "$LETHE" s3t simulate --shards 3 --slices 3 --runs 10 --quiet
[ ! -s "$OUT" ] && pass || fail "s3t simulate --quiet printed"

T="--data digits --limit 600 --widths 32-32-32 --shards 3 --slices 3 --epochs 4"
expect 0 "$LETHE" s3t train $T --out "$TMP/base"
contains "$OUT" "27 prefix checkpoints"
expect 3 "$LETHE" s3t train $T --out "$TMP/base"
contains "$ERR" "already exists and is not empty"
expect 0 "$LETHE" s3t status "$TMP/base" --json
one_line "$OUT"; contains "$OUT" '"live":3'
expect 0 "$LETHE" s3t eval "$TMP/base" --json
contains "$OUT" '"shards":[{"shard":0,"prefix":3'
expect 0 "$LETHE" s3t predict "$TMP/base" --shard 2
expect 3 "$LETHE" s3t predict "$TMP/base" --shard 9

# The same settings train byte-identical checkpoints.
expect 0 "$LETHE" s3t train $T --out "$TMP/twin"
cmp -s "$TMP/base/state.json" "$TMP/twin/state.json" && pass || fail "training is not deterministic"

# Ids to delete: training ids from a prediction dump of the train split.
expect 0 "$LETHE" train --data digits --limit 600 --epochs 1 --out "$TMP/run" --quiet
expect 0 "$LETHE" predict --run "$TMP/run" --split train --out "$TMP/tr.csv"
sed -n '2,3p' "$TMP/tr.csv" | cut -d, -f1 >"$TMP/del"
printf '999999\n' >"$TMP/unknown"
expect 3 "$LETHE" s3t forget "$TMP/base" --ids "$TMP/unknown"
one_line "$ERR"; contains "$ERR" "is not in the digits training set"
[ ! -e "$TMP/base/ledger.log" ] || [ ! -s "$TMP/base/ledger.log" ] && pass \
    || fail "a refused request reached the ledger"

(cd "$TMP/base/ckpt" && sha256sum -- *) | sort >"$TMP/before.sha"
cp -r "$TMP/base" "$TMP/once"
expect 0 "$LETHE" s3t forget "$TMP/once" --ids "$TMP/del"
contains "$OUT" "request 1 recorded: 2 ids"
contains "$OUT" "no gradient step"
# No checkpoint is new or changed, and the served files are among them.
(cd "$TMP/once/ckpt" && sha256sum -- *) | sort >"$TMP/after.sha"
[ -z "$(comm -13 "$TMP/before.sha" "$TMP/after.sha")" ] && pass \
    || fail "forget wrote or changed a checkpoint"
[ "$(wc -l <"$TMP/after.sha")" -lt "$(wc -l <"$TMP/before.sha")" ] && pass \
    || fail "forget removed no checkpoint trained on the deleted ids"
for h in $(grep -o '"sha256":	"[0-9a-f]*"' "$TMP/once/state.json" | cut -d'"' -f4 | sort -u); do
    grep -q "^$h " "$TMP/before.sha" && pass || fail "served file $h was not trained"
done
expect 3 "$LETHE" s3t forget "$TMP/once" --ids "$TMP/del"
contains "$ERR" "already deleted by request 1"
expect 0 "$LETHE" ledger verify "$TMP/once"
contains "$OUT" "1 applied, 0 pending"
expect 0 "$LETHE" s3t status "$TMP/once" --json
contains "$OUT" '"requests":1,"pending":0,"applied":1'
expect 0 "$LETHE" s3t eval "$TMP/once"
contains "$OUT" "ensemble"

# The same request on the twin gives the same state: deletion is deterministic.
expect 0 "$LETHE" s3t forget "$TMP/twin" --ids "$TMP/del" --json
one_line "$OUT"; contains "$OUT" '"gradient_steps":0'
cmp -s "$TMP/once/state.json" "$TMP/twin/state.json" && pass || fail "forget is not deterministic"

# A SISA directory is refused by s3t.
expect 0 "$LETHE" sisa train --data digits --limit 300 --shards 2 --epochs 1 --out "$TMP/sisa"
expect 3 "$LETHE" s3t status "$TMP/sisa"
one_line "$ERR"; contains "$ERR" "is a SISA directory"
expect 3 "$LETHE" s3t forget "$TMP/sisa" --ids "$TMP/del"

# A damaged ledger stops every command.
cp -r "$TMP/once" "$TMP/damaged"
sed -i '1s/"req":1/"req":2/' "$TMP/damaged/ledger.log"
expect 3 "$LETHE" s3t status "$TMP/damaged"
one_line "$ERR"; contains "$ERR" "checksum mismatch"

# One order per shard and one shard: deleting from its first slice kills it.
expect 0 "$LETHE" s3t train --data digits --limit 300 --shards 1 --slices 2 --budget 1 \
    --epochs 2 --out "$TMP/one"
expect 1 "$LETHE" s3t forget "$TMP/one" --ids class:0 --json
contains "$OUT" '"live":0'
one_line "$ERR"; contains "$ERR" "full retrain"
expect 0 "$LETHE" s3t status "$TMP/one"
contains "$OUT" "dead"
expect 1 "$LETHE" s3t eval "$TMP/one"
one_line "$ERR"; contains "$ERR" "full retrain"
expect 3 "$LETHE" s3t forget "$TMP/one" --ids class:0

# BMS with a deletion prior: the rarest slice leads the first order.
printf '0.5\n0.1 # rarely deleted\n0.4\n' >"$TMP/prior"
expect 0 "$LETHE" s3t train --data digits --limit 300 --widths 16-16-16 --shards 2 --slices 3 \
    --budget 2 --order bms --prior "$TMP/prior" --epochs 1 --out "$TMP/bms"
expect 0 "$LETHE" s3t status "$TMP/bms" --json
contains "$OUT" '"sequences":[{"slices":[1,'
printf '0.5 x\n' >"$TMP/badprior"
expect 3 "$LETHE" s3t train --data digits --limit 300 --widths 16-16-16 --slices 3 \
    --order bms --prior "$TMP/badprior" --out "$TMP/bad"

# The capacity simulation: S3T outlasts SISA at the same number of shards.
expect 0 "$LETHE" s3t simulate --shards 5 --slices 6 --budget 6 --runs 200 --json
one_line "$OUT"
ratio=$(grep -o '"ratio":[0-9.]*' "$OUT" | cut -d: -f2)
awk -v r="$ratio" 'BEGIN { exit !(r >= 3) }' && pass || fail "capacity ratio $ratio < 3"
expect 0 "$LETHE" s3t simulate --shards 5 --slices 6 --budget 1 --runs 50
contains "$OUT" "m H_m"
expect 3 "$LETHE" s3t simulate --shards 5 --slices 6 --budget 7 --order bms
# Skewed deletions: BMS leads with the rarely deleted slices and lasts longer.
printf '0.3 0.3 0.3 0.04 0.03 0.03\n' >"$TMP/skew"
expect 0 "$LETHE" s3t simulate --slices 6 --budget 2 --prior "$TMP/skew" --runs 200 --json
cyc=$(grep -o '"model_dies":{"mean":[0-9.]*' "$OUT" | tail -n 1 | cut -d: -f3)
expect 0 "$LETHE" s3t simulate --slices 6 --budget 2 --prior "$TMP/skew" --runs 200 \
    --order bms --json
bms=$(grep -o '"model_dies":{"mean":[0-9.]*' "$OUT" | tail -n 1 | cut -d: -f3)
awk -v a="$bms" -v b="$cyc" 'BEGIN { exit !(a > 2 * b) }' && pass \
    || fail "bms ($bms) does not outlast cyclic ($cyc) under a skewed prior"
expect 3 "$LETHE" s3t simulate --slices 4 --prior "$TMP/skew"
expect 2 "$LETHE" s3t simulate --runs 0
expect 0 "$LETHE" s3t simulate --shards 3 --slices 3 --runs 10 --quiet
[ ! -s "$OUT" ] && pass || fail "s3t simulate --quiet printed"
finish
