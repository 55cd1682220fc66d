#!/usr/bin/env bash
# lethe audit on a tiny benchmark: a base model, the target and the oracle
# fine-tuned from it (one tokenizer), and gradient ascent from the target.
# Usage errors (2); bad inputs (3, one line): another tokenizer, a split
# that does not exist, entities that do not divide it, an attack set that
# touches V. The relearning probe's recovery recomputed from its per-seed
# figures, exactly 0 when the oracle audits itself; the unrelated attack;
# the quantization probe's three precisions; the related-text attack; the
# latent and neighbour probes on a larger benchmark; the verdict and intent.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
D=$TMP/bench

expect 0 "$LETHE" audit --help
contains "$OUT" "Usage: lethe audit"
expect 0 "$LETHE" help audit

# Usage errors: 2.
expect 2 "$LETHE" audit
expect 2 "$LETHE" audit bogus --run a --target b --oracle c --data d
contains "$ERR" "unknown probe"
expect 2 "$LETHE" audit relearn --run a --target b --data d
contains "$ERR" "--oracle"
expect 2 "$LETHE" audit --run a --target b --oracle c --data d --attack bogus
expect 2 "$LETHE" audit --run a --target b --oracle c --data d --steps 101
expect 2 "$LETHE" audit --run a --target b --oracle c --data d --lr 0
expect 2 "$LETHE" audit --run a --target b --oracle c --data d extra
expect 3 "$LETHE" audit --run "$TMP/none" --target b --oracle c --data d
one_line "$ERR"

tofu_bench "$D" full.json real_authors_perturbed.json world_facts_perturbed.json
expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/train.jsonl" --vocab 400 --seq 64 \
    --batch 8 --steps 40 --lr 3e-3 --val 0 --out "$TMP/base" --quiet
U="$LETHE unlearn --quiet --batch 8"
expect 0 $U --run "$TMP/base" --method sft --forget "$D/full.json" --epochs 4 --lr 3e-3 \
    --out "$TMP/target"
expect 0 $U --run "$TMP/base" --method sft --forget "$D/retain90.json" --epochs 4 --lr 3e-3 \
    --out "$TMP/oracle"
expect 0 $U --run "$TMP/target" --method ga --forget "$D/forget10.json" --epochs 3 --lr 1e-3 \
    --out "$TMP/ga"
A=(--target "$TMP/target" --oracle "$TMP/oracle" --data "$D" --quiet)
R=(--steps 5 --seeds 2 --batch 4 --lr 1e-3)

# Bad inputs: 3, one line.
expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/train.jsonl" --vocab 300 --seq 64 \
    --batch 8 --steps 2 --val 0 --out "$TMP/other" --quiet
expect 3 "$LETHE" audit relearn --run "$TMP/ga" --target "$TMP/target" --oracle "$TMP/other" \
    --data "$D" --quiet
one_line "$ERR"; contains "$ERR" "tokenizer is not the unlearned model's"
expect 3 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" --split forget42
one_line "$ERR"; contains "$ERR" "forget42: no such split"
expect 3 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" --per-entity 3
one_line "$ERR"; contains "$ERR" "entities"
# a T entity that holds a V answer (whichever entity T is)
cp -r "$D" "$TMP/leak"
$PY - "$TMP/leak/forget10.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
a0, a6 = rows[0]["answer"], rows[6]["answer"]
rows[1]["answer"] += " " + a6   # entity 0 holds entity 1's answer 6
rows[5]["answer"] += " " + a0   # entity 1 holds entity 0's answer 0
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
EOF
expect 3 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]/$D/$TMP/leak}" "${R[@]}"
one_line "$ERR"; contains "$ERR" "touches V"

# The relearning probe: the figures and the recovery from the per-seed values.
expect 0 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" "${R[@]}" --out "$TMP/a1" --json
if $PY - "$TMP/a1" <<'EOF'; then pass; else fail "relearn figures inconsistent"; fi
import json, sys, statistics as st
s = json.load(open(sys.argv[1] + "/AUDIT_SUMMARY.json"))
e = json.load(open(sys.argv[1] + "/AUDIT_EVAL.json"))["relearn"]
r = s["relearn"]
assert r["steps"] == [0, 5] and r["disjoint"] is True and r["n_attack"] == 5 and r["n_V"] == 5
assert sorted(e["T_entities"] + e["V_entities"]) == [0, 1] and len(e["T_entities"]) == 1
gap = e["target_accuracy"] - e["oracle"][0]["accuracy"][0]
for k in range(2):
    rec = [(m["accuracy"][k] - o["accuracy"][k]) / gap for m, o in zip(e["model"], e["oracle"])]
    assert abs(st.mean(rec) - r["recovery"][k]) < 1e-12, k
    lift = [(o["accuracy"][k] - o["accuracy"][0]) / gap for o in e["oracle"]]
    assert abs(st.mean(lift) - r["oracle_lift"][k]) < 1e-12, k
# the attack moves the models: later checkpoints differ from step 0
assert e["model"][0]["logprob"][1] != e["model"][0]["logprob"][0]
assert r["verdict"] in ("removal", "suppression") and r["evidence"].startswith("relearn: ")
assert s["verdict"] == r["verdict"] and s["method"] == "ga" and s["intent"] == "removal"
assert s["matches_intent"] == (r["verdict"] == "removal")
EOF
# the same bits twice
expect 0 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" "${R[@]}" --out "$TMP/a2"
cmp -s "$TMP/a1/AUDIT_EVAL.json" "$TMP/a2/AUDIT_EVAL.json" && pass || fail "reruns differ"
contains "$OUT" "relearn "
contains "$OUT" "verdict "

# The oracle audited against itself: recovery 0 at every step, removal.
expect 0 "$LETHE" audit relearn --run "$TMP/oracle" "${A[@]}" "${R[@]}" --out "$TMP/self" --json
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["relearn"]; sys.exit(0 if r["recovery"] == [0, 0] and r["verdict"] == "removal" else 1)' \
    "$TMP/self/AUDIT_SUMMARY.json" && pass || fail "the oracle recovers from itself"

# Unrelated fine-tuning: 10 retain pairs.
expect 0 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" "${R[@]}" --attack retain \
    --out "$TMP/ret" --json
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["relearn"]; sys.exit(0 if r["attack"] == "retain" and r["n_attack"] == 10 else 1)' \
    "$TMP/ret/AUDIT_SUMMARY.json" && pass || fail "the retain attack"

# Benign related text: V's questions, none stating one of V's answers or facts.
expect 0 "$LETHE" audit relearn --run "$TMP/ga" "${A[@]}" "${R[@]}" --attack related \
    --out "$TMP/rel" --json
if $PY - "$TMP/rel/AUDIT_SUMMARY.json" <<'EOF'; then pass; else fail "the related attack"; fi
import json, sys
r = json.load(open(sys.argv[1]))["relearn"]
assert r["attack"] == "related" and 1 <= r["n_attack"] <= r["n_V"] and r["disjoint"]
assert "on V's questions" in r["evidence"], r["evidence"]
EOF

# The in-context probe: four conditions per model, the shares from the means.
expect 0 "$LETHE" audit incontext --run "$TMP/ga" "${A[@]}" --context 2 --out "$TMP/ic" --json
if $PY - "$TMP/ic" <<'EOF'; then pass; else fail "incontext figures inconsistent"; fi
import json, sys
s = json.load(open(sys.argv[1] + "/AUDIT_SUMMARY.json"))["incontext"]
e = json.load(open(sys.argv[1] + "/AUDIT_EVAL.json"))["incontext"]
assert s["context"] == 2 and e["shown"] == [2, 2], e["shown"]
for m in ("target", "model", "oracle"):
    n = {"none_C": 4, "none_H": 6, "context_C": 4, "context_H": 6}
    for k, want in n.items():
        assert len(e[m][k]) == want, (m, k)
        assert abs(sum(e[m][k]) / want - s[m][k]) < 1e-12
# the shown facts' questions differ from their plain ones only by the context
assert e["oracle"]["context_C"] != e["oracle"]["none_C"]
assert abs(s["oracle_retaught"] - (s["oracle"]["context_C"] - s["oracle"]["none_C"])) < 1e-12
assert abs(s["residual_lift"] - (s["model"]["context_H"] - s["oracle"]["context_H"])) < 1e-12
assert s["verdict"] in ("removal", "suppression", None) and s["evidence"].startswith("incontext: ")
EOF
expect 3 "$LETHE" audit incontext --run "$TMP/ga" "${A[@]}" --context 5
one_line "$ERR"; contains "$ERR" "--context 5"

# The prompt attacks: four ways of asking, ROUGE-L means and shares.
expect 0 "$LETHE" audit prompts --run "$TMP/ga" "${A[@]}" --max-new 8 --shots 1 --out "$TMP/pr" \
    --json
if $PY - "$TMP/pr" <<'EOF'; then pass; else fail "prompts figures inconsistent"; fi
import json, sys
s = json.load(open(sys.argv[1] + "/AUDIT_SUMMARY.json"))["prompts"]
e = json.load(open(sys.argv[1] + "/AUDIT_EVAL.json"))["prompts"]
assert s["shots"] == 1 and s["max_new"] == 8
ways = ("original", "paraphrased", "many_shot", "masked")
for m in ("target", "model", "oracle"):
    for w in ways:
        assert len(e[m][w]) == 10 and abs(sum(e[m][w]) / 10 - s[m][w]) < 1e-12, (m, w)
for w in ways:
    lead = s["target"][w] - s["oracle"][w]
    want = (s["model"][w] - s["oracle"][w]) / lead if lead > 0.02 else None
    got = s["share"][w]
    assert (want is None and got is None) or abs(want - got) < 1e-12, (w, want, got)
assert s["verdict"] in ("removal", "suppression", None) and s["evidence"].startswith("prompts: ")
EOF

# The latent probe and the neighbour probe need the generator's facts and a
# benchmark large enough to share them: 40 authors of 20 questions.
D2=$TMP/b40
expect 0 "$LETHE" data make authors --authors 40 --qa 20 --out "$D2" --quiet
B=(--target "$TMP/target" --oracle "$TMP/oracle" --data "$D2" --quiet)
expect 0 "$LETHE" audit probe --run "$TMP/ga" "${B[@]}" --out "$TMP/lp" --json
expect 0 "$LETHE" audit probe --run "$TMP/oracle" "${B[@]}" --out "$TMP/lpo" --json
expect 0 "$LETHE" audit probe --run "$TMP/target" "${B[@]}" --out "$TMP/lpt" --json
if $PY - "$TMP" <<'EOF'; then pass; else fail "probe figures inconsistent"; fi
import json, sys
t = sys.argv[1]
s = json.load(open(t + "/lp/AUDIT_SUMMARY.json"))["probe"]
e = json.load(open(t + "/lp/AUDIT_EVAL.json"))["probe"]
H = 6  # the tiny preset's 4 blocks, the embeddings and ln_f
assert s["classes"] == len(e["classes"]) >= 2 and e["classes"] == sorted(e["classes"])
assert s["n_retain"] > 50 and s["n_forget"] > 0 and s["n_holdout"] > 0
for m in ("target", "model", "oracle"):
    for k in ("retain_heldout", "forget", "holdout", "lambda"):
        assert len(e[m][k]) == H, (m, k)
    assert all(0 <= x <= 1 for x in e[m]["forget"])
    assert all(x in (1e3, 1e2, 1e1, 1, 0.1) for x in e[m]["lambda"])
    # a share of n rows: a multiple of 1/n
    assert all(abs(x * s["n_forget"] - round(x * s["n_forget"])) < 1e-9 for x in e[m]["forget"])
assert e["target"]["forget"] == s["target_forget"] and e["oracle"]["forget"] == s["oracle_forget"]
best = None
for l in range(H):
    lead = s["target_forget"][l] - s["oracle_forget"][l]
    want = (s["model_forget"][l] - s["oracle_forget"][l]) / lead if lead > 1e-9 else None
    got = s["share"][l]
    assert (want is None and got is None) or abs(want - got) < 1e-12, l
    if l >= 1 and lead >= 0.1 and (best is None or want > s["share"][best]):
        best = l
assert s["layer"] == best
assert s["verdict"] == (None if best is None else
                        "suppression" if s["share"][best] >= 0.5 else "removal")
# the oracle read as the model: the same states, the same probe, share 0
o = json.load(open(t + "/lpo/AUDIT_SUMMARY.json"))["probe"]
assert o["model_forget"] == o["oracle_forget"]
assert all(x in (0, None) for x in o["share"]) and o["verdict"] in (None, "removal")
# the target read as the model: share 1
p = json.load(open(t + "/lpt/AUDIT_SUMMARY.json"))["probe"]
assert all(x is None or abs(x - 1) < 1e-12 for x in p["share"])
assert p["verdict"] in (None, "suppression")
EOF
expect 0 "$LETHE" audit neighbours --run "$TMP/ga" "${B[@]}" --out "$TMP/nb" --json
expect 0 "$LETHE" audit neighbours --run "$TMP/oracle" "${B[@]}" --out "$TMP/nbo" --json
if $PY - "$TMP" <<'EOF'; then pass; else fail "neighbour figures inconsistent"; fi
import json, sys
t = sys.argv[1]
s = json.load(open(t + "/nb/AUDIT_SUMMARY.json"))
n = s["neighbours"]
assert "verdict" not in n and s["verdict"] == "none"
assert n["n_neighbours"] > 0 and n["n_distant"] > 0
assert abs(n["damage_neighbours"] - (n["oracle_neighbours"] - n["model_neighbours"])) < 1e-12
assert abs(n["damage_distant"] - (n["oracle_distant"] - n["model_distant"])) < 1e-12
assert abs(n["side_effect"] - (n["damage_neighbours"] - n["damage_distant"])) < 1e-12
o = json.load(open(t + "/nbo/AUDIT_SUMMARY.json"))["neighbours"]
assert o["damage_neighbours"] == 0 and o["damage_distant"] == 0 and o["side_effect"] == 0
assert (o["n_neighbours"], o["n_distant"]) == (n["n_neighbours"], n["n_distant"])
EOF
# Both say why they did not run on a benchmark without the generator's
# manifest, and refuse one whose rows are not the manifest's.
cp -r "$D2" "$TMP/nokeys" && rm "$TMP/nokeys/manifest.json"
expect 0 "$LETHE" audit probe --run "$TMP/ga" "${B[@]/$D2/$TMP/nokeys}" --out "$TMP/nk"
contains "$OUT" "probe: not run: it needs the facts"
cp -r "$D2" "$TMP/edited"
sed -i '3s/?"/ today?"/' "$TMP/edited/forget10.json"
expect 3 "$LETHE" audit neighbours --run "$TMP/ga" "${B[@]/$D2/$TMP/edited}"
one_line "$ERR"; contains "$ERR" "not the benchmark its manifest.json describes"

# The prompt attacks through GUARD and ECO on the target: per way, the share
# flagged, the recall let through, what was blocked.
# (one author of the larger benchmark: the guard calibrates on its retain pairs)
expect 0 "$LETHE" guard fit --run "$TMP/target" --data "$D2" --split forget01 --alpha 0.2 \
    --out "$TMP/g.guard" --quiet
expect 0 "$LETHE" audit prompts --run "$TMP/target" "${B[@]}" --split forget01 --max-new 8 \
    --shots 1 --guard "$TMP/g.guard" --out "$TMP/prg" --json
if $PY - "$TMP/prg" <<'EOF'; then pass; else fail "guarded prompts inconsistent"; fi
import json, sys
s = json.load(open(sys.argv[1] + "/AUDIT_SUMMARY.json"))["prompts"]
e = json.load(open(sys.argv[1] + "/AUDIT_EVAL.json"))["prompts"]
for g in ("guard", "eco"):
    for w in ("original", "paraphrased", "many_shot", "masked"):
        x, rec = s["guards"][g][w], e["guards"][g][w]
        assert len(rec) == 20 and abs(sum(rec) / 20 - x["rougeL"]) < 1e-12, (g, w)
        assert 0 <= x["flagged"] <= 1 and x["flagged"] * 20 == round(x["flagged"] * 20)
        plain = s["model"][w]
        assert x["blocked"] is None if plain == 0 else abs(x["blocked"] - (1 - x["rougeL"] / plain)) < 1e-12
        lead = s["target"][w] - s["oracle"][w]
        want = (x["rougeL"] - s["oracle"][w]) / lead if lead > 0.02 else None
        assert (want is None and x["share"] is None) or abs(want - x["share"]) < 1e-12, (g, w)
# the target's questions name their targets: GUARD flags them as written
assert s["guards"]["guard"]["original"]["flagged"] > 0
EOF

# The quantization probe, and every probe at once.
expect 0 "$LETHE" audit --run "$TMP/ga" "${A[@]}" "${R[@]}" --max-new 8 --group 32 \
    --out "$TMP/all" --json
if $PY - "$TMP/all" <<'EOF'; then pass; else fail "quantize figures inconsistent"; fi
import json, sys
s = json.load(open(sys.argv[1] + "/AUDIT_SUMMARY.json"))
e = json.load(open(sys.argv[1] + "/AUDIT_EVAL.json"))
q = s["quantize"]
assert "relearn" in s and "incontext" in s and "prompts" in s and q["group"] == 32
# the benchmark of 20 authors of 5 questions is too small for these two
assert s["probe"]["verdict"] is None and "too small" in s["probe"]["evidence"]
assert "too small" in s["neighbours"]["evidence"]
for m in ("target", "model", "oracle"):
    for p in ("f32", "int8", "int4"):
        x = q[m][p]
        n = len(e["quantize"][m][p])
        assert n == 10, n
        mean = sum(r["prob"] for r in e["quantize"][m][p]) / n
        assert abs(mean - x["forget_prob"]) < 1e-12
    # 8 bits barely move the forget probability; the oracle against itself: FQ 1
    assert abs(q[m]["int8"]["forget_prob"] - q[m]["f32"]["forget_prob"]) < 0.02, m
assert q["oracle"]["f32"]["forget_quality"] == 1
assert q["verdict"] in ("removal", "suppression", None)
assert s["verdict"] in ("removal", "suppression")
EOF

finish
