#!/usr/bin/env bash
# lethe eval tofu: TOFU's metrics on a tiny GPT run over a small generated
# benchmark. The files and their keys, the per-question values against the
# summary's means, Forget Quality 1 against itself and below 1 against a
# different model, Model Utility as the harmonic mean of its nine numbers,
# the same bits twice, OpenUnlearning's memorisation convention, and bad
# inputs.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
D=$TMP/bench
# a corpus of the benchmark's question-answer pairs and the general-knowledge ones
tofu_bench "$D" full.json real_authors_perturbed.json world_facts_perturbed.json
train() { # seed out
    expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/train.jsonl" --vocab 400 --seq 64 \
        --batch 8 --steps 80 --lr 3e-3 --val 0 --seed "$1" --out "$2" --quiet
}
train 1 "$TMP/a"
train 2 "$TMP/b"
E="$LETHE eval tofu --data $D --split forget10 --max-new 16"
expect 0 $E --run "$TMP/a" --oracle "$TMP/a" --out "$TMP/self" --json
contains "$OUT" '"forget_quality":'
expect 0 $E --run "$TMP/a" --oracle "$TMP/b" --out "$TMP/ab"
contains "$OUT" "wrote $TMP/ab/TOFU_EVAL.json"
cp "$OUT" "$TMP/ab.out"
expect 0 $E --run "$TMP/a" --oracle "$TMP/b" --out "$TMP/ab2"
expect 0 $E --run "$TMP/a" --oracle "$TMP/b" --out "$TMP/ab" --quiet
[ ! -s "$ERR" ] && cmp -s "$OUT" "$TMP/ab.out" && cmp -s "$TMP/ab/TOFU_EVAL.json" \
    "$TMP/ab2/TOFU_EVAL.json" && pass || fail "eval tofu --quiet: stderr, or another stdout or file"
expect 0 $E --run "$TMP/b" --out "$TMP/b_alone" --no-generate
if cmp -s "$TMP/ab/TOFU_SUMMARY.json" "$TMP/ab2/TOFU_SUMMARY.json" &&
   cmp -s "$TMP/ab/TOFU_EVAL.json" "$TMP/ab2/TOFU_EVAL.json"; then pass; else fail "reruns differ"; fi

if $PY - "$TMP/self" "$TMP/ab" "$D" "$TMP/b_alone" <<'EOF'; then pass; else fail "TOFU files inconsistent"; fi
import json, math, sys
from scipy.stats import ks_2samp
selfd, ab, d, b_alone = sys.argv[1:5]
s_self = json.load(open(selfd + "/TOFU_SUMMARY.json"))
s = json.load(open(ab + "/TOFU_SUMMARY.json"))
e = json.load(open(ab + "/TOFU_EVAL.json"))
assert s_self["forget_quality"] == 1.0, s_self["forget_quality"]
# Forget Quality: scipy's KS test on the two models' forget truth ratios
ta = [x["truth_ratio"] for x in e["forget"]]
tb = [x["truth_ratio"] for x in json.load(open(b_alone + "/TOFU_EVAL.json"))["forget"]]
assert ta != tb
p = ks_2samp(ta, tb).pvalue
assert abs(p - s["forget_quality"]) <= 1e-9 * max(p, 1e-300), (p, s["forget_quality"])
rows = {"forget": "forget10_perturbed.json", "retain": "retain_perturbed.json",
        "real_authors": "real_authors_perturbed.json", "world_facts": "world_facts_perturbed.json"}
nine = []
for name, f in rows.items():
    n = sum(1 for _ in open(d + "/" + f))
    assert len(e[name]) == n, (name, len(e[name]), n)
    for k in ("prob", "rougeL_recall", "exact_memorization", "extraction_strength"):
        mean = sum(x[k] for x in e[name]) / n
        assert abs(mean - s["%s_%s" % (name, k)]) < 1e-9, (name, k)
    tr = [x["truth_ratio"] for x in e[name]]
    agg = [min(r, 1 / r) if r > 0 else 0.0 for r in tr] if name == "forget" else \
        [max(0.0, 1 - r) for r in tr]
    assert abs(sum(agg) / n - s[name + "_truth_ratio"]) < 1e-9, name
    for x in e[name]:
        assert 0 <= x["prob"] <= 1 and 0 <= x["rougeL_recall"] <= 1 and isinstance(x["generated"], str)
    if name != "forget":
        nine += [s[name + "_prob"], s[name + "_rougeL_recall"], s[name + "_truth_ratio"]]
hm = 0.0 if min(nine) == 0 else len(nine) / sum(1 / v for v in nine)  # as scipy's hmean
assert abs(hm - s["model_utility"]) <= 1e-9 * hm, (hm, s["model_utility"])
EOF

# without an oracle: no Forget Quality; without generation: no ROUGE-L, no utility
expect 0 $E --run "$TMP/a" --out "$TMP/alone" --no-generate --json
contains "$OUT" '"forget_quality":	null'
contains "$OUT" '"model_utility":	null'
contains "$OUT" '"forget_rougeL_recall":	null'

# membership inference on the forget split against holdout10 (--mia): the
# AUCs from the per-question scores, the reference attack with --mia-ref, and
# the files of a run without them the same bytes without the added keys
expect 0 $E --run "$TMP/a" --out "$TMP/mia" --no-generate --mia-ref "$TMP/b" --mia-k 0.3
contains "$OUT" "mia_reference "
expect 0 $E --run "$TMP/a" --out "$TMP/nomia" --no-generate
expect 0 $E --run "$TMP/a" --out "$TMP/mia2" --no-generate --mia
if $PY - "$TMP/mia" "$TMP/nomia" "$TMP/alone" "$D" "$TMP/mia2" <<'EOF'; then pass; else fail "eval tofu: the attacks"; fi
import json, sys
mia, nomia, alone, d, mia2 = sys.argv[1:6]
s = json.load(open(mia + "/TOFU_SUMMARY.json"))
e = json.load(open(mia + "/TOFU_EVAL.json"))
assert s["mia_holdout"] == "holdout10" and s["mia_ref"].endswith("/b") and s["mia_k"] == 0.3
n_f = sum(1 for _ in open(d + "/forget10_perturbed.json"))
n_h = sum(1 for _ in open(d + "/holdout10.json"))
for a in ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"):
    k = "mia_" + a
    f = [e[k]["forget"]["value_by_index"][str(i)]["score"] for i in range(n_f)]
    h = [e[k]["holdout"]["value_by_index"][str(i)]["score"] for i in range(n_h)]
    assert len(e[k]["forget"]["value_by_index"]) == n_f and len(e[k]["holdout"]["value_by_index"]) == n_h
    # AUC: members (forget) the positives, lower scores more member-like
    auc = sum((x < y) + 0.5 * (x == y) for x in f for y in h) / (n_f * n_h)
    assert 0 <= s[k] <= 1 and abs(auc - s[k]) < 1e-12 and e[k]["auc"] == s[k], (k, auc, s[k])
    assert abs(sum(f) / n_f - e[k]["forget"]["agg_value"]) < 1e-9, k
    for t in ("tpr_at_1fpr", "tpr_at_5fpr"):
        assert 0 <= s[k + "_" + t] <= 1, (k, t)
assert e["mia_loss"]["forget"] != e["mia_reference"]["forget"]
# the keys before the attacks' are the bytes of a run without them
for f in ("TOFU_SUMMARY.json", "TOFU_EVAL.json"):
    a, b, c, m2 = (open(x + "/" + f).read() for x in (nomia, alone, mia, mia2))
    assert a == b and c.startswith(a[:-3]) and c[len(a) - 3] == ",", f
    assert m2.startswith(a[:-3]) and m2[len(a) - 3] == ",", f
assert not any(k.startswith("mia") for k in json.load(open(nomia + "/TOFU_SUMMARY.json")))
m2 = json.load(open(mia2 + "/TOFU_SUMMARY.json"))
assert "mia_loss" in m2 and "mia_reference" not in m2 and m2["mia_ref"] is None
EOF
expect 3 $E --run "$TMP/a" --no-generate --out "$TMP/x" --mia-ref "$TMP/nowhere"
one_line "$ERR"
contains "$ERR" "$TMP/nowhere"
rm "$D/holdout05.json"
expect 3 $E --run "$TMP/a" --no-generate --out "$TMP/x" --split forget05 --mia
one_line "$ERR"
contains "$ERR" "holdout05.json"
expect 0 $E --run "$TMP/a" --no-generate --out "$TMP/f05" --split forget05
! grep -q mia_ "$OUT" && pass || fail "eval tofu: the attacks without --mia"
expect 2 $E --run "$TMP/a" --mia-k 0

# OpenUnlearning's exact memorisation and extraction strength: only those move
expect 0 $E --run "$TMP/a" --out "$TMP/ou" --no-generate --memorization openunlearning
if $PY - "$TMP/alone" "$TMP/ou" <<'EOF'; then pass; else fail "--memorization openunlearning"; fi
import json, sys
paper, ou = sys.argv[1:3]
sp, so = (json.load(open(d + "/TOFU_SUMMARY.json")) for d in (paper, ou))
ep, eo = (json.load(open(d + "/TOFU_EVAL.json")) for d in (paper, ou))
assert so.pop("memorization") == "openunlearning" and "memorization" not in sp
moved = 0
for name in ("forget", "retain", "real_authors", "world_facts"):
    for a, b in zip(ep[name], eo[name]):
        assert a["prob"] == b["prob"] and a["truth_ratio"] == b["truth_ratio"], name
        assert 0 <= b["exact_memorization"] <= 1 and 0 < b["extraction_strength"] <= 1, b
        moved += a["exact_memorization"] != b["exact_memorization"]
        moved += a["extraction_strength"] != b["extraction_strength"]
    for k in ("exact_memorization", "extraction_strength"):
        mean = sum(x[k] for x in eo[name]) / len(eo[name])
        assert abs(mean - so["%s_%s" % (name, k)]) < 1e-12, (name, k)
assert moved > 0
EOF
expect 2 $E --run "$TMP/a" --memorization ou
contains "$ERR" "paper or openunlearning"

# bad inputs
expect 2 "$LETHE" eval tofu --run "$TMP/a" --split forget10
contains "$ERR" "--data"
expect 3 $E --run "$TMP/a" --split forget99 --out "$TMP/x"
one_line "$ERR"
contains "$ERR" "forget99_perturbed.json"
expect 3 "$LETHE" eval tofu --run "$TMP/nowhere" --data "$D" --split forget10
one_line "$ERR"
expect 2 $E --run "$TMP/a" --max-new 0
expect 2 "$LETHE" eval tofu --run "$TMP/a" --data "$D" --split ../forget10
finish
