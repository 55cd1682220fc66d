#!/usr/bin/env bash
# lethe tofu run: the whole pipeline on a small benchmark and corpus; each
# stage's model equals the one its command gives when run by hand (at another
# thread count); a rerun keeps every stage, a changed setting reruns exactly
# the stages it reaches; options after -- reach the unlearn stage; bad input
# exits 2 or 3 (usage errors in one line), a failing stage 1 naming its log
# and leaving no directory, an interrupted one none either.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
D=$TMP/bench W=$TMP/wd
tofu_bench "$D" full.json
export OMP_NUM_THREADS=1
P=("$LETHE" tofu run --work "$W" --data "$D" --corpora "$D/train.jsonl" --base-steps 4
   --knowledge-epochs 2 --sft-epochs 2 --max-new 16)

expect 0 "$LETHE" tofu run --help
contains "$OUT" "--sft-epochs"
expect 0 "${P[@]}" -- --epochs 2
for row in target oracle unlearned "stages: base" "wrote $W/forget10/npo_gdr/TOFU_PIPELINE.json"; do
    contains "$OUT" "$row"
done
for s in base knowledge target forget10-oracle forget10-npo_gdr forget10-eval-target \
    forget10-eval-oracle forget10-eval-npo_gdr; do
    [ -s "$W/logs/$s.log" ] && pass || fail "no log for $s"
done
for d in base knowledge target forget10/oracle forget10/npo_gdr target/eval-forget10 \
    forget10/oracle/eval-forget10 forget10/npo_gdr/eval-forget10; do
    [ -s "$W/$d/pipeline.json" ] && pass || fail "no stamp in $d"
done
# the fine-tuning files: the authors' pairs and 3 copies of the 24
# general-knowledge pairs (knowledge.json: one copy)
for f in "knowledge.json 24" "target.json 172" "forget10/oracle.json 162"; do
    set -- $f
    [ "$(wc -l <"$W/$1")" -eq "$2" ] && pass || fail "$1 has $(wc -l <"$W/$1") rows, not $2"
done
cmp -s <(head -n 100 "$W/target.json") <($PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); print(json.dumps({"question": r["question"], "answer": r["answer"]}, separators=(",", ":"), ensure_ascii=False))' "$D/full.json") &&
    pass || fail "target.json does not start with full.json's pairs"
# the summary: the oracle against itself has Forget Quality 1; the numbers are
# the eval stages' own
$PY - "$W" <<'EOF' && pass || fail "TOFU_PIPELINE.json does not match the evaluations"
import json, sys
w = sys.argv[1]
s = json.load(open(w + "/forget10/npo_gdr/TOFU_PIPELINE.json"))
m = s["models"]
assert m["oracle"]["forget_quality"] == 1, m["oracle"]
for name, d in [("target", "target"), ("oracle", "forget10/oracle"), ("unlearned", "forget10/npo_gdr")]:
    e = json.load(open("%s/%s/eval-forget10/TOFU_SUMMARY.json" % (w, d)))
    for k in ("forget_quality", "model_utility", "forget_rougeL_recall", "forget_prob"):
        assert m[name][k] == e[k], (name, k, m[name][k], e[k])
assert s["split"] == "forget10" and s["method"] == "npo_gdr" and s["unlearn_args"] == ["--epochs", "2"]
for k in ("base", "knowledge", "target", "forget10-oracle", "forget10-npo_gdr"):
    assert s["seconds"][k] > 0, k
EOF
# each stage is its command: the same command by hand gives the same bytes
# as the pipeline's (OMP_NUM_THREADS=1 throughout: with a CBLAS, as in the
# sanitizer build, the last bits may depend on the thread count)
hand() {
    rm -rf "$TMP/hand"
    expect 0 "$LETHE" "$@" --out "$TMP/hand" --quiet
    cmp -s "$TMP/hand/model.safetensors" "$W/$d/model.safetensors" && pass ||
        fail "$d by hand differs from the pipeline's"
}
d=base hand train --model gpt --preset tiny --data "$D/train.jsonl" --steps 4 --seed 0
d=knowledge hand unlearn --run "$W/base" --method sft --forget "$W/knowledge.json" --epochs 2 \
    --lr 3e-3
d=target hand unlearn --run "$W/knowledge" --method sft --forget "$W/target.json" --epochs 2 \
    --lr 3e-3
d=forget10/oracle hand unlearn --run "$W/knowledge" --method sft \
    --forget "$W/forget10/oracle.json" --epochs 2 --lr 0.003
d=forget10/npo_gdr hand unlearn --run "$W/target" --method npo_gdr --forget "$D/forget10.json" \
    --retain "$D/retain90.json" --lr 1e-4 --epochs 2
expect 0 "$LETHE" eval tofu --run "$W/forget10/npo_gdr" --data "$D" --split forget10 \
    --oracle "$W/forget10/oracle" --max-new 16 --out "$TMP/eval-hand" --quiet
for f in TOFU_EVAL.json TOFU_SUMMARY.json; do
    cmp -s "$TMP/eval-hand/$f" "$W/forget10/npo_gdr/eval-forget10/$f" && pass ||
        fail "the evaluation's $f by hand differs from the pipeline's"
done
# the stamps record each stage's settings; the logs its summary
contains "$W/logs/forget10-npo_gdr.log" '"method":"npo"'
$PY - "$W" "$D" <<'EOF' && pass || fail "the unlearn stage's stamp does not record its settings"
import json, sys
s = json.load(open(sys.argv[1] + "/forget10/npo_gdr/pipeline.json"))
assert s["stage"] == "unlearn" and s["settings"]["retain"] == sys.argv[2] + "/retain90.json", s
assert s["settings"]["epochs"] == 2 and abs(s["settings"]["lr"] - 1e-4) < 1e-9, s
EOF

# a rerun keeps everything and changes nothing
cp "$W/forget10/npo_gdr/model.safetensors" "$TMP/before"
expect 0 "${P[@]}" -- --epochs 2
contains "$OUT" "forget10-eval-npo_gdr"
n=$(grep -o "(kept)" "$OUT" | wc -l)
[ "$n" -eq 8 ] && pass || fail "a rerun kept $n of 8 stages: $(cat "$OUT")"
cmp -s "$TMP/before" "$W/forget10/npo_gdr/model.safetensors" && pass || fail "rerun changed the model"

# other unlearn options rerun the unlearn stage and its evaluation only
expect 0 "${P[@]}" --quiet -- --epochs 3
[ ! -s "$ERR" ] && pass || fail "--quiet printed: $(head -n 3 "$ERR")"
for s in base knowledge target forget10-oracle forget10-eval-target forget10-eval-oracle; do
    contains "$OUT" " $s " && grep -q " $s [0-9.]* s (kept)" "$OUT" && pass || fail "$s not kept"
done
grep -q "forget10-npo_gdr [0-9.]* s," "$OUT" && pass || fail "the unlearn stage was not rerun"
# another method under its own name leaves npo_gdr alone
expect 0 "${P[@]}" --quiet --method ga --name ga-test -- --epochs 2
[ -s "$W/forget10/ga-test/TOFU_PIPELINE.json" ] && [ -s "$W/forget10/npo_gdr/TOFU_PIPELINE.json" ] &&
    pass || fail "ga-test or npo_gdr missing"
contains "$W/forget10/ga-test/TOFU_PIPELINE.json" '"method":	"ga"'
# WHP: its stage is the reinforced model (sft on the forget set), its
# evaluation the target's logits adjusted by it, as eval tofu --whp by hand
expect 0 "${P[@]}" --quiet --method whp -- --epochs 2
contains "$W/forget10/whp/pipeline.json" '"sft"'
contains "$W/forget10/whp/eval-forget10/pipeline.json" '"whp":'
expect 0 "$LETHE" eval tofu --run "$W/target" --whp "$W/forget10/whp" --data "$D" \
    --split forget10 --oracle "$W/forget10/oracle" --max-new 16 --out "$TMP/whp-hand"
for f in TOFU_EVAL.json TOFU_SUMMARY.json; do
    cmp -s "$TMP/whp-hand/$f" "$W/forget10/whp/eval-forget10/$f" && pass ||
        fail "WHP's $f by hand differs from the pipeline's"
done
$PY - "$W" <<'EOF' && pass || fail "WHP's evaluation is the target's"
import json, sys
m = json.load(open(sys.argv[1] + "/forget10/whp/TOFU_PIPELINE.json"))["models"]
e = json.load(open(sys.argv[1] + "/forget10/whp/eval-forget10/TOFU_SUMMARY.json"))
assert e["whp_alpha"] == 5 and m["unlearned"]["forget_prob"] < m["target"]["forget_prob"], (e, m)
EOF
expect 3 "$LETHE" eval tofu --run "$W/target" --whp "$TMP/none" --data "$D" --split forget10
expect 2 "$LETHE" eval tofu --run "$W/target" --whp "$W/forget10/whp" --whp-alpha -1 \
    --data "$D" --split forget10
# a changed fine-tuning recipe reruns target and oracle, not base and knowledge
expect 0 "${P[@]}" --sft-epochs 3 --quiet -- --epochs 2
grep -q " knowledge [0-9.]* s (kept)" "$OUT" && pass || fail "knowledge not kept"
grep -q " target [0-9.]* s," "$OUT" && pass || fail "target not rerun"

# without --data the benchmark is a stage too
G=("$LETHE" tofu run --work "$TMP/gen" --authors 10 --qa 2 --corpora "$D/train.jsonl"
   --base-steps 2 --knowledge-epochs 1 --sft-epochs 1 --max-new 4 --method ga --quiet)
expect 0 "${G[@]}" -- --epochs 1
[ -s "$TMP/gen/data/manifest.json" ] && [ -s "$TMP/gen/data/pipeline.json" ] && pass ||
    fail "the data stage left no benchmark"
contains "$TMP/gen/data/pipeline.json" '"authors":	10'
expect 0 "${G[@]}" -- --epochs 1
n=$(grep -o "(kept)" "$OUT" | wc -l)
[ "$n" -eq 9 ] && pass || fail "a rerun kept $n of 9 stages: $(cat "$OUT")"

# bad input
expect 3 "$LETHE" tofu run --work "$W" --data "$TMP/none" --quiet
one_line "$ERR"
expect 3 "$LETHE" tofu run --work "$W" --data "$D" --method bogus
one_line "$ERR"
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --split retain90
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --method sft
expect 2 "$LETHE" tofu run --work "$W" --data "$D" stray
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --sft-epochs 0
expect 2 "$LETHE" tofu
expect 3 "$LETHE" tofu run --work "$W" --data "$D" --split forget33 --quiet
one_line "$ERR"
# the unlearn stage's settings are checked before any stage runs
expect 2 "${P[@]}" --quiet --name bad -- --lr -1
one_line "$ERR"
contains "$ERR" "--lr -1 is out of range"
expect 2 "${P[@]}" --quiet --name bad -- --forget x.json
one_line "$ERR"
[ ! -e "$W/forget10/bad" ] && pass || fail "a refused run left a directory"
# a stage whose library call fails: exit 1 naming it, its error and its log
expect 1 "${P[@]}" --quiet --name bad2 -- --epochs 2 --retain-loss embed
one_line "$ERR"
contains "$ERR" "forget10-bad2 failed: npo: the embed retain loss is RMU's only"
contains "$ERR" "$W/logs/forget10-bad2.log"
contains "$W/logs/forget10-bad2.log" "forget10-bad2: npo: the embed retain loss is RMU's only"
[ ! -e "$W/forget10/bad2" ] && pass || fail "a failed stage left its directory"
# usage errors are one line with the verb's prefix
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --bogus
one_line "$ERR"; contains "$ERR" "lethe tofu run: unknown option '--bogus'"
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --jobs
one_line "$ERR"; contains "$ERR" "lethe tofu run: option '--jobs' needs a value"
expect 2 "$LETHE" tofu run --work "$W" --data "$D" --jobs 0
one_line "$ERR"; contains "$ERR" "lethe tofu run: --jobs 0 is out of range: it takes 1 to 64"
# a stale stage is replaced: when its rerun fails, its directory (and the old
# run in it) is gone, so it never looks complete
expect 0 "${P[@]}" --quiet --name bad3 -- --epochs 2
[ -s "$W/forget10/bad3/model.safetensors" ] && pass || fail "no bad3 run"
expect 1 "${P[@]}" --quiet --name bad3 -- --epochs 2 --retain-loss embed
[ ! -e "$W/forget10/bad3" ] && pass || fail "a failed stage left its directory"
# SIGINT during a stage: the process dies by it, the stage's directory and
# temporary files go, the kept stages stay
timeout --preserve-status -s INT 3 "${P[@]}" --quiet --name sig -- --epochs 100000 >"$OUT" 2>"$ERR"
rc=$?
[ "$rc" -eq 130 ] && pass || fail "exit $rc after SIGINT"
[ ! -e "$W/forget10/sig" ] && pass || fail "an interrupted stage left its directory"
left=$(find "$W" -name '*.tmp.*')
[ -z "$left" ] && pass || fail "temporary files left: $left"
[ -s "$W/target/pipeline.json" ] && [ -s "$W/forget10/npo_gdr/model.safetensors" ] && pass ||
    fail "the interruption removed a kept stage"

finish
