#!/usr/bin/env bash
# lethe eval muse: a small MUSE-News layout (1 forget, 2 retain, 2 holdout
# documents) and a tiny GPT trained a few steps on its forget set. The files
# and their keys, ROUGE scores in [0, 100], the retain VerbMem pairs cut from
# privleak/retain.json, AUCs in [0, 1] with MUSE's AUC
# 1 - lethe's, --json, the oracle against itself giving PrivLeak 0, no
# oracle giving null, --mia's attacks equal to eval mia's; bad inputs (a
# directory of another layout, a missing file, a file of another shape, an
# oracle or reference with another tokenizer or vocabulary) exit 3 with one line and leave no output directory; usage
# errors exit 2.
. "$(dirname "$0")/lib.sh"

D="$TMP/muse"
expect 0 "$LETHE" data make muse-news --forget 1 --retain 2 --holdout 2 --quiet --out "$D"
TINY=(--model gpt --preset tiny --seq 64 --batch 4 --lr 3e-3 --quiet)
expect 0 "$LETHE" train "${TINY[@]}" --steps 10 --data "$D/raw/forget.jsonl" --out "$TMP/run"
# the run with another tokenizer (same vocabulary size)
for r in $(seq 1 30); do echo "A lantern in window $r burned low while gulls slept."; done \
    >"$TMP/other.txt"
expect 0 "$LETHE" train "${TINY[@]}" --steps 1 --data "$TMP/other.txt" --out "$TMP/other"
cp -r "$TMP/run" "$TMP/retok"
cp "$TMP/other/tokenizer.json" "$TMP/retok/tokenizer.json"

expect 0 "$LETHE" eval muse --help
contains "$OUT" "--oracle RUN"
expect 0 "$LETHE" eval --help
contains "$OUT" "muse "

expect 0 "$LETHE" eval muse --run "$TMP/run" --data "$D" --oracle "$TMP/run" --out "$TMP/e1" \
    --json --quiet
cp "$OUT" "$TMP/e1.out"
for f in MUSE_EVAL.json MUSE_SUMMARY.json; do
    if [ -s "$TMP/e1/$f" ]; then pass; else fail "e1/$f missing"; fi
done
if cmp -s "$TMP/e1.out" "$TMP/e1/MUSE_SUMMARY.json"; then pass; else
    fail "--json does not print the summary"; fi
/usr/bin/python3 - "$TMP/e1" "$D" >"$TMP/py" 2>&1 <<'PY'
import json, sys
d, data = sys.argv[1], sys.argv[2]
s = json.load(open(d + "/MUSE_SUMMARY.json"))
e = json.load(open(d + "/MUSE_EVAL.json"))
n = {k: len(json.load(open(data + "/" + f))) for k, f in
     [("forget_verbmem_ROUGE", "verbmem/forget.json"), ("forget_knowmem_ROUGE",
      "knowmem/forget_qa.json"), ("retain_knowmem_ROUGE", "knowmem/retain_qa.json")]}
# retain VerbMem: the retain passages of more than 64 words, cut after word 64
import re
cuts = []
for t in json.load(open(data + "/privleak/retain.json")):
    w = list(re.finditer(r"[^ \t\n\v\f\r]+", t))
    if len(w) > 64:
        cuts.append((t[:w[63].end()], t[w[64].start():]))
n["retain_verbmem_ROUGE"] = len(cuts)
bad = []
if not cuts or s["n_retain_verbmem"] != len(cuts):
    bad.append("n_retain_verbmem")
for (prompt, gt), v in zip(cuts, e["retain_verbmem_ROUGE"]["value_by_index"].values()):
    if v["input"] != prompt or not gt.startswith(v["ground_truth"]) or not v["ground_truth"]:
        bad.append("retain verbmem pair")
for k in n:
    if not 0 <= s[k] <= 100:
        bad.append(k)
    by = e[k]["value_by_index"]
    if len(by) != n[k] or e[k]["agg_value"] != s[k]:
        bad.append("eval " + k)
    mean = sum(v["rougeL_f1"] for v in by.values()) / len(by)
    if abs(mean - s[k]) > 1e-9:
        bad.append("mean " + k)
    for v in by.values():
        if not 0 <= v["rougeL_f1"] <= 100 or v["prompt_tokens"] + \
                (128 if "verbmem" in k else 32) > 256:
            bad.append("item " + k)
        if "knowmem" in k and ("\n\n" in v["generation"] or
                                           "Question:" in v["generation"]):
            bad.append("stop " + k)
if s["privleak"] != 0:
    bad.append("privleak against itself %r" % s["privleak"])
if not 0 <= s["privleak_auc"] <= 1 or s["privleak_auc"] != s["privleak_auc_oracle"]:
    bad.append("aucs")
if abs(s["privleak_auc"] + s["mia_min_k"] - 1) > 1e-12:
    bad.append("auc conventions")
if not 0 <= s["exact_memorization"] <= 1 or not 0 <= s["extraction_strength"] <= 1:
    bad.append("memorisation")
if s["k"] != 0.4 or s["verbmem_max_new"] != 128 or s["knowmem_max_new"] != 32:
    bad.append("settings")
p = e["privleak"]
if len(p["forget"]["value_by_index"]) != s["n_privleak_forget"] or \
        len(p["holdout"]["value_by_index"]) != s["n_privleak_holdout"] or "oracle" not in p:
    bad.append("eval privleak")
print(" ".join(bad) if bad else "ok")
PY
contains "$TMP/py" "ok"

# plain output; the files go to the run by default; no oracle: PrivLeak null
cp -r "$TMP/run" "$TMP/run2"
expect 0 "$LETHE" eval muse --run "$TMP/run2" --data "$D" --knowmem-max-new 8 \
    --verbmem-max-new 16 --quiet
if grep -Eq '^privleak +-$' "$OUT"; then pass; else fail "privleak is not null"; fi
contains "$OUT" "wrote $TMP/run2/MUSE_EVAL.json"
contains "$TMP/run2/MUSE_SUMMARY.json" '"oracle":	null'
contains "$TMP/run2/MUSE_SUMMARY.json" '"knowmem_max_new":	8'

# --mia: every attack on the PrivLeak passages, the scores of lethe eval mia
# --fit on the same passages; --mia-ref adds the reference attack
expect 0 "$LETHE" train --model gpt --init "$TMP/run" --seq 64 --batch 4 --lr 3e-3 --quiet \
    --steps 2 --data "$TMP/other.txt" --out "$TMP/ref"
expect 0 "$LETHE" eval muse --run "$TMP/run" --data "$D" --mia-ref "$TMP/ref" --out "$TMP/e3" \
    --knowmem-max-new 2 --verbmem-max-new 4 --quiet
expect 0 "$LETHE" eval mia --run "$TMP/run" --ref "$TMP/ref" --members "$D/privleak/forget.json" \
    --nonmembers "$D/privleak/holdout.json" --fit --out "$TMP/m3" --quiet
/usr/bin/python3 - "$TMP/e3/MUSE_SUMMARY.json" "$TMP/m3/MIA_SUMMARY.json" \
    "$TMP/e1/MUSE_SUMMARY.json" <<'PY' && pass || fail "eval muse --mia differs from eval mia"
import json, sys
s, m, e1 = (json.load(open(f)) for f in sys.argv[1:])
for a in ["loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"]:
    for k in ["mia_" + a, "mia_%s_tpr_at_1fpr" % a, "mia_%s_tpr_at_5fpr" % a]:
        assert abs(s[k] - m[k]) < 1e-9, (k, s[k], m[k])
assert s["mia_min_k"] == e1["mia_min_k"] and s["mia_ref"].endswith("/ref"), s
PY
if grep -q '"mia_loss"' "$TMP/e1/MUSE_SUMMARY.json"; then fail "attacks without --mia"; else pass; fi
expect 2 "$LETHE" eval muse --run "$TMP/run" --data "$D" --mia --whp "$TMP/run"
one_line "$ERR"

# --guard: a guard fitted on this directory (one target, the forget
# document; retain passages less privleak's); every forget VerbMem prompt is
# flagged, each guarded continuation holds no forbidden n-gram its prompt
# does not; the summary's verdict keys; another model's guard is refused
expect 0 "$LETHE" guard fit --run "$TMP/run" --data "$D" --alpha 0.2 --out "$TMP/g" --json
cp "$OUT" "$TMP/fit.json"
expect 0 "$LETHE" eval muse --run "$TMP/run" --data "$D" --guard "$TMP/g" --mode guard \
    --out "$TMP/eg" --verbmem-max-new 24 --knowmem-max-new 4 --quiet
expect 0 "$LETHE" guard list "$TMP/g" --full --json
cp "$OUT" "$TMP/list.json"
/usr/bin/python3 - "$TMP/fit.json" "$TMP/list.json" "$TMP/eg" "$D" >"$TMP/py" 2>&1 <<'PY'
import json, re, sys
fit, lst = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
d, data = sys.argv[3], sys.argv[4]
s = json.load(open(d + "/MUSE_SUMMARY.json"))
e = json.load(open(d + "/MUSE_EVAL.json"))
words = lambda t: [w.group() for w in re.finditer(r"[^ \t\n\v\f\r]+", t)]
def passages(path):
    out = []
    for line in open(path):
        w = words(json.loads(line)["text"])
        out += [w[i:i + 144] for i in range(0, len(w), 144) if len(w[i:i + 144]) > 64]
    return out
held = json.load(open(data + "/privleak/retain.json"))
retain = passages(data + "/raw/retain1.jsonl") + passages(data + "/raw/retain2.jsonl")
bad = []
if (fit["layout"], fit["targets"], fit["unassigned"]) != ("muse", 1, 0):
    bad.append("fit layout")
if fit["forget_pairs"] != len(passages(data + "/raw/forget.jsonl")) != fit["answers"]:
    bad.append("forget pairs")
if fit["retain_excluded"] != len(held) or fit["retain_pairs"] != len(retain) - len(held):
    bad.append("retain pairs %r" % ((fit["retain_pairs"], fit["retain_excluded"]),))
norm = lambda t: " ".join(re.findall(r"[a-z0-9\x80-\uffff]+", t.lower()))
grams = [norm(g) for t in lst["targets"] for g in t["ngram_texts"]]
for k in ["forget_verbmem", "forget_knowmem", "retain_knowmem", "retain_verbmem"]:
    for v in ("flagged", "refused"):
        if not 0 <= s["%s_%s" % (k, v)] <= 1:
            bad.append(k + v)
if s["forget_verbmem_flagged"] != 1 or s["guard_mode"] != "guard":
    bad.append("verbmem not flagged")
for v in e["forget_verbmem_ROUGE"]["value_by_index"].values():
    if not v["flagged"]:
        bad.append("item not flagged")
    p, g = " %s " % norm(v["input"]), " %s " % norm(v["generation"])
    for n in grams:
        if n and " %s " % n in g and " %s " % n not in p:
            bad.append("forbidden %r" % n)
print(" ".join(bad) if bad else "ok")
PY
contains "$TMP/py" "ok"
expect 0 "$LETHE" guard fit --run "$TMP/ref" --data "$D" --alpha 0.2 --out "$TMP/g2"
expect 3 "$LETHE" eval muse --run "$TMP/run" --data "$D" --guard "$TMP/g2" --mode guard --quiet \
    --out "$TMP/bad"
one_line "$ERR"
contains "$ERR" "model"
expect 2 "$LETHE" eval muse --run "$TMP/run" --data "$D" --guard "$TMP/g"
expect 2 "$LETHE" eval muse --run "$TMP/run" --data "$D" --guard "$TMP/g" --mode guard \
    --whp "$TMP/run"
expect 3 "$LETHE" guard fit --run "$TMP/run" --data "$D" --targets "$TMP/fit.json" \
    --out "$TMP/g3"
one_line "$ERR"

# bad inputs: exit 3, one line, no output directory
bad() { # bad TEXT ARGS...: exit 3 with one line holding TEXT, nothing written
    local want=$1; shift
    expect 3 "$LETHE" eval muse --quiet "$@" --out "$TMP/bad"
    one_line "$ERR"
    contains "$ERR" "$want"
    if [ -e "$TMP/bad" ]; then fail "a failed run left $TMP/bad"; rm -rf "$TMP/bad"; else pass; fi
}
expect 0 "$LETHE" data make authors --authors 10 --qa 2 --out "$TMP/tofu"
bad "verbmem/forget.json" --run "$TMP/run" --data "$TMP/tofu"
cp -r "$D" "$TMP/d2"
rm "$TMP/d2/privleak/holdout.json"
bad "privleak/holdout.json" --run "$TMP/run" --data "$TMP/d2"
cp "$D/privleak/holdout.json" "$TMP/d2/privleak/holdout.json"
rm "$TMP/d2/privleak/retain.json"
bad "privleak/retain.json" --run "$TMP/run" --data "$TMP/d2"
cp -r "$D" "$TMP/d3"
echo '["a question"]' >"$TMP/d3/knowmem/retain_qa.json"
bad "retain_qa.json: item 0" --run "$TMP/run" --data "$TMP/d3"
bad "tokenizer is not" --run "$TMP/run" --data "$D" --oracle "$TMP/retok"
bad "tokenizer is not" --run "$TMP/run" --data "$D" --mia-ref "$TMP/retok"
bad "vocabulary" --run "$TMP/run" --data "$D" --oracle tests/ref/fixtures/gpt_hf_tiny
bad "$TMP/nope" --run "$TMP/nope" --data "$D"

# usage errors: exit 2
expect 2 "$LETHE" eval muse --run "$TMP/run"
expect 2 "$LETHE" eval muse --run "$TMP/run" --data "$D" --k 0
expect 2 "$LETHE" eval muse --run "$TMP/run" --data "$D" --bogus
finish
