#!/usr/bin/env bash
# The demo behind `make demo`: train a Fashion-MNIST classifier, retrain the
# oracle without a random 10% of the training set, make the original forget
# that 10% with approximate methods, and measure each against the oracle.
# Then exact unlearning: SISA forgets a sample and proves the result equals a
# retrain from scratch, byte for byte; S3T serves a deletion in milliseconds
# without a gradient step; ridge regression removes samples by downdates and
# checks the result against a refit.
set -euo pipefail
LETHE=${1:-build/lethe}
cd "$(dirname "$0")/.."
W=${LETHE_DEMO_DIR:-$(mktemp -d)}
mkdir -p "$W"
[ -n "${LETHE_DEMO_DIR:-}" ] || trap 'rm -rf "$W"' EXIT
FORGET=random:0.1
METHODS="ft l1-sparse salun"

# step TITLE CMD...: show and run a command.
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
# json_step TITLE FILE CMD...: run a command that prints one JSON line into FILE.
json_step() {
    printf '\n== %s\n$ %s\n' "$1" "${*:3}"
    "${@:3}" >"$2"
    printf '%s\n' "$(sed -e 's/"scores".*//' -e 's/.*"seconds":\([0-9.]*\).*/done in \1 s/' "$2")"
}
secs() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$1"; }
field() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([^,]*\),*$/\1/p" "$1" | head -n 1; }

json_step "Train the original model on all 60000 training images (the default MLP recipe)" \
    "$W/original.json" "$LETHE" train --data fashion-mnist --out "$W/original" --quiet --json
json_step "Retrain without the forget set ($FORGET: 10% of the samples), the oracle" \
    "$W/oracle.json" "$LETHE" train --data fashion-mnist --exclude "$FORGET" \
    --out "$W/oracle" --quiet --json
for m in $METHODS; do
    json_step "Make the original forget them with $m" "$W/$m.json" "$LETHE" unlearn \
        --run "$W/original" --method "$m" --forget "$FORGET" --out "$W/$m" --quiet --json
done

for r in original oracle $METHODS; do
    "$LETHE" eval classify --run "$W/$r" --forget "$FORGET" --oracle "$W/oracle" \
        --out "$W/eval-$r" >/dev/null
done
printf '\n== Each model against the oracle on the forget set (lethe eval classify)\n'
printf '%-10s %7s %7s %7s %7s %8s %7s %9s\n' model UA RA TA MIA avg_gap JS seconds
for r in original oracle $METHODS; do
    f="$W/eval-$r/CLASSIFY_SUMMARY.json"
    printf '%-10s %7.2f %7.2f %7.2f %7.2f %8.2f %7.4f %9.1f\n' "$r" "$(field "$f" UA)" \
        "$(field "$f" RA)" "$(field "$f" TA)" "$(field "$f" MIA_efficacy)" \
        "$(field "$f" avg_gap)" "$(field "$f" JS_divergence)" "$(secs "$W/$r.json")"
done
cat <<'TXT'
UA: 100 - accuracy on the forget set; RA, TA: retain and test accuracy; MIA: % of
the forget set a membership attack judges non-member; avg_gap: mean |difference|
to the oracle over UA, RA, TA and MIA (the oracle's own is 0); JS: Jensen-Shannon
divergence to the oracle's outputs on the forget set; seconds: training, or
unlearning, time. Metric definitions: docs/metrics.md.
TXT

printf '\n== Exact unlearning: SISA on digits, 4 shards x 2 slices\n'
step "Train" "$LETHE" sisa train --data digits --shards 4 --slices 2 --out "$W/sisa"
printf '42\n' >"$W/delete"
step "Delete sample 42: the request is ledgered, then its shard retrained" \
    "$LETHE" sisa forget "$W/sisa" --ids "$W/delete"
step "The same recipe trained from scratch without sample 42" \
    "$LETHE" sisa train --data digits --shards 4 --slices 2 --exclude "$W/delete" \
    --out "$W/sisa-ref"
if diff <(grep sha256 "$W/sisa/state.json") <(grep sha256 "$W/sisa-ref/state.json") >/dev/null
then
    echo "every shard's model file is byte-identical to the retrain: the deletion is exact"
else
    echo "shard files differ from the retrain" >&2
    exit 1
fi
step "The ledger of requests" "$LETHE" ledger show "$W/sisa"

printf '\n== S3T on digits: 4 shards x 2 slices (= layer groups), 2 slice orders each\n'
step "Train" "$LETHE" s3t train --data digits --shards 4 --slices 2 --out "$W/s3t"
step "Delete sample 42: every order is cut before its slice, no gradient step" \
    "$LETHE" s3t forget "$W/s3t" --ids "$W/delete"

printf '\n== Ridge regression on Boston housing: exact removal by Cholesky downdates\n'
step "Fit" "$LETHE" train --data boston --model ridge --out "$W/ridge"
"$LETHE" predict --run "$W/ridge" --split train --out "$W/ridge-train.csv" >/dev/null
sed -n '2,4p' "$W/ridge-train.csv" | cut -d, -f1 >"$W/ridge-delete"
step "Delete three samples; --check refits without them and compares" \
    "$LETHE" forget --run "$W/ridge" --ids "$W/ridge-delete" --check
