#!/usr/bin/env bash
# The demo behind `make demo`: a tour of what lethe does today, on the data
# sets scripts/deps.sh installed and the fixtures in tests/ref/.
set -euo pipefail
LETHE=${1:-build/lethe}
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "The data sets lethe knows and where they are" "$LETHE" data list
step "One of them in detail" "$LETHE" data info fashion-mnist
step "A model file: every tensor, its dtype, shape and sum" \
    "$LETHE" inspect tests/ref/fixtures/twin_cnn.safetensors

# Two loss samples as a membership-inference audit sees them: members (low
# loss) against non-members. KS and AUC say how separable they are.
awk 'BEGIN { srand(1); for (i = 0; i < 500; i++) print -log(rand()) * 0.5 }' >"$tmp/members"
awk 'BEGIN { srand(2); for (i = 0; i < 500; i++) print -log(rand()) * 0.8 }' >"$tmp/nonmembers"
{ sed 's/.*/1/' "$tmp/nonmembers"; sed 's/.*/0/' "$tmp/members"; } >"$tmp/labels"
cat "$tmp/nonmembers" "$tmp/members" >"$tmp/scores"
step "Are member and non-member losses distinguishable? (KS test)" \
    "$LETHE" stats ks "$tmp/members" "$tmp/nonmembers"
step "The same as a loss-threshold attack (ROC AUC)" \
    "$LETHE" stats auc --labels "$tmp/labels" --scores "$tmp/scores"

printf 'the cat sat on the mat\nan apple a day keeps the doctor away\n' >"$tmp/ref"
printf 'the cat was sitting on the mat\nan orange a day\n' >"$tmp/hyp"
step "How much of a reference answer a model still reproduces (ROUGE-L)" \
    "$LETHE" stats rouge --ref "$tmp/ref" --hyp "$tmp/hyp" --stem
