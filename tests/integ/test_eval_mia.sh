#!/usr/bin/env bash
# lethe eval mia: a tiny GPT trained a few steps on a small text; its lines
# are the members, other lines the non-members. The files, --json, AUCs in
# [0, 1] (LOSS telling the members apart), --ref, --no-gradnorm, a Hugging
# Face directory, a JSON array file, --fit; bad inputs (a missing or empty
# file, a JSON file not an array of texts, a line beyond the
# context, a reference with another tokenizer or vocabulary) exit 3 with one
# line and leave no output directory; usage errors exit 2.
. "$(dirname "$0")/lib.sh"

MEM="$TMP/members.txt" NON="$TMP/nonmembers.txt"
for i in $(seq 1 12); do
    echo "The ship number $i sailed north with the tide and $((i * 7)) barrels of oil."
done >"$MEM"
for i in $(seq 1 12); do
    echo "A lantern in window $i burned low while $((i * 3)) gulls slept on the roof."
done >"$NON"
for r in $(seq 1 20); do cat "$MEM"; done >"$TMP/train.txt"
TINY=(--model gpt --preset tiny --seq 32 --batch 4 --steps 60 --lr 3e-3 --quiet)
expect 0 "$LETHE" train "${TINY[@]}" --data "$TMP/train.txt" --out "$TMP/run"
# another run on other text: another tokenizer (and vocabulary); the run
# with that tokenizer: the same vocabulary, another tokenizer
for r in $(seq 1 20); do cat "$NON"; done >"$TMP/other.txt"
expect 0 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TMP/other.txt" --out "$TMP/other"
cp -r "$TMP/run" "$TMP/retok"
cp "$TMP/other/tokenizer.json" "$TMP/retok/tokenizer.json"

expect 0 "$LETHE" eval mia --help
contains "$OUT" "--members FILE"
expect 0 "$LETHE" eval --help
contains "$OUT" "mia "

expect 0 "$LETHE" eval mia --run "$TMP/run" --members "$MEM" --nonmembers "$NON" \
    --out "$TMP/e1" --json
cp "$OUT" "$TMP/e1.out"
for f in MIA_EVAL.json MIA_SUMMARY.json; do
    if [ -s "$TMP/e1/$f" ]; then pass; else fail "e1/$f missing"; fi
done
if cmp -s "$TMP/e1.out" "$TMP/e1/MIA_SUMMARY.json"; then pass; else
    fail "--json does not print the summary"; fi
/usr/bin/python3 - "$TMP/e1" >"$TMP/py" 2>&1 <<'PY'
import json, sys
d = sys.argv[1]
s = json.load(open(d + "/MIA_SUMMARY.json"))
e = json.load(open(d + "/MIA_EVAL.json"))
bad = []
names = ["loss", "zlib", "min_k", "min_k_plus_plus", "gradnorm"]
for a in names:
    for key in ("mia_" + a, "mia_%s_tpr_at_1fpr" % a, "mia_%s_tpr_at_5fpr" % a):
        if not 0 <= s[key] <= 1:
            bad.append(key)
    m = e["mia_" + a]
    if m["auc"] != s["mia_" + a] or len(m["forget"]["value_by_index"]) != 12 \
            or len(m["holdout"]["value_by_index"]) != 12:
        bad.append("eval " + a)
if "mia_reference" in s or "mia_reference" in e or s["ref"] is not None:
    bad.append("reference without --ref")
if s["k"] != 0.4 or s["n_forget"] != 12 or s["n_holdout"] != 12:
    bad.append("settings")
# the model has seen the members: LOSS tells them apart, and it memorised some
if s["mia_loss"] < 0.9:
    bad.append("mia_loss %g" % s["mia_loss"])
if not s["exact_memorization"] > 0:
    bad.append("exact_memorization %g" % s["exact_memorization"])
loss = e["mia_loss"]["forget"]["value_by_index"]["0"]["score"]
if not loss > 0:
    bad.append("loss score")
print(" ".join(bad) if bad else "ok")
PY
contains "$TMP/py" "ok"

# plain output; the files go to the run by default; --ref (the run itself:
# every difference 0, AUC one half); --no-gradnorm; --k
cp -r "$TMP/run" "$TMP/run2"
expect 0 "$LETHE" eval mia --run "$TMP/run2" --members "$MEM" --nonmembers "$NON" \
    --ref "$TMP/run" --no-gradnorm --k 0.2
if grep -Eq '^mia_reference +0\.5$' "$OUT"; then pass; else fail "mia_reference is not 0.5"; fi
contains "$OUT" "wrote $TMP/run2/MIA_EVAL.json"
if grep -q gradnorm "$TMP/run2/MIA_SUMMARY.json"; then fail "--no-gradnorm ran it"; else pass; fi
contains "$TMP/run2/MIA_SUMMARY.json" '"k":	0.2'

# JSON Lines input; a Hugging Face GPT-2 directory
HF=tests/ref/fixtures/gpt_hf_tiny
printf '{"text": "the winter in the north"}\n"on and on, there"\n' >"$TMP/m.jsonl"
printf 'in the heart of the river\nthere, then, the other one\n' >"$TMP/n.txt"
expect 0 "$LETHE" eval mia --run "$HF" --members "$TMP/m.jsonl" --nonmembers "$TMP/n.txt" \
    --out "$TMP/e2"
contains "$TMP/e2/MIA_SUMMARY.json" '"n_forget":	2'

# a JSON array (MUSE's privleak layout) reads as the same texts: the same scores
/usr/bin/python3 -c 'import json, sys; print(json.dumps([l.rstrip("\n") for l in open(sys.argv[1])], indent=0))' \
    "$MEM" >"$TMP/members.json"
expect 0 "$LETHE" eval mia --run "$TMP/run" --members "$TMP/members.json" --nonmembers "$NON" \
    --out "$TMP/e3"
if diff <(grep -v '"members"' "$TMP/e1/MIA_SUMMARY.json") \
    <(grep -v '"members"' "$TMP/e3/MIA_SUMMARY.json") >/dev/null; then pass; else
    fail "a .json members file scores otherwise than its .txt"; fi
# --fit: a text beyond the context is cut to it instead of refused
{ echo "the winter"; echo "the north wind"; head -c 200 /dev/zero | tr '\0' 'q'; echo; } >"$TMP/long.txt"
expect 0 "$LETHE" eval mia --run "$HF" --members "$TMP/m.jsonl" --nonmembers "$TMP/long.txt" \
    --fit --no-gradnorm --out "$TMP/e4"
contains "$TMP/e4/MIA_SUMMARY.json" '"texts_cut":	1'
contains "$TMP/e4/MIA_SUMMARY.json" '"n_holdout":	3'

# bad inputs: exit 3, one line, no output directory
bad() { # bad TEXT ARGS...: exit 3 with one line holding TEXT, nothing written
    local want=$1; shift
    expect 3 "$LETHE" eval mia "$@" --out "$TMP/bad"
    one_line "$ERR"
    contains "$ERR" "$want"
    if [ -e "$TMP/bad" ]; then fail "a failed run left $TMP/bad"; rm -rf "$TMP/bad"; else pass; fi
}
bad "$TMP/none.txt" --run "$TMP/run" --members "$TMP/none.txt" --nonmembers "$NON"
: >"$TMP/empty.txt"
bad "empty.txt" --run "$TMP/run" --members "$MEM" --nonmembers "$TMP/empty.txt"
bad "long.txt:3: the text has" --run "$HF" --members "$TMP/m.jsonl" --nonmembers "$TMP/long.txt"
printf 'a\n' >"$TMP/short.txt"
bad "short.txt:1:" --run "$HF" --members "$TMP/short.txt" --nonmembers "$TMP/n.txt"
printf '{"txt": "x"}\n' >"$TMP/bad.jsonl"
bad "bad.jsonl:1" --run "$TMP/run" --members "$TMP/bad.jsonl" --nonmembers "$NON"
echo '{"text": "a"}' >"$TMP/obj.json"
bad "obj.json: not a JSON array" --run "$TMP/run" --members "$TMP/obj.json" --nonmembers "$NON"
echo '["the ship sailed north", 7]' >"$TMP/num.json"
bad "num.json: item 2" --run "$TMP/run" --members "$TMP/num.json" --nonmembers "$NON"
bad "tokenizer is not" --run "$TMP/run" --members "$MEM" --nonmembers "$NON" --ref "$TMP/retok"
bad "vocabulary" --run "$TMP/run" --members "$MEM" --nonmembers "$NON" --ref "$TMP/other"
bad "vocabulary" --run "$TMP/run" --members "$MEM" --nonmembers "$NON" --ref "$HF"
bad "$TMP/nope" --run "$TMP/nope" --members "$MEM" --nonmembers "$NON"

# usage errors: exit 2
expect 2 "$LETHE" eval mia --run "$TMP/run" --members "$MEM"
expect 2 "$LETHE" eval mia --run "$TMP/run" --members "$MEM" --nonmembers "$NON" --k 0
expect 2 "$LETHE" eval mia --run "$TMP/run" --members "$MEM" --nonmembers "$NON" --bogus
finish
